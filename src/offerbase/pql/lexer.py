"""Tokenizer: one compiled regular expression.

A token and the tree node built from it carry the token's index, not its character offset:
offsets (and from them line and column) are only computed when an error is raised, by
`offset()`. Keeping running offsets cost a quarter of the tokenizer's time, and parsing is
measured against a budget (docs/benchmarks.md).
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


# (kind, text, key). `text` is the decoded value for a STR. `key` is the lower-cased text of a
# NAME and the text of an OP, "" otherwise, so the parser finds operators and keywords with one
# lookup. Plain tuples: they are the cheapest to build. A token's position is its index in the
# token list.
Token = tuple[str, str, str]

# One alternative per token shape, the commonest first: each failed alternative costs a little
# on every token. Operators come before numbers except `.`, which must not take the dot of `.5`.
# `==`, `=>`, `//` and `/*` are matched whole so that `_bad_char` can name them. Strings use the
# unrolled `"[^"\\]*(?:\\.[^"\\]*)*"` form, which consumes runs of plain characters in one step.
# The final `\\S` catches any other character, so findall can only skip trailing whitespace.
_TOKEN = r"""
    ([A-Za-z_][A-Za-z0-9_]*
    |[!<>]=?|=[=>]?|//|/\*|[+\-*/%()\[\]{},:]
    |"[^"\\]*(?:\\.[^"\\]*)*"
    |\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+(?:[eE][+-]?\d+)?
    |@[A-Za-z_]*\{[^}]*\}
    |\$\d+
    |\^+\.?
    |\S)
    """
_TOKEN_RE = re.compile(r"\s*" + _TOKEN, re.VERBOSE | re.DOTALL)
# The same tokens with the whitespace before each, to locate an error.
_SPACED_TOKEN_RE = re.compile(r"(\s*)" + _TOKEN, re.VERBOSE | re.DOTALL)
_NAME_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_DIGITS = frozenset("0123456789")
_OPS = frozenset(["!=", "<=", ">=", *"=<>!+-*/%()[]{},.:"])

_ESCAPES = {"\\": "\\", '"': '"', "/": "/", "n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f"}
_HEX = frozenset("0123456789abcdefABCDEF")


def _decode(body: str, source: str, index: int) -> str:
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
                raise PqlError(
                    "invalid \\u escape in string", source, offset(source, index) + 1 + i
                )
            out.append(chr(int(digits, 16)))
            i += 6
            continue
        if nxt not in _ESCAPES:
            raise PqlError(
                f"invalid escape \\{nxt} in string (write \\\\ for a backslash)",
                source,
                offset(source, index) + 1 + i,
            )
        out.append(_ESCAPES[nxt])
        i += 2
    return "".join(out)


# Operators and lower-case keywords always make the same token: they are looked up, not built.
_KNOWN: dict[str, Token] = {op: (OP, op, op) for op in _OPS} | {
    word: (NAME, word, word)
    for word in ("and", "or", "not", "in", "notin", "like", "matches", "occurs", "true", "false")
}


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    append = tokens.append
    known = _KNOWN.get
    for text in _TOKEN_RE.findall(source):
        tok = known(text)
        if tok is not None:
            append(tok)
            continue
        c = text[0]
        if c in _NAME_START:
            append((NAME, text, text.lower()))
        elif c == '"':
            if len(text) == 1:
                raise PqlError("unterminated string", source, offset(source, len(tokens)))
            body = text[1:-1]
            value = _decode(body, source, len(tokens)) if "\\" in body else body
            append((STR, value, ""))
        elif c in _DIGITS or c == "." and len(text) > 1:
            append((INT if text.isdigit() else FLOAT, text, ""))
        elif c == "@" and len(text) > 1:
            _check_ctx(text, source, len(tokens))
            append((CTX, text, ""))
        elif c == "$" and len(text) > 1:
            append((PARAM, text, ""))
        elif c == "^":
            append((UP, text, ""))
        else:
            _bad_char(text, source, len(tokens))
    append((EOF, "", ""))
    return tokens


def offset(source: str, index: int) -> int:
    """The character offset of token `index` of `source`; the end of the text for EOF."""
    pos = 0
    for i, (space, text) in enumerate(_SPACED_TOKEN_RE.findall(source)):
        pos += len(space)
        if i == index:
            return pos
        pos += len(text)
    return len(source)


def _check_ctx(text: str, source: str, index: int) -> None:
    brace = text.index("{")
    if text[1:brace].lower() not in ("", "event"):
        raise PqlError(
            "a context reference is written @{type} or @event{type}", source, offset(source, index)
        )
    if not text[brace + 1 : -1].strip():
        raise PqlError("empty context type in @{...}", source, offset(source, index))


_BAD = {
    "==": "'==' is not PQL; use '=' for equality",
    "=>": "lambda expressions are not supported in offer rules",
    "'": "strings are written in double quotes in PQL",
    "#": "comments are not supported in PQL",
    "//": "comments are not supported in PQL",
    "/*": "comments are not supported in PQL",
    "@": "a context reference is written @{type} or @event{type}",
}


def _bad_char(text: str, source: str, index: int) -> NoReturn:
    message = _BAD.get(text, f"unexpected character {text!r}")
    raise PqlError(message, source, offset(source, index))
