"""A tiny declarative schema language for request bodies.

Why not pydantic for validation: we need (a) every problem reported with an exact RFC 6901
pointer and a sentence a user can act on, (b) spelling normalization (``anyTags`` -> ``any-tags``)
while echoing everything else exactly as sent (no injected defaults, no float/int coercion), and
(c) cross-field rules. Pydantic's error shapes and coercions fight all three, so validation is
done by these small node types; pydantic models exist only to publish the OpenAPI schema.

Every node has ``check(value, pointer, errors) -> normalized value``. On error it appends a
``FieldError`` and returns the value unchanged, so checking always continues and all problems
are reported in one response.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from offerbase.catalog.errors import FieldError


def child(pointer: str, key: str | int) -> str:
    """Append one reference token to a pointer, escaping per RFC 6901."""
    token = str(key).replace("~", "~0").replace("/", "~1")
    return f"{pointer}/{token}"


def type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


# Whitespace as Python's str.isspace (so str.strip) sees it, spelled out for patterns that the
# served document publishes: `\s` of Python's regular expressions (which `validate` runs) and of
# ECMA-262's (which JSON Schema patterns are) differ, e.g. on U+001C..U+001F, U+0085, U+FEFF.
SPACE_CHARS = r"\t\n\v\f\r\x1c-\x20\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
SPACE = f"[{SPACE_CHARS}]"
NOT_SPACE = f"[^{SPACE_CHARS}]"


class Node:
    def check(self, value: Any, pointer: str, errors: list[FieldError]) -> Any:
        raise NotImplementedError


# Levels of arrays and objects an opaque value (a json component's content, a segment model)
# may nest. Bodies are served back with orjson, which refuses more than 254 levels in all: a
# deeper value was once stored, and then every list and decision of its sandbox answered 500.
MAX_JSON_DEPTH = 64


def too_deep(value: Any, limit: int) -> bool:
    """Whether ``value`` nests arrays and objects more than ``limit`` levels (a scalar is 0,
    ``{"a": 1}`` is 1). Iterative, so any depth the JSON parser accepted can be measured."""
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if depth > limit:
            return True
        children = current.values() if isinstance(current, dict) else current
        stack.extend((item, depth + 1) for item in children if isinstance(item, dict | list))
    return False


@dataclass
class AnyValue(Node):
    """Opaque JSON (e.g. ``segmentModel``): stored as sent, nested at most MAX_JSON_DEPTH."""

    def check(self, value: Any, pointer: str, errors: list[FieldError]) -> Any:
        if too_deep(value, MAX_JSON_DEPTH):
            errors.append(
                FieldError(
                    pointer, f"Nested deeper than {MAX_JSON_DEPTH} levels of arrays and objects."
                )
            )
        return value


@dataclass
class Str(Node):
    min_length: int = 0
    max_length: int | None = None
    pattern: str | None = None
    what: str = "a string"  # used in messages: "must be <what>"
    pattern_hint: str = ""

    def check(self, value: Any, pointer: str, errors: list[FieldError]) -> Any:
        if not isinstance(value, str):
            errors.append(FieldError(pointer, f"Must be {self.what}, not {type_name(value)}."))
            return value
        if len(value.strip()) < self.min_length:
            errors.append(FieldError(pointer, "Must not be empty."))
        elif self.max_length is not None and len(value) > self.max_length:
            errors.append(
                FieldError(pointer, f"Must be at most {self.max_length} characters long.")
            )
        elif self.pattern is not None and not re.fullmatch(self.pattern, value):
            errors.append(FieldError(pointer, f"{value!r} is not valid: {self.pattern_hint}"))
        return value


_INT64 = 2**63


@dataclass
class Int(Node):
    minimum: int | None = None
    maximum: int | None = None

    def check(self, value: Any, pointer: str, errors: list[FieldError]) -> Any:
        # bool is an int subclass in Python but not an integer in JSON.
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer() and abs(value) < _INT64:
                # 1.0 is the same JSON number as 1; store the integer so reads are canonical.
                # (Beyond 64 bits the JSON parser gives a float and the JSON writer could not
                # write the int back, so such values are refused below.)
                value = int(value)
            else:
                errors.append(FieldError(pointer, f"Must be an integer, not {type_name(value)}."))
                return value
        if self.minimum is not None and value < self.minimum:
            errors.append(FieldError(pointer, f"Must be at least {self.minimum}; got {value}."))
        elif self.maximum is not None and value > self.maximum:
            errors.append(FieldError(pointer, f"Must be at most {self.maximum}; got {value}."))
        return value


@dataclass
class Bool(Node):
    def check(self, value: Any, pointer: str, errors: list[FieldError]) -> Any:
        if not isinstance(value, bool):
            errors.append(
                FieldError(pointer, f"Must be a boolean (true or false), not {type_name(value)}.")
            )
        return value


@dataclass
class Enum(Node):
    """A string enum. ``spellings`` maps every accepted spelling to the canonical one. The value
    is stored as written: reads echo it, as Adobe's do; whoever needs its meaning (the loader,
    cross-field checks) takes ``enums.canonical`` of it."""

    spellings: Mapping[str, str]
    case_insensitive: bool = False

    @property
    def allowed(self) -> list[str]:
        return list(dict.fromkeys(self.spellings.values()))

    def check(self, value: Any, pointer: str, errors: list[FieldError]) -> Any:
        if isinstance(value, str):
            key = value.lower() if self.case_insensitive else value
            if key in self.spellings:
                return value
        allowed = ", ".join(self.allowed)
        if isinstance(value, str):
            message = f"Unknown value {value!r}; allowed values are: {allowed}."
        else:
            message = f"Must be a string, one of: {allowed}; not {type_name(value)}."
        errors.append(FieldError(pointer, message))
        return value


_DATETIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:?\d{2})")


def parse_datetime(value: str) -> datetime | None:
    """Parse an ISO-8601 date-time that carries an offset or Z; None when it does not."""
    if not _DATETIME.fullmatch(value):
        return None
    try:
        return datetime.fromisoformat(value.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return None


@dataclass
class DateTime(Node):
    def check(self, value: Any, pointer: str, errors: list[FieldError]) -> Any:
        if not isinstance(value, str) or parse_datetime(value) is None:
            shown = repr(value) if isinstance(value, str) else type_name(value)
            errors.append(
                FieldError(
                    pointer,
                    f"{shown} is not an ISO-8601 date-time with a time zone; "
                    "use e.g. 2024-01-31T23:59:59.000+00:00 or 2024-01-31T23:59:59Z.",
                )
            )
        return value


@dataclass
class Arr(Node):
    items: Node
    max_items: int | None = None
    min_items: int = 0
    max_reason: str = ""

    def check(self, value: Any, pointer: str, errors: list[FieldError]) -> Any:
        if not isinstance(value, list):
            errors.append(FieldError(pointer, f"Must be an array, not {type_name(value)}."))
            return value
        if self.max_items is not None and len(value) > self.max_items:
            errors.append(
                FieldError(
                    pointer,
                    f"Has {len(value)} entries; at most {self.max_items} are allowed"
                    f"{self.max_reason}. Remove {len(value) - self.max_items}.",
                )
            )
        if len(value) < self.min_items:
            errors.append(FieldError(pointer, f"Must contain at least {self.min_items} entry."))
        return [self.items.check(v, child(pointer, i), errors) for i, v in enumerate(value)]


@dataclass
class Map(Node):
    """A JSON object used as a map with free keys (``characteristics``, ``definedOn``)."""

    values: Node
    max_entries: int | None = None
    max_reason: str = ""

    def check(self, value: Any, pointer: str, errors: list[FieldError]) -> Any:
        if not isinstance(value, dict):
            errors.append(FieldError(pointer, f"Must be an object, not {type_name(value)}."))
            return value
        if self.max_entries is not None and len(value) > self.max_entries:
            errors.append(
                FieldError(
                    pointer,
                    f"Has {len(value)} entries; at most {self.max_entries} are allowed"
                    f"{self.max_reason}.",
                )
            )
        return {k: self.values.check(v, child(pointer, k), errors) for k, v in value.items()}


Check = Callable[[dict[str, Any], str, list[FieldError]], None]


@dataclass
class Obj(Node):
    """A JSON object with known members; unknown members are errors.

    ``ignore`` members are accepted and silently dropped (read-only metadata echoed back).
    ``checks`` run on the normalized object for cross-field rules.
    """

    fields: dict[str, Node]
    required: frozenset[str] = frozenset()
    ignore: frozenset[str] = frozenset()
    checks: list[Check] = field(default_factory=list)
    name: str = "this object"

    def check(self, value: Any, pointer: str, errors: list[FieldError]) -> Any:
        if not isinstance(value, dict):
            errors.append(FieldError(pointer, f"Must be an object, not {type_name(value)}."))
            return value
        out: dict[str, Any] = {}
        for key, item in value.items():
            if key in self.fields:
                out[key] = self.fields[key].check(item, child(pointer, key), errors)
            elif key in self.ignore:
                continue
            else:
                errors.append(
                    FieldError(
                        child(pointer, key),
                        f"Unknown field {key!r} in {self.name}; allowed fields are: "
                        f"{', '.join(self.fields)}.",
                    )
                )
        for key in sorted(self.required):
            if key not in value:
                errors.append(FieldError(child(pointer, key), f"Field {key!r} is required."))
        for rule in self.checks:
            # Rules run even when a member failed (so every problem is reported at once);
            # each rule therefore ignores members that are not well-typed.
            rule(out, pointer, errors)
        return out
