"""``references(kind, body)``: every id a normalized body names, and the kinds it may point to.

The store uses this for referential integrity (a reference must exist on write; a referenced
entity cannot be deleted). Pointers are exact RFC 6901 pointers into the body.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from offerbase.catalog import enums
from offerbase.catalog.schema import child


class Reference(NamedTuple):
    pointer: str
    kinds: tuple[str, ...]
    id: str


def _ref(out: list[Reference], holder: Any, key: str, pointer: str, kinds: tuple[str, ...]):  # type: ignore[no-untyped-def]
    if isinstance(holder, dict) and isinstance(holder.get(key), str):
        out.append(Reference(child(pointer, key), kinds, holder[key]))


def _refs(out: list[Reference], holder: Any, key: str, pointer: str, kinds: tuple[str, ...]):  # type: ignore[no-untyped-def]
    items = holder.get(key) if isinstance(holder, dict) else None
    if isinstance(items, list):
        base = child(pointer, key)
        out.extend(
            Reference(child(base, i), kinds, v) for i, v in enumerate(items) if isinstance(v, str)
        )


def _profile_constraint(out: list[Reference], constraint: Any, pointer: str) -> None:
    _ref(out, constraint, "eligibilityRule", pointer, ("decision-rule",))


def references(kind: str, body: dict[str, Any]) -> list[Reference]:
    out: list[Reference] = []
    if kind in ("personalized-offer", "fallback-offer"):
        reps = body.get("representations")
        if isinstance(reps, list):
            for i, rep in enumerate(reps):
                _ref(out, rep, "placement", f"/representations/{i}", ("placement",))
        _profile_constraint(out, body.get("selectionConstraint"), "/selectionConstraint")
        _refs(out, body, "tags", "", ("tag",))
    elif kind == "collection":
        filter_type = body.get("filterType")
        is_offers = isinstance(filter_type, str) and (
            enums.canonical(enums.FILTER_TYPE, filter_type) == enums.FILTER_OFFERS
        )
        target = ("personalized-offer",) if is_offers else ("tag",)
        _refs(out, body, "ids", "", target)
    elif kind == "decision":
        _ref(out, body, "fallback", "", ("fallback-offer",))
        criteria = body.get("criteria")
        if isinstance(criteria, list):
            for i, criterion in enumerate(criteria):
                if not isinstance(criterion, dict):
                    continue
                base = f"/criteria/{i}"
                _refs(out, criterion, "placements", base, ("placement",))
                rank = criterion.get("rank")
                order = rank.get("order") if isinstance(rank, dict) else None
                _ref(out, order, "function", f"{base}/rank/order", ("ranking-formula",))
                _ref(out, order, "rankingStrategy", f"{base}/rank/order", ("ranking-strategy",))
                _profile_constraint(
                    out, criterion.get("profileConstraint"), f"{base}/profileConstraint"
                )
                selection = criterion.get("optionSelection")
                _ref(out, selection, "filter", f"{base}/optionSelection", ("collection",))
                _refs(out, selection, "options", f"{base}/optionSelection", ("personalized-offer",))
    elif kind not in ("placement", "tag", "decision-rule", "ranking-formula", "ranking-strategy"):
        raise ValueError(f"unknown kind {kind!r}")
    return out
