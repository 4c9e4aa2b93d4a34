"""Documented defaults, applied only on demand (``with_defaults``) for the decisioning engine.

Stored bodies never get defaults injected, because Adobe's reads echo what the client sent.
Defaults come from dps-api.md §2 and the XDM schemas:

* offers: ``status`` draft, ``rank.priority`` 0, ``selectionConstraint.profileConstraintType``
  none; frequency caps: ``enabled`` true (a cap without the flag is meant to apply),
  ``events`` ["decisioning"], ``repeat`` {enabled false, unit day, unitCount 1}.
* placements: ``itemCount`` 1, ``allowDuplicatePlacements`` false, ``returnContent`` true,
  every ``returnMetaData`` flag true (UI-placements: "metadata default true").
* decisions: ``status`` draft, criteria ``rank.priority`` 0, ``rank.order.orderEvaluationType``
  static, ``profileConstraint.profileConstraintType`` none, ``placements`` [] (= any placement).
* ranking formulas: ``returnType.type`` INTEGER (the only documented example).
"""

from __future__ import annotations

import copy
from typing import Any

from offerbase.catalog.specs import RETURN_METADATA_FLAGS

_CAP_DEFAULTS: dict[str, Any] = {
    "enabled": True,
    "events": ["decisioning"],
    "repeat": {"enabled": False, "unit": "day", "unitCount": 1},
}

_OFFER: dict[str, Any] = {
    "status": "draft",
    "rank": {"priority": 0},
    "selectionConstraint": {"profileConstraintType": "none"},
}

DEFAULTS: dict[str, dict[str, Any]] = {
    "personalized-offer": {
        **_OFFER,
        "representations": [],
        "tags": [],
        "characteristics": {},
        "frequencyCappingConstraints[]": _CAP_DEFAULTS,
    },
    "fallback-offer": {"status": "draft", "representations": []},
    "placement": {
        "itemCount": 1,
        "allowDuplicatePlacements": False,
        "returnContent": True,
        "returnMetaData": dict.fromkeys(RETURN_METADATA_FLAGS, True),
    },
    "collection": {"ids": []},
    "tag": {},
    "decision-rule": {},
    "ranking-formula": {"returnType": {"type": "INTEGER"}},
    "decision": {
        "status": "draft",
        "criteria": [],
        "criteria[]": {
            "placements": [],
            "rank": {"priority": 0, "order": {"orderEvaluationType": "static"}},
            "profileConstraint": {"profileConstraintType": "none"},
        },
    },
}
"""Per kind: member -> default. A key ``"<member>[]"`` gives the defaults of each item of that
array member. Nested objects are merged member by member."""


def _merge(defaults: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(body)
    for key, default in defaults.items():
        if key.endswith("[]"):
            items = out.get(key[:-2])
            if isinstance(items, list):
                out[key[:-2]] = [
                    _merge(default, item) if isinstance(item, dict) else item for item in items
                ]
        elif key not in out:
            out[key] = copy.deepcopy(default)
        elif isinstance(default, dict) and isinstance(out[key], dict):
            out[key] = _merge(default, out[key])
    return out


def with_defaults(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    """Return a copy of a (validated) ``kind`` body with every documented default filled in."""
    try:
        defaults = DEFAULTS[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}; expected one of {sorted(DEFAULTS)}") from None
    return _merge(defaults, body)
