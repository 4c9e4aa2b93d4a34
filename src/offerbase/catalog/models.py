"""Pydantic request-body models, generated from ``specs``, used only for the OpenAPI schema.

Generating them from the same nodes ``validate`` uses keeps the published schema and the real
validation from drifting apart. Enums are ``Literal`` unions of every accepted spelling, so the
models accept everything ``validate`` accepts. Like ``validate``, every model forbids unknown
members (`additionalProperties: false`); a top-level model also lists the read-only metadata
clients may echo on PUT (``METADATA_FIELDS``), which ``validate`` drops.

The nodes' single-member limits are published too, so every body the schema calls valid passes
``validate`` but for its cross-field rules (``Obj.checks``) and PQL, which JSON Schema cannot
say: a non-blank string (``Str.min_length``) has a character that is not whitespace
(``schema.NOT_SPACE``, as ``str.strip`` sees it), a ``Str.pattern`` is anchored (``validate``
full-matches it), array and map bounds become ``minItems``/``maxItems``/``maxProperties``, and
a case-insensitive enum is a pattern that matches its members in any case.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from offerbase.catalog.schema import (
    NOT_SPACE,
    AnyValue,
    Arr,
    Bool,
    DateTime,
    Enum,
    Int,
    Map,
    Node,
    Obj,
    Str,
)
from offerbase.catalog.specs import SPECS
from offerbase.catalog.validate import METADATA_FIELDS


def _camel(text: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in text.replace("-", " ").split())


def any_case_pattern(words: list[str]) -> str:
    """An anchored pattern matching exactly ``words`` in any case (JSON Schema has no flags)."""

    def letters(word: str) -> str:
        return "".join(
            f"[{c.lower()}{c.upper()}]" if c.lower() != c.upper() else re.escape(c) for c in word
        )

    return "^(?:" + "|".join(letters(word) for word in words) + ")$"


def str_pattern(node: Str) -> str | None:
    """The JSON Schema pattern of a string node: its own pattern anchored (``validate``
    full-matches it; a pattern that matches implies non-blank), else a non-space character
    if it must not be blank."""
    if node.pattern is not None:
        return f"^(?:{node.pattern})$"
    return NOT_SPACE if node.min_length > 0 else None


def _str(node: Str) -> Any:
    constraints: dict[str, Any] = {}
    if node.max_length is not None:
        constraints["max_length"] = node.max_length
    pattern = str_pattern(node)
    if pattern is not None:
        # json_schema_extra: published only; pydantic's own regex engine does not validate.
        constraints["json_schema_extra"] = {"pattern": pattern}
    return Annotated[str, Field(**constraints)] if constraints else str


def _annotation(node: Node, name: str) -> Any:
    if isinstance(node, Obj):
        return _model(node, name, top=False)
    if isinstance(node, Arr):
        items = _annotation(node.items, name)
        bounds = Field(min_length=node.min_items or None, max_length=node.max_items)
        return Annotated[list[items], bounds]  # type: ignore[valid-type]
    if isinstance(node, Map):
        values = _annotation(node.values, name)
        entries = Field(json_schema_extra={"maxProperties": node.max_entries})
        return Annotated[dict[str, values], entries] if node.max_entries else dict[str, values]  # type: ignore[valid-type]
    if isinstance(node, Enum):
        spellings = tuple(node.spellings)
        if node.case_insensitive:
            # Literal cannot express case-insensitivity; a pattern can.
            return Annotated[
                str,
                Field(
                    description="One of (any case): " + ", ".join(node.allowed),
                    json_schema_extra={"pattern": any_case_pattern(list(node.spellings))},
                ),
            ]
        return Literal[spellings]
    if isinstance(node, DateTime):
        return Annotated[str, Field(json_schema_extra={"format": "date-time"})]
    if isinstance(node, Str):
        return _str(node)
    if isinstance(node, Int):
        # The JSON parser reads a larger integer as a float, which Int refuses: published as
        # a signed 64-bit integer (narrower than the unsigned upper end the parser takes).
        low = node.minimum if node.minimum is not None else -(2**63)
        high = node.maximum if node.maximum is not None else 2**63 - 1
        return Annotated[int, Field(ge=low, le=high, json_schema_extra={"format": "int64"})]
    if isinstance(node, Bool):
        return bool
    if isinstance(node, AnyValue):
        return Any
    raise TypeError(f"no annotation for {node!r}")


def _model(node: Obj, name: str, *, top: bool) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for key, sub in node.fields.items():
        annotation = _annotation(sub, name + _camel(key.lstrip("_")))
        # Pydantic treats names starting with "_" as private attributes (XDM's "_id"), so such
        # members get a public Python name and the JSON name as alias.
        python_name = f"{key.lstrip('_')}_" if key.startswith("_") else key
        # Optional members default to None without advertising null: pydantic does not
        # validate defaults.
        default = ... if key in node.required else None
        fields[python_name] = (annotation, Field(default, alias=key))
    if top:
        for key in sorted(METADATA_FIELDS - set(node.fields)):
            python_name = f"{key.lstrip('_')}_" if key.startswith("_") else key
            described = Field(None, alias=key, description="Read-only metadata: ignored if sent.")
            fields[python_name] = (Any, described)
    config = ConfigDict(extra="forbid")
    model: type[BaseModel] = create_model(name, __config__=config, **fields)
    return model


MODELS: dict[str, type[BaseModel]] = {
    kind: _model(spec, _camel(kind) + "Body", top=True) for kind, spec in SPECS.items()
}
