"""Ranking by an AI strategy (engine/bandit.py): Thompson sampling over the eligible offers,
the holdout arm, personalized contexts, and what the trace and the result say. Seeded rngs;
shares are checked against binomial bounds, not exact counts."""

from __future__ import annotations

import math
import random
from collections import Counter
from typing import Any

import pytest
from engine_helpers import (
    NOW,
    catalog,
    collection,
    criterion,
    decision,
    eligible,
    events,
    member,
    offer,
    rule,
    run,
    strategy,
)

from offerbase.catalog import load
from offerbase.engine import DecisionRequest, ScopeRequest, Snapshot, capping_keys
from offerbase.engine.bandit import (
    EMPTY,
    WORLDS,
    ArmStats,
    StrategyStats,
    context_key,
    posterior,
)

OFFERS = [f"O{i}" for i in range(1, 6)]


def _snap(
    kind: str = "auto-optimization",
    *,
    holdout: int = 0,
    features: dict[str, list[str]] | None = None,
    offers: list[dict[str, Any]] | None = None,
    rules: list[dict[str, Any]] = (),  # type: ignore[assignment]
    item_count: int | None = None,
) -> Snapshot:
    bodies = offers if offers is not None else [offer(o, 10 * i) for i, o in enumerate(OFFERS)]
    return catalog(
        bodies,
        [decision("D1", [criterion("C1", strategy="S1")])],
        collections=[collection("C1", [b["id"] for b in bodies])],
        strategies=[strategy("S1", kind, holdout=holdout, features=features)],
        rules=rules,
    )


def _stats(**arms: tuple[int, int]) -> dict[str, StrategyStats]:
    return {"S1": StrategyStats({o: ArmStats(t, s) for o, (t, s) in arms.items()}, {})}


def _served(snap: Snapshot, n: int, seed: int = 7, **kw: Any) -> Counter[str]:
    rng = random.Random(seed)
    return Counter(run(snap, rng=rng, **kw).scopes[0].options[0].id for _ in range(n))


def _within(count: int, n: int, p: float, z: float = 4.0) -> bool:
    """`count` successes of `n` trials agree with probability `p` (normal bound, z sigmas)."""
    return abs(count - n * p) <= z * math.sqrt(n * p * (1 - p))


def test_a_clearly_best_offer_is_served_most_of_the_time() -> None:
    # O1 has the LOWEST priority: priority plays no part in a strategy's ranking.
    ranking = _stats(O1=(1000, 100), O2=(1000, 20), O3=(1000, 20), O4=(1000, 10), O5=(1000, 5))
    served = _served(_snap(), 400, ranking=ranking)
    assert served["O1"] >= 390


def test_successes_matter_not_just_trials() -> None:
    # Same displays, different clicks: if sampling ignored successes, these would tie.
    ranking = _stats(**dict.fromkeys(OFFERS[1:], (200, 0)), O1=(200, 40))
    assert _served(_snap(), 200, ranking=ranking)["O1"] >= 195
    # ... and with the clicks moved to O5, O5 wins.
    ranking = _stats(**dict.fromkeys(OFFERS[:4], (200, 0)), O5=(200, 40))
    assert _served(_snap(), 200, ranking=ranking)["O5"] >= 195


def test_trials_matter_too() -> None:
    # Same clicks, O1 needed far fewer displays to get them.
    ranking = _stats(**dict.fromkeys(OFFERS[1:], (2000, 20)), O1=(100, 20))
    assert _served(_snap(), 200, ranking=ranking)["O1"] >= 195


def test_an_offer_without_evidence_is_explored() -> None:
    # Four offers with a poor record (2% CTR over 100 displays) and a new one: the new one's
    # uniform prior wins often (P(Beta(1,1) > the best of four Beta(3,99)) is over 0.9).
    ranking = _stats(**dict.fromkeys(OFFERS[:4], (100, 2)))
    served = _served(_snap(), 400, ranking=ranking)
    assert served["O5"] >= 300
    # But exploration does not starve the known offers entirely when they are good.
    ranking = _stats(**dict.fromkeys(OFFERS[:4], (100, 60)))
    served = _served(_snap(), 400, ranking=ranking)
    assert 20 <= served["O5"] <= 250


