"""People who sign in to the admin UI, their roles, and their server-side sessions.

Like credentials, users belong to the tenant directory (tables.py `info={"directory": True}`):
a user is found by email before any tenant is known (sign-in), then every page is scoped to the
user's organization and sandboxes (api/admin_ui). Functions that act on one organization's users
take its id, and never touch another organization's.

Passwords are hashed with scrypt (memory-hard, in the standard library, as client secrets are in
tenants.py), with stronger parameters than those secrets because people choose weak passwords:
N=2^16, r=8, p=1 is 64 MiB and ~0.4 s of one core per hash here. The parameters are stored in
each hash, so raising them later keeps old hashes verifiable. Hashing is CPU work for a thread:
callers run `hash_password` / `verify_password` off the event loop.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from offerbase.store.clock import iso
from offerbase.store.errors import AlreadyExists, InvalidField, InvalidFields
from offerbase.store.tables import admin_sessions, users

_SCRYPT_N, _SCRYPT_R, _SCRYPT_P = 2**16, 8, 1
_SCRYPT_MAXMEM = 256 * 2**20  # above 128 * N * r (64 MiB), or hashlib refuses
MAX_PASSWORD_CHARS = 1024  # the hash's input is bounded; a passphrase fits
MIN_PASSWORD_CHARS = 12
MAX_EMAIL_CHARS = 320
MAX_SANDBOXES = 100
# Deliberately loose: one @, no spaces, a dot in the domain. The address is a sign-in name here,
# never mailed to, so the full RFC 5322 grammar would only admit surprises.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Role(StrEnum):
    """What a user may do (issue 13): each role can do everything of the ones before it."""

    VIEWER = "viewer"  # reads
    EDITOR = "editor"  # creates and changes drafts
    APPROVER = "approver"  # approves offers, puts decisions live
    ADMIN = "admin"  # also manages users, credentials and datastreams

    def allows(self, needed: Role) -> bool:
        order = list(Role)
        return order.index(self) >= order.index(needed)


@dataclass(frozen=True)
class User:
    id: str
    org_id: str
    email: str
    role: Role
    sandboxes: tuple[str, ...] | None  # None: every sandbox of the org
    created: str

    def may_use(self, sandbox: str) -> bool:
        return self.sandboxes is None or sandbox in self.sandboxes

    def reaches(self, sandboxes: tuple[str, ...] | None) -> bool:
        """Whether this user may use every one of `sandboxes` (None: every sandbox of the org,
        later ones included). An admin manages only the users and credentials it reaches, so
        one limited to some sandboxes cannot grant itself, or anyone, more."""
        if sandboxes is None:
            return self.sandboxes is None
        return all(self.may_use(name) for name in sandboxes)

    def shown(self) -> dict[str, Any]:
        """As `offerbase users list` prints it: never the password hash."""
        return {
            "id": self.id,
            "org": self.org_id,
            "email": self.email,
            "role": self.role.value,
            "sandboxes": None if self.sandboxes is None else list(self.sandboxes),
            "created": self.created,
        }


@dataclass(frozen=True)
class Session:
    user: User
    csrf_token: str
    expires: str


# -- passwords (CPU work: call these in a thread) ----------------------------------------------


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = _scrypt(password, salt, _SCRYPT_N, _SCRYPT_R, _SCRYPT_P)
    return f"scrypt${_SCRYPT_N}${_SCRYPT_R}${_SCRYPT_P}${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt_hex, digest_hex = stored.split("$")
        params = int(n), int(r), int(p)
        salt = bytes.fromhex(salt_hex)
    except ValueError:
        return False
    if scheme != "scrypt" or len(password) > MAX_PASSWORD_CHARS:
        return False
    digest = _scrypt(password, salt, *params)
    return hmac.compare_digest(digest.hex(), digest_hex)


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=_SCRYPT_MAXMEM, dklen=32
    )


@cache
def dummy_hash() -> str:
    """Verified when no user has the email, so that a sign-in costs one scrypt run either way
    and its timing does not tell which emails exist."""
    return hash_password(secrets.token_urlsafe(32))


def password_problem(password: str) -> str | None:
    """Why a new password is refused, or None."""
    if len(password) < MIN_PASSWORD_CHARS:
        return f"A password has at least {MIN_PASSWORD_CHARS} characters."
    if len(password) > MAX_PASSWORD_CHARS:
        return f"A password has at most {MAX_PASSWORD_CHARS} characters."
    return None


# -- users ---------------------------------------------------------------------------------------


def normal_email(email: str) -> str:
    return email.strip().lower()


def check_user(email: str, role: str, sandboxes: list[str] | None) -> tuple[str, Role]:
    """The normalized email and the role, or InvalidFields naming each bad one (what
    `create_user` checks; a form may check before it hashes a password)."""
    errors = []
    email = normal_email(email)
    if len(email) > MAX_EMAIL_CHARS or not _EMAIL.match(email):
        errors.append(InvalidField("/email", f"'{email[:80]}' is not an email address."))
    if role not in {item.value for item in Role}:
        names = ", ".join(item.value for item in Role)
        errors.append(InvalidField("/role", f"'{role[:40]}' is not a role; use one of {names}."))
    if sandboxes is not None and not 1 <= len(sandboxes) <= MAX_SANDBOXES:
        errors.append(InvalidField("/sandboxes", f"Name 1 to {MAX_SANDBOXES} sandboxes."))
    if errors:
        raise InvalidFields("; ".join(error.message for error in errors), errors)
    return email, Role(role)


_USER_COLUMNS = [
    users.c.id,
    users.c.org_id,
    users.c.email,
    users.c.role,
    users.c.sandboxes,
    users.c.created,
]


def _user(row: Any) -> User:
    names = row.sandboxes
    return User(
        row.id,
        row.org_id,
        row.email,
        Role(row.role),
        None if names is None else tuple(names),
        row.created,
    )


async def create_user(
    conn: AsyncConnection,
    org_id: str,
    email: str,
    role: str,
    sandboxes: list[str] | None,
    password_hash: str,
    *,
    now: datetime,
) -> User:
    """A user of `org_id` (which must exist). `password_hash` comes from `hash_password`, run
    by the caller off the event loop. Raises InvalidFields or AlreadyExists (the email)."""
    email, checked_role = check_user(email, role, sandboxes)
    taken = await conn.scalar(sa.select(users.c.id).where(users.c.email == email))
    if taken is not None:
        raise AlreadyExists(f"A user with email '{email}' exists.")
    user_id = uuid.uuid4().hex
    names = None if sandboxes is None else sorted(set(sandboxes))
    await conn.execute(
        users.insert().values(
            id=user_id,
            org_id=org_id,
            email=email,
            role=checked_role.value,
            sandboxes=names,
            password_hash=password_hash,
            created=iso(now),
        )
    )
    return User(
        user_id, org_id, email, checked_role, None if names is None else tuple(names), iso(now)
    )


async def list_users(conn: AsyncConnection, org_id: str | None = None) -> list[User]:
    query = sa.select(*_USER_COLUMNS).order_by(users.c.org_id, users.c.email)
    if org_id is not None:
        query = query.where(users.c.org_id == org_id)
    return [_user(row) for row in (await conn.execute(query)).all()]


async def get_user(conn: AsyncConnection, org_id: str, email: str) -> User | None:
    query = sa.select(*_USER_COLUMNS).where(
        users.c.org_id == org_id, users.c.email == normal_email(email)
    )
    row = (await conn.execute(query)).first()
    return None if row is None else _user(row)


async def find_for_sign_in(conn: AsyncConnection, email: str) -> tuple[User, str] | None:
    """The user with this email, whatever its organization, and its password hash."""
    query = sa.select(*_USER_COLUMNS, users.c.password_hash).where(
        users.c.email == normal_email(email)
    )
    row = (await conn.execute(query)).first()
    return None if row is None else (_user(row), str(row.password_hash))


async def set_role(conn: AsyncConnection, org_id: str, email: str, role: str) -> User | None:
    """The user with its new role (it applies to its open sessions at once: every request reads
    the role); None when the org has no such user."""
    found = await get_user(conn, org_id, email)
    if found is None:
        return None
    _, checked_role = check_user(found.email, role, None)
    await conn.execute(users.update().where(users.c.id == found.id).values(role=checked_role.value))
    return await get_user(conn, org_id, email)


async def delete_user(conn: AsyncConnection, org_id: str, email: str) -> bool:
    """Delete the user and end its sessions. False when the org has no such user."""
    found = await get_user(conn, org_id, email)
    if found is None:
        return False
    await conn.execute(admin_sessions.delete().where(admin_sessions.c.user_id == found.id))
    await conn.execute(users.delete().where(users.c.id == found.id))
    return True


# -- sessions ------------------------------------------------------------------------------------


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


async def start_session(
    conn: AsyncConnection, user: User, *, now: datetime, lifetime: timedelta
) -> tuple[str, Session]:
    """A new session of `user`: (the token for the cookie, the session). Expired sessions of
    every user are removed on the way, so the table does not grow with abandoned ones."""
    await conn.execute(admin_sessions.delete().where(admin_sessions.c.expires <= iso(now)))
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    expires = iso(now + lifetime)
    await conn.execute(
        admin_sessions.insert().values(
            token_hash=_token_hash(token),
            user_id=user.id,
            csrf_token=csrf,
            created=iso(now),
            expires=expires,
        )
    )
    return token, Session(user, csrf, expires)


async def session_of(conn: AsyncConnection, token: str, *, now: datetime) -> Session | None:
    """The unexpired session of `token`, with its user as it is now (role included)."""
    query = (
        sa.select(*_USER_COLUMNS, admin_sessions.c.csrf_token, admin_sessions.c.expires)
        .select_from(admin_sessions.join(users, users.c.id == admin_sessions.c.user_id))
        .where(admin_sessions.c.token_hash == _token_hash(token))
        .where(admin_sessions.c.expires > iso(now))
    )
    row = (await conn.execute(query)).first()
    return None if row is None else Session(_user(row), row.csrf_token, row.expires)


async def end_session(conn: AsyncConnection, token: str) -> None:
    await conn.execute(
        admin_sessions.delete().where(admin_sessions.c.token_hash == _token_hash(token))
    )
