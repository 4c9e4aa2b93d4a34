"""Signed, expiring access tokens (JWT, HS256), shaped like the ones Adobe IMS issues."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Claims:
    client_id: str
    org: str
    expires_at: int
    # The credential's generation at issue (store/tenants.py): a rotation moves it on, and
    # the tokens of older generations are refused. Tokens from before generations read as 0.
    generation: int = 0


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


_HEADER = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())


def issue(
    client_id: str,
    org: str,
    key: str,
    ttl_seconds: int,
    now: float | None = None,
    *,
    generation: int = 0,
) -> str:
    issued = int(time.time() if now is None else now)
    payload = {
        "client_id": client_id,
        "org": org,
        "gen": generation,
        "iat": issued,
        "exp": issued + ttl_seconds,
        "jti": secrets.token_hex(8),
        "type": "access_token",
    }
    signing_input = f"{_HEADER}.{_b64(json.dumps(payload, separators=(',', ':')).encode())}"
    signature = hmac.new(key.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def verify(token: str, key: str, now: float | None = None) -> Claims | None:
    """The token's claims when its signature is ours and it has not expired, else None."""
    claims = _signed_claims(token, key)
    if claims is None or claims.expires_at <= (time.time() if now is None else now):
        return None
    return claims


def expired_at(token: str, key: str) -> int | None:
    """When a token that this server signed expired (POSIX seconds); None for a token that is
    not ours or is malformed. Only to tell a client why its token was refused."""
    claims = _signed_claims(token, key)
    return None if claims is None else claims.expires_at


# A client sends the same token for hours: checking its signature once per worker is enough.
# Expiry is still checked on every call (above), so caching never extends a token's life, and
# so is revocation (api/auth.py asks api/credential_cache.py, which is at most a second old).
@lru_cache(maxsize=4096)
def _signed_claims(token: str, key: str) -> Claims | None:
    parts = token.split(".")
    if len(parts) != 3 or parts[0] != _HEADER:
        return None
    expected = hmac.new(key.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256).digest()
    try:
        if not hmac.compare_digest(expected, _unb64(parts[2])):
            return None
        payload = json.loads(_unb64(parts[1]))
        return Claims(
            str(payload["client_id"]),
            str(payload["org"]),
            int(payload["exp"]),
            int(payload.get("gen", 0)),
        )
    except (ValueError, KeyError, TypeError):
        return None
