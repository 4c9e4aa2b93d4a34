"""Every documented default of the Offer Library, in one place (Adobe's Offer Library API
and the XDM schemas).

Stored bodies never get defaults injected, because Adobe's reads echo what the client sent; the
loader (``catalog.load``) applies these when it builds the domain model, so every reader of an
entity sees the same defaults.
"""

from __future__ import annotations

from offerbase.catalog.enums import RETURN_METADATA_FLAGS

# Offers (personalized and fallback).
OFFER_STATUS = "draft"
OFFER_PRIORITY = 0  # rank.priority
PROFILE_CONSTRAINT_TYPE = "none"  # selectionConstraint / profileConstraint
SEGMENT_NAMESPACE = "ups"  # an audience without a namespace code is a platform audience

# Frequency caps: a cap without `enabled` is meant to apply.
CAP_ENABLED = True
CAP_EVENTS = ("decisioning",)
CAP_REPEAT_ENABLED = False
CAP_REPEAT_UNIT = "day"
CAP_REPEAT_UNIT_COUNT = 1

# Placements ("metadata default true" for every returnMetaData flag).
PLACEMENT_ITEM_COUNT = 1
PLACEMENT_ALLOW_DUPLICATES = False
PLACEMENT_RETURN_CONTENT = True
PLACEMENT_RETURN_METADATA = dict.fromkeys(RETURN_METADATA_FLAGS, True)

# Decisions and their criteria; a criterion with no placements applies to every placement.
DECISION_STATUS = "draft"
CRITERION_PRIORITY = 0
ORDER_EVALUATION_TYPE = "static"

# Ranking formulas (INTEGER is the only documented example).
RETURN_TYPE = "INTEGER"

# Ranking strategies (Offerbase's own): clicks per display, 10% random holdout (Adobe's split).
STRATEGY_GOAL_EVENT_TYPE = "interact"
STRATEGY_HOLDOUT_PERCENTAGE = 10