def test_with_no_evidence_every_offer_is_served_about_equally() -> None:
    # Requests rank by one of WORLDS joint posterior draws, so the serving shares are those of
    # WORLDS draws (binomial over WORLDS), plus the requests' own binomial noise.
    n = 2000
    for ranking in (None, {}, {"S1": EMPTY}):
        served = _served(_snap(), n, ranking=ranking)
        assert set(served) == set(OFFERS)
        bound = 4 * math.sqrt(0.2 * 0.8 / WORLDS) + 4 * math.sqrt(0.2 * 0.8 / n)
        assert all(abs(served[o] / n - 0.2) <= bound for o in OFFERS), served


def test_the_same_evidence_gives_the_same_draws_and_new_evidence_new_ones() -> None:
    snap, other = _snap(), _snap()  # two workers
    ranking = _stats(O1=(30, 3), O2=(30, 2))
    draws = [run(snap, seed=s, ranking=ranking).scopes[0].options[0].score for s in range(20)]
    copy = _stats(O1=(30, 3), O2=(30, 2))  # equal evidence, another object
    again = [run(other, seed=s, ranking=copy).scopes[0].options[0].score for s in range(20)]
    assert draws == again
    # One more display of O3 changes its posterior, hence every world.
    newer = _stats(O1=(30, 3), O2=(30, 2), O3=(1, 0))
    changed = [run(snap, seed=s, ranking=newer).scopes[0].options[0].score for s in range(20)]
    assert changed != draws


def test_a_strategy_ranked_together_with_a_static_criterion() -> None:
    # Same rank.priority: every eligible candidate of both is scored, each keeps its best
    # value; a strategy's values are its draws in [0, 1], a static criterion's its priorities.
    bodies = [offer("O1", 0), offer("O2", 0), offer("O3", 0)]
    snap = catalog(
        bodies,
        [
            decision(
                "D1",
                [
                    criterion("C1", priority=1, strategy="S1"),
                    criterion("C2", priority=1),
                ],
            )
        ],
        collections=[collection("C1", ["O1", "O2"]), collection("C2", ["O3"])],
        strategies=[strategy("S1", holdout=0)],
    )
    ranking = _stats(O1=(1000, 900), O2=(1000, 1))
    result = run(snap, [("D1", "P1", 3)], ranking=ranking, trace=True)
    assert [o.id for o in result.scopes[0].options] == ["O1", "O2", "O3"]
    assert result.scopes[0].options[0].score > 0.85  # type: ignore[operator]
    assert result.scopes[0].ranking == ("S1", "model", "")
    assert {e["offer"] for e in events(result, "sampled")} == {"O1", "O2"}


def test_holdout_share_is_within_binomial_bounds() -> None:
    n = 3000
    snap = _snap(holdout=20)
    rng = random.Random(3)
    ranking = _stats(O1=(1000, 300), **dict.fromkeys(OFFERS[1:], (1000, 10)))
    arms = Counter()
    holdout_served: Counter[str] = Counter()
    for _ in range(n):
        scope = run(snap, rng=rng, ranking=ranking).scopes[0]
        assert scope.ranking is not None
        arms[scope.ranking.arm] += 1
        if scope.ranking.arm == "holdout":
            holdout_served[scope.options[0].id] += 1
            assert scope.options[0].score is None  # the control has no model score
        else:
            assert scope.options[0].score is not None
    assert _within(arms["holdout"], n, 0.2), arms
    # The holdout is uniform among the eligible offers, whatever the model thinks.
    total = sum(holdout_served.values())
    assert all(_within(holdout_served[o], total, 0.2) for o in OFFERS), holdout_served


