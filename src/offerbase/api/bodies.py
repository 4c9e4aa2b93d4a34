"""Reading request bodies: content type, size and JSON syntax, each with a clear 4xx."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from offerbase.api.problems import ApiProblem


def is_json_media_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


async def read_json(request: Request) -> Any:
    if not is_json_media_type(request.headers.get("content-type")):
        raise ApiProblem(
            400,
            "BadRequestError",
            "A valid content-type must be specified: application/json (or a +json media type).",
        )
    limit: int = request.app.state.settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise ApiProblem(413, "Payload Too Large", f"The body is larger than {limit} bytes.")
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > limit:
            raise ApiProblem(413, "Payload Too Large", f"The body is larger than {limit} bytes.")
    if not raw.strip():
        raise ApiProblem(
            400, "Malformed JSON", "The request body is empty; a JSON document is required."
        )
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiProblem(
            400, "Malformed JSON", f"The request body is not valid JSON: {exc}."
        ) from exc


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7396 JSON Merge Patch (Adobe's ranking-formula update example PATCHes a whole object)."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result
