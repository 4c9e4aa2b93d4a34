"""Reject URLs whose percent-encoded bytes are not UTF-8.

The ASGI server decodes the path, and Starlette the query string, with `errors="replace"`:
`/placements/ab%FF` would reach a route as the id `ab\ufffd`, be stored so, and never match
what the client sent again. A URL is text (RFC 3986 §2.5 recommends UTF-8), so anything else
is the client's mistake: 400, before any route sees it.
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from offerbase.api.problems import ApiProblem, field_error


def _is_utf8(raw: bytes) -> bool:
    # Most URLs are plain ASCII without escapes: nothing to decode.
    if raw.isascii() and b"%" not in raw:
        return True
    try:
        unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def invalid_utf8(scope: Scope) -> ApiProblem | None:
    """The 400 for an HTTP request whose path or query string is not UTF-8 once decoded."""
    raw_path = scope.get("raw_path") or scope["path"].encode()
    for part, raw in (("path", raw_path), ("query", scope.get("query_string", b""))):
        if not _is_utf8(raw):
            return ApiProblem(
                400,
                "Bad Request",
                f"The request's {part} is not UTF-8 once percent-decoded.",
                errors=[field_error(part, "Percent-encoded bytes must be UTF-8.")],
            )
    return None


class RejectInvalidUtf8:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            problem = invalid_utf8(scope)
            if problem is not None:
                await problem.response()(scope, receive, send)
                return
        await self.app(scope, receive, send)
