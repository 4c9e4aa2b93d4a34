"""The fast path's decisions in columnar form: a partition's rows grouped by pattern (their
vector of rule values, batch/fast.py), each group decided with numpy arrays rather than row
by row, and the output rows built as Arrow columns.

What every row of a pattern shares (batch/fast.py `_Decider._statuses`: each offer's status,
the walk of the priority tiers) fixes how many offers each tier gives and where in the row's
random stream each tier's draws start, because every tier before the last one walked is walked
whole (`random_order` draws once per offer but the last). So a pattern's rows differ only by
their random draws, and only in a tier with two eligible offers or more. There the engine's
lazy Fisher-Yates shuffle is replayed for all the rows at once, with each row's own draws
(`partition.RowRandom(row_seed(...))`, the RNG the engine is given: its k-th draw is a pure
function of the seed and k, computed here as arrays; the same numbers, so the same offers in
the same order), and the first offers the row needs are taken in shuffled order.

Rows the columnar form does not model are decided by the per-row fast path (`_Decider.decide`,
the same answers, tests/batch/test_batch_fast.py): a pattern whose walk reaches more than one
ranking group (an offer chosen by an earlier group is skipped by a later one, so the draws of
the later group start at a place that differs per row), and rows whose profile has reached a
per-profile cap of an offer its walk can reach.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from offerbase.batch.fast import _OK, _PROFILE_OK, FastPlan, _Decider
from offerbase.batch.partition import (
    SPLITMIX_GAMMA,
    SPLITMIX_MIX,
    BatchJob,
    Consumption,
    Identities,
    PartitionStats,
    RowRandom,
    _component,
    _etag,
    _text,
    output_ids,
    row_seed,
    row_seeds,
    schema,
)
from offerbase.catalog import Offer
from offerbase.engine import DecisionResult, FallbackOption
from offerbase.engine.capping import applies, compose_key, profile_part


class _Offers:
    """The job's offers as column values, by index (the fallback last but one, no offer last)."""

    def __init__(self, job: BatchJob, fast: FastPlan, decider: _Decider) -> None:
        placement = fast.plan.placement
        offers: list[Offer] = []
        seen: set[str] = set()
        for group in fast.groups:
            for tier in group.tiers:
                for offer in tier:
                    if offer.id not in seen:
                        seen.add(offer.id)
                        offers.append(offer)
        self.offers = offers
        self.index = {offer.id: i for i, offer in enumerate(offers)}
        self.fallback = len(offers)
        self.none = len(offers) + 1
        options: list[Any] = [(o.id, o.etag, o.representations[placement.id]) for o in offers]
        fb: FallbackOption | None = decider.fallback
        options.append(None if fb is None else (fb.id, fb.etag, fb.representation))
        options.append(None)
        self.has_fallback = fb is not None
        self.ids = pa.array([None if o is None else o[0] for o in options], pa.string())
        self.etags = pa.array([None if o is None else _etag(o[1]) for o in options], pa.int64())
        self.content: dict[str, pa.Array] = {}
        if job.include_content:
            components = [{} if o is None else _component(o[2], placement) for o in options[:-1]]
            parts = [c if isinstance(c, Mapping) else {} for c in components] + [{}]
            self.content = {
                "content": pa.array([_text(c.get("content")) for c in parts], pa.string()),
                "delivery_url": pa.array([_text(c.get("deliveryURL")) for c in parts], pa.string()),
                "format": pa.array([_text(c.get("format")) for c in parts], pa.string()),
                "language": pa.array(
                    [
                        [str(x) for x in c["language"]]
                        if isinstance(c.get("language"), list)
                        else None
                        for c in parts
                    ],
                    pa.list_(pa.string()),
                ),
            }
        # per offer index: the caps its choice counts, in the engine's order (batch/fast.py)
        pid = placement.id
        self.caps: list[tuple[Any, ...]] = [
            tuple(
                part
                for part in fast.cap_parts.get(offer.id, ())
                if part[0].counts_decisions and applies(part[0], pid, "-")
            )
            for offer in offers
        ]
        self.shared: dict[tuple[int, ...], Consumption] = {}

    def consumption(self, chosen: tuple[int, ...], profile_key: str | None) -> Consumption:
        """A row's counter increments, as `_Decider.decide` lists them; one tuple shared by
        the rows that choose the same offers when none has a per-profile cap."""
        if chosen in self.shared:
            return self.shared[chosen]
        per_profile = False
        out: list[tuple[str, int]] = []
        profile = None if profile_key is None else profile_part(profile_key)
        for index in chosen:
            for rule, entity, label in self.caps[index]:
                if rule.per_profile:
                    per_profile = True
                    if profile is None:
                        continue  # a per-profile cap needs an identity (capping.applies)
                out.append((compose_key(rule, profile or "", entity, label), rule.limit))
        got = tuple(out)
        if not per_profile:
            self.shared[chosen] = got
        return got


