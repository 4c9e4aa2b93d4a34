"""Domain errors raised by the store; the HTTP layer maps each to a status and problem body."""

from __future__ import annotations

from dataclasses import dataclass


class StoreError(Exception):
    status = 400
    title = "Bad Request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(StoreError):
    status = 404
    title = "Not Found"


class AlreadyExists(StoreError):
    status = 409
    title = "Conflict"


class PreconditionFailed(StoreError):
    status = 412
    title = "Precondition Failed"


class BadCursor(StoreError):
    status = 400
    title = "Bad Request"


@dataclass
class Referrer:
    id: str
    kind: str
    pointer: str


class StillReferenced(StoreError):
    status = 409
    title = "Conflict"

    def __init__(self, detail: str, referrers: list[Referrer]) -> None:
        super().__init__(detail)
        self.referrers = referrers


@dataclass
class InvalidField:
    pointer: str
    message: str


class InvalidFields(StoreError):
    """An error that names the offending fields (each by its JSON pointer)."""

    def __init__(self, detail: str, errors: list[InvalidField]) -> None:
        super().__init__(detail)
        self.errors = errors


class Unprocessable(InvalidFields):
    """The body is well-formed but names missing entities or breaks a uniqueness rule."""

    status = 422
    title = "Unprocessable Entity"


MAX_NAME_CHARS = 255  # the name columns of datasets and datastreams are String(255)


def check_name(name: object, pointer: str = "/name") -> str:
    """A dataset's or datastream's name: a string that fits its column, without U+0000."""
    if not isinstance(name, str) or len(name) > MAX_NAME_CHARS or "\x00" in name:
        message = f"The name is a string of at most {MAX_NAME_CHARS} characters (no U+0000)."
        raise Unprocessable(message, [InvalidField(pointer, message)])
    return name
