"""Body schemas of the eight Offer Library kinds (Adobe's Offer Library API), as ``schema`` nodes.

Required fields and cross-field rules follow the reference; where it is silent the choice is
written next to the rule. Adobe's Decision Management guardrails that concern a single entity
are enforced here (see ``validate`` module docstring for the ones that are not).

Decisions on profile constraints (``selectionConstraint`` / ``profileConstraint``):

* ``eligibilityRule`` is required when ``profileConstraintType`` is ``eligibilityRule`` or
  ``rules`` (XDM has no separate list for ``rules``: the one rule field holds the combined
  rule) and rejected for the other types, so a constraint never names a rule it does not use.
* ``segmentIdentities`` (XDM ``segmentidentity``: ``{"_id", "namespace": {"code"}, "xid"?}``)
  must be a non-empty list when the type is ``anySegments`` / ``allSegments`` and is rejected
  otherwise.
* A constraint without ``profileConstraintType`` means ``none`` (the XDM default).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeGuard

from offerbase.catalog import defaults, enums
from offerbase.catalog.errors import FieldError
from offerbase.catalog.schema import (
    NOT_SPACE,
    AnyValue,
    Arr,
    Bool,
    DateTime,
    Enum,
    Int,
    Map,
    Node,
    Obj,
    Str,
    child,
    parse_datetime,
)

# Adobe's Decision Management guardrails of a single entity.
MAX_PLACEMENTS_PER_DECISION = 30
MAX_COLLECTIONS_PER_DECISION = 30
MAX_QUALIFIERS = 20  # collection qualifiers (tags) per offer or per collection
MAX_OFFERS_PER_COLLECTION = 500
MAX_CAPPING_RULES_PER_OFFER = 10
MAX_ATTRIBUTES_PER_OFFER = 30  # "Offer size ... max 30 attributes" = characteristics entries
MAX_ITEM_COUNT = 30  # offers returned per decision scope

MEDIA_TYPE = r"\w+/[-.\w]+(?:\+[-.\w]+)?"
URI = r"[A-Za-z][A-Za-z0-9+.-]*:" + NOT_SPACE + "+"

NAME = Str(min_length=1, what="a non-empty string")
TEXT = Str()
ID = Str(min_length=1, what="an id string")
CHANNEL = Str(
    min_length=1,
    pattern=URI,
    what="a channel URI string",
    pattern_hint="use a channel type URI such as https://ns.adobe.com/xdm/channel-types/web.",
)
LABELS = Arr(Str(min_length=1, what="a non-empty label string"))


def _is_str(value: object) -> TypeGuard[str]:
    return isinstance(value, str)


def dates_in_order(start_key: str, end_key: str) -> Any:
    def rule(obj: dict[str, Any], pointer: str, errors: list[FieldError]) -> None:
        start, end = obj.get(start_key), obj.get(end_key)
        if not (_is_str(start) and _is_str(end)):
            return
        s, e = parse_datetime(start), parse_datetime(end)
        if s is not None and e is not None and s > e:
            errors.append(
                FieldError(
                    child(pointer, end_key),
                    f"{end_key} ({end}) is before {start_key} ({start}); "
                    f"the {end_key} must not be earlier than the {start_key}.",
                )
            )

    return rule


def _canonical(spellings: Mapping[str, str], value: Any) -> Any:
    """The canonical spelling of an enum member as written (stored values keep the client's)."""
    return enums.canonical(spellings, value) if isinstance(value, str) else value


def _profile_constraint_rule(obj: dict[str, Any], pointer: str, errors: list[FieldError]) -> None:
    kind = _canonical(
        enums.PROFILE_CONSTRAINT_TYPE,
        obj.get("profileConstraintType", defaults.PROFILE_CONSTRAINT_TYPE),
    )
    if not _is_str(kind) or kind not in enums.PROFILE_CONSTRAINT_TYPE.values():
        return  # already reported by the enum
    needs_rule = kind in ("eligibilityRule", "rules")
    if needs_rule and "eligibilityRule" not in obj:
        errors.append(
            FieldError(
                child(pointer, "eligibilityRule"),
                f"profileConstraintType is {kind!r}, so eligibilityRule (a decision rule id) "
                "is required.",
            )
        )
    if not needs_rule and "eligibilityRule" in obj:
        errors.append(
            FieldError(
                child(pointer, "eligibilityRule"),
                f"eligibilityRule is only used when profileConstraintType is 'eligibilityRule' "
                f"or 'rules' (it is {kind!r}); set profileConstraintType or remove the rule.",
            )
        )
    needs_segments = kind in ("anySegments", "allSegments")
    segments = obj.get("segmentIdentities")
    if needs_segments and (segments is None or segments == []):
        errors.append(
            FieldError(
                child(pointer, "segmentIdentities"),
                f"profileConstraintType is {kind!r}, so segmentIdentities must list at least "
                'one audience, e.g. {"_id": "<audience id>", "namespace": {"code": "ups"}}.',
            )
        )
    if not needs_segments and segments is not None:
        errors.append(
            FieldError(
                child(pointer, "segmentIdentities"),
                "segmentIdentities is only used when profileConstraintType is 'anySegments' "
                f"or 'allSegments' (it is {kind!r}); set profileConstraintType or remove it.",
            )
        )


SEGMENT_IDENTITY = Obj(
    {
        "_id": ID,
        "namespace": Obj({"code": NAME}, required=frozenset({"code"}), name="namespace"),
        "xid": TEXT,
    },
    required=frozenset({"_id", "namespace"}),
    name="an audience (segment identity)",
)

_PROFILE_CONSTRAINT_FIELDS: dict[str, Node] = {
    "description": TEXT,
    "profileConstraintType": Enum(enums.PROFILE_CONSTRAINT_TYPE),
    "eligibilityRule": ID,
    "segmentIdentities": Arr(SEGMENT_IDENTITY),
}

PROFILE_CONSTRAINT = Obj(
    dict(_PROFILE_CONSTRAINT_FIELDS),
    checks=[_profile_constraint_rule],
    name="profileConstraint",
)

SELECTION_CONSTRAINT = Obj(
    {"startDate": DateTime(), "endDate": DateTime(), **_PROFILE_CONSTRAINT_FIELDS},
    checks=[dates_in_order("startDate", "endDate"), _profile_constraint_rule],
    name="selectionConstraint",
)


def _component_content_rule(obj: dict[str, Any], pointer: str, errors: list[FieldError]) -> None:
    ctype = _canonical(enums.COMPONENT_TYPE, obj.get("type"))
    if ctype == "imagelink":
        if "deliveryURL" not in obj:
            errors.append(
                FieldError(
                    child(pointer, "deliveryURL"),
                    "An imagelink component needs deliveryURL, the URL of the image.",
                )
            )
    elif ctype in ("html", "component-text", "json"):
        if "content" not in obj:
            errors.append(
                FieldError(
                    child(pointer, "content"),
                    f"A {ctype} component needs content; put the offer's {ctype} in it.",
                )
            )
        elif ctype != "json" and not _is_str(obj["content"]):
            errors.append(
                FieldError(child(pointer, "content"), f"Must be a string for a {ctype} component.")
            )


COMPONENT = Obj(
    {
        "type": Enum(enums.COMPONENT_TYPE),
        "format": Str(
            min_length=1,
            pattern=MEDIA_TYPE,
            what="a media type string",
            pattern_hint="use a media type such as text/html, text/plain or image/png.",
        ),
        "language": Arr(Str(min_length=1, what="a language tag string such as en-us")),
        # json components may carry a JSON value; the rule above requires a string otherwise.
        "content": AnyValue(),
        "deliveryURL": Str(min_length=1, what="a URL string"),
        "linkURL": Str(min_length=1, what="a URL string"),
        "name": TEXT,
    },
    required=frozenset({"type"}),
    checks=[_component_content_rule],
    name="a component",
)

REPRESENTATION = Obj(
    {"channel": CHANNEL, "placement": ID, "components": Arr(COMPONENT)},
    required=frozenset({"channel", "placement", "components"}),
    name="a representation",
)


def _one_representation_per_placement(
    obj: dict[str, Any], pointer: str, errors: list[FieldError]
) -> None:
    reps = obj.get("representations")
    if not isinstance(reps, list):
        return
    seen: dict[str, int] = {}
    for i, rep in enumerate(reps):
        placement = rep.get("placement") if isinstance(rep, dict) else None
        if not _is_str(placement):
            continue
        if placement in seen:
            errors.append(
                FieldError(
                    f"{pointer}/representations/{i}/placement",
                    f"Placement {placement!r} already has a representation "
                    f"(/representations/{seen[placement]}); an offer may have only one "
                    "representation per placement.",
                )
            )
        else:
            seen[placement] = i


RANK = Obj({"priority": Int(minimum=0)}, name="rank")

REPEAT = Obj(
    {"enabled": Bool(), "unit": Enum(enums.REPEAT_UNIT), "unitCount": Int(minimum=1)},
    name="repeat",
)


def _custom_events_need_query(obj: dict[str, Any], pointer: str, errors: list[FieldError]) -> None:
    events = obj.get("events")
    if isinstance(events, list) and "custom" in events and "customQuery" not in obj:
        errors.append(
            FieldError(
                child(pointer, "customQuery"),
                "events includes 'custom', so customQuery (the PQL that selects the events "
                "to count) is required.",
            )
        )


FREQUENCY_CAP = Obj(
    {
        "index": Int(minimum=0, maximum=10),
        "limit": Int(minimum=1),
        "scope": Enum(enums.CAP_SCOPE),
        "entity": Enum(enums.CAP_ENTITY),
        "enabled": Bool(),
        "repeat": REPEAT,
        "events": Arr(Enum(enums.CAP_EVENTS), min_items=1),
        "customQuery": Str(min_length=1, what="a PQL string"),
        # Deprecated in XDM but still sent by DPS clients (PO-create example sends the dates).
        "startDate": DateTime(),
        "endDate": DateTime(),
        "duration": Int(minimum=1),
        "placement": ID,
        "placements": Arr(ID),
    },
    required=frozenset({"limit", "scope", "entity"}),
    checks=[dates_in_order("startDate", "endDate"), _custom_events_need_query],
    name="a frequency capping constraint",
)

CAPPING = Obj({"globalCap": Int(minimum=1), "profileCap": Int(minimum=1)}, name="cappingConstraint")

_OFFER_COMMON: dict[str, Node] = {
    "name": NAME,
    "description": TEXT,
    "status": Enum(enums.OFFER_STATUS),
    "representations": Arr(REPRESENTATION),
    "selectionConstraint": SELECTION_CONSTRAINT,
    "rank": RANK,
    "characteristics": Map(
        Str(what="a string"),
        max_entries=MAX_ATTRIBUTES_PER_OFFER,
        max_reason=" (offer attributes guardrail)",
    ),
    "labels": LABELS,
}

PERSONALIZED_OFFER = Obj(
    {
        **_OFFER_COMMON,
        "tags": Arr(ID, max_items=MAX_QUALIFIERS, max_reason=" (collection qualifiers per offer)"),
        "cappingConstraint": CAPPING,
        "frequencyCappingConstraints": Arr(
            FREQUENCY_CAP,
            max_items=MAX_CAPPING_RULES_PER_OFFER,
            max_reason=" (capping rules per offer)",
        ),
    },
    required=frozenset({"name"}),
    checks=[_one_representation_per_placement],
    name="a personalized offer",
)

# Fallback offers have no eligibility or ranking at run time, but Adobe's own create example
# (the seed) sends selectionConstraint and rank, so they are accepted and stored.
FALLBACK_OFFER = Obj(
    dict(_OFFER_COMMON),
    required=frozenset({"name"}),
    checks=[_one_representation_per_placement],
    name="a fallback offer",
)

RETURN_METADATA = Obj(
    {k: Bool() for k in enums.RETURN_METADATA_FLAGS},
    name="returnMetaData",
)

PLACEMENT = Obj(
    {
        "name": NAME,
        "description": TEXT,
        "channel": CHANNEL,
        "componentType": Enum(enums.COMPONENT_TYPE),
        "contentTypes": Arr(
            Str(
                min_length=1,
                pattern=MEDIA_TYPE,
                what="a media type string",
                pattern_hint="use a media type such as text/html.",
            )
        ),
        "itemCount": Int(minimum=1, maximum=MAX_ITEM_COUNT),
        "allowDuplicatePlacements": Bool(),
        "returnContent": Bool(),
        "returnMetaData": RETURN_METADATA,
        "labels": LABELS,
    },
    required=frozenset({"name"}),
    name="a placement",
)


def _collection_ids_limit(obj: dict[str, Any], pointer: str, errors: list[FieldError]) -> None:
    ids, filter_type = obj.get("ids"), _canonical(enums.FILTER_TYPE, obj.get("filterType"))
    if not isinstance(ids, list) or filter_type not in enums.FILTER_TYPE.values():
        return
    if filter_type == enums.FILTER_OFFERS:
        limit, what = MAX_OFFERS_PER_COLLECTION, "offers per collection"
    else:
        limit, what = MAX_QUALIFIERS, "collection qualifiers per collection"
    if len(ids) > limit:
        errors.append(
            FieldError(
                child(pointer, "ids"),
                f"Has {len(ids)} ids; at most {limit} are allowed ({what}). "
                f"Remove {len(ids) - limit}.",
            )
        )


COLLECTION = Obj(
    {
        "name": NAME,
        "description": TEXT,
        "filterType": Enum(enums.FILTER_TYPE),
        "ids": Arr(ID),
        "labels": LABELS,
    },
    required=frozenset({"name", "filterType"}),
    checks=[_collection_ids_limit],
    name="a collection",
)

TAG = Obj({"name": NAME, "description": TEXT}, required=frozenset({"name"}), name="a tag")

PQL = Obj(
    {
        "type": Enum(enums.PQL_TYPE),
        "format": Enum(enums.PQL_FORMAT),
        "value": Str(min_length=1, what="a PQL expression string"),
    },
    required=frozenset({"value"}),
    name="a PQL expression",
)

# definedOn maps a PQL variable to its schema; only the PQL checker knows what it needs.
DEFINED_ON = Map(AnyValue())

DECISION_RULE = Obj(
    {
        "name": NAME,
        "description": TEXT,
        "condition": PQL,
        "definedOn": DEFINED_ON,
        "exdRule": Bool(),
        "segmentModel": AnyValue(),
        "labels": LABELS,
    },
    required=frozenset({"name", "condition"}),
    name="a decision rule",
)

RANKING_FORMULA = Obj(
    {
        "name": NAME,
        "description": TEXT,
        "exdFunction": Bool(),
        "isPure": Bool(),
        "returnType": Obj(
            {"type": Enum(enums.RETURN_TYPE, case_insensitive=True)},
            required=frozenset({"type"}),
            name="returnType",
        ),
        "expression": PQL,
        "definedOn": DEFINED_ON,
        "labels": LABELS,
    },
    required=frozenset({"name", "expression"}),
    name="a ranking formula",
)


def _order_rule(obj: dict[str, Any], pointer: str, errors: list[FieldError]) -> None:
    evaluation = _canonical(enums.ORDER_EVALUATION_TYPE, obj.get("orderEvaluationType"))
    for needed, key, what in (
        ("scoringFunction", "function", "a ranking formula id"),
        ("rankingStrategy", "rankingStrategy", "an AI ranking model id"),
    ):
        if evaluation == needed and key not in obj:
            errors.append(
                FieldError(
                    child(pointer, key),
                    f"orderEvaluationType is {needed!r}, so {key} ({what}) is required.",
                )
            )


ORDER = Obj(
    {
        "orderEvaluationType": Enum(enums.ORDER_EVALUATION_TYPE),
        "function": ID,
        "rankingStrategy": ID,
    },
    required=frozenset({"orderEvaluationType"}),
    checks=[_order_rule],
    name="order",
)


def _option_selection_rule(obj: dict[str, Any], pointer: str, errors: list[FieldError]) -> None:
    has_filter, has_options = "filter" in obj, "options" in obj
    if has_filter and has_options:
        errors.append(
            FieldError(
                child(pointer, "options"),
                "Give either filter (a collection id) or options (offer ids), not both.",
            )
        )
    elif not has_filter and not has_options:
        errors.append(
            FieldError(
                child(pointer, "filter"),
                "optionSelection needs filter (a collection id) or options (offer ids).",
            )
        )
    selection_type = obj.get("optionSelectionType")
    if selection_type == "filter" and not has_filter:
        errors.append(
            FieldError(
                child(pointer, "filter"), "optionSelectionType is 'filter' but filter is missing."
            )
        )
    if selection_type == "directList" and not has_options:
        errors.append(
            FieldError(
                child(pointer, "options"),
                "optionSelectionType is 'directList' but options is missing.",
            )
        )


CRITERION = Obj(
    {
        "placements": Arr(
            ID,
            max_items=MAX_PLACEMENTS_PER_DECISION,
            max_reason=" (placements per decision)",
        ),
        "rank": Obj({"priority": Int(minimum=0), "order": ORDER}, name="rank"),
        "profileConstraint": PROFILE_CONSTRAINT,
        "optionSelection": Obj(
            {
                "filter": ID,
                "options": Arr(ID, min_items=1),
                "optionSelectionType": Enum(enums.OPTION_SELECTION_TYPE),
            },
            checks=[_option_selection_rule],
            name="optionSelection",
        ),
    },
    required=frozenset({"optionSelection"}),
    name="a criterion",
)


def _decision_guardrails(obj: dict[str, Any], pointer: str, errors: list[FieldError]) -> None:
    criteria = obj.get("criteria")
    if not isinstance(criteria, list):
        return
    placements: set[str] = set()
    collections: set[str] = set()
    for criterion in criteria:
        if not isinstance(criterion, dict):
            continue
        ps = criterion.get("placements")
        if isinstance(ps, list):
            placements.update(p for p in ps if _is_str(p))
        selection = criterion.get("optionSelection")
        if isinstance(selection, dict) and _is_str(selection.get("filter")):
            collections.add(selection["filter"])
    if len(placements) > MAX_PLACEMENTS_PER_DECISION:
        errors.append(
            FieldError(
                child(pointer, "criteria"),
                f"The criteria name {len(placements)} distinct placements; a decision may use "
                f"at most {MAX_PLACEMENTS_PER_DECISION}.",
            )
        )
    if len(collections) > MAX_COLLECTIONS_PER_DECISION:
        errors.append(
            FieldError(
                child(pointer, "criteria"),
                f"The criteria name {len(collections)} distinct collections; a decision may use "
                f"at most {MAX_COLLECTIONS_PER_DECISION}.",
            )
        )


DECISION = Obj(
    {
        "name": NAME,
        "description": TEXT,
        "status": Enum(enums.DECISION_STATUS),
        "startDate": DateTime(),
        "endDate": DateTime(),
        "fallback": ID,
        "criteria": Arr(CRITERION),
        "labels": LABELS,
    },
    required=frozenset({"name"}),
    checks=[dates_in_order("startDate", "endDate"), _decision_guardrails],
    name="a decision",
)

# Ranking strategies: Offerbase's own collection (Adobe keeps AI models in its UI only), so
# every rule here is ours, written down in docs/offer-library.md.
MAX_STRATEGY_AUDIENCES = 50  # Adobe's personalized optimization: 0-50 audiences
MAX_STRATEGY_PATHS = 10  # profile paths, and again context paths
MAX_HOLDOUT_PERCENTAGE = 50
JSON_POINTER = r"(?:/(?:[^~/]|~[01])*)+"
FEATURE_PATH = Arr(
    Str(
        min_length=1,
        max_length=256,
        pattern=JSON_POINTER,
        what="a JSON Pointer string",
        pattern_hint="use a JSON Pointer such as /person/gender (~0 for ~, ~1 for /).",
    ),
    max_items=MAX_STRATEGY_PATHS,
)
# The goal event: a key of the feedback event's propositionEventType ("interact" = clicks, or a
# custom event type); "display" is what a trial is, so it cannot also be the success.
GOAL_EVENT_TYPE = Str(
    min_length=1,
    max_length=64,
    pattern=r"[A-Za-z][A-Za-z0-9_.:-]*",
    what="an event type string",
    pattern_hint="use interact (clicks) or a custom event type: a letter, then letters, digits, "
    "or _ . : -.",
)


def _strategy_rule(obj: dict[str, Any], pointer: str, errors: list[FieldError]) -> None:
    kind = _canonical(enums.RANKING_STRATEGY_TYPE, obj.get("type"))
    goal = obj.get("optimizationGoal")
    if isinstance(goal, dict) and goal.get("eventType") == "display":
        errors.append(
            FieldError(
                child(child(pointer, "optimizationGoal"), "eventType"),
                "display is what a trial is; the goal is the event counted as a success "
                "(interact for clicks, or a custom event type).",
            )
        )
    features = obj.get("features")
    used = 0
    if isinstance(features, dict):
        used = sum(len(v) for v in features.values() if isinstance(v, list))
    if kind == enums.STRATEGY_PERSONALIZED and used == 0:
        errors.append(
            FieldError(
                child(pointer, "features"),
                "A personalized-optimization strategy needs at least one feature (audiences, "
                "profilePaths or contextPaths).",
            )
        )
    elif kind == enums.STRATEGY_AUTO and features is not None:
        errors.append(
            FieldError(
                child(pointer, "features"),
                "An auto-optimization strategy is not personalized: remove features, or use "
                "type personalized-optimization.",
            )
        )


RANKING_STRATEGY = Obj(
    {
        "name": NAME,
        "description": TEXT,
        "type": Enum(enums.RANKING_STRATEGY_TYPE),
        "optimizationGoal": Obj(
            {"eventType": GOAL_EVENT_TYPE},
            required=frozenset({"eventType"}),
            name="optimizationGoal",
        ),
        "holdoutPercentage": Int(minimum=0, maximum=MAX_HOLDOUT_PERCENTAGE),
        "features": Obj(
            {
                "audiences": Arr(
                    ID, max_items=MAX_STRATEGY_AUDIENCES, max_reason=" (audiences per strategy)"
                ),
                "profilePaths": FEATURE_PATH,
                "contextPaths": FEATURE_PATH,
            },
            name="features",
        ),
        "labels": LABELS,
    },
    required=frozenset({"name", "type"}),
    checks=[_strategy_rule],
    name="a ranking strategy",
)

SPECS: dict[str, Obj] = {
    "personalized-offer": PERSONALIZED_OFFER,
    "fallback-offer": FALLBACK_OFFER,
    "placement": PLACEMENT,
    "collection": COLLECTION,
    "tag": TAG,
    "decision-rule": DECISION_RULE,
    "ranking-formula": RANKING_FORMULA,
    "decision": DECISION,
    "ranking-strategy": RANKING_STRATEGY,
}
