"""Tokenizer: one compiled regular expression, positions kept as offsets.

Line and column are only computed when an error is raised, which keeps lexing cheap.
"""

from __future__ import annotations

import re
from typing import NamedTuple, NoReturn

from .errors import PqlError

# Token kinds. NAME covers identifiers and keywords alike: PQL keywords are only
# keywords in their syntactic slots (`person.birthDay`, `x.matches(...)`), so the
# parser decides.
NAME = "name"
INT = "int"
FLOAT = "float"
STR = "str"
OP = "op"
CTX = "ctx"
PARAM = "param"
UP = "up"
EOF = "eof"


class Token(NamedTuple):
    kind: str
    text: str
    pos: int
    # Lower-cased text for NAME tokens, so keyword tests are one comparison;
    # the decoded value for STR tokens; "" otherwise.
    low: str


_TOKEN_RE = re.compile(
    r"""
    (?P<ws>\s+)
   |(?P<float>(?:\d+\.\d*|\.\d+)(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+)
   |(?P<int>\d+)
   |(?P<name>[A-Za-z_][A-Za-z0-9_]*)
   |(?P<str>"(?:[^"\\]|\\.)*")
   |(?P<ctx>@[A-Za-z_]*\{[^}]*\})
   |(?P<param>\$\d+)
   |(?P<up>\^+\.?)
   |(?P<op>!=|<=|>=|=>|==|[=<>!+\-*/%()\[\]{},.:])
    """,
    re.VERBOSE | re.DOTALL,
)

_ESCAPES = {"\\": "\\", '"': '"', "/": "/", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}
_HEX = frozenset("0123456789abcdefABCDEF")


def _decode(body: str, source: str, start: int) -> str:
    """Java-style escapes; an unknown one is an error, as `"\\w"` must be written for `\\w`."""
    out: list[str] = []
    i = 0
    n = len(body)
    while i < n:
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1]  # the regex guarantees a character after a backslash
        if nxt == "u":
            digits = body[i + 2 : i + 6]
            if len(digits) != 4 or not set(digits) <= _HEX:
                raise PqlError("invalid \\u escape in string", source, start + i)
            out.append(chr(int(digits, 16)))
            i += 6
            continue
        if nxt not in _ESCAPES:
            raise PqlError(
                f"invalid escape \\{nxt} in string (write \\\\ for a backslash)", source, start + i
            )
        out.append(_ESCAPES[nxt])
        i += 2
    return "".join(out)


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    append = tokens.append
    match = _TOKEN_RE.match
    pos = 0
    n = len(source)
    while pos < n:
        m = match(source, pos)
        if m is None:
            _bad_char(source, pos)
        kind = m.lastgroup
        text = m.group()
        if kind == "name":
            append(Token(NAME, text, pos, text.lower()))
        elif kind == "op":
            if text == "==":
                raise PqlError("'==' is not PQL; use '=' for equality", source, pos)
            if text == "/" and source.startswith(("//", "/*"), pos):
                raise PqlError("comments are not supported in PQL", source, pos)
            append(Token(OP, text, pos, ""))
        elif kind == "str":
            body = text[1:-1]
            value = _decode(body, source, pos + 1) if "\\" in body else body
            append(Token(STR, text, pos, value))
        elif kind != "ws":
            if kind == "ctx":
                _check_ctx(text, source, pos)
            append(Token(str(kind), text, pos, ""))
        pos = m.end()
    append(Token(EOF, "", n, ""))
    return tokens


def _check_ctx(text: str, source: str, pos: int) -> None:
    brace = text.index("{")
    if text[1:brace].lower() not in ("", "event"):
        raise PqlError("a context reference is written @{type} or @event{type}", source, pos)
    if not text[brace + 1 : -1].strip():
        raise PqlError("empty context type in @{...}", source, pos)


def _bad_char(source: str, pos: int) -> NoReturn:
    c = source[pos]
    if c == '"':
        raise PqlError("unterminated string", source, pos)
    if c == "'":
        raise PqlError("strings are written in double quotes in PQL", source, pos)
    if c == "#":
        raise PqlError("comments are not supported in PQL", source, pos)
    if c == "@":
        raise PqlError("a context reference is written @{type} or @event{type}", source, pos)
    raise PqlError(f"unexpected character {c!r}", source, pos)
