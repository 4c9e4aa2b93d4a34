"""Checking a client secret at the token endpoint without letting guesses hurt anyone else.

- The scrypt hash (~20 ms of CPU, store/tenants.py) runs in a worker thread, never on the
  event loop, and at most `HASH_CONCURRENCY` at a time per worker: a flood of wrong secrets
  queues behind that limiter instead of taking every thread and core from decisions.
- An unknown client id is hashed against a dummy hash, a revoked credential against its own:
  every answer costs one scrypt run, so timing does not tell which client ids exist.
- Failures are counted per client id and per client address in a moving window (the `limits`
  library); past the limit the endpoint answers 429 with Retry-After before hashing anything,
  even for the right secret (otherwise the limit would not stop guessing). The window lives in
  Redis when OFFERBASE_REDIS_URL is set, so it holds across workers and hosts; otherwise in
  each worker's memory (a limit per worker).
"""

from __future__ import annotations

import math
import time

import anyio
import anyio.to_thread
from limits import RateLimitItemPerMinute
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter

from offerbase.store import tenants
from offerbase.store.db import Database
from offerbase.store.tenants import Credential

# One hashing thread per worker: legitimate clients ask for a token once a day (24 h tokens),
# so one scrypt run at a time (~50 per second) is plenty, and it leaves the other core to
# decisions (bench/token_flood.py).
HASH_CONCURRENCY = 1
REDIS_PREFIX = "offerbase:throttle"  # with OFFERBASE_REDIS_PREFIX's default, `offerbase:`


class FailureThrottle:
    """Failed secret checks per client id and per client address, per minute."""

    def __init__(
        self,
        redis_url: str | None,
        *,
        per_client: int,
        per_address: int,
        key_prefix: str = REDIS_PREFIX,
    ) -> None:
        storage: Storage
        if redis_url:
            storage = RedisStorage(
                f"async+{redis_url}", implementation="redispy", key_prefix=key_prefix
            )
        else:
            storage = MemoryStorage()
        self._limiter = MovingWindowRateLimiter(storage)
        self._per_client = RateLimitItemPerMinute(per_client, namespace="client")
        self._per_address = RateLimitItemPerMinute(per_address, namespace="address")

    def _windows(self, client_id: str, address: str) -> list[tuple[RateLimitItemPerMinute, str]]:
        return [(self._per_client, client_id), (self._per_address, address)]

    async def retry_after(self, client_id: str, address: str) -> int | None:
        """Seconds until another attempt may be made, when one of the limits is reached."""
        waits = []
        for limit, key in self._windows(client_id, address):
            if not await self._limiter.test(limit, key):
                stats = await self._limiter.get_window_stats(limit, key)
                waits.append(max(1, math.ceil(stats.reset_time - time.time())))
        return max(waits) if waits else None

    async def failed(self, client_id: str, address: str) -> None:
        for limit, key in self._windows(client_id, address):
            await self._limiter.hit(limit, key)


class SecretChecker:
    """One worker's secret checks: throttled, off the event loop, constant-ish in time."""

    def __init__(self, throttle: FailureThrottle) -> None:
        self.throttle = throttle
        self._hashing: anyio.CapacityLimiter | None = None
        self.hashed = 0  # scrypt runs, for tests: a throttled attempt must not add one

    def _limiter(self) -> anyio.CapacityLimiter:
        # Made on first use: a limiter belongs to the event loop that runs the app.
        if self._hashing is None:
            self._hashing = anyio.CapacityLimiter(HASH_CONCURRENCY)
        return self._hashing

    async def check(self, db: Database, client_id: str, secret: str) -> Credential | None:
        """The credential when the secret is its current one and it is not revoked."""
        async with db.read() as conn:  # not held while hashing
            found = await tenants.find_credential(conn, client_id)
        self.hashed += 1
        matches = await anyio.to_thread.run_sync(
            _verify, secret, None if found is None else found[1], limiter=self._limiter()
        )
        if found is None or not matches or found[0].revoked is not None:
            return None
        return found[0]


def _verify(secret: str, stored: str | None) -> bool:
    # In the hashing thread, the dummy hash too (made once, on first need).
    return tenants.verify_secret(secret, tenants.dummy_hash() if stored is None else stored)
