"""Timestamps as stored and returned: ISO-8601 UTC with milliseconds and a `Z`."""

from __future__ import annotations

from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    return (
        moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    )


def now_iso() -> str:
    return iso(datetime.now(UTC))
