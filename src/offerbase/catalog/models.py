"""Pydantic request-body models, generated from ``specs``, used only for the OpenAPI schema.

Generating them from the same nodes ``validate`` uses keeps the published schema and the real
validation from drifting apart. Enums are ``Literal`` unions of every accepted spelling, so the
models accept everything ``validate`` accepts. Like ``validate``, every model forbids unknown
members (`additionalProperties: false`); a top-level model also lists the read-only metadata
clients may echo on PUT (``METADATA_FIELDS``), which ``validate`` drops.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from offerbase.catalog.schema import (
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


def _annotation(node: Node, name: str) -> Any:
    if isinstance(node, Obj):
        return _model(node, name, top=False)
    if isinstance(node, Arr):
        return list[_annotation(node.items, name)]  # type: ignore[misc]
    if isinstance(node, Map):
        return dict[str, _annotation(node.values, name)]  # type: ignore[misc]
    if isinstance(node, Enum):
        spellings = tuple(node.spellings)
        if node.case_insensitive:
            # Literal cannot express case-insensitivity; publish a plain string with the list.
            return Annotated[
                str, Field(description="One of (any case): " + ", ".join(node.allowed))
            ]
        return Literal[spellings]
    if isinstance(node, DateTime):
        return Annotated[str, Field(json_schema_extra={"format": "date-time"})]
    if isinstance(node, Str):
        return str
    if isinstance(node, Int):
        return Annotated[int, Field(ge=node.minimum, le=node.maximum)]
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
