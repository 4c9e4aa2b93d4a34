"""PQL micro-benchmark: our compiled rule side by side with peer rule engines.

Run: .venv/bin/python bench/pql.py     (env: N=200000 evaluations per round, ROUNDS=9)

Peers (the `bench` extra): growthbook, rule-engine, cel-python, datalogic-py; a peer that is
not installed is reported and skipped. The machine may be shared, so the engines are timed
round-robin: each round times every engine once, load spikes hit all of them alike, and the
report is the median over rounds (ns per evaluation) plus the median of per-round ratios.
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
ROUNDS = int(os.environ.get("ROUNDS", "9"))

# The same two-predicate rule and 5-attribute context for every engine.
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
# A documented offer rule of about 100 characters (from Adobe's PQL examples, R2): longer names,
# fewer tokens than RULE_100.
RULE_R2 = (
    'inSegment("849807b6-0a76-4895-96d9-89996477f23b")'
    ' and billingAddress.city.equals("san jose", false)'
)


class Case:
    def __init__(self, name: str, fn: Callable[[], Any], n: int) -> None:
        self.name = name
        self.timer = timeit.Timer(fn)
        self.n = max(n, 1)  # the slower cases run N // 40 times: at least once for a small N
        self.ns: list[float] = []

    def run(self) -> None:
        self.ns.append(self.timer.timeit(self.n) / self.n * 1e9)

    @property
    def median(self) -> float:
        return statistics.median(self.ns)


cases: list[Case] = []


def add(name: str, fn: Callable[[], Any], expect: Any = True, n: int = N) -> Case | None:
    got = fn()
    if got != expect:
        print(f"{name}: returned {got!r}, expected {expect!r}; skipped")
        return None
    fn()  # warm caches
    case = Case(name, fn, n)
    cases.append(case)
    return case


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(
                (ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), model
            )
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}"


def peer_version(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "?"


def main() -> None:
    print(f"machine: {machine()}; load {os.getloadavg()}; N={N}, rounds={ROUNDS}\n")
    ctx = CTX
    base = add("python lambda baseline", lambda: ctx["tier"] == "premium" and ctx["score"] > 90)
    evaluate = compile(RULE).evaluate
    ours = add(f"offerbase.pql compiled rule: {RULE}", lambda: evaluate(ctx))
    low = {**ctx, "score": 80}
    add("offerbase.pql, same rule false (score 80)", lambda: evaluate(low), expect=False)

    gb = None
    try:
        from growthbook.core import evalCondition

        cond = {"tier": "premium", "score": {"$gt": 90}}
        name = f"growthbook {peer_version('growthbook')} core.evalCondition"
        gb = add(name, lambda: evalCondition(ctx, cond))
    except ImportError as exc:
        print("growthbook: not installed,", exc)
    try:
        import rule_engine

        re_rule = rule_engine.Rule("tier == 'premium' and score > 90")
        add(f"rule-engine {peer_version('rule-engine')} Rule.matches", lambda: re_rule.matches(ctx))
    except ImportError as exc:
        print("rule-engine: not installed,", exc)
    try:
        import celpy

        env = celpy.Environment()
        prg = env.program(env.compile('tier == "premium" && score > 90'))
        act = celpy.json_to_cel(ctx)
        name = f"cel-python {peer_version('cel-python')} (pre-converted activation)"
        add(name, lambda: bool(prg.evaluate(act)), n=max(N // 500, 20))
    except ImportError as exc:
        print("cel-python: not installed,", exc)
    try:
        import datalogic_py

        logic = {"and": [{"==": [{"var": "tier"}, "premium"]}, {">": [{"var": "score"}, 90]}]}
        compiled = datalogic_py.Engine().compile(json.dumps(logic))
        name = f"datalogic-py {peer_version('datalogic-py')} compiled .evaluate(dict)"
        add(name, lambda: compiled.evaluate(ctx) is True)
    except ImportError as exc:
        print("datalogic-py: not installed,", exc)

    profile = {"person": {"age": 30}, "homeAddress": {"countryCode": "CA"}, "score": 3, "tier": "x"}
    rule100 = compile(RULE_100)
    add(f"offerbase.pql evaluate, {len(RULE_100)}-char rule", lambda: rule100.evaluate(profile))
    formula = compile(
        "if(offer.rank.priority.isNotNull(), offer.rank.priority, 0)"
        " * if(offer.tags.intersects(boosted.tags), 2, 1)",
        "formula",
    )
    offer = {"rank": {"priority": 3}, "tags": ["a", "b"]}
    params = {"boosted": {"tags": ["b"]}}
    add(
        "offerbase.pql evaluate, ranking formula F9",
        lambda: formula.evaluate({}, offer=offer, params=params),
        expect=6,
    )
    # A fixed C-implemented reference of similar size: if it slows down, so did the machine.
    doc = json.dumps(
        {
            "person": {"age": 18, "homeAddress": {"countryCode": ["US", "CA"]}},
            "score": 10.5,
            "tier": "vip",
        }
    )
    ref = add(
        f"json.loads, {len(doc)}-char document (noise reference)",
        lambda: json.loads(doc),
        expect=json.loads(doc),
        n=N // 10,
    )
    tree = parse(RULE_100)
    parsing = add(
        f"offerbase.pql parse, {len(RULE_100)}-char rule",
        lambda: parse(RULE_100),
        expect=tree,
        n=N // 40,
    )
    add(
        f"offerbase.pql parse, {len(RULE_R2)}-char documented rule R2",
        lambda: parse(RULE_R2),
        expect=parse(RULE_R2),
        n=N // 40,
    )
    add(
        f"offerbase.pql compile (parse + closures), {len(RULE_100)}-char rule",
        lambda: compile(RULE_100).kind,
        expect="rule",
        n=N // 40,
    )

    for i in range(ROUNDS):
        for case in cases:
            case.run()
        print(f"round {i + 1}/{ROUNDS} done", file=sys.stderr, flush=True)

    print(f"{'case':62s} {'median ns':>12s} {'min ns':>10s}")
    for case in cases:
        print(f"{case.name:62s} {case.median:12,.0f} {min(case.ns):10,.0f}")
    print(f"\nload after: {os.getloadavg()}")
    if ours is not None:
        verdict = "met" if ours.median <= 500 else "MISSED"
        print(f"two-predicate rule <= 500 ns: {verdict} (median {ours.median:.0f} ns)")
        if base is not None:
            ratio = statistics.median(o / b for o, b in zip(ours.ns, base.ns, strict=True))
            print(f"  vs plain python lambda, median per-round ratio: {ratio:.1f}x")
        if gb is not None:
            ratio = statistics.median(g / o for g, o in zip(gb.ns, ours.ns, strict=True))
            print(f"faster than growthbook evalCondition, median per-round ratio: {ratio:.1f}x")
    if parsing is not None:
        verdict = "met" if parsing.median <= 20000 else "MISSED"
        print(
            f"{len(RULE_100)}-char rule parses in <= 20 us: {verdict}"
            f" ({parsing.median / 1000:.1f} us)"
        )
        if ref is not None:
            ratio = statistics.median(p / r for p, r in zip(parsing.ns, ref.ns, strict=True))
            print(f"  parse / json.loads reference, median per-round ratio: {ratio:.1f}x")


if __name__ == "__main__":
    main()
