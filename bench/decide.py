"""Engine-only decisioning benchmark (run by hand: .venv/bin/python bench/decide.py).

Catalog: 1,000 approved offers in one collection, 100 distinct decision rules (two-predicate
PQL over profile fields, compiled by the real offerbase.pql) spread over the offers, frequency
caps on 10% of the offers, one decision, one scope (itemCount 1). Each decide() call gets a
profile from a pool of varied profiles and counters for the capped offers (some at the limit).
Prints p50/p99 per decide() in microseconds, per run and the median over runs.

Options: --runs N (default 5), --n N decisions per run (default 20000), --item-count N,
--equal-priority (every offer priority 0: one tie tier of 1,000), --profile (cProfile one run),
--ranking-strategy: the same decisions also ranked by an auto-optimization strategy (a second
decision over the same collection, 10% holdout) with realistic evidence (5,000 displays spread
unevenly over the offers, clicks at true CTRs of 1-5%); each run times both, alternating, and
prints both p50s and their ratio. --no-caps: the same catalog without its frequency caps.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import platform
import pstats
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from typing import Any

from offerbase.catalog import load_catalog, validate
from offerbase.engine import (
    DecisionRequest,
    ScopeRequest,
    build_snapshot,
    capping_keys,
    decide,
)
from offerbase.engine.bandit import ArmStats, RankingStats, StrategyStats

NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
TIERS = ["bronze", "silver", "gold", "platinum"]
CITIES = ["Paris", "Rome", "Berlin", "Madrid", "Lisbon", "Vienna"]
COUNTRIES = ["FR", "IT", "DE", "ES", "PT", "AT"]


def make_rules(rng: random.Random) -> list[dict[str, Any]]:
    templates = [
        lambda: f'loyalty.tier = "{rng.choice(TIERS)}" and person.age >= {rng.randint(18, 60)}',
        lambda: (
            f'homeAddress.city.equals("{rng.choice(CITIES)}", false) '
            f"and loyalty.points > {rng.randint(0, 5000)}"
        ),
        lambda: f'person.gender = "{rng.choice("fm")}" and person.age < {rng.randint(25, 70)}',
        lambda: (
            f"loyalty.points >= {rng.randint(0, 8000)} "
            f'and homeAddress.countryCode = "{rng.choice(COUNTRIES)}"'
        ),
        lambda: (
            f'loyalty.tier.equals("{rng.choice(TIERS)}", false) '
            f'or homeAddress.countryCode = "{rng.choice(COUNTRIES)}"'
        ),
    ]
    rules = []
    for i in range(100):
        source = templates[i % len(templates)]()
        rules.append(
            {
                "id": f"rule{i}",
                "etag": 1,
                "name": f"rule {i}",
                "condition": {"type": "PQL", "format": "pql/text", "value": source},
            }
        )
    return rules


STRATEGY = "dps:ranking-strategy:1"
AI_DECISION = "dps:offer-activity:2"


def make_stats(rng: random.Random, displays: int = 5000) -> RankingStats:
    """Evidence as a learner would hold it after `displays` displays: uneven traffic (a few
    offers were shown much more than most, some never), clicks at true CTRs of 1-5%."""
    weights = [rng.paretovariate(1.2) for _ in range(1000)]
    shown = rng.choices(range(1000), weights=weights, k=displays)
    trials = [0] * 1000
    for i in shown:
        trials[i] += 1
    offers = {}
    for i, t in enumerate(trials):
        if t:
            ctr = rng.uniform(0.01, 0.05)
            clicks = sum(rng.random() < ctr for _ in range(t))
            offers[f"dps:personalized-offer:{i:04d}"] = ArmStats(t, clicks)
    return {STRATEGY: StrategyStats(offers, {})}


def make_catalog(
    rng: random.Random, equal_priority: bool, caps: bool = True
) -> dict[str, list[dict[str, Any]]]:
    offers = []
    for i in range(1000):
        body: dict[str, Any] = {
            "id": f"dps:personalized-offer:{i:04d}",
            "etag": 1,
            "name": f"offer {i}",
            "status": "approved",
            "representations": [
                {
                    "channel": "https://ns.adobe.com/xdm/channel-types/web",
                    "placement": "dps:offer-placement:web",
                    "components": [
                        {"type": "html", "format": "text/html", "content": f"<p>{i}</p>"}
                    ],
                }
            ],
            "selectionConstraint": {
                "startDate": "2026-01-01T00:00:00.000+00:00",
                "endDate": "2027-01-01T00:00:00.000+00:00",
                "profileConstraintType": "eligibilityRule",
                "eligibilityRule": f"rule{i % 100}",
            },
            "rank": {"priority": 0 if equal_priority else rng.randint(0, 99)},
            "tags": ["dps:tag:all"],
        }
        if caps and i % 10 == 0:
            body["frequencyCappingConstraints"] = [
                {"limit": 1000, "scope": "global", "entity": "offer"},
                {
                    "limit": 3,
                    "scope": "profile",
                    "entity": "offer",
                    "repeat": {"enabled": True, "unit": "week", "unitCount": 1},
                },
            ]
        offers.append(body)
    return {
        "personalized-offer": offers,
        "fallback-offer": [
            {
                "id": "dps:fallback-offer:1",
                "etag": 1,
                "name": "fallback",
                "status": "approved",
                "representations": [
                    {
                        "channel": "https://ns.adobe.com/xdm/channel-types/web",
                        "placement": "dps:offer-placement:web",
                        "components": [
                            {"type": "html", "format": "text/html", "content": "<p>-</p>"}
                        ],
                    }
                ],
            }
        ],
        "placement": [
            {"id": "dps:offer-placement:web", "etag": 1, "name": "web", "componentType": "html"}
        ],
        # a tag collection: an offer-list collection holds at most 500 offers (guardrail)
        "tag": [{"id": "dps:tag:all", "etag": 1, "name": "all"}],
        "collection": [
            {
                "id": "dps:offer-collection:all",
                "etag": 1,
                "name": "all",
                "filterType": "any-tags",
                "ids": ["dps:tag:all"],
            }
        ],
        "decision-rule": make_rules(rng),
        "ranking-strategy": [
            {
                "id": STRATEGY,
                "etag": 1,
                "name": "auto",
                "type": "auto-optimization",
                "holdoutPercentage": 10,
            }
        ],
        "decision": [
            {
                "id": "dps:offer-activity:1",
                "etag": 1,
                "name": "decision",
                "status": "live",
                "fallback": "dps:fallback-offer:1",
                "criteria": [{"optionSelection": {"filter": "dps:offer-collection:all"}}],
            },
            {
                "id": AI_DECISION,
                "etag": 1,
                "name": "ai decision",
                "status": "live",
                "fallback": "dps:fallback-offer:1",
                "criteria": [
                    {
                        "optionSelection": {"filter": "dps:offer-collection:all"},
                        "rank": {
                            "order": {
                                "orderEvaluationType": "rankingStrategy",
                                "rankingStrategy": STRATEGY,
                            }
                        },
                    }
                ],
            },
        ],
    }


def make_profile(rng: random.Random) -> dict[str, Any]:
    return {
        "person": {
            "name": {"firstName": rng.choice(["Joe", "Ann", "Li"])},
            "age": rng.randint(18, 80),
            "gender": rng.choice("fm"),
        },
        "loyalty": {"tier": rng.choice(TIERS), "points": rng.randint(0, 10000)},
        "homeAddress": {"city": rng.choice(CITIES), "countryCode": rng.choice(COUNTRIES)},
    }


def load_stored(bodies: dict[str, list[dict[str, Any]]]) -> Any:
    """The catalog as the server loads it: every body validated, then through the loader."""
    return load_catalog(
        {
            kind: [{**validate(kind, b), "id": b["id"], "etag": b["etag"]} for b in items]
            for kind, items in bodies.items()
        }
    )


Input = tuple[DecisionRequest, dict[str, Any], dict[str, int]]


def make_inputs(
    args: argparse.Namespace, snapshot: Any, rng: random.Random, activity: str
) -> list[Input]:
    # profiles first, then counters: the draws of the original priority-only workload
    profiles = [make_profile(rng) for _ in range(1000)]
    inputs = []
    for i, profile in enumerate(profiles):
        request = DecisionRequest(
            scopes=[ScopeRequest(activity, "dps:offer-placement:web", args.item_count)],
            profile_key=f"ECID:{i}",
        )
        keys = capping_keys(snapshot, request, NOW)
        # Counters as a store would return them: random usage, some at the limit.
        counters = {k: rng.choice([0, 1, 2, 3, 3, 999]) for k in keys}
        inputs.append((request, profile, counters))
    return inputs


def one_run(
    args: argparse.Namespace, seed: int
) -> tuple[float, float, int, tuple[float, float] | None]:
    """(p50, p99, fallbacks) of the priority-ranked decisions, and the strategy-ranked (p50,
    p99) (None without --ranking-strategy), timed alternately in the same run."""
    rng = random.Random(seed)
    bodies = make_catalog(random.Random(7), args.equal_priority, caps=not args.no_caps)
    snapshot = build_snapshot(load_stored(bodies))
    inputs = make_inputs(args, snapshot, rng, "dps:offer-activity:1")
    ai_inputs = make_inputs(args, snapshot, random.Random(seed), AI_DECISION)
    ranking = make_stats(random.Random(11)) if args.ranking_strategy else None
    decision_rng = random.Random(seed)
    for request, profile, counters in inputs[:200] + ai_inputs[:200]:  # warm-up (plan memo)
        decide(snapshot, request, profile, counters, now=NOW, rng=decision_rng, ranking=ranking)
    samples: list[int] = []
    ai_samples: list[int] = []
    fallbacks = 0
    clock = time.perf_counter_ns
    for j in range(args.n):
        request, profile, counters = inputs[j % len(inputs)]
        t0 = clock()
        result = decide(snapshot, request, profile, counters, now=NOW, rng=decision_rng)
        samples.append(clock() - t0)
        fallbacks += result.scopes[0].fallback is not None
        if ranking is not None:
            request, profile, counters = ai_inputs[j % len(ai_inputs)]
            t0 = clock()
            decide(snapshot, request, profile, counters, now=NOW, rng=decision_rng, ranking=ranking)
            ai_samples.append(clock() - t0)
    samples.sort()
    ai_samples.sort()
    p50 = samples[len(samples) // 2] / 1000
    p99 = samples[int(len(samples) * 0.99)] / 1000
    ai = None
    if ai_samples:
        ai = (
            ai_samples[len(ai_samples) // 2] / 1000,
            ai_samples[int(len(ai_samples) * 0.99)] / 1000,
        )
    return p50, p99, fallbacks, ai


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--item-count", type=int, default=None)
    parser.add_argument("--equal-priority", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--ranking-strategy", action="store_true")
    parser.add_argument("--no-caps", action="store_true")
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]} | nproc {os.cpu_count()} | cpu {cpu_model()}")
    print(
        f"catalog: 1000 offers, 100 rules, {'no caps' if args.no_caps else '10% capped'} | "
        f"itemCount {args.item_count or 1} | "
        f"{'equal' if args.equal_priority else 'random 0-99'} priorities | "
        f"{args.n} decisions x {args.runs} runs"
    )
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        one_run(args, 0)
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(20)
        return
    p50s, p99s, ratios = [], [], []
    for r in range(args.runs):
        p50, p99, fallbacks, ai = one_run(args, r)
        p50s.append(p50)
        p99s.append(p99)
        line = f"run {r}: p50 {p50:7.1f} us   p99 {p99:7.1f} us   fallbacks {fallbacks}/{args.n}"
        if ai is not None:
            ratios.append(ai[0] / p50)
            line += (
                f"   strategy p50 {ai[0]:7.1f} us   p99 {ai[1]:7.1f} us   ratio {ai[0] / p50:.2f}"
            )
        print(line)
    summary = f"median: p50 {statistics.median(p50s):.1f} us   p99 {statistics.median(p99s):.1f} us"
    if ratios:
        summary += f"   strategy/priority p50 ratio {statistics.median(ratios):.2f}"
    print(summary)
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
