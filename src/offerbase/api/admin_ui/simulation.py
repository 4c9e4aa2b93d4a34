"""The Simulation page: a dry-run decision with the engine's trace, explained per offer.

The form becomes a Decisioning API request body (`dryRun` and `trace` set), parsed by the
API's own parser and decided by the API's own path (api/decisioning.py `decide_and_record`):
the same profile lookup, snapshot and capping counters as a real request, and, being a dry
run, no counter consumed and no decision event recorded. The trace (engine/decide.py) says, per
scope, why each candidate offer was dropped or where it ranked; `explain` turns it into one row
per offer.
"""

from __future__ import annotations

import heapq
import json
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.responses import Response

from offerbase.api.admin_ui import routes as ui
from offerbase.api.admin_ui import sessions
from offerbase.api.decision_request import parse
from offerbase.api.decision_request_model import INLINE_PROFILE, TRACE
from offerbase.api.decision_response import render
from offerbase.api.decisioning import decide_and_record
from offerbase.api.deps import Services, ServicesDep
from offerbase.api.problems import ApiProblem
from offerbase.catalog import enums
from offerbase.engine import DecisionError, Snapshot
from offerbase.engine.model import MAX_ITEM_COUNT
from offerbase.store.tenants import Sandbox

MAX_JSON_CHARS = 12 * 1024  # a pasted profile or context (the form itself is at most 16 KiB)
MAX_PLACEMENTS = 20  # placements one simulation asks for (each is a scope)
PLACEMENT_FIELD = "placement:"  # one checkbox per placement: `placement:<id>`
# Drop reasons that leave an eligible offer out for its rank only.
RANKED_OUT = frozenset({"not_needed", "already_ranked"})
# Candidate rows shown per placement (chosen ones first); the reasons of all are counted.
MAX_CANDIDATE_ROWS = 200

# What each trace reason means to a marketer; the detail of the trace follows it.
REASONS: dict[str, tuple[str, str]] = {
    # reason: (topic, explanation)
    "status": ("Status", "not approved: only approved offers are proposed"),
    "unknown_offer": ("Catalog", "the collection names an offer that does not exist"),
    "no_representation": ("Placement", "no representation for this placement"),
    "dates": ("Dates", "outside its start and end dates"),
    "duplicate": ("De-duplication", "already proposed in an earlier placement or decision"),
    "capped": ("Cap", "a frequency cap is reached"),
    "offer_eligibility": ("Eligibility", "the offer's eligibility is not met"),
    "criterion_constraint": ("Criterion", "the criterion's eligibility is not met"),
    "already_ranked": ("Rank", "already ranked by an earlier criterion group"),
    "not_needed": ("Rank", "eligible, but ranked below the item count"),
}


@dataclass(frozen=True)
class Form:
    """The simulation form, each field as typed (bounded), and its field errors."""

    namespace: str = "Email"
    identity: str = ""
    profile_json: str = ""
    decision_id: str = ""
    placement_ids: tuple[str, ...] = ()
    item_count: str = ""
    at: str = ""  # datetime-local, UTC
    context_json: str = ""
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, form: Mapping[str, str]) -> Form:
        def text(name: str, limit: int = 255) -> str:
            return str(form.get(name, "")).strip()[:limit]

        placements = tuple(
            key[len(PLACEMENT_FIELD) :][:255] for key in form if key.startswith(PLACEMENT_FIELD)
        )
        return cls(
            namespace=text("namespace") or "Email",
            identity=text("identity"),
            profile_json=str(form.get("profile", ""))[: MAX_JSON_CHARS + 1],
            decision_id=text("decision"),
            placement_ids=placements[: MAX_PLACEMENTS + 1],
            item_count=text("item_count", 8),
            at=text("at", 40),
            context_json=str(form.get("context", ""))[: MAX_JSON_CHARS + 1],
        )


@dataclass(frozen=True)
class Choices:
    """What the form offers: live decisions and every placement, from the snapshot."""

    decisions: list[tuple[str, str, tuple[str, ...]]]  # (id, name, covered placements)
    placements: list[tuple[str, str]]  # (id, name)


def choices(snapshot: Snapshot) -> Choices:
    placements = sorted(
        ((p.id, str(p.body.get("name", p.id))) for p in snapshot.placements.values()),
        key=lambda item: (item[1].lower(), item[0]),
    )
    decisions = []
    for decision in snapshot.decisions.values():
        if decision.status != enums.DECISION_LIVE:
            continue
        covered: set[str] = set()
        for criterion in decision.criteria:
            covered |= criterion.placements or {pid for pid, _ in placements}
        decisions.append(
            (decision.id, str(decision.body.get("name", decision.id)), tuple(sorted(covered)))
        )
    decisions.sort(key=lambda item: (item[1].lower(), item[0]))
    return Choices(decisions, placements)


