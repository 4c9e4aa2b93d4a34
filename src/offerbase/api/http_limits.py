"""Limits on a request's head (request target and headers), and the `x-request-id` it may carry.

Enforced at two depths, with the same numbers and answers:

* `LimitedHttpToolsProtocol`, the HTTP/1.1 protocol `offerbase serve` gives uvicorn: it counts
  the bytes while httptools parses them and answers before the head is complete, so a client
  cannot make a worker buffer megabytes of headers (httptools itself has no limit; uvicorn's
  own limit applies to its h11 protocol only).
* `HeadLimits`, an ASGI middleware, for the app under any other server (and in-process tests).

Beyond `MAX_HEADER_BYTES` or `MAX_HEADER_COUNT`: 431; a request target beyond `MAX_TARGET_BYTES`:
414; an `x-request-id` that is longer than `MAX_REQUEST_ID_CHARS` or holds anything but visible
ASCII: 400 (it is echoed on the response and written to the logs, so it must stay small and
printable). Every answer is an RFC 7807 problem naming the header.
"""

from __future__ import annotations

from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from offerbase.api.problems import PROBLEM_MEDIA_TYPE, ApiProblem, field_error

MAX_HEADER_BYTES = 16 * 1024  # names and values of all headers together, as sent
MAX_HEADER_COUNT = 100
MAX_TARGET_BYTES = 32 * 1024  # path and query string (20 list filters of 1000 characters fit)
MAX_REQUEST_ID_CHARS = 128
# After refusing a head, the connection reads (and drops) what the client still sends for this
# long before closing: closing at once, with unread data, resets the connection, and the client
# would lose the answer.
LINGER_SECONDS = 2.0

_REASONS = {400: "Bad Request", 414: "URI Too Long", 431: "Request Header Fields Too Large"}


def request_id(headers: list[tuple[bytes, bytes]] | Any) -> bytes | None:
    """The request's `x-request-id` when it is within the limits, else None (never echoed or
    logged then: the request is refused by `HeadLimits` anyway)."""
    value = next((v for k, v in headers if k == b"x-request-id"), None)
    if value is None or not _valid_request_id(value):
        return None
    return bytes(value)


def with_request_id(headers: list[tuple[bytes, bytes]], value: bytes) -> list[tuple[bytes, bytes]]:
    """A response's headers with the request's `x-request-id` echoed, last."""
    return [*headers, (b"x-request-id", value)]


def _valid_request_id(value: bytes) -> bool:
    return 0 < len(value) <= MAX_REQUEST_ID_CHARS and all(0x21 <= byte <= 0x7E for byte in value)


def refusal(target_bytes: int, headers: list[tuple[bytes, bytes]]) -> tuple[int, str, str] | None:
    """(status, pointer, detail) when a head breaks a limit, else None."""
    if target_bytes > MAX_TARGET_BYTES:
        return 414, "", f"The request target is longer than {MAX_TARGET_BYTES} bytes."
    if len(headers) > MAX_HEADER_COUNT:
        return 431, "", f"A request has at most {MAX_HEADER_COUNT} header fields."
    if sum(len(name) + len(value) for name, value in headers) > MAX_HEADER_BYTES:
        return 431, "", f"The header fields are larger than {MAX_HEADER_BYTES} bytes."
    value = next((v for k, v in headers if k == b"x-request-id"), None)
    if value is not None and not _valid_request_id(value):
        return (
            400,
            "x-request-id",
            f"x-request-id must be 1 to {MAX_REQUEST_ID_CHARS} visible ASCII characters.",
        )
    return None


def problem(refused: tuple[int, str, str]) -> ApiProblem:
    status, pointer, detail = refused
    errors = [field_error(pointer, detail)] if pointer else []
    return ApiProblem(status, _REASONS[status], detail, errors=errors)


class HeadLimits:
    """The limits as ASGI middleware (see the module docstring)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            refused = head_refusal(scope)
            if refused is not None:
                await problem(refused).response()(scope, receive, send)
                return
        await self.app(scope, receive, send)


def head_refusal(scope: Scope) -> tuple[int, str, str] | None:
    """`refusal` of an HTTP request's scope (HeadLimits, and the Edge collect fast path)."""
    target = len(scope.get("raw_path") or scope["path"].encode()) + len(
        scope.get("query_string", b"")
    )
    return refusal(target, scope["headers"])


class _HeadTooLarge(Exception):
    """Raised from a parser callback to stop httptools; data_received then answers."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, counting the head as it is parsed (see the docstring)."""

    _refusal: tuple[int, str, str] | None = None

    def data_received(self, data: bytes) -> None:
        if self._refusal is None:  # after a refusal, the rest is dropped (see LINGER_SECONDS)
            super().data_received(data)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._target_bytes = 0

    def on_url(self, url: bytes) -> None:
        self._target_bytes += len(url)
        self._check()
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._check()

    def _check(self) -> None:
        refused = refusal(self._target_bytes, self.headers)
        if refused is not None and refused[0] != 400:  # x-request-id is judged by HeadLimits
            self._refusal = refused
            raise _HeadTooLarge

    def send_400_response(self, msg: str) -> None:
        # httptools reports an exception from a callback as a parse error, which uvicorn
        # answers with a plain 400 here: answer the refusal instead.
        refused = self._refusal
        if refused is None:
            super().send_400_response(msg)
            return
        status = refused[0]
        body = bytes(problem(refused).response().body)
        head = (
            f"HTTP/1.1 {status} {_REASONS[status]}\r\n"
            f"content-type: {PROBLEM_MEDIA_TYPE}\r\n"
            f"content-length: {len(body)}\r\n"
            "connection: close\r\n\r\n"
        )
        self.transport.write(head.encode() + body)
        if self.transport.can_write_eof():
            self.transport.write_eof()
            self.loop.call_later(LINGER_SECONDS, self.transport.close)
        else:
            self.transport.close()
