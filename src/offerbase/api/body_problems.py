"""Which member to blame when a request body does not fit its typed (msgspec) model.

msgspec stops at the first member that does not fit, in the order the client sent the members,
and writes dict keys as `[...]`. The API reports a member by its JSON pointer, in wording of its
own. So when decoding fails (never on a good request) `failures()` walks the body along the
model's annotations and lists every member that does not fit, in declaration order.

Each reported member carries its wording in its annotation:

* `problem(detail)`: the body does not fit this member, or something inside it (400);
* `limit(detail, ge=, le=)`, `size_limit(detail, max_length=)`: a guardrail; a value of the
  right type but outside these bounds is a 422 with this detail.

A member without wording is blamed on the nearest enclosing member that has some. Whether a
value fits is always msgspec's answer (`msgspec.convert`, strict); this module only locates.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from typing import Annotated, Any, Union, get_args, get_origin

import msgspec

_PROBLEM = "offerbase:problem"
_LIMIT = "offerbase:limit"
_MISSING = object()


def problem(detail: str) -> msgspec.Meta:
    return msgspec.Meta(extra={_PROBLEM: detail})


def limit(detail: str, *, ge: int | None = None, le: int | None = None) -> msgspec.Meta:
    """A guardrail on a number."""
    return msgspec.Meta(ge=ge, le=le, extra={_LIMIT: detail})


def size_limit(detail: str, *, max_length: int) -> msgspec.Meta:
    """A guardrail on the length of an array (or string, or object)."""
    return msgspec.Meta(max_length=max_length, extra={_LIMIT: detail})


@dataclass(frozen=True)
class Failure:
    pointer: str
    detail: str
    status: int  # 400, or 422 for a guardrail


def failures(value: Any, model: Any) -> list[Failure]:
    """Every member of `value` that does not fit `model` (an annotated type), in declaration
    order; empty when `value` fits. The model should carry a `problem()` at its top."""
    found: list[Failure] = []
    _walk(value, model, "", None, found)
    return found


def _fits(value: Any, annotated: Any) -> bool:
    if value is _MISSING:
        return False
    try:
        msgspec.convert(value, annotated, strict=True)
    except msgspec.ValidationError:
        return False
    return True


def _unwrap(annotated: Any) -> tuple[Any, list[msgspec.Meta]]:
    """The base type under `Annotated[...]` and `X | None`, and the Meta annotations found."""
    metas: list[msgspec.Meta] = []
    while True:
        origin = get_origin(annotated)
        if origin is Annotated:
            base, *extras = get_args(annotated)
            metas.extend(m for m in extras if isinstance(m, msgspec.Meta))
            annotated = base
        elif origin in (Union, types.UnionType):
            # Only `X | None` is used: None always fits, so a failing value is blamed on X.
            (annotated,) = [arg for arg in get_args(annotated) if arg is not type(None)]
        else:
            return annotated, metas


def _out_of_bounds(meta: msgspec.Meta, value: Any, base: Any) -> bool:
    """Whether `value`, of the base type's JSON kind, breaks the bounds in `meta`."""
    kind = get_origin(base) or base
    low: float | None
    high: float | None
    if kind in (list, dict, str) and isinstance(value, kind):
        size, low, high = len(value), meta.min_length, meta.max_length
    elif kind is int and isinstance(value, int) and not isinstance(value, bool):
        size, low, high = value, meta.ge, meta.le
    else:
        return False
    return (low is not None and size < low) or (high is not None and size > high)


def _walk(
    value: Any, annotated: Any, pointer: str, blame: Failure | None, found: list[Failure]
) -> None:
    if _fits(value, annotated):
        return
    base, metas = _unwrap(annotated)
    for meta in metas:
        if meta.extra and _PROBLEM in meta.extra:
            blame = Failure(pointer, meta.extra[_PROBLEM], 400)
    before = len(found)
    within_bounds = not any(_out_of_bounds(meta, value, base) for meta in metas)
    origin = get_origin(base)
    if isinstance(base, type) and issubclass(base, msgspec.Struct) and isinstance(value, dict):
        for member in msgspec.structs.fields(base):
            child = value.get(member.encode_name, _MISSING)
            if child is not _MISSING or member.required:
                _walk(child, member.type, f"{pointer}/{member.encode_name}", blame, found)
    elif origin is list and isinstance(value, list) and within_bounds:
        (item_type,) = get_args(base)
        for index, item in enumerate(value):
            _walk(item, item_type, f"{pointer}/{index}", blame, found)
    elif origin is dict and isinstance(value, dict):
        _key_type, value_type = get_args(base)
        for key, item in value.items():
            # The key as sent, not escaped (`~0`, `~1`): the pointers the API has always given.
            _walk(item, value_type, f"{pointer}/{key}", blame, found)
    if len(found) > before:
        return
    # Nothing inside is to blame: this member is (its bounds, its type, or a missing member).
    for meta in metas:
        if meta.extra and _LIMIT in meta.extra and _out_of_bounds(meta, value, base):
            found.append(Failure(pointer, meta.extra[_LIMIT], 422))
            return
    found.append(blame or Failure(pointer, "is not valid", 400))
