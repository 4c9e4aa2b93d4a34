"""The loader: validated, normalised stored bodies -> the typed domain model (``catalog.domain``).

The one place that reads entity JSON for its meaning. It trusts the shapes ``validate`` enforces
on every write (so it has no defensive parsing), applies ``catalog.defaults`` and maps every
enum through ``catalog.enums`` (so a body stored in any accepted spelling means the same).
Bodies carry ``id`` and ``etag`` as the store returns them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from offerbase.catalog import defaults, enums
from offerbase.catalog.domain import (
    NO_CONSTRAINT,
    Body,
    Catalog,
    Collection,
    Criterion,
    Decision,
    FallbackOffer,
    FrequencyCap,
    Offer,
    Placement,
    ProfileConstraint,
    RankingFormula,
    RankingStrategy,
    Rule,
    Tag,
)
from offerbase.catalog.schema import parse_datetime

# definedOn keys that are not extra inputs: the profile and offer roots, and xEvent, which PQL
# always knows as an input and which no decision request supplies.
_NOT_PARAMS = frozenset({"", "profile", "offer", "xEvent"})


def defined_on_params(defined_on: Any) -> tuple[tuple[str, str | None], ...]:
    """The extra inputs a rule or formula declares in definedOn, each with the context type it
    is read from: ``schema.altId`` (or ``ref``) plus ``;version=N`` when given, else None."""
    if not isinstance(defined_on, Mapping):
        return ()
    out: list[tuple[str, str | None]] = []
    for name, spec in defined_on.items():
        if name in _NOT_PARAMS:
            continue
        schema = spec.get("schema") if isinstance(spec, Mapping) else None
        schema = schema if isinstance(schema, Mapping) else {}
        alt = schema.get("altId") or schema.get("ref")
        version = schema.get("version")
        if not isinstance(alt, str):
            out.append((name, None))
        else:
            out.append((name, alt if version is None else f"{alt};version={version}"))
    return tuple(out)


def _instant(value: str | None) -> float | None:
    parsed = parse_datetime(value) if value else None
    return parsed.timestamp() if parsed is not None else None


def _representations(body: Body) -> dict[str, Body]:
    # validate allows one representation per placement. Component types are stored as the
    # client wrote them; the model carries the canonical one (the engine and the responses
    # compare it with the placement's).
    return {
        rep["placement"]: {**rep, "components": [_component(c) for c in rep["components"]]}
        if rep.get("components")
        else rep
        for rep in body.get("representations", ())
    }


def _component(component: Body) -> Body:
    if "type" not in component:
        return component
    return {**component, "type": enums.canonical(enums.COMPONENT_TYPE, component["type"])}


def _constraint(raw: Mapping[str, Any] | None) -> ProfileConstraint:
    if not raw:
        return NO_CONSTRAINT
    ctype = enums.canonical(
        enums.PROFILE_CONSTRAINT_TYPE,
        raw.get("profileConstraintType", defaults.PROFILE_CONSTRAINT_TYPE),
    )
    if ctype == enums.CONSTRAINT_NONE:
        return NO_CONSTRAINT
    if ctype in enums.RULE_CONSTRAINT_TYPES:
        # XDM has one rule field for `rules` too: it names the combined rule
        return ProfileConstraint(ctype, rule_ids=(raw["eligibilityRule"],))
    segments = tuple(
        (seg.get("namespace", {}).get("code") or defaults.SEGMENT_NAMESPACE, seg["_id"])
        for seg in raw.get("segmentIdentities", ())
    )
    return ProfileConstraint(ctype, segments=segments)


def _cap(index: int, raw: Mapping[str, Any]) -> FrequencyCap:
    repeat = raw.get("repeat") or {}
    repeats = repeat.get("enabled", defaults.CAP_REPEAT_ENABLED) is True
    placements = raw.get("placements") or ([raw["placement"]] if raw.get("placement") else [])
    custom = raw.get("customQuery")
    return FrequencyCap(
        index=index,
        limit=raw["limit"],
        enabled=raw.get("enabled", defaults.CAP_ENABLED) is True,
        per_profile=enums.canonical(enums.CAP_SCOPE, raw["scope"]) == "profile",
        per_placement=enums.canonical(enums.CAP_ENTITY, raw["entity"]) == "placement",
        placements=frozenset(placements) if placements else None,
        repeat_unit=enums.canonical(enums.REPEAT_UNIT, repeat.get("unit", defaults.CAP_REPEAT_UNIT))
        if repeats
        else None,
        repeat_count=repeat.get("unitCount", defaults.CAP_REPEAT_UNIT_COUNT),
        events=frozenset(
            enums.canonical(enums.CAP_EVENTS, e) for e in raw.get("events", defaults.CAP_EVENTS)
        ),
        custom_query=custom if isinstance(custom, str) else None,
    )


def load_offer(body: Body) -> Offer:
    oid = str(body["id"])
    selection = body.get("selectionConstraint") or {}
    rank = body.get("rank") or {}
    priority = rank.get("priority", defaults.OFFER_PRIORITY)
    legacy = body.get("cappingConstraint") or {}
    view: dict[str, Any] = dict(body)
    view.setdefault("_id", oid)
    view["rank"] = {**rank, "priority": priority}
    return Offer(
        id=oid,
        etag=body.get("etag"),
        body=body,
        status=enums.canonical(enums.OFFER_STATUS, body.get("status", defaults.OFFER_STATUS)),
        start=_instant(selection.get("startDate")),
        end=_instant(selection.get("endDate")),
        priority=priority,
        representations=_representations(body),
        constraint=_constraint(selection),
        caps=tuple(_cap(i, c) for i, c in enumerate(body.get("frequencyCappingConstraints", ()))),
        global_cap=legacy.get("globalCap"),
        profile_cap=legacy.get("profileCap"),
        tags=frozenset(body.get("tags", ())),
        view=view,
    )


def load_fallback(body: Body) -> FallbackOffer:
    return FallbackOffer(
        id=str(body["id"]),
        etag=body.get("etag"),
        body=body,
        status=enums.canonical(enums.OFFER_STATUS, body.get("status", defaults.OFFER_STATUS)),
        representations=_representations(body),
    )


def load_placement(body: Body) -> Placement:
    component = body.get("componentType")
    return Placement(
        id=str(body["id"]),
        etag=body.get("etag"),
        body=body,
        component_type=enums.canonical(enums.COMPONENT_TYPE, component) if component else None,
        item_count=body.get("itemCount", defaults.PLACEMENT_ITEM_COUNT),
        allow_duplicates=body.get("allowDuplicatePlacements", defaults.PLACEMENT_ALLOW_DUPLICATES),
        return_content=body.get("returnContent", defaults.PLACEMENT_RETURN_CONTENT),
        return_metadata={**defaults.PLACEMENT_RETURN_METADATA, **body.get("returnMetaData", {})},
    )


def load_tag(body: Body) -> Tag:
    return Tag(id=str(body["id"]), etag=body.get("etag"), body=body, name=body["name"])


def load_collection(body: Body) -> Collection:
    return Collection(
        id=str(body["id"]),
        etag=body.get("etag"),
        body=body,
        filter_type=enums.canonical(enums.FILTER_TYPE, body["filterType"]),
        ids=tuple(body.get("ids", ())),
    )


def _criterion(index: int, raw: Mapping[str, Any]) -> Criterion:
    rank = raw.get("rank") or {}
    order = rank.get("order") or {}
    order_type = enums.canonical(
        enums.ORDER_EVALUATION_TYPE,
        order.get("orderEvaluationType", defaults.ORDER_EVALUATION_TYPE),
    )
    selection = raw["optionSelection"]
    placements = raw.get("placements")
    return Criterion(
        index=index,
        placements=frozenset(placements) if placements else None,
        priority=rank.get("priority", defaults.CRITERION_PRIORITY),
        order=order_type,
        formula_id=order.get("function") if order_type == enums.ORDER_FORMULA else None,
        strategy_id=order.get("rankingStrategy") if order_type == enums.ORDER_AI else None,
        constraint=_constraint(raw.get("profileConstraint")),
        collection_id=selection.get("filter"),
        option_ids=tuple(dict.fromkeys(selection.get("options", ()))),
    )


def load_decision(body: Body) -> Decision:
    return Decision(
        id=str(body["id"]),
        etag=body.get("etag"),
        body=body,
        status=enums.canonical(enums.DECISION_STATUS, body.get("status", defaults.DECISION_STATUS)),
        start=_instant(body.get("startDate")),
        end=_instant(body.get("endDate")),
        fallback_id=body.get("fallback") or None,
        criteria=tuple(_criterion(i, c) for i, c in enumerate(body.get("criteria", ()))),
    )


def load_rule(body: Body) -> Rule:
    return Rule(
        id=str(body["id"]),
        etag=body.get("etag"),
        body=body,
        condition=body["condition"]["value"],
        params=defined_on_params(body.get("definedOn")),
    )


def load_formula(body: Body) -> RankingFormula:
    return_type = (body.get("returnType") or {}).get("type", defaults.RETURN_TYPE)
    return RankingFormula(
        id=str(body["id"]),
        etag=body.get("etag"),
        body=body,
        expression=body["expression"]["value"],
        params=defined_on_params(body.get("definedOn")),
        return_type=enums.canonical(enums.RETURN_TYPE, return_type),
    )


def _pointer(path: str) -> tuple[str, ...]:
    """RFC 6901 tokens of a validated JSON Pointer ("/a/b~1c" -> ("a", "b/c"))."""
    return tuple(t.replace("~1", "/").replace("~0", "~") for t in path.split("/")[1:])


def load_strategy(body: Body) -> RankingStrategy:
    goal = body.get("optimizationGoal") or {}
    features = body.get("features") or {}
    return RankingStrategy(
        id=str(body["id"]),
        etag=body.get("etag"),
        body=body,
        type=enums.canonical(enums.RANKING_STRATEGY_TYPE, body["type"]),
        goal_event_type=goal.get("eventType", defaults.STRATEGY_GOAL_EVENT_TYPE),
        holdout=float(body.get("holdoutPercentage", defaults.STRATEGY_HOLDOUT_PERCENTAGE)),
        audiences=tuple(dict.fromkeys(features.get("audiences", ()))),
        profile_paths=tuple(_pointer(p) for p in features.get("profilePaths", ())),
        context_paths=tuple(_pointer(p) for p in features.get("contextPaths", ())),
    )


LOADERS = {
    "personalized-offer": load_offer,
    "fallback-offer": load_fallback,
    "placement": load_placement,
    "collection": load_collection,
    "tag": load_tag,
    "decision-rule": load_rule,
    "ranking-formula": load_formula,
    "decision": load_decision,
    "ranking-strategy": load_strategy,
}


def load(kind: str, body: Body) -> Any:
    """One stored body of `kind` as its domain object."""
    return LOADERS[kind](body)


def load_catalog(bodies: Mapping[str, Iterable[Body]]) -> Catalog:
    """A sandbox's stored bodies, kind name -> bodies (each with id and etag), as a Catalog."""

    def each(kind: str) -> tuple[Any, ...]:
        return tuple(LOADERS[kind](body) for body in bodies.get(kind, ()))

    return Catalog(
        offers=each("personalized-offer"),
        fallbacks=each("fallback-offer"),
        placements=each("placement"),
        collections=each("collection"),
        tags=each("tag"),
        rules=each("decision-rule"),
        formulas=each("ranking-formula"),
        strategies=each("ranking-strategy"),
        decisions=each("decision"),
    )
