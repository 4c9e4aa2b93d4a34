"""PQL micro-benchmark: our compiled rule side by side with peer rule engines.

Run: .venv/bin/python bench/pql.py            (N=200000 REPEATS=7 by default)
Peers (the `bench` extra): growthbook, rule-engine, cel-python, datalogic-py. A peer that is
not installed is reported and skipped. Prints median ns per evaluation over REPEATS runs.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import timeit
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from offerbase.pql import compile
from offerbase.pql.parser import parse

N = int(os.environ.get("N", "200000"))
REPEATS = int(os.environ.get("REPEATS", "7"))

# The same two-predicate rule and 5-attribute context as reference/bench/peers_bench.py.
CTX: dict[str, Any] = {
    "targetingKey": "user-123",
    "tier": "premium",
    "role": "admin",
    "region": "us-east",
    "score": 95,
}
RULE = 'tier = "premium" and score > 90'
RULE_100 = (
    'person.age >= 18 and homeAddress.countryCode in ["US", "CA"]'
    ' and (score * 2 + 1 > 10.5 or not tier = "vip")'
)

results: list[tuple[str, float]] = []


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}"


def bench(name: str, fn: Callable[[], Any], n: int = N, expect: Any = True) -> float | None:
    got = fn()
    if got != expect:
        print(f"{name}: returned {got!r}, expected {expect!r}; skipped")
        return None
    timer = timeit.Timer(fn)
    timer.timeit(min(n, 1000))  # warm up caches
    runs = timer.repeat(repeat=REPEATS, number=n)
    ns = statistics.median(runs) / n * 1e9
    results.append((name, ns))
    print(f"{name:58s} {ns:12,.0f} ns", flush=True)
    return ns


def peer_version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def main() -> None:
    print(f"machine: {machine()}; N={N}, repeats={REPEATS}\n")
    ctx = CTX
    bench("python lambda baseline", lambda: ctx["tier"] == "premium" and ctx["score"] > 90)

    rule = compile(RULE)
    evaluate = rule.evaluate
    ours = bench(f"offerbase.pql compiled rule: {RULE}", lambda: evaluate(ctx))
    low = {**ctx, "score": 80}
    bench("offerbase.pql, same rule false (score 80)", lambda: evaluate(low), expect=False)

    gb = None
    try:
        from growthbook.core import evalCondition

        cond = {"tier": "premium", "score": {"$gt": 90}}
        gb = bench(
            f"growthbook {peer_version('growthbook')} core.evalCondition",
            lambda: evalCondition(ctx, cond),
        )
    except ImportError as exc:
        print("growthbook: not installed,", exc)
    try:
        import rule_engine

        re_rule = rule_engine.Rule("tier == 'premium' and score > 90")
        bench(
            f"rule-engine {peer_version('rule-engine')} Rule.matches", lambda: re_rule.matches(ctx)
        )
    except ImportError as exc:
        print("rule-engine: not installed,", exc)
    try:
        import celpy

        env = celpy.Environment()
        prg = env.program(env.compile('tier == "premium" && score > 90'))
        act = celpy.json_to_cel(ctx)
        bench(
            f"cel-python {peer_version('cel-python')} (pre-converted activation)",
            lambda: bool(prg.evaluate(act)),
            n=max(N // 50, 200),
        )
    except ImportError as exc:
        print("cel-python: not installed,", exc)
    try:
        import datalogic_py

        logic = {"and": [{"==": [{"var": "tier"}, "premium"]}, {">": [{"var": "score"}, 90]}]}
        compiled = datalogic_py.Engine().compile(json.dumps(logic))
        bench(
            f"datalogic-py {peer_version('datalogic-py')} compiled .evaluate(dict)",
            lambda: compiled.evaluate(ctx) is True,
        )
    except ImportError as exc:
        print("datalogic-py: not installed,", exc)

    print()
    profile = {"person": {"age": 30}, "homeAddress": {"countryCode": "CA"}, "score": 3, "tier": "x"}
    rule100 = compile(RULE_100)
    bench(f"offerbase.pql evaluate, {len(RULE_100)}-char rule", lambda: rule100.evaluate(profile))
    formula = compile(
        "if(offer.rank.priority.isNotNull(), offer.rank.priority, 0)"
        " * if(offer.tags.intersects(boosted.tags), 2, 1)",
        "formula",
    )
    offer = {"rank": {"priority": 3}, "tags": ["a", "b"]}
    params = {"boosted": {"tags": ["b"]}}
    bench(
        "offerbase.pql evaluate, ranking formula F9",
        lambda: formula.evaluate({}, offer=offer, params=params),
        expect=6,
    )
    bench(
        f"offerbase.pql parse, {len(RULE_100)}-char rule",
        lambda: parse(RULE_100),
        n=N // 20,
        expect=parse(RULE_100),
    )
    bench(
        f"offerbase.pql compile (parse + closures), {len(RULE_100)}-char rule",
        lambda: compile(RULE_100).kind,
        n=N // 20,
        expect="rule",
    )

    print()
    if ours is not None:
        print(f"target: two-predicate rule <= 500 ns: {'met' if ours <= 500 else 'MISSED'}")
        if gb is not None:
            print(f"target: >= 5x faster than growthbook evalCondition: {gb / ours:.1f}x")


if __name__ == "__main__":
    main()