def test_holdout_zero_and_fifty() -> None:
    ranking = _stats(O1=(100, 50))
    arms = Counter(
        run(_snap(holdout=0), seed=s, ranking=ranking).scopes[0].ranking.arm  # type: ignore[union-attr]
        for s in range(300)
    )
    assert arms == {"model": 300}
    arms = Counter(
        run(_snap(holdout=50), seed=s, ranking=ranking).scopes[0].ranking.arm  # type: ignore[union-attr]
        for s in range(1000)
    )
    assert _within(arms["holdout"], 1000, 0.5), arms


def test_an_ineligible_or_capped_offer_is_never_served() -> None:
    cap = [{"limit": 1, "scope": "global", "entity": "offer"}]
    bodies = [
        offer("O1", constraint=eligible("never")),  # the best by far, but never eligible
        offer("O2", caps=cap),  # second best, capped out
        offer("O3"),
        offer("O4"),
    ]
    snap = _snap(offers=bodies, rules=[rule("never", "false")], holdout=30)
    ranking = _stats(O1=(100, 90), O2=(100, 80), O3=(100, 10), O4=(100, 5))
    keys = capping_keys(snap, DecisionRequest(scopes=[ScopeRequest("D1", "P1")]), NOW)
    counters = dict.fromkeys(keys, 1)
    served = _served(snap, 300, ranking=ranking, counters=counters)
    assert set(served) <= {"O3", "O4"}
    assert served["O3"] > served["O4"]
    # Uncapped, O2 wins the model arm.
    assert _served(snap, 300, ranking=ranking)["O2"] > 150


def test_the_trace_shows_the_arm_scores_and_posteriors() -> None:
    snap = _snap()
    ranking = _stats(O1=(10, 4), O2=(3, 0))
    result = run(snap, seed=5, ranking=ranking, trace=True)
    [arm] = events(result, "ranking_strategy")
    assert arm["strategy"] == "S1"
    assert arm["arm"] == "model"
    assert arm["contextKey"] == ""
    assert arm["candidates"] == 5
    sampled = {e["offer"]: e for e in events(result, "sampled")}
    assert set(sampled) == set(OFFERS)
    assert (sampled["O1"]["alpha"], sampled["O1"]["beta"]) == (5.0, 7.0)
    assert (sampled["O2"]["alpha"], sampled["O2"]["beta"]) == (1.0, 4.0)
    assert (sampled["O3"]["alpha"], sampled["O3"]["beta"]) == (1.0, 1.0)
    best = max(sampled.values(), key=lambda e: e["score"])
    option = result.scopes[0].options[0]
    assert option.id == best["offer"]
    assert option.score == best["score"]
    assert 0.0 <= option.score <= 1.0
    # A trace changes nothing: the untraced decision with the same seed is the same.
    plain = run(snap, seed=5, ranking=ranking)
    assert [(o.id, o.score) for o in plain.scopes[0].options] == [(option.id, option.score)]
    assert plain.scopes[0].ranking == result.scopes[0].ranking


def test_a_seed_pins_the_ranking() -> None:
    snap = _snap(holdout=10)
    ranking = _stats(O1=(50, 5), O2=(50, 7), O3=(50, 6))
    first = [run(snap, seed=s, ranking=ranking).scopes[0].options[0] for s in range(50)]
    again = [run(snap, seed=s, ranking=ranking).scopes[0].options[0] for s in range(50)]
    assert [(o.id, o.score) for o in first] == [(o.id, o.score) for o in again]