@dataclass(frozen=True)
class OfferRow:
    """One candidate offer of one scope: chosen or not, and every reason the trace gave."""

    offer_id: str
    name: str
    chosen: bool
    eligible: bool  # chosen, or eligible and ranked past the item count
    position: int | None
    score: float | None
    priority: int | None
    reasons: list[tuple[str, str]]  # (topic, explanation: detail)


@dataclass(frozen=True)
class ScopeView:
    decision_id: str
    placement_id: str
    placement_name: str
    chosen: list[OfferRow]
    fallback: tuple[str, str] | None  # (id, name)
    rows: list[OfferRow]  # at most MAX_CANDIDATE_ROWS
    hidden: int  # candidates past MAX_CANDIDATE_ROWS
    summary: list[tuple[str, int]]  # (topic, dropped candidates whose first reason it is)
    notes: list[str]  # skipped criteria, rule errors, why the fallback


@dataclass(frozen=True)
class Outcome:
    scopes: list[ScopeView]
    profile_note: str
    response_json: str


def _json_field(
    text: str, name: str, errors: dict[str, str], kind: type
) -> Any:  # the parsed value
    if not text.strip():
        return None
    if len(text) > MAX_JSON_CHARS:
        errors[name] = f"At most {MAX_JSON_CHARS} characters."
        return None
    try:
        value = json.loads(text)
    except ValueError as exc:
        errors[name] = f"Not JSON: {exc}."
        return None
    if not isinstance(value, kind):
        errors[name] = f"Must be a JSON {'object' if kind is dict else 'array'}."
        return None
    return value


def request_body(form: Form, known: Choices) -> tuple[dict[str, Any], datetime | None, Form]:
    """The Decisioning API body of the form, the chosen time, and the form with its errors."""
    errors: dict[str, str] = {}
    decision = next((d for d in known.decisions if d[0] == form.decision_id), None)
    if decision is None:
        errors["decision"] = "Choose a live decision."
    placements = list(form.placement_ids)
    if not placements and decision is not None:
        placements = list(decision[2])
    if len(placements) > MAX_PLACEMENTS:
        errors["placements"] = f"At most {MAX_PLACEMENTS} placements."
    elif decision is not None and not placements:
        errors["placements"] = "Choose at least one placement."
    item_count: int | None = None
    if form.item_count:
        if not form.item_count.isdigit() or not 1 <= int(form.item_count) <= MAX_ITEM_COUNT:
            errors["item_count"] = f"A whole number from 1 to {MAX_ITEM_COUNT}, or empty."
        else:
            item_count = int(form.item_count)
    at: datetime | None = None
    if form.at:
        try:
            at = datetime.fromisoformat(form.at).replace(tzinfo=UTC)
        except ValueError:
            errors["at"] = "A date and time such as 2026-12-24T18:00, or empty for now."
    profile = _json_field(form.profile_json, "profile", errors, dict)
    context = _json_field(form.context_json, "context", errors, list)
    if profile is None and not form.identity and "profile" not in errors:
        errors["identity"] = "Give an identity of a stored profile, or paste a profile."
    scopes = []
    for pid in placements[:MAX_PLACEMENTS]:
        scope: dict[str, Any] = {"xdm:activityId": form.decision_id, "xdm:placementId": pid}
        if item_count is not None:
            scope["xdm:itemCount"] = item_count
        scopes.append(scope)
    person: dict[str, Any] = {"xdm:decisionRequestId": "admin-ui-simulation"}
    if form.identity:
        person["xdm:identityMap"] = {form.namespace: [{"xdm:id": form.identity, "primary": True}]}
    if profile is not None:
        person[INLINE_PROFILE] = profile
    if context is not None:
        person["xdm:contextData"] = context
    body = {
        "xdm:propositionRequests": scopes,
        "xdm:profiles": [person],
        "xdm:dryRun": True,
        TRACE: True,
    }
    checked = Form(**{**form.__dict__, "placement_ids": tuple(placements), "errors": errors})
    return body, at, checked


