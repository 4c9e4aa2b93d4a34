"""Server-generated ids: ``dps:<type word>:<snowflake in lowercase hex, no padding>``.

Adobe's ids are Twitter-style snowflakes: milliseconds since the Twitter epoch shifted left
by 22 bits, a 10-bit worker id, a 12-bit sequence. Using the same layout makes our ids
look like Adobe's and keeps them roughly time-ordered, which list ordering by id relies on.
"""

from __future__ import annotations

import os
import threading
import time

TWITTER_EPOCH_MS = 1288834974657
_WORKER_BITS = 10
_SEQUENCE_BITS = 12
_SEQUENCE_MASK = (1 << _SEQUENCE_BITS) - 1
_TIMESTAMP_SHIFT = _WORKER_BITS + _SEQUENCE_BITS

# Several server processes may generate ids for the same database: deriving the worker bits from
# the pid makes collisions between concurrent workers unlikely without any coordination.
_WORKER_ID = os.getpid() & ((1 << _WORKER_BITS) - 1)

_lock = threading.Lock()
_last = 0


def _next_snowflake() -> int:
    global _last
    with _lock:
        now_ms = int(time.time() * 1000) - TWITTER_EPOCH_MS
        candidate = (now_ms << _TIMESTAMP_SHIFT) | (_WORKER_ID << _SEQUENCE_BITS)
        if candidate <= _last:
            # Same millisecond (or the clock went backwards): bump the sequence; when it
            # overflows, borrow the next millisecond so ids stay strictly increasing.
            if (_last & _SEQUENCE_MASK) == _SEQUENCE_MASK:
                candidate = (((_last >> _TIMESTAMP_SHIFT) + 1) << _TIMESTAMP_SHIFT) | (
                    _WORKER_ID << _SEQUENCE_BITS
                )
            else:
                candidate = _last + 1
        _last = candidate
        return candidate


def new_id(kind: str) -> str:
    """Return a fresh ``dps:<id_word>:<hex>`` id for the kind named ``kind``."""
    from offerbase.catalog.kinds import KINDS  # local: kinds imports the models, keep ids light

    try:
        word = KINDS[kind].id_word
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}; expected one of {sorted(KINDS)}") from None
    return f"dps:{word}:{_next_snowflake():x}"


def snowflake_millis(value: str) -> int:
    """Unix epoch milliseconds encoded in an id (``dps:x:<hex>`` or bare hex)."""
    hex_part = value.rsplit(":", 1)[-1]
    return (int(hex_part, 16) >> _TIMESTAMP_SHIFT) + TWITTER_EPOCH_MS
