"""The Approve action of the Offers list (the list itself is lists.py, as every kind's)."""

from __future__ import annotations

from typing import Any

from offerbase.store.errors import InvalidField, Unprocessable

KINDS = ("personalized-offer",)  # fallback offers have a page of their own


def approved(body: dict[str, Any]) -> dict[str, Any]:
    """The Approve action's change to an offer's body; only a draft can be approved (archived
    is final, approved already is)."""
    status = body.get("status", "draft")
    if status != "draft":
        message = f"Only a draft offer can be approved; this one is {status}."
        raise Unprocessable(message, [InvalidField("/status", message)])
    return {**body, "status": "approved"}
