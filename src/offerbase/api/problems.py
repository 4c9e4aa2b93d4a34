"""Error bodies: RFC 7807 problems, and the platform gateway's `error_code` bodies."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from starlette.responses import Response

PROBLEM_TYPE = "https://offerbase.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"


class ApiProblem(Exception):
    """Raised anywhere under a route; rendered by the app's exception handler."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str,
        *,
        errors: Sequence[dict[str, str]] = (),
        extra: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.errors = list(errors)
        self.extra = extra or {}
        self.headers = headers or {}

    def response(self) -> Response:
        slug = self.title.lower().replace(" ", "-")
        body: dict[str, Any] = {
            "type": PROBLEM_TYPE + slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors:
            body["errors"] = self.errors
        body.update(self.extra)
        return Response(
            orjson.dumps(body), self.status, headers=self.headers, media_type=PROBLEM_MEDIA_TYPE
        )


class GatewayError(Exception):
    """Authentication failures answer like Adobe's API gateway does (Adobe's Offer Library API)."""

    def __init__(
        self, status: int, code: str, message: str, detail: str, *, header: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.detail = detail
        self.header = header

    def response(self) -> Response:
        # Adobe's `error_code` and `message`, which clients match on, then what a person needs:
        # `detail`, and the `header` at fault when there is one.
        body = {"error_code": self.code, "message": self.message, "detail": self.detail}
        if self.header is not None:
            body["header"] = self.header
        return Response(orjson.dumps(body), self.status, media_type="application/json")


def field_error(pointer: str, detail: str) -> dict[str, str]:
    return {"pointer": pointer, "detail": detail}
