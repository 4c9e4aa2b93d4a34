"""The ranking-strategy report: `GET /data/core/ods/reports/ranking-strategies/{id}`, a
strategy's evidence (store/ranking.py) per arm and per offer, and the lift of the model over
its random holdout. Every figure is defined in docs/reports.md ("Ranking-strategy report").

The lift test is the two-proportion z-test (pooled), the same test as the chi-squared test of
a 2x2 table that Adobe's model monitoring shows (z squared is that chi-squared statistic); the
interval of the relative lift is the log risk-ratio (Katz) interval, which stays inside the
possible values (a lift is never below -100%) where a Wald interval on the difference would not.
"""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Path

from offerbase.api import schemas
from offerbase.api.auth import CallerDep
from offerbase.api.deps import ServicesDep
from offerbase.api.problems import ApiProblem
from offerbase.api.ranking import CLICKS
from offerbase.api.responses import json_response
from offerbase.catalog import RankingStrategy
from offerbase.store import ranking as store
from offerbase.store.ranking import OfferArm

router = APIRouter(prefix="/data/core/ods", tags=["Decisioning"])
Z_95 = 1.959963984540054  # the standard normal's 97.5th percentile


def _ctr(clicks: int, displays: int) -> float | None:
    return clicks / displays if displays else None


def lift(model: tuple[int, int], holdout: tuple[int, int]) -> dict[str, Any]:
    """The model arm's relative lift over the holdout, from (displays, clicks) of each: the
    estimate, its 95% interval and the two-sided p-value of the two-proportion z-test. A
    figure that the data cannot give (no displays, no holdout click) is null."""
    (n_m, x_m), (n_h, x_h) = model, holdout
    x_m, x_h = min(x_m, n_m), min(x_h, n_h)  # a click without its display counts as shown
    out: dict[str, Any] = {
        "relative": None,
        "confidenceInterval": {"level": 0.95, "lower": None, "upper": None},
        "pValue": None,
        "test": "two-proportion z-test",
    }
    if not n_m or not n_h:
        return out
    p_m, p_h = x_m / n_m, x_h / n_h
    if x_h:
        out["relative"] = p_m / p_h - 1
        if x_m:
            se = math.sqrt((1 - p_m) / x_m + (1 - p_h) / x_h)
            log_ratio = math.log(p_m / p_h)
            out["confidenceInterval"]["lower"] = math.exp(log_ratio - Z_95 * se) - 1
            out["confidenceInterval"]["upper"] = math.exp(log_ratio + Z_95 * se) - 1
    pooled = (x_m + x_h) / (n_m + n_h)
    variance = pooled * (1 - pooled) * (1 / n_m + 1 / n_h)
    if variance > 0:
        z = (p_m - p_h) / math.sqrt(variance)
        out["pValue"] = math.erfc(abs(z) / math.sqrt(2))
    return out


def report_body(strategy: RankingStrategy, rows: list[OfferArm]) -> dict[str, Any]:
    arms = {arm: [0, 0] for arm in store.ARMS}
    offers: dict[str, dict[str, list[int]]] = {}
    for row in rows:
        if row.arm not in arms:
            continue
        arms[row.arm][0] += row.trials
        arms[row.arm][1] += row.successes
        offers.setdefault(row.offer_id, {a: [0, 0] for a in store.ARMS})[row.arm] = [
            row.trials,
            row.successes,
        ]
    model_displays = arms["model"][0]
    per_offer = []
    for offer_id, by_arm in sorted(offers.items()):
        displays = sum(sums[0] for sums in by_arm.values())
        clicks = sum(sums[1] for sums in by_arm.values())
        per_offer.append(
            {
                "offerId": offer_id,
                # The posterior mean of the engine's Beta(1 + clicks, 1 + displays - clicks)
                "estimate": (1 + min(clicks, displays)) / (2 + displays),
                "displays": displays,
                "clicks": clicks,
                "ctr": _ctr(clicks, displays),
                "modelDisplays": by_arm["model"][0],
                "modelTrafficShare": _ctr(by_arm["model"][0], model_displays),
            }
        )
    return {
        "strategyId": strategy.id,
        "name": strategy.body.get("name"),
        "type": strategy.type,
        "goal": "clicks" if strategy.goal_event_type == CLICKS else strategy.goal_event_type,
        "holdoutPercentage": strategy.holdout,
        "arms": {
            arm: {"displays": n, "clicks": x, "ctr": _ctr(x, n)} for arm, (n, x) in arms.items()
        },
        "lift": lift(
            (arms["model"][0], arms["model"][1]), (arms["holdout"][0], arms["holdout"][1])
        ),
        "offers": per_offer,
    }


_COUNT = {"type": "integer", "minimum": 0}
_RATIO = {"type": ["number", "null"]}
_ARM = {
    "type": "object",
    "required": ["displays", "clicks", "ctr"],
    "properties": {"displays": _COUNT, "clicks": _COUNT, "ctr": _RATIO},
}
_REPORT = {
    "type": "object",
    "required": ["strategyId", "type", "goal", "arms", "lift", "offers"],
    "properties": {
        "strategyId": {"type": "string"},
        "name": {"type": ["string", "null"]},
        "type": {"type": "string", "enum": ["auto-optimization", "personalized-optimization"]},
        "goal": {"type": "string", "description": "clicks, or the custom goal event type"},
        "holdoutPercentage": {"type": "number"},
        "arms": {
            "type": "object",
            "required": list(store.ARMS),
            "properties": dict.fromkeys(store.ARMS, _ARM),
        },
        "lift": {
            "type": "object",
            "required": ["relative", "confidenceInterval", "pValue", "test"],
            "properties": {
                "relative": _RATIO,
                "confidenceInterval": {
                    "type": "object",
                    "properties": {"level": {"type": "number"}, "lower": _RATIO, "upper": _RATIO},
                },
                "pValue": _RATIO,
                "test": {"type": "string"},
            },
        },
        "offers": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["offerId", "estimate", "displays", "clicks", "modelTrafficShare"],
                "properties": {
                    "offerId": {"type": "string"},
                    "estimate": {"type": "number"},
                    "displays": _COUNT,
                    "clicks": _COUNT,
                    "ctr": _RATIO,
                    "modelDisplays": _COUNT,
                    "modelTrafficShare": _RATIO,
                },
            },
        },
    },
}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    **schemas.COMMON_RESPONSES,
    200: {"description": "The report.", "content": {"application/json": {"schema": _REPORT}}},
    404: schemas.problem_response("No ranking strategy has this id in the caller's sandbox."),
}


@router.get(
    "/reports/ranking-strategies/{strategy_id}",
    summary="Ranking-strategy report: arms, lift over the holdout, per-offer estimates",
    responses=_RESPONSES,
)
async def get_ranking_report(
    caller: CallerDep,
    services: ServicesDep,
    strategy_id: Annotated[str, Path(max_length=255)],
) -> Any:
    sandbox = caller.sandbox
    snapshot = await services.snapshots.get(sandbox)
    strategies = {s.id: s for s in snapshot.catalog.strategies}
    if strategy_id not in strategies:  # created through another worker since the last check?
        snapshot = await services.snapshots.get(sandbox, recheck=True)
        strategies = {s.id: s for s in snapshot.catalog.strategies}
    strategy = strategies.get(strategy_id)
    if strategy is None:
        raise ApiProblem(
            404, "Not Found", f"No ranking strategy has the id '{strategy_id}' in this sandbox."
        )
    rows = await store.strategy_totals(services.db, sandbox.pk, strategy_id)
    return json_response(report_body(strategy, rows))