def test_personalized_picks_each_contexts_winner() -> None:
    features = {"audiences": ["gold"]}
    snap = _snap("personalized-optimization", features=features)
    [body] = list(snap.catalog.strategies)
    gold, other = member(gold="realized"), {}
    gold_key = context_key(body, gold, {})
    other_key = context_key(body, other, {})
    assert (gold_key, other_key) == ("[true]", "[false]")
    # Globally O1 and O2 look alike (and better than the rest); per context each is clearly
    # the best of its audience.
    offers = {o: ArmStats(400, 4) for o in OFFERS}
    offers["O1"] = offers["O2"] = ArmStats(400, 40)
    contexts = {
        gold_key: {"O1": ArmStats(200, 60), "O2": ArmStats(200, 2)},
        other_key: {"O1": ArmStats(200, 2), "O2": ArmStats(200, 60)},
    }
    ranking = {"S1": StrategyStats(offers, contexts)}
    assert _served(snap, 200, ranking=ranking, profile=gold)["O1"] >= 190
    assert _served(snap, 200, ranking=ranking, profile=other)["O2"] >= 190
    result = run(snap, ranking=ranking, profile=gold)
    assert result.scopes[0].ranking is not None
    assert result.scopes[0].ranking.context_key == "[true]"


def test_personalized_shrinks_a_thin_context_toward_the_offers_global_rate() -> None:
    body = load(
        "ranking-strategy",
        {**strategy("S1", "personalized-optimization", features={"audiences": ["a"]})},
    )
    stats = StrategyStats(
        {"O1": ArmStats(1000, 100), "O2": ArmStats(10, 1)},
        {"[true]": {"O1": ArmStats(4, 0)}},
    )
    # O1's strong global record (10%) counts as SHRINK_STRENGTH = 20 displays: 2 clicks.
    assert posterior(body, stats, "[true]", "O1") == pytest.approx((1 + 2, 1 + 18 + 4))
    # Little global evidence is taken whole; a context it was never shown in adds nothing.
    assert posterior(body, stats, "[false]", "O2") == (2.0, 10.0)
    auto = load("ranking-strategy", strategy("S2"))
    assert posterior(auto, stats, "", "O1") == (101.0, 901.0)


def test_context_keys_are_deterministic_and_bounded() -> None:
    features = {
        "audiences": ["gold", "silver"],
        "profilePaths": ["/person/gender", "/loyalty"],
        "contextPaths": ["/_xdm.context.device;version=1/type", "/xEvent/0/web/url"],
    }
    body = load("ranking-strategy", strategy("S1", "personalized-optimization", features=features))
    profile = {
        "person": {"gender": "f"},
        "loyalty": {"tier": "gold"},  # an object: not a value, null
        "segmentMembership": {"ups": {"silver": {"status": "existing"}}},
    }
    context = {
        "_xdm.context.device;version=1": {"type": "mobile"},
        "xEvent": [{"web": {"url": "https://x.example/a"}}],
    }
    key = context_key(body, profile, context)
    assert key == '[false,true,"f",null,"mobile","https://x.example/a"]'
    assert context_key(body, profile, context) == key
    # A long value is cut to 64 characters; a key longer than 255 is hashed.
    long = {"_xdm.context.device;version=1": {"type": "m" * 1000}}
    assert '"' + "m" * 64 + '"' in context_key(body, profile, long)
    many = {"audiences": [f"audience-{i}" for i in range(50)]}
    wide = load("ranking-strategy", strategy("S3", "personalized-optimization", features=many))
    hashed = context_key(wide, profile, context)
    assert hashed.startswith("sha256:")
    assert len(hashed) <= 255
    assert context_key(wide, profile, context) == hashed
    assert context_key(load("ranking-strategy", strategy("S2")), profile, context) == ""


def test_item_count_two_takes_the_two_best_samples() -> None:
    bodies = [offer(o) for o in OFFERS]
    snap = catalog(
        bodies,
        [decision("D1", [criterion("C1", strategy="S1")])],
        collections=[collection("C1", OFFERS)],
        strategies=[strategy("S1", holdout=0)],
    )
    ranking = _stats(O1=(500, 200), O2=(500, 150), O3=(500, 5), O4=(500, 5), O5=(500, 5))
    result = run(snap, [("D1", "P1", 2)], ranking=ranking)
    options = result.scopes[0].options
    assert [o.id for o in options] == ["O1", "O2"]
    assert options[0].score >= options[1].score  # type: ignore[operator]
