"""Tokenizer: one compiled regular expression, positions kept as offsets.

Line and column are only computed when an error is raised, which keeps lexing cheap.
"""

from __future__ import annotations

import re
from typing import NoReturn

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


# (kind, text, offset, key). `text` is the decoded value for a STR. `key` is the lower-cased
# text of a NAME and the text of an OP, "" otherwise, so the parser finds operators and keywords
# with one lookup. Plain tuples: they are the cheapest to build.
Token = tuple[str, str, int, str]

# One alternative per token shape, the commonest first: each failed alternative costs a little
# on every token. Operators come before numbers except `.`, which must not take the dot of `.5`.
# `==` and `=>` are matched whole so that `_bad_char` can name them. Strings use the unrolled
# `"[^"\\]*(?:\\.[^"\\]*)*"` form, which consumes runs of plain characters in one step. The final
# `\\S` catches any other character, so findall can only skip trailing whitespace.
_TOKEN_RE = re.compile(
    r"""
    (\s*)
    ([A-Za-z_][A-Za-z0-9_]*
    |[!<>]=?|=[=>]?|[+\-*/%()\[\]{},:]
    |"[^"\\]*(?:\\.[^"\\]*)*"
    |\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?
    |@[A-Za-z_]*\{[^}]*\}
    |\$\d+
    |\^+\.?
    |\S)
    """,
    re.VERBOSE | re.DOTALL,
)
_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_DIGITS = frozenset("0123456789")
_OPS = frozenset(["!=", "<=", ">=", *"=<>!+-*/%()[]{},.:"])

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
    pos = 0
    for space, text in _TOKEN_RE.findall(source):
        pos += len(space)
        c = text[0]
        if c in _NAME_START:
            append((NAME, text, pos, text.lower()))
        elif text in _OPS:
            if text == "/" and source.startswith(("//", "/*"), pos):
                raise PqlError("comments are not supported in PQL", source, pos)
            append((OP, text, pos, text))
        elif c == '"':
            if len(text) == 1:
                raise PqlError("unterminated string", source, pos)
            body = text[1:-1]
            value = _decode(body, source, pos + 1) if "\\" in body else body
            append((STR, value, pos, ""))
        elif c in _DIGITS or c == "." and len(text) > 1:
            append((INT if text.isdigit() else FLOAT, text, pos, ""))
        elif c == "@" and len(text) > 1:
            _check_ctx(text, source, pos)
            append((CTX, text, pos, ""))
        elif c == "$" and len(text) > 1:
            append((PARAM, text, pos, ""))
        elif c == "^":
            append((UP, text, pos, ""))
        else:
            _bad_char(text, source, pos)
        pos += len(text)
    append((EOF, "", len(source), ""))
    return tokens


def _check_ctx(text: str, source: str, pos: int) -> None:
    brace = text.index("{")
    if text[1:brace].lower() not in ("", "event"):
        raise PqlError("a context reference is written @{type} or @event{type}", source, pos)
    if not text[brace + 1 : -1].strip():
        raise PqlError("empty context type in @{...}", source, pos)


def _bad_char(text: str, source: str, pos: int) -> NoReturn:
    if text == "==":
        raise PqlError("'==' is not PQL; use '=' for equality", source, pos)
    if text == "=>":
        raise PqlError("lambda expressions are not supported in offer rules", source, pos)
    if text == "'":
        raise PqlError("strings are written in double quotes in PQL", source, pos)
    if text == "#":
        raise PqlError("comments are not supported in PQL", source, pos)
    if text == "@":
        raise PqlError("a context reference is written @{type} or @event{type}", source, pos)
    raise PqlError(f"unexpected character {text!r}", source, pos)
