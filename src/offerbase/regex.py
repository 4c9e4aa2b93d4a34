"""The one regular-expression engine for patterns that come from clients: RE2 (google-re2).

Patterns reach the server from `~` list filters, PQL `matches` / `like` / `regexGroup` in saved
rules, and even from profile data (`a.matches(b)` with both read from the profile). Python's
`re` backtracks, so `(a+)+$` against `aaaa...b` runs for minutes; RE2 matches in time linear in
the text whatever the pattern, and bounds the memory of a compiled pattern (`MAX_PROGRAM_BYTES`).
The price is RE2's syntax: no backreferences (`\\1`) and no lookaround (`(?=`, `(?<!`); such
patterns are refused like any other syntax error (`RegexError`), never run by another engine.

A leaf utility like `config`: `pql` (which otherwise uses only the standard library) and
`store` use it, so the whole server has one regex dialect.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Protocol

import re2  # type: ignore[import-untyped]  # google-re2 ships no type information

# A pattern is refused past this many characters; RE2 would also refuse a pattern whose
# compiled program outgrows MAX_PROGRAM_BYTES (e.g. `(a{100}){100}`), with the same error.
MAX_PATTERN_LENGTH = 1000
MAX_PROGRAM_BYTES = 1 << 20  # RE2's max_mem per compiled pattern (its default is 8 MiB)

ENGINE = "RE2"  # what docs/pql.md and docs/offer-library.md promise; asserted by the tests


class Match(Protocol):
    def group(self, index: int = 0, /) -> str | None: ...


class Pattern(Protocol):
    """The part of google-re2's compiled pattern the server uses (``re.Pattern``-like)."""

    @property
    def groups(self) -> int: ...

    def search(self, text: str, /) -> Match | None: ...

    def fullmatch(self, text: str, /) -> Match | None: ...


class RegexError(ValueError):
    """A pattern RE2 does not accept; the message says why (RE2's own wording)."""


@lru_cache(maxsize=512)
def compile_regex(pattern: str, *, ignore_case: bool = False) -> Pattern:
    """Compile ``pattern`` with RE2 (cached); raise ``RegexError`` for every kind of bad
    pattern: syntax, an unsupported construct, a repetition or a program too large."""
    _check_length(pattern)
    return _compile(pattern, ignore_case=ignore_case, dot_all=False)


@lru_cache(maxsize=512)
def compile_like(pattern: str) -> Pattern:
    """SQL LIKE as a pattern: `%` any run, `_` one character, anchored by ``fullmatch``."""
    _check_length(pattern)
    parts = (".*" if c == "%" else "." if c == "_" else re2.escape(c) for c in pattern)
    return _compile("".join(parts), ignore_case=False, dot_all=True)


def _check_length(pattern: str) -> None:
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise RegexError(f"the pattern is longer than {MAX_PATTERN_LENGTH} characters")


def _compile(pattern: str, *, ignore_case: bool, dot_all: bool) -> Pattern:
    options = re2.Options()
    options.log_errors = False  # RE2 would print every refused pattern to stderr
    options.max_mem = MAX_PROGRAM_BYTES
    options.case_sensitive = not ignore_case
    options.dot_nl = dot_all
    try:
        compiled: Pattern = re2.compile(pattern, options)
    except re2.error as exc:
        raise RegexError(_reason(exc)) from None
    except UnicodeError:  # a lone surrogate has no UTF-8 form, which RE2 needs
        raise RegexError("the pattern holds a lone surrogate character") from None
    return compiled


def _reason(exc: Exception) -> str:
    reason = exc.args[0] if exc.args else "invalid pattern"
    if isinstance(reason, bytes):
        reason = reason.decode("utf-8", "replace")
    return f"{reason} (RE2 syntax: no backreferences or lookaround)"


# Text without a UTF-8 form (a lone surrogate, from a PQL `\ud800` escape) matches nothing:
# RE2 matches UTF-8, and an encoding error must not escape as a 500.
def search(pattern: Pattern, text: str) -> Match | None:
    try:
        return pattern.search(text)
    except UnicodeError:
        return None


def fullmatch(pattern: Pattern, text: str) -> Match | None:
    try:
        return pattern.fullmatch(text)
    except UnicodeError:
        return None
