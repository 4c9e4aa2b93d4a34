"""Checking an admin UI password without letting guesses hurt anyone else.

The token endpoint's approach (api/client_auth.py), reused: scrypt runs in a worker thread behind
a one-slot limiter (a flood of guesses queues instead of taking the cores from decisions); an
unknown email is verified against a dummy hash, so the answer's timing does not tell which emails
exist; failures are counted per email and per client address in a moving window
(`FailureThrottle`, in Redis when OFFERBASE_REDIS_URL is set), and past the limit the sign-in is
refused with 429 before any hashing, even for the right password.
"""

from __future__ import annotations

import anyio
import anyio.to_thread

from offerbase.api.client_auth import HASH_CONCURRENCY, FailureThrottle
from offerbase.store import users
from offerbase.store.db import Database


class SignInChecker:
    """One worker's password checks: throttled, off the event loop."""

    def __init__(self, throttle: FailureThrottle) -> None:
        self.throttle = throttle
        self._hashing: anyio.CapacityLimiter | None = None

    def _limiter(self) -> anyio.CapacityLimiter:
        # Made on first use: a limiter belongs to the event loop that runs the app.
        if self._hashing is None:
            self._hashing = anyio.CapacityLimiter(HASH_CONCURRENCY)
        return self._hashing

    async def check(self, db: Database, email: str, password: str) -> users.User | None:
        """The user when the password is theirs."""
        async with db.read() as conn:  # not held while hashing
            found = await users.find_for_sign_in(conn, email)
        stored = None if found is None else found[1]
        matches = await anyio.to_thread.run_sync(_verify, password, stored, limiter=self._limiter())
        return found[0] if found is not None and matches else None

    async def hash(self, password: str) -> str:
        return await anyio.to_thread.run_sync(
            users.hash_password, password, limiter=self._limiter()
        )


def _verify(password: str, stored: str | None) -> bool:
    # In the hashing thread, the dummy hash too (made once, on first need).
    return users.verify_password(password, users.dummy_hash() if stored is None else stored)
