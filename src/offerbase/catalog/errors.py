"""Error types of the catalog domain.

The HTTP layer maps them to status codes: ``CatalogValidationError`` -> 422,
``PatchError`` -> 400 (malformed document) or 422 (cannot apply), ``PatchTestFailed`` -> 409,
``PatchTooLarge`` -> 413.
"""

from __future__ import annotations

from typing import NamedTuple


class FieldError(NamedTuple):
    """One problem in a request body: an RFC 6901 pointer into the body and a sentence."""

    pointer: str
    message: str


class CatalogValidationError(Exception):
    """A body failed validation; ``errors`` lists every problem found, in document order."""

    def __init__(self, errors: list[FieldError]) -> None:
        self.errors = list(errors)
        summary = "; ".join(f"{e.pointer or '(body)'}: {e.message}" for e in self.errors[:5])
        super().__init__(summary)


class PatchError(Exception):
    """A JSON Patch document is malformed or one of its operations cannot be applied.

    ``pointer`` points into the *patch array* (``/2`` or ``/2/path``), not into the entity.
    ``malformed`` tells the HTTP layer whether the document itself is broken (400) or merely
    cannot be applied to this entity (422).
    """

    def __init__(self, pointer: str, message: str, *, malformed: bool = False) -> None:
        self.pointer = pointer
        self.message = message
        self.malformed = malformed
        super().__init__(f"{pointer}: {message}")


class PatchTestFailed(PatchError):
    """A ``test`` operation did not match the current document (HTTP 409)."""


class PatchTooLarge(PatchError):
    """A patch with too many operations, or writing too much (HTTP 413); see catalog.patch."""
