"""``apply_patch(doc, patch)``: RFC 6902 JSON Patch, all-or-nothing, never mutates ``doc``.

Built on the ``jsonpatch`` library, with three deliberate additions:

* **replace-as-add (compatibility).** A ``replace`` whose target is a *missing member of an
  existing object* behaves like ``add``. Adobe's own PATCH examples replace ``/description`` on
  tags, collections and offers created without one (Adobe's update pages); strict RFC 6902 would
  reject them. ``replace`` of a missing array index, or below a missing parent, still fails.
* **strict ``test``.** ``jsonpatch`` compares with Python ``==``, where ``true == 1``; RFC 6902
  says values of different JSON types are never equal, so ``test`` is evaluated here
  (numbers still compare by value: ``1`` equals ``1.0``).
* **pointed errors.** Every problem names the offending operation: ``/2`` (op not an object),
  ``/2/op``, ``/2/path``, ``/2/from`` or ``/2/value``. ``PatchError.malformed`` is true when the
  document itself is broken (HTTP 400) and false when an operation cannot apply (HTTP 422);
  a failing ``test`` raises ``PatchTestFailed`` (HTTP 409).
* **bounded work.** At most ``MAX_PATCH_OPERATIONS`` operations, and the values that ``add``,
  ``replace`` and ``copy`` write add up to at most ``max_written`` bytes of JSON (the API passes
  its body limit): each write is measured *before* it is applied, so ``copy`` doubling a member
  thirty times is refused (``PatchTooLarge``, HTTP 413) before memory grows. This also bounds
  the result (the old body plus what was written) and the time spent (every operation costs at
  most the size of what it writes, a ``test`` the size of its value).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonpatch
import jsonpointer
import orjson

from offerbase.catalog.errors import PatchError, PatchTestFailed, PatchTooLarge

MAX_PATCH_OPERATIONS = 1000
MAX_PATCH_WRITTEN_BYTES = 1_048_576  # the default; the API passes OFFERBASE_MAX_BODY_BYTES

_OPS = ("add", "remove", "replace", "move", "copy", "test")
_NEEDS_VALUE = frozenset({"add", "replace", "test"})
_NEEDS_FROM = frozenset({"move", "copy"})
_ALLOWED_MEMBERS = {
    op: {"op", "path"}
    | ({"value"} if op in _NEEDS_VALUE else set())
    | ({"from"} if op in _NEEDS_FROM else set())
    for op in _OPS
}

_MISSING = object()


def _check_pointer(value: Any, where: str, member: str) -> jsonpointer.JsonPointer:
    if not isinstance(value, str):
        raise PatchError(
            f"{where}/{member}", f"'{member}' must be a JSON pointer string.", malformed=True
        )
    try:
        return jsonpointer.JsonPointer(value)
    except jsonpointer.JsonPointerException:
        raise PatchError(
            f"{where}/{member}",
            f"{value!r} is not a JSON pointer; it must be empty or start with '/' "
            "(escape '~' as '~0' and '/' as '~1').",
            malformed=True,
        ) from None


def _check_document(patch: object) -> list[dict[str, Any]]:
    if not isinstance(patch, list):
        raise PatchError(
            "", "A PATCH body must be a JSON array of operations (RFC 6902).", malformed=True
        )
    if len(patch) > MAX_PATCH_OPERATIONS:
        raise PatchTooLarge(
            f"/{MAX_PATCH_OPERATIONS}",
            f"A patch has at most {MAX_PATCH_OPERATIONS} operations; this one has {len(patch)}.",
        )
    for i, op in enumerate(patch):
        where = f"/{i}"
        if not isinstance(op, dict):
            raise PatchError(where, "Each operation must be a JSON object.", malformed=True)
        name = op.get("op", _MISSING)
        if name is _MISSING:
            raise PatchError(f"{where}/op", "The operation has no 'op' member.", malformed=True)
        if name not in _OPS:
            raise PatchError(
                f"{where}/op",
                f"Unknown op {name!r}; allowed ops are: {', '.join(_OPS)}.",
                malformed=True,
            )
        if "path" not in op:
            raise PatchError(
                f"{where}/path", f"The {name!r} operation needs 'path'.", malformed=True
            )
        _check_pointer(op["path"], where, "path")
        if name in _NEEDS_VALUE and "value" not in op:
            raise PatchError(
                f"{where}/value", f"The {name!r} operation needs 'value'.", malformed=True
            )
        if name in _NEEDS_FROM:
            if "from" not in op:
                raise PatchError(
                    f"{where}/from", f"The {name!r} operation needs 'from'.", malformed=True
                )
            _check_pointer(op["from"], where, "from")
    return patch


def _resolve(doc: Any, pointer: jsonpointer.JsonPointer) -> Any:
    """Value at ``pointer`` or ``_MISSING``; '-' and non-index tokens on arrays are missing."""
    current = doc
    for part in pointer.parts:
        if isinstance(current, dict):
            if part not in current:
                return _MISSING
            current = current[part]
        elif isinstance(current, list):
            if not part.isdigit() or (part != "0" and part.startswith("0")):
                return _MISSING
            index = int(part)
            if index >= len(current):
                return _MISSING
            current = current[index]
        else:
            return _MISSING
    return current


def json_equal(a: Any, b: Any) -> bool:
    """Equality per RFC 6902 §4.6: same JSON type and value; numbers compare numerically."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, str) and isinstance(b, str):
        return a == b
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return False


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact JSON (integers past 64 bits through the stdlib)."""
    try:
        return len(orjson.dumps(value))
    except TypeError:
        return len(json.dumps(value, separators=(",", ":")))


def _written(doc: Any, op: dict[str, Any]) -> int:
    """Bytes of JSON the operation writes into the document (before it is applied)."""
    if op["op"] in ("add", "replace"):
        return json_size(op["value"])
    if op["op"] == "copy":
        source = _resolve(doc, jsonpointer.JsonPointer(op["from"]))
        return 0 if source is _MISSING else json_size(source)
    return 0  # remove, move and test write nothing new


def _apply_one(doc: Any, op: dict[str, Any], where: str) -> Any:
    name = op["op"]
    path = jsonpointer.JsonPointer(op["path"])
    if name == "test":
        actual = _resolve(doc, path)
        if actual is _MISSING:
            raise PatchTestFailed(f"{where}/path", f"test failed: nothing at {op['path']!r}.")
        if not json_equal(actual, op["value"]):
            raise PatchTestFailed(
                f"{where}/value",
                f"test failed: {op['path']!r} is {actual!r}, not {op['value']!r}.",
            )
        return doc
    if name in _NEEDS_FROM:
        source = jsonpointer.JsonPointer(op["from"])
        if _resolve(doc, source) is _MISSING:
            raise PatchError(f"{where}/from", f"Nothing at {op['from']!r} to {name}.")
        if name == "move" and path.parts[: len(source.parts)] == source.parts and path != source:
            raise PatchError(f"{where}/path", "Cannot move a value into one of its own children.")
    if name == "replace" and path.parts:
        parent = _resolve(doc, jsonpointer.JsonPointer.from_parts(path.parts[:-1]))
        if isinstance(parent, dict) and path.parts[-1] not in parent:
            name = "add"  # replace-as-add, see module docstring
    op = {**op, "op": name}
    if "value" in op:
        op["value"] = copy.deepcopy(op["value"])
    try:
        return jsonpatch.JsonPatch([op]).apply(doc, in_place=True)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException) as exc:
        raise PatchError(f"{where}/path", f"Cannot {name} at {op['path']!r}: {exc}.") from None
    except (KeyError, IndexError, TypeError) as exc:  # jsonpatch leaks these on odd targets
        raise PatchError(f"{where}/path", f"Cannot {name} at {op['path']!r}: {exc!r}.") from None


def apply_patch(
    doc: dict[str, Any], patch: object, *, max_written: int = MAX_PATCH_WRITTEN_BYTES
) -> dict[str, Any]:
    """Apply a JSON Patch to a copy of ``doc``; return the new document.

    Raises ``PatchError`` / ``PatchTestFailed`` / ``PatchTooLarge``; on any error nothing is
    applied.
    """
    ops = _check_document(patch)
    result: Any = copy.deepcopy(doc)
    written = 0
    for i, op in enumerate(ops):
        written += _written(result, op)
        if written > max_written:
            raise PatchTooLarge(
                f"/{i}",
                f"The patch writes more than {max_written} bytes of JSON (operation /{i} "
                "brings it past the limit); nothing was applied.",
            )
        result = _apply_one(result, op, f"/{i}")
    if not isinstance(result, dict):
        raise PatchError("", "The patched entity must still be a JSON object.")
    return result


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON Merge Patch: objects merge recursively, null removes a member, anything
    else replaces. Used by profile updates and by PATCH with an object body (Adobe's
    ranking-formula update example PATCHes a whole object)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
