"""List queries: `property` filters and `orderby` over entity bodies, on SQLite and PostgreSQL.

The grammar is Adobe's (Adobe's list pages): `[!]field[op]value` with op one of `== != <= >= < > ~`,
a bare field tests presence, terms are ANDed. Fields are dot paths into the entity body, or
the read-form metadata fields (`id`, `etag`, `created`, `modified`, `createdBy`,
`lastModifiedBy`).

`~` (a whole-value, case-insensitive regular expression) is not run by the database: SQLite
has no regex of its own and PostgreSQL's is another dialect with backtracking. Every other term
selects the candidate rows in SQL, then `RegexTerm.accepts` runs the pattern on RE2
(offerbase.regex) in Python, on either backend: one dialect, linear time whatever the pattern.

`contains` (the admin UI's search by name, `contains_name`; not in the grammar) holds when the
name contains the text literally, ignoring case: the `~` term `name~.*<text>.*`, on RE2 as any
other. SQL first narrows the candidates with LIKE on the `name` column (no JSON to read), which
every match passes (`_like_pattern`), so RE2 runs on a few rows instead of every one.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from offerbase.catalog.schema import SPACE
from offerbase.regex import Pattern, RegexError, compile_regex, fullmatch
from offerbase.store.tables import NAME_CHARS, entities

_OPS = ("==", "!=", "<=", ">=", "<", ">", "~")
_FIELD = re.compile(r"^[A-Za-z_@$][A-Za-z0-9_@$:-]*(\.[A-Za-z0-9_@$:-]+)*$")
_NUMBER = re.compile(r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$")
MAX_TERMS = 20
MAX_ORDER_FIELDS = 5

# The grammar as JSON Schema patterns for the served document (the same in ECMA-262 and Python
# regular expressions): every string they match parses. They are narrower than the parser: one
# term per `property` value (no commas, so no `\\,` either), no `~` term (its value must also be
# a valid RE2 pattern, which a pattern cannot say), and `etag` only as a presence test (compared,
# it needs a number).
_FIELD_PATTERN = _FIELD.pattern[1:-1]
# (Whitespace is SPACE, str.strip's, which `\s` is not in ECMA-262.)
_S = SPACE + "*"
PROPERTY_TERM_PATTERN = (
    f"^{_S}!?{_S}(?!etag{_S}[=!<>]){_FIELD_PATTERN}{_S}" + r"(?:(?:==|!=|<=|>=|<|>)[^,\\]*)?$"
)
ORDERBY_PATTERN = (
    f"^{_S}[+-]*{_FIELD_PATTERN}{_S}(?:,{_S}[+-]*{_FIELD_PATTERN}{_S}){{0,{MAX_ORDER_FIELDS - 1}}}$"
)

# Read-form metadata fields map to real columns.
_COLUMNS: dict[str, sa.Column[Any]] = {
    "id": entities.c.entity_id,
    "etag": entities.c.etag,
    "created": entities.c.created,
    "modified": entities.c.modified,
    "createdBy": entities.c.created_by,
    "lastModifiedBy": entities.c.modified_by,
}


class ListQueryError(ValueError):
    """A malformed `property` or `orderby` parameter; `parameter` names which."""

    def __init__(self, parameter: str, message: str) -> None:
        super().__init__(message)
        self.parameter = parameter
        self.message = message


@dataclass(frozen=True)
class Term:
    field: str
    op: str | None  # None: presence test; `contains`: see contains_name
    value: str
    negate: bool = False


CONTAINS = "contains"


def contains_name(text: str) -> Term:
    """The name contains `text`, literally (punctuation means itself), ignoring case."""
    if "\x00" in text:
        raise ListQueryError("property", "The character U+0000 is not allowed in a filter.")
    return Term("name", CONTAINS, text)


@dataclass(frozen=True)
class OrderKey:
    field: str
    descending: bool


def split_terms(values: list[str]) -> list[str]:
    """`property` may be repeated or comma-separated; a comma inside a regex can be escaped
    as `\\,`."""
    terms: list[str] = []
    for value in values:
        current = ""
        index = 0
        while index < len(value):
            char = value[index]
            if char == "\\" and index + 1 < len(value) and value[index + 1] == ",":
                current += ","
                index += 2
                continue
            if char == ",":
                terms.append(current)
                current = ""
            else:
                current += char
            index += 1
        terms.append(current)
    return [term.strip() for term in terms if term.strip()]


def parse_term(text: str) -> Term:
    if "\x00" in text:
        raise ListQueryError("property", "The character U+0000 is not allowed in a filter.")
    negate = text.startswith("!")
    body = text[1:] if negate else text
    # The earliest operator wins; among operators at the same position the longest wins.
    best: tuple[int, str] | None = None
    for candidate in _OPS:
        position = body.find(candidate)
        if position > 0 and (
            best is None
            or position < best[0]
            or (position == best[0] and len(candidate) > len(best[1]))
        ):
            best = (position, candidate)
    op: str | None
    if best is None:
        field, op, value = body, None, ""
    else:
        field, op, value = body[: best[0]], best[1], body[best[0] + len(best[1]) :]
    field = field.strip()
    if not _FIELD.match(field):
        raise ListQueryError("property", f"'{text}' does not start with a field name.")
    if op == "~":
        try:
            compile_regex(value, ignore_case=True)
        except RegexError as exc:
            raise ListQueryError(
                "property", f"'{value}' is not a valid regular expression: {exc}."
            ) from exc
    return checked(Term(field, op, value, negate), "property")


def checked(term: Term, parameter: str) -> Term:
    """``term``, if the values it compares can be compared: checked before any SQL is built (a
    ListQueryError raised while building it, inside the list's transaction, was a 500)."""
    if term.field == "etag" and term.op not in (None, "~") and not _NUMBER.match(term.value):
        raise ListQueryError(parameter, f"etag is an integer; '{term.value}' is not.")
    return term


@dataclass(frozen=True)
class RegexTerm:
    """A `~` term, run in Python on RE2 over the candidate rows (see the module docstring).

    `field~p` holds when the field is a string, number or boolean whose text (`true`, `1.5`,
    numbers as the database stores them) matches `p` whole, ignoring case; `!field~p` is its
    negation, so it also holds for a missing field, null, an object or an array."""

    term: Term
    pattern: Pattern

    @classmethod
    def of(cls, term: Term) -> RegexTerm:
        if term.op == CONTAINS:
            literal = "".join(f"\\{c}" if c in string.punctuation else c for c in term.value)
            return cls(term, compile_regex(f".*{literal}.*", ignore_case=True))
        return cls(term, compile_regex(term.value, ignore_case=True))

    def columns(self, dialect: Dialect) -> tuple[ColumnElement[Any], ColumnElement[Any]]:
        """(JSON type, text) of the field: what the candidates' query selects for `accepts`."""
        field = self.term.field
        if field in _COLUMNS:
            return sa.literal("string"), sa.cast(_COLUMNS[field], sa.Text)
        return dialect.json_type(field), dialect.json_text(field)

    def accepts(self, json_type: str | None, text: str | None) -> bool:
        if json_type in ("true", "false"):  # SQLite types booleans so; their text is 1 or 0
            text = json_type
        found = (
            text is not None
            and json_type not in ("object", "array", "null")
            and fullmatch(self.pattern, text) is not None
        )
        return found is not self.term.negate


def split_regex_terms(terms: Sequence[Term]) -> tuple[list[Term], list[RegexTerm]]:
    """The terms SQL evaluates, and the `~` terms run afterwards on RE2 (a `contains` term is
    both: SQL narrows, RE2 decides)."""
    sql = [term for term in terms if term.op != "~"]
    regex = [RegexTerm.of(term) for term in terms if term.op in ("~", CONTAINS)]
    return sql, regex


# ASCII letters whose case-insensitive matches in RE2 include a non-ASCII character (K: the
# Kelvin sign U+212A, S: the long s U+017F), which LIKE's ASCII-only case folding would miss.
_FOLDS_BEYOND_ASCII = frozenset("kKsS")


def _like_pattern(text: str) -> str:
    """A LIKE pattern (escape `\\`) that every name containing `text` as RE2 matches it (any
    case) matches: LIKE folds ASCII letters only (SQLite's LIKE; ILIKE in the "C" collation),
    so any other character that has another case is left to `_`, one character, as RE2's case
    folding maps one character to one."""
    like = []
    for char in text:
        if char in "%_\\":
            like.append("\\" + char)
        elif char in _FOLDS_BEYOND_ASCII or not char.isascii():
            like.append("_")
        else:
            like.append(char)
    return "%" + "".join(like) + "%"


def parse_properties(values: list[str]) -> list[Term]:
    terms = [parse_term(term) for term in split_terms(values)]
    if len(terms) > MAX_TERMS:
        raise ListQueryError("property", f"At most {MAX_TERMS} property filters are allowed.")
    return terms


def parse_orderby(value: str | None) -> list[OrderKey]:
    if not value:
        return [OrderKey("modified", True)]
    keys: list[OrderKey] = []
    for part in (p.strip() for p in value.split(",")):
        if not part:
            continue
        descending = part.startswith("-")
        field = part.lstrip("+-")
        if not _FIELD.match(field):
            raise ListQueryError("orderby", f"'{part}' is not a field name.")
        keys.append(OrderKey(field, descending))
    if not keys:
        return [OrderKey("modified", True)]
    if len(keys) > MAX_ORDER_FIELDS:
        raise ListQueryError("orderby", f"At most {MAX_ORDER_FIELDS} sort fields are allowed.")
    return keys


class Dialect:
    """Builds the SQL for body paths; SQLite and PostgreSQL differ only here."""

    def __init__(self, is_sqlite: bool) -> None:
        self.is_sqlite = is_sqlite

    def _path(self, field: str) -> list[str]:
        return field.split(".")

    def _sqlite_path(self, field: str) -> str:
        return "$" + "".join('."' + part.replace('"', "") + '"' for part in self._path(field))

    def json_value(self, field: str) -> ColumnElement[Any]:
        """The value itself: native SQL types on SQLite, jsonb on PostgreSQL (both sort sanely)."""
        if self.is_sqlite:
            return sa.func.json_extract(entities.c.body, self._sqlite_path(field))
        return entities.c.body.op("#>")(sa.literal(self._path(field), sa.ARRAY(sa.Text)))

    def json_text(self, field: str) -> ColumnElement[Any]:
        if self.is_sqlite:
            return sa.cast(sa.func.json_extract(entities.c.body, self._sqlite_path(field)), sa.Text)
        return entities.c.body.op("#>>", return_type=sa.Text)(
            sa.literal(self._path(field), sa.ARRAY(sa.Text))
        )

    def json_type(self, field: str) -> ColumnElement[Any]:
        if self.is_sqlite:
            return sa.func.json_type(entities.c.body, self._sqlite_path(field))
        return sa.func.jsonb_typeof(self.json_value(field))

    def is_number(self, field: str) -> ColumnElement[bool]:
        if self.is_sqlite:
            return self.json_type(field).in_(["integer", "real"])
        return self.json_type(field) == "number"

    def as_number(self, field: str) -> ColumnElement[Any]:
        if self.is_sqlite:
            return self.json_value(field)
        # The cast sits behind the type test inside CASE: PostgreSQL may evaluate the operands
        # of AND in any order, and casting a string like "abc" to numeric would fail.
        return sa.case(
            (self.is_number(field), sa.cast(self.json_text(field), sa.Numeric)), else_=None
        )

    def text_compare(self, expr: ColumnElement[Any]) -> ColumnElement[Any]:
        # Byte order on both backends, so results do not depend on the server's locale.
        return expr if self.is_sqlite else expr.collate("C")

    def order_expr(self, field: str) -> ColumnElement[Any]:
        if field in _COLUMNS:
            column = _COLUMNS[field]
            return column if field == "etag" else self.text_compare(column)
        return self.json_value(field)

    # -- filters ---------------------------------------------------------------------------

    def condition(self, term: Term) -> ColumnElement[bool]:
        """A term other than `~` (see `split_regex_terms`) as SQL; for `contains`, what
        narrows its candidates."""
        assert term.op != "~", "`~` terms run on RE2, not in SQL"
        if term.op == CONTAINS:
            return self._contains_candidates(term)
        expr = (
            self._column_condition(term) if term.field in _COLUMNS else self._body_condition(term)
        )
        return sa.not_(expr) if term.negate else expr

    def _contains_candidates(self, term: Term) -> ColumnElement[bool]:
        """Every entity whose name may contain the term's text, from the `name` column: the
        body's name, cut at NAME_CHARS characters (a name that long is always a candidate)."""
        assert term.field == "name"
        assert not term.negate
        name, pattern = entities.c.name, _like_pattern(term.value)
        like = (
            name.like(pattern, escape="\\")
            if self.is_sqlite
            else name.collate("C").ilike(pattern, escape="\\")
        )
        return sa.or_(like, sa.func.length(name) >= NAME_CHARS)

    def _column_condition(self, term: Term) -> ColumnElement[bool]:
        column = _COLUMNS[term.field]
        if term.op is None:
            return sa.true()
        if term.field == "etag":  # parse_term made sure the value is a number
            return _compare(column, term.op, float(term.value))
        return _compare(self.text_compare(column), term.op, term.value)

    def _body_condition(self, term: Term) -> ColumnElement[bool]:
        field, op, value = term.field, term.op, term.value
        if op is None:
            return self.json_type(field).is_not(None)
        text = self.json_text(field)
        if op in ("==", "!="):
            equal = sa.and_(text.is_not(None), self._equals(field, text, value))
            return equal if op == "==" else sa.not_(equal)
        if _NUMBER.match(value):
            return sa.and_(self.is_number(field), _compare(self.as_number(field), op, float(value)))
        return sa.and_(
            self.json_type(field).in_(["text", "string"]),
            _compare(self.text_compare(text), op, value),
        )

    def _equals(self, field: str, text: ColumnElement[Any], value: str) -> ColumnElement[bool]:
        options = [self.text_compare(text) == value]
        if _NUMBER.match(value):
            options.append(sa.and_(self.is_number(field), self.as_number(field) == float(value)))
        if value in ("true", "false"):
            if self.is_sqlite:
                options = [sa.and_(self.json_type(field) == value, sa.true())]
            else:
                options.append(sa.and_(self.json_type(field) == "boolean", text == value))
        return sa.or_(*options)


def _compare(expr: ColumnElement[Any], op: str, value: object) -> ColumnElement[bool]:
    if op == "==":
        return expr == value
    if op == "!=":
        return expr != value
    if op == "<":
        return expr < value
    if op == "<=":
        return expr <= value
    if op == ">":
        return expr > value
    return expr >= value
