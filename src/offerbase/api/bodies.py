"""Reading request bodies: content type, size and JSON syntax, each with a clear 4xx."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from offerbase.api.deps import services
from offerbase.api.problems import ApiProblem, field_error
from offerbase.catalog.schema import too_deep

# Levels of arrays and objects in any request body (an entity's own structure, a profile, a
# decision request, plus catalog.schema.MAX_JSON_DEPTH for an opaque value inside an entity).
# orjson parses up to 1024 levels; past this the body is refused before anything walks it.
MAX_BODY_DEPTH = 128


def is_json_media_type(content_type: str | None) -> bool:
    if not content_type:
        return False
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or media.endswith("+json")


async def read_json(
    request: Request, *, any_content_type: bool = False, nul_anywhere: bool = False
) -> Any:
    """The body as JSON. `any_content_type`: whatever the Content-Type says (the Edge
    endpoints: the Web SDK sends JSON as text/plain to stay a CORS simple request).
    `nul_anywhere`: U+0000 is let through, for a caller that checks the parts it keeps (the
    Mobile SDK sends it as its streaming record separator in `meta`)."""
    if not any_content_type and not is_json_media_type(request.headers.get("content-type")):
        raise ApiProblem(
            400,
            "Bad Request",
            "A valid content-type must be specified: application/json (or a +json media type).",
            errors=[field_error("content-type", "must be application/json or a +json type")],
        )
    return parse_json(await read_body(request), nul_anywhere=nul_anywhere)


async def read_body(request: Request) -> bytes:
    """The body's bytes, at most the server's limit (OFFERBASE_MAX_BODY_BYTES): 413 beyond,
    before reading when Content-Length says so."""
    limit = services(request).settings.max_body_bytes
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
    return b"".join(chunks)  # one chunk (most bodies) is not copied


def parse_json(raw: bytes | bytearray, *, nul_anywhere: bool = False) -> Any:
    """A body's JSON, with the API's limits on nesting and U+0000 (see read_json)."""
    if not raw.strip():
        raise ApiProblem(
            400, "Malformed JSON", "The request body is empty; a JSON document is required."
        )
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise ApiProblem(
            400, "Malformed JSON", f"The request body is not valid JSON: {exc}."
        ) from exc
    # A value nests at most as deep as its text has brackets: most bodies need no walk.
    if raw.count(b"{") + raw.count(b"[") > MAX_BODY_DEPTH and too_deep(value, MAX_BODY_DEPTH):
        message = f"The body is nested deeper than {MAX_BODY_DEPTH} levels of arrays and objects."
        raise ApiProblem(422, "Unprocessable Entity", message, errors=[field_error("", message)])
    pointer = None if nul_anywhere or not may_hold_nul(raw) else nul_pointer(value, "")
    if pointer is not None:
        # PostgreSQL cannot store U+0000 in text or jsonb; refuse it on every backend alike.
        message = "The character U+0000 is not allowed in strings or member names."
        raise ApiProblem(
            422,
            "Unprocessable Entity",
            f"{pointer or '/'}: {message}",
            errors=[field_error(pointer, message)],
        )
    return value


def may_hold_nul(raw: bytes | bytearray) -> bool:
    """Whether JSON text can decode to a string or member name holding U+0000: only through
    the escape `\\u0000`, since JSON (and orjson) refuses a raw control character in a string.
    False lets a caller skip nul_pointer's walk."""
    return b"\\u0000" in raw


def _too_large(limit: int) -> ApiProblem:
    return ApiProblem(
        413,
        "Payload Too Large",
        f"The body is larger than {limit} bytes, the server's limit (OFFERBASE_MAX_BODY_BYTES).",
    )


def nul_pointer(value: Any, pointer: str) -> str | None:
    """The JSON pointer of the first string or member name holding U+0000, else None."""
    if isinstance(value, str):
        return pointer if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{pointer}/{key.replace('~', '~0').replace('/', '~1')}"
            if "\x00" in key:
                return here
            found = nul_pointer(item, here)
            if found is not None:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = nul_pointer(item, f"{pointer}/{index}")
            if found is not None:
                return found
    return None