def draws(job: BatchJob, keys: Sequence[str], start: int, stop: int) -> np.ndarray:
    """Per row (its RNG identity: profile key or `row:<n>`), the engine's draws `start` to
    `stop - 1` from the row's `RowRandom`, a rows x (stop - start) matrix: SplitMix64 of
    (seed + k * gamma) for the k-th draw (k from 1), in uint64 arithmetic (wrapping, as
    RowRandom masks to 64 bits)."""
    seeds = row_seeds(job.seed, keys)
    steps = np.arange(start + 1, stop + 1, dtype=np.uint64) * np.uint64(SPLITMIX_GAMMA)
    with np.errstate(over="ignore"):
        z = seeds[:, None] + steps[None, :]
        z = (z ^ (z >> np.uint64(30))) * np.uint64(SPLITMIX_MIX[0])
        z = (z ^ (z >> np.uint64(27))) * np.uint64(SPLITMIX_MIX[1])
        z ^= z >> np.uint64(31)
    out: np.ndarray = (z >> np.uint64(11)).astype(np.float64) * (1.0 / (1 << 53))
    return out


def _rng_identity(found: Identities, index: int) -> str:
    return found.keys[index] or f"row:{found.rows[index]}"


def _patterns(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of a Boolean matrix and, per row, the index of its own."""
    total, width = matrix.shape
    if width == 0:
        return np.zeros((1, 0), dtype=bool), np.zeros(total, dtype=np.int64)
    if width > 62:
        patterns, inverse = np.unique(matrix, axis=0, return_inverse=True)
        return patterns, inverse.reshape(-1)
    codes = matrix.astype(np.int64) @ (np.int64(1) << np.arange(width, dtype=np.int64))
    _codes, first, inverse = np.unique(codes, return_index=True, return_inverse=True)
    return matrix[first], inverse.reshape(-1)


def _walk(
    job: BatchJob,
    offers: _Offers,
    status: Mapping[str, int],
    walk: Sequence[tuple[Offer, ...] | int],
    count: int,
    rows: np.ndarray,
    rows_of: Identities,
    chosen: np.ndarray,
) -> None:
    """Fill `chosen[rows]` (offer indices, rank order) for rows of one pattern whose walk is
    one ranking group's (`walk`, from `_Decider._statuses`) and that no per-profile cap
    stops: `_Decider.decide` for all of them at once (see the module docstring)."""
    steps: list[tuple[int, tuple[Offer, ...], np.ndarray, int, int]] = []
    found = draw = 0
    for entry in walk:
        if found >= count:
            break
        if isinstance(entry, int):  # tiers where nothing qualifies: their draws only
            draw += entry
            continue
        eligible = np.array([status[o.id] in (_OK, _PROFILE_OK) for o in entry], dtype=bool)
        take = min(count - found, int(eligible.sum()))
        if take:
            steps.append((found, entry, eligible, draw, take))
        found += take
        draw += len(entry) - 1
    random_steps = [step for step in steps if int(step[2].sum()) >= 2]
    first = min((step[3] for step in random_steps), default=0)
    last = max((step[3] + len(step[1]) - 1 for step in random_steps), default=0)
    # rows at a time so that the draws and the shuffled tiers stay within MAX_CELLS each
    per_chunk = max(1, MAX_CELLS // max(last - first, *(len(s[1]) for s in steps), 1))
    for begin in range(0, len(rows), per_chunk):
        part = rows[begin : begin + per_chunk]
        drawn = np.zeros((len(part), 0))
        if random_steps:
            identities = [_rng_identity(rows_of, i) for i in part.tolist()]
            drawn = draws(job, identities, first, last)
        _shuffle(offers, steps, first, drawn, part, chosen)


MAX_CELLS = 1 << 21  # draws (or tier positions) per chunk of rows: 16 MiB of float64


def _shuffle(
    offers: _Offers,
    steps: Sequence[tuple[int, tuple[Offer, ...], np.ndarray, int, int]],
    first: int,
    drawn: np.ndarray,
    rows: np.ndarray,
    chosen: np.ndarray,
) -> None:
    """`_walk`'s steps for some of its rows, with their draws `first` onwards."""
    width = len(rows)
    line = np.arange(width)
    for position, tier, eligible, start, take in steps:
        indices = np.array([offers.index[o.id] for o in tier], dtype=np.int64)
        if int(eligible.sum()) < 2:  # one eligible offer: chosen whatever the draws
            chosen[rows, position] = indices[int(np.argmax(eligible))]
            continue
        size = len(tier)
        # engine/ranking.py random_order: pool[i] swapped with pool[i + int(u * (n - i))]
        pool = np.tile(np.arange(size), (width, 1))
        for i in range(size - 1):
            j = i + (drawn[:, start - first + i] * (size - i)).astype(np.int64)
            held = pool[:, i].copy()
            pool[:, i] = pool[line, j]
            pool[line, j] = held
        hits = eligible[pool]
        picked = hits & (np.cumsum(hits, axis=1) <= take)
        chosen[rows, position : position + take] = indices[pool[picked].reshape(width, take)]


def decide_columnar(
    job: BatchJob,
    fast: FastPlan,
    decider: _Decider,
    found: Identities,
    matrix: np.ndarray,
) -> tuple[pa.Table, PartitionStats]:
    """The partition's output rows and stats, as `_decide_each` with `decider.decide` for
    every row gives them (tests/batch/test_batch_fast.py); `matrix`: rows x `fast.rule_ids`."""
    total = len(found.rows)
    offers = _Offers(job, fast, decider)
    count = fast.count
    chosen = np.full((total, count), -1, dtype=np.int64)
    single: list[int] = []  # rows for the per-row fast path
    patterns, inverse = _patterns(matrix)
    order = np.argsort(inverse, kind="stable")
    edges = np.searchsorted(inverse[order], np.arange(len(patterns) + 1))
    for number in range(len(patterns) if total else 0):
        rows = order[edges[number] : edges[number + 1]]
        status, walks = decider._statuses(tuple(bool(x) for x in patterns[number]))
        active = [walk for walk in walks if walk is not None]
        if len(active) > 1:
            single.extend(rows.tolist())
            continue
        if not active:
            continue  # every group skipped: the fallback
        watched = [
            o.id
            for tier in active[0]
            if not isinstance(tier, int)
            for o in tier
            if status[o.id] == _PROFILE_OK
        ]
        if watched:
            stopped = [
                i
                for i in rows.tolist()
                if (key := found.keys[i]) is not None
                and any(decider._profile_capped(oid, profile_part(key)) for oid in watched)
            ]
            if stopped:
                single.extend(stopped)
                rows = np.setdiff1d(rows, np.array(stopped, dtype=np.int64))
        if len(rows):
            _walk(job, offers, status, active[0], count, rows, found, chosen)
    consuming: dict[int, Consumption] = {}
    for i in single:
        result: DecisionResult = decider.decide(
            tuple(bool(x) for x in matrix[i]),
            found.keys[i],
            RowRandom(row_seed(job.seed, _rng_identity(found, i))),
        )
        for rank, option in enumerate(result.scopes[0].options):
            chosen[i, rank] = offers.index[option.id]
        if result.consumption:
            consuming[i] = tuple((c.key, c.limit) for c in result.consumption)
    has_caps = np.array([bool(c) for c in offers.caps] + [False], dtype=bool)
    capped_rows = np.nonzero(has_caps[chosen].any(axis=1))[0] if count else np.array([])
    done = set(single)
    for i in capped_rows.tolist():
        if i not in done:
            row = chosen[i]
            got = offers.consumption(tuple(row[row >= 0].tolist()), found.keys[i])
            if got:
                consuming[i] = got
    table, bounds, fallbacks = _table(job, fast, offers, found, chosen)
    stats = PartitionStats(total, fallbacks, sorted(consuming.items()), bounds)
    return table, stats


def _constant(value: str, size: int) -> pa.Array:
    return pa.array([value], pa.string()).take(pa.array(np.zeros(size, dtype=np.int32)))


def _table(
    job: BatchJob,
    fast: FastPlan,
    offers: _Offers,
    found: Identities,
    chosen: np.ndarray,
) -> tuple[pa.Table, list[int], int]:
    """The output rows (partition.schema): per profile its chosen offers in rank order, else
    the fallback, else one row with no option; with the stats' bounds and fallback count."""
    total = len(found.rows)
    picks = chosen.copy() if chosen.shape[1] else np.full((total, 1), -1, dtype=np.int64)
    empty = picks[:, 0] < 0
    picks[empty, 0] = offers.fallback if offers.has_fallback else offers.none
    valid = picks >= 0
    flat = picks[valid]  # row-major: each profile's rows in rank order
    per_row = valid.sum(axis=1)
    source = np.repeat(np.arange(total), per_row)
    size = len(flat)
    take = pa.array(flat)
    rows = np.array(found.rows, dtype=np.int64)
    lowered = {ns: ns.strip().lower() for ns in set(found.namespaces) if ns is not None}  # a few
    namespaces = pa.array(
        [None if ns is None else lowered[ns] for ns in found.namespaces], pa.string()
    )
    identities = pa.array(found.identities, pa.string())
    by_profile = pa.array(source)
    moment = pa.scalar(job.now, pa.timestamp("ms", tz="UTC")).value
    is_none = flat == offers.none
    columns: dict[str, pa.Array] = {
        **output_ids(job, rows[source]),
        "timestamp": pa.array(np.full(size, moment, dtype=np.int64), pa.timestamp("ms", tz="UTC")),
        "workload_id": _constant(job.workload_id, size),
        "identity_namespace": namespaces.take(by_profile),
        "identity_id": identities.take(by_profile),
        "activity_id": _constant(fast.plan.decision.id, size),
        "placement_id": _constant(fast.plan.placement.id, size),
        "rank": pa.array((np.nonzero(valid)[1] + 1).astype(np.int32), pa.int32(), mask=is_none),
        "option_id": offers.ids.take(take),
        "option_etag": offers.etags.take(take),
        "score": pa.nulls(size, pa.float64()),
        "is_fallback": pa.array(flat == offers.fallback, pa.bool_()),
        **{name: values.take(take) for name, values in offers.content.items()},
    }
    out_schema = schema(job.include_content)
    table = pa.table([columns[name] for name in out_schema.names], schema=out_schema)
    bounds = [0, *np.cumsum(per_row).tolist()]
    return table, bounds, int((flat == offers.fallback).sum())
