"""The admin UI's session cookie and CSRF check.

The cookie holds a random 256-bit token and an HMAC of it (keyed by a key derived from the
server's secret, shared by every worker): a cookie this server did not issue is refused without a
database read. The session itself is a row (store/users.py `admin_sessions`, the token's SHA-256
as key), so it is revocable: sign-out and deleting the user end it at once, and it expires
server-side after `admin_session_seconds` whatever the browser keeps. The cookie is HttpOnly,
SameSite=Lax, Path=/admin, Secure when the request came over HTTPS, and its Max-Age is the
session's lifetime.

CSRF: the synchronizer-token pattern. Each session has a random token of its own (the row's
`csrf_token`); every form that changes state carries it in a hidden `csrf` field and htmx sends
it as the `X-CSRF-Token` header (set on <body>); every state-changing request under /admin is
refused with 403 unless one of them equals the session's token. Requests whose `Origin` header
names another origin are refused too (it also covers the sign-in form, which has no session yet:
no one can sign a victim in to an attacker's account from another site).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import parse_qsl, urlsplit

from starlette.requests import Request
from starlette.responses import Response

from offerbase.api.deps import Services
from offerbase.store import users

COOKIE = "offerbase_admin"
COOKIE_PATH = "/admin"
CSRF_FIELD = "csrf"
CSRF_HEADER = "x-csrf-token"
MAX_COOKIE_CHARS = 200  # what this server issues is ~66
# The UI's forms are small (sign-in, a CSRF token, an etag): a larger body is refused unread.
MAX_FORM_BYTES = 16 * 1024
MAX_FORM_FIELDS = 50


class FormTooLarge(Exception):
    """413: a form body larger than MAX_FORM_BYTES."""


async def read_form(
    request: Request, max_bytes: int = MAX_FORM_BYTES, max_fields: int = MAX_FORM_FIELDS
) -> dict[str, str]:
    """The request's urlencoded form (the first value of each field), read once, bounded in
    bytes and fields; any other body type reads as an empty form. Every value of a repeated
    field is kept too (`form_values`). An editor's form is larger: it reads it first, with
    its own bounds."""
    cached: dict[str, str] | None = getattr(request.state, "admin_form", None)
    if cached is not None:
        return cached
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise FormTooLarge
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > max_bytes:
            raise FormTooLarge
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    form: dict[str, str] = {}
    values: dict[str, list[str]] = {}
    if media == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(raw.decode(), keep_blank_values=True, max_num_fields=max_fields)
        except (UnicodeDecodeError, ValueError):
            pairs = []
        for key, value in pairs:
            form.setdefault(key, value)
            values.setdefault(key, []).append(value)
    request.state.admin_form = form
    request.state.admin_form_values = values
    return form


def form_values(request: Request) -> dict[str, list[str]]:
    """Every value of each field of the form `read_form` read."""
    found: dict[str, list[str]] = getattr(request.state, "admin_form_values", {})
    return found


class SignInRequired(Exception):
    """No valid session: the page answers with the sign-in page (a redirect)."""


class Refused(Exception):
    """403: a failed CSRF or origin check, or a role that may not do this."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Visitor:
    """A signed-in request: the session (its user as it is now) and the cookie's token."""

    session: users.Session
    token: str

    @property
    def user(self) -> users.User:
        return self.session.user


def _key(services: Services) -> bytes:
    # A key of its own, derived from the token-signing secret: a cookie is never a token.
    secret = services.settings.resolved_secret_key.encode()
    return hmac.digest(secret, b"offerbase admin session", hashlib.sha256)


def _mac(services: Services, token: str) -> str:
    digest = hmac.digest(_key(services), token.encode(), hashlib.sha256)
    return base64.urlsafe_b64encode(digest[:16]).decode().rstrip("=")


def cookie_value(services: Services, token: str) -> str:
    return f"{token}.{_mac(services, token)}"


def token_of(services: Services, request: Request) -> str | None:
    """The session token of the request's cookie, when its signature is this server's."""
    value = request.cookies.get(COOKIE)
    if not value or len(value) > MAX_COOKIE_CHARS:
        return None
    token, _, mac = value.rpartition(".")
    if not token or not hmac.compare_digest(mac.encode(), _mac(services, token).encode()):
        return None
    return token


async def visitor(services: Services, request: Request) -> Visitor | None:
    token = token_of(services, request)
    if token is None:
        return None
    async with services.db.read() as conn:
        session = await users.session_of(conn, token, now=services.clock())
    return None if session is None else Visitor(session, token)


def set_cookie(services: Services, request: Request, response: Response, token: str) -> None:
    response.set_cookie(
        COOKIE,
        cookie_value(services, token),
        max_age=int(lifetime(services).total_seconds()),
        path=COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",
    )


def clear_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(
        COOKIE,
        path=COOKIE_PATH,
        secure=request.url.scheme == "https",
        httponly=True,
        samesite="lax",
    )


def lifetime(services: Services) -> timedelta:
    return timedelta(seconds=services.settings.admin_session_seconds)


def check_origin(request: Request) -> None:
    """Refuse a state-changing request sent from a page of another origin."""
    origin = request.headers.get("origin")
    if origin is None:  # not a browser's cross-site request: browsers send Origin on POST
        return
    own = f"{request.url.scheme}://{request.url.netloc}"
    parts = urlsplit(origin)
    if f"{parts.scheme}://{parts.netloc}" != own:
        raise Refused("This form was sent from another site; it was refused.")


async def check_csrf(request: Request, session: users.Session) -> None:
    """The request carries the session's CSRF token (header or form field), or 403."""
    check_origin(request)
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        sent = (await read_form(request)).get(CSRF_FIELD)
    if sent is None or not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
        raise Refused("The form's security token is missing or out of date: reload the page.")


def require(user: users.User, role: users.Role) -> None:
    if not user.role.allows(role):
        raise Refused(f"Your role ({user.role.value}) may not do this; it needs {role.value}.")