def _field_of(pointer: str) -> str:
    """The form field a problem's pointer concerns."""
    for part, name in (
        ("contextData", "context"),
        (INLINE_PROFILE, "profile"),
        ("identityMap", "identity"),
        ("placementId", "placements"),
        ("itemCount", "item_count"),
        ("activityId", "decision"),
    ):
        if part in pointer:
            return name
    return "general"


async def simulate(
    services: Services, sandbox: Sandbox, snapshot: Snapshot, form: Form, known: Choices
) -> tuple[Form, Outcome | None]:
    body, at, form = request_body(form, known)
    if form.errors:
        return form, None
    errors: dict[str, str] = {}
    try:
        parsed = parse(body)
        decided = await decide_and_record(services, sandbox, parsed, snapshot, now=at)
    except ApiProblem as problem:  # the API's parser: a field of the request body
        for error in problem.errors or [{"pointer": "", "detail": problem.detail}]:
            errors.setdefault(_field_of(error.get("pointer", "")), error.get("detail", ""))
        return Form(**{**form.__dict__, "errors": errors}), None
    except DecisionError as exc:  # not found, not live, not active at that date
        errors[_field_of(exc.pointer or "")] = exc.detail
        return Form(**{**form.__dict__, "errors": errors}), None
    result = decided.result
    names = _Names(snapshot)
    trace = result.trace or []
    scopes = [
        _scope_view(index, scope, trace, names, snapshot)
        for index, scope in enumerate(result.scopes)
    ]
    response = render(result, parsed, decided.proposition_id, int(time.time() * 1000))
    # The trace is what the tables above explain; shown raw it would be one event per candidate.
    response.pop(TRACE, None)
    note = (
        "A pasted profile."
        if parsed.inline_profile is not None
        else f"The stored profile of {form.namespace} {form.identity} (an empty profile when "
        "no profile has this identity)."
    )
    return form, Outcome(scopes, note, json.dumps(response, indent=2, sort_keys=True))


