"""The visitor's ECID on the Edge endpoints: where a request carries it, and the cookie that
makes the Web SDK keep it.

Adobe's Web SDK (alloy) keeps the ECID in a first-party cookie `kndctr_{org}_identity` whose
value is base64 of a protobuf `Identity` message, field 1 (a string) being the ECID. It sends
the cookie back in `meta.state.entries` when the Edge host is not first-party, else the browser
sends it as a `Cookie` header. The Mobile SDK and servers send the ECID in `xdm.identityMap`.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from collections.abc import Iterable, Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any

ECID = "ECID"
# Adobe's lifetime of the identity cookie (about 395 days).
IDENTITY_MAX_AGE = 34_128_000
ECID_DIGITS = 38
# Longer cookie values are not Adobe's; they are ignored unread (the protobuf walk is bounded
# by them).
MAX_COOKIE_VALUE = 4096
MAX_ECID_CHARS = 64
MAX_STATE_ENTRIES = 100


def cookie_name(org_id: str) -> str:
    """`kndctr_{org with @ replaced by _}_identity`, as alloy names it."""
    return f"kndctr_{org_id.replace('@', '_')}_identity"


def mint_ecid() -> str:
    """A new 38-digit ECID, from the system's random source: an ECID names a person's browser,
    so it must not be guessable (a test's seeded RNG is not used here)."""
    return str(10 ** (ECID_DIGITS - 1) + secrets.randbelow(9 * 10 ** (ECID_DIGITS - 1)))


def is_ecid(value: object) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= MAX_ECID_CHARS
        and value.isascii()
        and value.isdigit()
    )


def encode_cookie(ecid: str) -> str:
    """base64 of the protobuf message {1: ecid} (field 1, wire type 2: tag 0x0a, then length)."""
    raw = ecid.encode()
    return base64.b64encode(b"\x0a" + _varint(len(raw)) + raw).decode()


def decode_cookie(value: str) -> str | None:
    """The ECID in an identity cookie value; None when it is not one (never raises)."""
    if not isinstance(value, str) or not 0 < len(value) <= MAX_COOKIE_VALUE:
        return None
    text = value.strip().replace("-", "+").replace("_", "/")  # URL-safe base64 tolerated
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    ecid = _protobuf_field_1(raw)
    return ecid if is_ecid(ecid) else None


def from_state(entries: object, org_id: str) -> str | None:
    """The ECID in `meta.state.entries` ([{key, value}]), if the identity cookie is there."""
    if not isinstance(entries, list):
        return None
    name = cookie_name(org_id)
    for entry in entries[:MAX_STATE_ENTRIES]:
        if isinstance(entry, Mapping) and entry.get("key") == name:
            value = entry.get("value")
            if isinstance(value, str):
                return decode_cookie(value)
    return None


def from_cookie_header(header: str | None, org_id: str) -> str | None:
    """The ECID in a `Cookie` header (a first-party Edge host: the browser sends the cookie)."""
    if not header:
        return None
    cookies: SimpleCookie = SimpleCookie()
    try:
        cookies.load(header)
    except CookieError:
        return None
    morsel = cookies.get(cookie_name(org_id))
    return decode_cookie(morsel.value) if morsel is not None else None


def from_identity_map(identity_maps: Iterable[Any]) -> str | None:
    """The first ECID of the identity maps (Mobile SDK, Server API), namespace compared
    case-insensitively as everywhere else."""
    for identity_map in identity_maps:
        if not isinstance(identity_map, Mapping):
            continue
        for namespace, entries in identity_map.items():
            if not isinstance(namespace, str) or namespace.upper() != ECID:
                continue
            if isinstance(entries, list):
                for entry in entries[:MAX_STATE_ENTRIES]:
                    if isinstance(entry, Mapping) and is_ecid(entry.get("id")):
                        found: str = entry["id"]
                        return found
    return None


def identity_handles(ecid: str, org_id: str) -> list[dict[str, Any]]:
    """The two handles that give alloy the identity and make it keep it."""
    return [
        {"type": "identity:result", "payload": [{"id": ecid, "namespace": {"code": ECID}}]},
        {
            "type": "state:store",
            "payload": [
                {
                    "key": cookie_name(org_id),
                    "value": encode_cookie(ecid),
                    "maxAge": IDENTITY_MAX_AGE,
                }
            ],
        },
    ]


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        byte = number & 0x7F
        number >>= 7
        if number:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(raw: bytes, at: int) -> tuple[int, int]:
    """(value, next position); raises ValueError past the end or beyond 10 bytes."""
    value = 0
    for shift in range(0, 70, 7):
        if at >= len(raw):
            raise ValueError("truncated varint")
        byte = raw[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
    raise ValueError("varint too long")


def _protobuf_field_1(raw: bytes) -> str | None:
    """Field 1 (length-delimited, UTF-8) of a protobuf message; None when absent or malformed.
    Every step moves forward, so the walk ends within len(raw) steps."""
    at = 0
    try:
        while at < len(raw):
            tag, at = _read_varint(raw, at)
            field, wire = tag >> 3, tag & 7
            if wire == 0:
                _, at = _read_varint(raw, at)
            elif wire == 1:
                at += 8
            elif wire == 5:
                at += 4
            elif wire == 2:
                length, at = _read_varint(raw, at)
                if at + length > len(raw):
                    return None
                if field == 1:
                    return raw[at : at + length].decode()
                at += length
            else:
                return None
    except (ValueError, UnicodeDecodeError):
        return None
    return None
