"""Vectorised eligibility (offerbase.batch.vector) against the engine's closures, per row.

Run: .venv/bin/python bench/batch_vector.py [--profiles 1000000] [--runs 3]

The 10 rules of bench/load_decide.py's catalog (`profile.loyalty.points >= N and
profile.homeAddress.country = "US"`, N = 0, 100, ..., 900) over generated profiles. Timed:

* closures: `expr.evaluate(profile) is True` for every profile and rule (the engine's way);
* vectorised, from dicts: `eligible_mask` on the list of profile dicts (building the frame from
  the dicts is part of the time);
* vectorised, from Arrow: `eligible_mask` on an Arrow table with struct columns, the shape a
  Parquet row group reads as (the batch pipeline's input).

Each is run `--runs` times, round-robin, and the median is reported; the masks of every method
are checked equal first. Timings are printed, never asserted.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from offerbase.batch.vector import eligible_mask
from offerbase.catalog import load_catalog, validate
from offerbase.engine import Snapshot, build_snapshot

RULES = [
    f'profile.loyalty.points >= {r * 100} and profile.homeAddress.country = "US"' for r in range(10)
]
COUNTRIES = ["US", "US", "US", "CA", "FR", "DE"]


def snapshot() -> Snapshot:
    bodies = []
    for i, source in enumerate(RULES):
        body = {
            "name": f"rule{i}",
            "condition": {"type": "PQL", "format": "pql/text", "value": source},
        }
        bodies.append({**validate("decision-rule", body), "id": f"rule{i}", "etag": 1})
    return build_snapshot(load_catalog({"decision-rule": bodies}))


def profiles(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "loyalty": {"points": rng.randrange(0, 1000)},
            "homeAddress": {"country": rng.choice(COUNTRIES)},
        }
        for _ in range(n)
    ]


def by_closures(snap: Snapshot, rows: list[dict[str, Any]]) -> dict[str, list[bool]]:
    out = {}
    for rule_id, rule in snap.rules.items():
        evaluate = rule.expr.evaluate  # type: ignore[union-attr]
        out[rule_id] = [evaluate(p) is True for p in rows]
    return out


def vectorised(snap: Snapshot, data: Any) -> dict[str, list[bool]]:
    masks = eligible_mask(snap, list(snap.rules), data)
    return {k: m.to_list() for k, m in masks.items() if m is not None}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profiles", type=int, default=1_000_000)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    snap = snapshot()
    rows = profiles(args.profiles)
    table = pa.Table.from_pylist(rows)
    print(
        f"{platform.python_implementation()} {platform.python_version()}, {args.profiles} "
        f"profiles x {len(RULES)} rules, median of {args.runs} runs"
    )

    reference = by_closures(snap, rows)
    assert vectorised(snap, rows) == reference
    assert vectorised(snap, table) == reference
    held = sum(sum(m) for m in reference.values())
    print(f"masks agree ({held} of {args.profiles * len(RULES)} profile x rule pairs hold)")

    # Timed without converting the masks back to Python lists (the pipeline keeps Series).
    methods: dict[str, Callable[[], object]] = {
        "closures per row": lambda: by_closures(snap, rows),
        "vectorised, from dicts": lambda: eligible_mask(snap, list(snap.rules), rows),
        "vectorised, from Arrow": lambda: eligible_mask(snap, list(snap.rules), table),
    }
    times: dict[str, list[float]] = {name: [] for name in methods}
    for _ in range(args.runs):
        for name, fn in methods.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    base = statistics.median(times["closures per row"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:24} {med:8.3f} s  ({base / med:5.1f}x the closures)")


if __name__ == "__main__":
    main()