class _Names(Mapping[str, str]):
    """Offer and fallback names, read from the snapshot when asked (not copied per request)."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def __getitem__(self, oid: str) -> str:
        entity = self.snapshot.offers.get(oid) or self.snapshot.fallbacks.get(oid)
        if entity is None:
            raise KeyError(oid)
        return str(entity.body.get("name", oid))

    def __iter__(self) -> Iterator[str]:
        return iter([*self.snapshot.offers, *self.snapshot.fallbacks])

    def __len__(self) -> int:
        return len(self.snapshot.offers) + len(self.snapshot.fallbacks)


def _topic(event: Mapping[str, Any]) -> str:
    reason = str(event["reason"])
    if reason == "offer_eligibility":
        return "Rule" if str(event.get("detail") or "").startswith("rule ") else "Audience"
    return REASONS.get(reason, (reason, ""))[0]


def _explained(event: Mapping[str, Any]) -> tuple[str, str]:
    reason = str(event["reason"])
    meaning = REASONS.get(reason, (reason, ""))[1]
    detail = str(event.get("detail") or "")
    # (not_needed's detail says what its explanation says)
    text = meaning if not detail or reason == "not_needed" else f"{meaning} ({detail})"
    return _topic(event), f"criterion {event.get('criterion')}: {text}"


def _scope_view(
    index: int,
    scope: Any,
    trace: Sequence[Mapping[str, Any]],
    names: Mapping[str, str],
    snapshot: Snapshot,
) -> ScopeView:
    # One pass over the trace keeps each candidate's first drop event (and the rare later
    # ones) and whether a drop other than for its rank left it out; a decision over 10,000
    # offers has a trace event for each, so per candidate nothing else is built: the summary
    # counts them, and only the rows shown are sorted out and formatted.
    first_drop: dict[str, Mapping[str, Any]] = {}
    more_drops: dict[str, list[Mapping[str, Any]]] = {}
    blocked: set[str] = set()  # a drop reason other than RANKED_OUT
    ranked: dict[str, Mapping[str, Any]] = {}
    notes: list[str] = []
    for event in trace:
        if event.get("scope") != index:
            continue
        kind = event["event"]
        if kind == "dropped":
            oid = event["offer"]
            if oid in first_drop:
                more_drops.setdefault(oid, []).append(event)
            else:
                first_drop[oid] = event
            if event["reason"] not in RANKED_OUT:
                blocked.add(oid)
        elif kind == "ranked":
            ranked[event["offer"]] = event
        elif kind == "criterion_skipped":
            notes.append(f"Criterion {event['criterion']} skipped: {event['detail']}.")
        elif kind == "rule_error":
            notes.append(
                f"Rule {event['rule']} failed on offer {event['offer']}: {event['detail']}."
            )
        elif kind == "group_not_evaluated":
            notes.append(f"Criterion group {event['group']} not evaluated: {event['reason']}.")
        elif kind == "fallback":
            notes.append(f"Fallback: {event['detail']}.")
        elif kind == "formula_missing":
            notes.append(f"Criterion {event['criterion']}: formula {event['formula']} missing.")
    # It qualified when a criterion ranked it, or only the item count left it out.
    dropped = blocked.difference(ranked)
    summary = Counter(_topic(first_drop[oid]) for oid in dropped)
    # Chosen first, then the eligible, by rank (unranked ones after, by id); then the dropped,
    # by id (names are read only for the rows shown).
    chosen_ids = {oid for oid, rank in ranked.items() if rank.get("selected")}
    order = sorted(
        ranked, key=lambda oid: (oid not in chosen_ids, int(ranked[oid]["position"]), oid)
    )
    unranked = [oid for oid in first_drop if oid not in ranked]
    for rest in ([oid for oid in unranked if oid not in blocked], dropped):
        order += heapq.nsmallest(max(0, MAX_CANDIDATE_ROWS - len(order)), rest)
    rows = []
    for oid in order[:MAX_CANDIDATE_ROWS]:
        rank = ranked.get(oid)
        chosen = oid in chosen_ids
        own: list[tuple[str, str]] = []
        events = [first_drop[oid], *more_drops.get(oid, ())] if oid in first_drop else []
        for event in events:
            entry = _explained(event)
            if entry not in own:
                own.append(entry)
        if rank is not None and not chosen:
            own.append(("Rank", f"ranked {rank['position']}, below the item count"))
        rows.append(
            OfferRow(
                oid,
                names.get(oid, oid),
                chosen,
                chosen or all(topic == "Rank" for topic, _ in own),
                None if rank is None else int(rank["position"]),
                None if rank is None else rank.get("score"),
                None if rank is None else rank.get("priority"),
                own,
            )
        )
    candidates = len(ranked) + len(unranked)
    placement = snapshot.placements.get(scope.placement.id)
    fallback = scope.fallback
    return ScopeView(
        scope.activity.id,
        scope.placement.id,
        str(placement.body.get("name", scope.placement.id)) if placement else scope.placement.id,
        [row for row in rows if row.chosen],
        None if fallback is None else (fallback.id, names.get(fallback.id, fallback.id)),
        rows,
        max(0, candidates - MAX_CANDIDATE_ROWS),
        sorted(summary.items(), key=lambda item: (-item[1], item[0])),
        notes,
    )


# -- the page ------------------------------------------------------------------------------------

router = APIRouter(prefix=ui.ROOT, include_in_schema=False)


async def _render(
    request: Request, services: Services, sandbox_name: str, posted: bool
) -> Response:
    visitor, sandboxes, sandbox = await ui._sandbox_page(services, request, sandbox_name)
    if posted:  # a dry run changes nothing, but its form is a POST (a pasted profile is long)
        await sessions.check_csrf(request, visitor.session)
    snapshot = await services.snapshots.get(sandbox)
    known = choices(snapshot)
    outcome = None
    status = 200
    if posted:
        form, outcome = await simulate(
            services, sandbox, snapshot, Form.of(await sessions.read_form(request)), known
        )
        status = 422 if form.errors else 200
    else:  # a link may name the decision (and the identity) to simulate
        form = Form.of(request.query_params)
    base = f"{ui.ROOT}/sandbox/{quote(sandbox.name, safe='')}"
    return ui._page(
        request,
        "simulation.html",
        status,
        title="Simulation",
        section="simulation",
        form=form,
        known=known,
        outcome=outcome,
        action=f"{base}/simulation",
        base=base,
        placement_field=PLACEMENT_FIELD,
        **ui._in_layout(visitor, sandboxes, sandbox),
    )


@router.get("/sandbox/{sandbox_name}/simulation")
async def simulation_page(request: Request, services: ServicesDep, sandbox_name: str) -> Response:
    return await _render(request, services, sandbox_name, posted=False)


@router.post("/sandbox/{sandbox_name}/simulation")
async def run_simulation(request: Request, services: ServicesDep, sandbox_name: str) -> Response:
    """Any signed-in user of the sandbox may simulate (viewers too): it is a dry run."""
    return await _render(request, services, sandbox_name, posted=True)
