"""One partition of a batch job: a table of profiles in, a table of decisions out.

`decide_partition(job, table)` is the unit every engine runs (in this process, in a worker
process, on a cluster): its arguments pickle, it does no I/O, and it answers what the
Decisioning API answers for the same catalog, profile, clock and seed, because every row goes
through the engine's own `decide()` with

* the profile key the online path uses for per-profile caps (the primary identity, else the
  first, namespace lower-cased: `store/profiles.py`'s key of an imported profile),
* an RNG seeded from (job seed, profile key) by `row_seed`, so a row's random tie-breaks do not
  depend on where it sits in the file or which process decides it,
* the capping counters read at job start plus the job's own decisions so far (`running`).

Eligibility is vectorised: `rule_values` evaluates the offer-independent rules of the job's
scope for the whole partition at once (batch/vector.py: PQL compiled to Polars, the compiled
closures as the reference for the rows the translation does not model). Then

* when the job qualifies for the fast path (batch/fast.py: one scope, priority ranking, rules
  only), each row's decision is replayed from its vector of rule values, its RNG and its
  per-profile counters, without `decide()`'s per-offer checks, and Parquet rows are never
  turned into dicts (only their identityMap is read);
* otherwise every row goes through `decide()` with the rule values as `known_rules`.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
import pyarrow as pa

from offerbase.batch.fast import FastPlan, fast_plan
from offerbase.catalog import Placement, load_catalog
from offerbase.engine import (
    ChosenOption,
    DecisionRequest,
    DecisionResult,
    FallbackOption,
    ScopeRequest,
    Snapshot,
    build_snapshot,
    decide,
)

# An NDJSON chunk is a table of two columns: the row's number in the input (its line number)
# and the line's JSON text. A Parquet batch holds the profile's fields as columns (struct
# columns for nested objects), plus ROW_COLUMN when the reader adds it.
ROW_COLUMN = "_row"
BODY_COLUMN = "_profile_json"
# The identity limits of the profile store (store/profiles.py), checked again here: the batch
# package may not import the store.
MAX_NAMESPACE_CHARS = 255
MAX_IDENTITY_CHARS = 1024

Consumption = tuple[tuple[str, int], ...]  # ((counter key, limit), ...): one +1 each


@dataclass(frozen=True)
class BatchJob:
    """Everything a partition needs, picklable (no compiled PQL: see `job_snapshot`)."""

    # kind -> stored bodies (each with id and etag), as `Library.current_bodies` reads them
    catalog: Mapping[str, Sequence[Mapping[str, Any]]]
    catalog_version: int
    scopes: tuple[ScopeRequest, ...]
    include_content: bool
    now: datetime  # the decision time of every row (an aware datetime)
    seed: int
    # the capping counters read at job start (absent = 0)
    counters: Mapping[str, int]
    workload_id: str
    dry_run: bool = False


class BatchInputError(ValueError):
    """A profile row that cannot be decided; the message names the row and the field."""

    def __init__(self, row: int, pointer: str, message: str) -> None:
        where = f"row {row}" + (f", {pointer}" if pointer else "")
        super().__init__(f"{where}: {message}")
        self.row = row
        self.pointer = pointer
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        # whole through pickle: a worker process sends it back (pickle would call the class
        # with the one formatted message, and the pool would break instead)
        return (BatchInputError, (self.row, self.pointer, self.message))


class Profile(NamedTuple):  # a tuple: a partition makes one per row (a dataclass costs more)
    row: int  # 1-based number in the input (NDJSON: the line number)
    body: Mapping[str, Any] | None  # None: not read (the fast path needs only the identity)
    namespace: str | None  # the primary (else first) identity, as spelled in the body
    identity: str | None
    key: str | None  # the per-profile capping key (None: no identity)


@dataclass
class PartitionStats:
    rows: int = 0  # profiles decided
    fallbacks: int = 0  # scopes answered with the fallback offer
    # input rows whose decisions consume capping counters: (index in the partition, consumption)
    consuming: list[tuple[int, Consumption]] = field(default_factory=list)
    # output rows of input row i are bounds[i]:bounds[i + 1]
    bounds: list[int] = field(default_factory=lambda: [0])


def iso_ms(moment: datetime) -> str:
    """A decision event's timestamp, as the online path writes it (UTC, milliseconds, Z)."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


_MASK64 = (1 << 64) - 1
SPLITMIX_GAMMA = 0x9E3779B97F4A7C15
SPLITMIX_MIX = (0xBF58476D1CE4E5B9, 0x94D049BB133111EB)
_FNV_OFFSET, _FNV_PRIME = 0xCBF29CE484222325, 0x100000001B3


def _mix64(z: int) -> int:
    """SplitMix64's finaliser (a bijection of 64 bits that spreads every input bit)."""
    z = ((z ^ (z >> 30)) * SPLITMIX_MIX[0]) & _MASK64
    z = ((z ^ (z >> 27)) * SPLITMIX_MIX[1]) & _MASK64
    return z ^ (z >> 31)


def row_seed(seed: int, identity: str) -> int:
    """The RNG seed of one decision: the job's seed and the row's identity (its profile key, or
    `row:<n>` without one): FNV-1a (64 bits) of the identity's UTF-8 bytes, mixed with the
    job's seed. The Decisioning API gives the same answer when its RNG is a `RowRandom`
    seeded with this before the request (tests/batch compare them this way); `row_seeds`
    computes it for a whole partition at once."""
    h = _FNV_OFFSET
    for byte in identity.encode():
        h = ((h ^ byte) * _FNV_PRIME) & _MASK64
    return _mix64(h ^ _mix64(seed & _MASK64))


def row_seeds(seed: int, identities: Sequence[str]) -> Any:
    """`row_seed` of each identity, a numpy uint64 array: FNV-1a over all the rows at once,
    a byte position at a time, the rows sorted longest first so that the rows still hashing
    are a prefix (the work is the total of their bytes)."""
    import numpy as np

    count = len(identities)
    text = pa.array(identities, pa.string())
    offsets = np.frombuffer(text.buffers()[1], np.int32)[text.offset : text.offset + count + 1]
    data = text.buffers()[2]
    raw = np.frombuffer(data, np.uint8) if data is not None else np.zeros(0, np.uint8)
    lengths = np.diff(offsets)
    order = np.argsort(-lengths, kind="stable")
    starts = offsets[:-1][order].astype(np.int64)
    longest = lengths[order]
    h = np.full(count, _FNV_OFFSET, dtype=np.uint64)
    prime = np.uint64(_FNV_PRIME)
    with np.errstate(over="ignore"):
        for position in range(int(longest[0]) if count else 0):
            active = int(np.searchsorted(-longest, -position, side="left"))  # length > position
            head = h[:active]
            np.multiply(head ^ raw[starts[:active] + position], prime, out=head)
        z = h ^ np.uint64(_mix64(seed & _MASK64))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(SPLITMIX_MIX[0])
        z = (z ^ (z >> np.uint64(27))) * np.uint64(SPLITMIX_MIX[1])
        z ^= z >> np.uint64(31)
    out = np.empty(count, dtype=np.uint64)
    out[order] = z
    return out


class RowRandom(random.Random):
    """The RNG of one batch decision: a `random.Random` whose k-th draw is SplitMix64 of
    (seed + k * gamma), a pure function of the seed and k (Steele, Lea and Flood, "Fast
    splittable pseudorandom number generators", 2014; uniform doubles of 53 bits, as
    `random.random`). So a batch job computes the draws of a whole partition as arrays
    (batch/columnar.py `draws`), where Python's Mersenne Twister costs several microseconds
    of seeding per row; the engine draws from it as from any `random.Random`, and the
    Decisioning API, given one seeded with `row_seed`, answers what the batch row answers."""

    _seed: int = 0
    _count: int = 0

    def seed(self, a: Any = None, version: int = 2) -> None:
        if not isinstance(a, int):
            a = int.from_bytes(hashlib.blake2b(repr(a).encode(), digest_size=8).digest(), "big")
        self._seed = a & _MASK64
        self._count = 0
        self.gauss_next = None

    def _next64(self) -> int:
        self._count += 1
        return _mix64((self._seed + self._count * SPLITMIX_GAMMA) & _MASK64)

    def random(self) -> float:
        return (self._next64() >> 11) * (1.0 / (1 << 53))

    def getrandbits(self, k: int) -> int:
        value, bits = 0, 0
        while bits < k:
            value |= self._next64() << bits
            bits += 64
        return value & ((1 << k) - 1)

    def getstate(self) -> tuple[Any, ...]:
        return (self._seed, self._count, self.gauss_next)

    def setstate(self, state: tuple[Any, ...]) -> None:
        self._seed, self._count, self.gauss_next = state


_SNAPSHOT: list[tuple[Mapping[str, Sequence[Mapping[str, Any]]], int, Snapshot]] = []
_FAST: dict[tuple[int, tuple[ScopeRequest, ...], datetime], FastPlan | None] = {}


def job_snapshot(job: BatchJob) -> Snapshot:
    """The job's compiled catalog, built once per process (a worker decides many partitions):
    reused while the job brings the same catalog (the same object, or equal bodies, as after a
    trip through pickle) and version."""
    if _SNAPSHOT:
        catalog, version, snapshot = _SNAPSHOT[0]
        if version == job.catalog_version and (catalog is job.catalog or catalog == job.catalog):
            return snapshot
    loaded = load_catalog({kind: list(bodies) for kind, bodies in job.catalog.items()})
    snapshot = build_snapshot(loaded, version=job.catalog_version)
    _SNAPSHOT[:] = [(job.catalog, job.catalog_version, snapshot)]  # one job at a time
    _FAST.clear()
    return snapshot


def job_fast_plan(job: BatchJob) -> FastPlan | None:
    """The job's fast plan (batch/fast.py), or None: built once per process and snapshot."""
    snapshot = job_snapshot(job)
    key = (id(snapshot), job.scopes, job.now)
    if key not in _FAST:
        _FAST.clear()
        _FAST[key] = fast_plan(job.scopes, snapshot, job.now)
    return _FAST[key]


def job_rule_ids(job: BatchJob) -> list[str]:
    """Every rule the job's scopes can evaluate that does not read the offer, the context or
    parameters: what `rule_values` evaluates for the whole partition."""
    snapshot = job_snapshot(job)
    found: dict[str, None] = {}
    for scope in job.scopes:
        decision = snapshot.decisions.get(scope.activity_id)
        placement = snapshot.placements.get(scope.placement_id)
        if decision is None or placement is None:
            continue
        for group in snapshot.plan(decision, placement).groups:
            for cplan in group:
                constraints = [cplan.criterion.constraint]
                constraints += [o.constraint for _p, tier in cplan.tiers for o in tier]
                for constraint in constraints:
                    if constraint.is_rule:
                        found.update(dict.fromkeys(constraint.rule_ids))
    return [
        rid
        for rid in found
        if (rule := snapshot.rules.get(rid)) is None
        or rule.expr is None
        or not (rule.uses_offer or rule.params)
    ]


class Counts(Mapping[str, int]):
    """The counters a row sees: read at job start plus the job's own consumption so far."""

    __slots__ = ("_running", "_start")

    def __init__(self, start: Mapping[str, int], running: Mapping[str, int]) -> None:
        self._start = start
        self._running = running

    def get(self, key: str, default: Any = 0) -> Any:
        if key in self._start or key in self._running:
            return self[key]
        return default

    def __getitem__(self, key: str) -> int:
        return int(self._start.get(key, 0) + self._running.get(key, 0))

    def __iter__(self) -> Iterator[str]:
        return iter({**self._start, **self._running})

    def __len__(self) -> int:
        return len({**self._start, **self._running})


# -- reading profiles --------------------------------------------------------------------------


def _without_nulls(value: Any) -> Any:
    """A Parquet row as a profile body: a null struct field is an absent field (as in the
    profile store's JSON), so `{"loyalty": None}` reads like `{}`."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def _identity(body: Any, row: int) -> tuple[str | None, str | None]:
    """The primary identity of a body's identityMap, else its first; (None, None) when it has
    none. Malformed maps raise BatchInputError naming the field."""
    if not isinstance(body, dict):
        raise BatchInputError(row, "", "a profile must be a JSON object")
    identity_map = body.get("identityMap")
    if identity_map is None:
        return None, None
    if not isinstance(identity_map, dict):
        raise BatchInputError(row, "/identityMap", "must be an object of namespace -> identities")
    first: tuple[str, str] | None = None
    for namespace, entries in identity_map.items():
        pointer = f"/identityMap/{namespace.replace('~', '~0').replace('/', '~1')}"
        if not isinstance(entries, list):
            raise BatchInputError(row, pointer, "must be an array of identity objects")
        if not namespace.strip() or len(namespace) > MAX_NAMESPACE_CHARS:
            raise BatchInputError(row, pointer, "the namespace must be 1-255 characters")
        for index, entry in enumerate(entries):
            where = f"{pointer}/{index}"
            if not isinstance(entry, dict):
                raise BatchInputError(row, where, 'must be an object such as {"id": "..."}')
            value = entry.get("id", entry.get("xdm:id"))
            if not isinstance(value, str) or not value or len(value) > MAX_IDENTITY_CHARS:
                raise BatchInputError(row, where + "/id", "must be a string of 1-1024 characters")
            primary = entry.get("primary", False)
            if not isinstance(primary, bool):
                raise BatchInputError(row, where + "/primary", "must be a boolean")
            if primary:
                return namespace, value
            if first is None:
                first = (namespace, value)
    return first if first is not None else (None, None)


def _profile(row: int, body: Any) -> Profile:
    namespace, identity = _identity(body, row)
    key = None if namespace is None else f"{namespace.strip().lower()}:{identity}"
    return Profile(row, body, namespace, identity, key)


def read_profiles(table: pa.Table, *, bodies: bool = True) -> list[Profile]:
    """The profiles of a partition, in order; raises BatchInputError for a malformed row.
    `bodies=False`: Parquet rows are not turned into dicts, only their identityMap is read
    (NDJSON lines are parsed anyway)."""
    names = table.column_names
    count = table.num_rows
    rows: list[int] = (
        table.column(ROW_COLUMN).to_pylist() if ROW_COLUMN in names else list(range(1, count + 1))
    )
    if BODY_COLUMN in names:
        profiles = []
        for row, text in zip(rows, table.column(BODY_COLUMN).to_pylist(), strict=True):
            try:
                body = orjson.loads(text)
            except orjson.JSONDecodeError as exc:
                raise BatchInputError(row, "", f"not valid JSON: {exc}") from None
            profiles.append(_profile(row, body))
        return profiles
    data = table.drop_columns([ROW_COLUMN]) if ROW_COLUMN in names else table
    if not bodies:
        found = _identities(data, rows)
        return [Profile(row, None, *rest) for row, *rest in zip(*found, strict=True)]
    return [
        _profile(row, _without_nulls(body))
        for row, body in zip(rows, data.to_pylist(), strict=True)
    ]


class Identities(NamedTuple):
    """A partition's rows as the fast path reads them: per row (lists in input order) its
    number, its identity's namespace as spelled and id, and its capping key (Profile's)."""

    rows: list[int]
    namespaces: list[str | None]
    identities: list[str | None]
    keys: list[str | None]

    @staticmethod
    def of(profiles: Sequence[Profile]) -> Identities:
        return Identities(
            [p.row for p in profiles],
            [p.namespace for p in profiles],
            [p.identity for p in profiles],
            [p.key for p in profiles],
        )


def read_identities(table: pa.Table) -> Identities:
    """`read_profiles(table, bodies=False)` as columns (no object per row)."""
    names = table.column_names
    if BODY_COLUMN in names:
        return Identities.of(read_profiles(table, bodies=False))
    count = table.num_rows
    rows: list[int] = (
        table.column(ROW_COLUMN).to_pylist() if ROW_COLUMN in names else list(range(1, count + 1))
    )
    return _identities(table.drop_columns([ROW_COLUMN]) if ROW_COLUMN in names else table, rows)


def _identities(data: pa.Table, rows: list[int]) -> Identities:
    """The identity of each row, vectorised over the identityMap column when its shape allows
    (lists of {id, primary} per namespace), else per row with `_identity`, as are the rows the
    vectorised form cannot vouch for (a null entry or id, an id of 0 or more than 1024
    characters: `_identity` raises the error naming the field)."""
    count = data.num_rows
    if "identityMap" not in data.column_names:
        return Identities(rows, [None] * count, [None] * count, [None] * count)
    column = data.column("identityMap").combine_chunks()
    got = _vector_identities(column)
    if got is None:
        namespaces: list[Any] = [None] * count
        identities: list[Any] = [None] * count
        irregular = list(range(count))
    else:
        namespaces, identities, irregular = got
    if irregular:
        maps = column.take(pa.array(irregular, pa.int64())).to_pylist()
        for index, identity_map in zip(irregular, maps, strict=True):
            # _without_nulls of the subtree: what the whole body's would leave there
            body = {} if identity_map is None else {"identityMap": _without_nulls(identity_map)}
            namespaces[index], identities[index] = _identity(body, rows[index])
    lowered = {ns: ns.strip().lower() for ns in set(namespaces) if ns is not None}  # a few
    keys = [
        None if ns is None else f"{lowered[ns]}:{identity}"
        for ns, identity in zip(namespaces, identities, strict=True)
    ]
    return Identities(rows, namespaces, identities, keys)


def _vector_identities(
    column: pa.Array,
) -> tuple[list[str | None], list[str | None], list[int]] | None:
    """(namespaces, ids, irregular row indices) of a struct column of namespace -> list of
    {id: string, primary: bool}; None when the column has another shape."""
    import polars as pl  # loaded where it is used, as batch/vector.py

    kind = column.type
    if not pa.types.is_struct(kind) or kind.num_fields == 0:
        return None
    names = [kind.field(i).name for i in range(kind.num_fields)]
    with_primary: set[str] = set()
    for i, name in enumerate(names):
        entries = kind.field(i).type
        if not name.strip() or len(name) > MAX_NAMESPACE_CHARS:
            return None
        if not pa.types.is_list(entries) or not pa.types.is_struct(entries.value_type):
            return None
        entry = entries.value_type
        fields = {entry.field(j).name: entry.field(j).type for j in range(entry.num_fields)}
        if set(fields) - {"id", "primary"} or not pa.types.is_string(fields.get("id")):
            return None
        if "primary" in fields:
            if not pa.types.is_boolean(fields["primary"]):
                return None
            with_primary.add(name)
    series = pl.Series(column)  # a Struct series
    frame = series.struct.unnest() if series.len() else None
    if frame is None:
        return [], [], []
    e = pl.element()
    bad: list[pl.Expr] = []
    primary_ns: list[pl.Expr] = []
    primary_id: list[pl.Expr] = []
    first_ns: list[pl.Expr] = []
    first_id: list[pl.Expr] = []
    for name in names:
        entries = pl.col(name)
        ident = e.struct.field("id")
        bad.append(
            entries.list.eval(
                e.is_null()
                | ident.is_null()
                | (ident.str.len_chars() == 0)
                | (ident.str.len_chars() > MAX_IDENTITY_CHARS)
            )
            .list.any()
            .fill_null(False)
        )
        if name in with_primary:
            chosen = entries.list.eval(
                e.filter(e.struct.field("primary").fill_null(False)).struct.field("id")
            ).list.first()
            primary_id.append(chosen)
            primary_ns.append(pl.when(chosen.is_not_null()).then(pl.lit(name)))
        first = entries.list.eval(ident).list.first()
        first_id.append(first)
        first_ns.append(pl.when(first.is_not_null()).then(pl.lit(name)))
    none = pl.lit(None, dtype=pl.String)
    picked = frame.select(
        pl.any_horizontal(bad).alias("bad"),
        pl.coalesce([*primary_ns, *first_ns, none]).alias("ns"),
        pl.coalesce([*primary_id, *first_id, none]).alias("id"),
    )
    # a null identityMap is no identity (rows of a null struct unnest to null fields)
    irregular = picked.get_column("bad").arg_true().to_list()
    return picked.get_column("ns").to_list(), picked.get_column("id").to_list(), irregular


# -- eligibility: the vectorised hook ----------------------------------------------------------


class RuleValues(Sequence[Mapping[str, bool]]):
    """Per row, rule id -> value: columns kept as lists, a row's dict built when asked."""

    def __init__(self, columns: Mapping[str, list[bool]], rows: int) -> None:
        self.columns = columns
        self.rows = rows

    def __len__(self) -> int:
        return self.rows

    def __getitem__(self, index: Any) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.rows))]
        return {rid: values[index] for rid, values in self.columns.items()}


def rule_values(
    snapshot: Snapshot,
    table: pa.Table,
    profiles: Sequence[Profile],
    rule_ids: Iterable[str] | None = None,
    now: datetime | None = None,
) -> RuleValues | None:
    """Per profile, the values of the offer-independent `rule_ids` (default: every rule of
    the catalog) evaluated for the whole partition at once (batch/vector.eligible_mask), or
    None when none has a vectorised form (the engine evaluates them per row). Equal to the
    compiled closures' answers, which stay the reference: rows the vectorised form leaves
    undecided are evaluated with them, on the profile bodies as `read_profiles` reads them."""
    ids = list(snapshot.rules if rule_ids is None else rule_ids)
    if not ids:
        return None
    masks = _rule_masks(snapshot, table, profiles, ids, now)
    columns = {rid: mask.to_list() for rid, mask in masks.items() if mask is not None}
    return RuleValues(columns, len(profiles)) if columns else None


def _rule_masks(
    snapshot: Snapshot,
    table: pa.Table,
    profiles: Sequence[Profile],
    ids: list[str],
    now: datetime | None,
) -> dict[str, Any]:
    from offerbase.batch.vector import eligible_mask  # polars: loaded where it is used

    names = table.column_names
    source: Any
    bodies: Callable[[list[int]], Sequence[Mapping[str, Any]]] | None = None
    if BODY_COLUMN in names:  # NDJSON: the parsed bodies
        source = [p.body if p.body is not None else {} for p in profiles]
    else:
        data = table.drop_columns([ROW_COLUMN]) if ROW_COLUMN in names else table
        source = data

        def bodies(positions: list[int]) -> list[Mapping[str, Any]]:
            picked = data.take(pa.array(positions, pa.int64())).to_pylist()
            return [_without_nulls(body) for body in picked]

    return eligible_mask(snapshot, ids, source, now=now, bodies=bodies)


def rule_matrix(
    snapshot: Snapshot,
    table: pa.Table,
    profiles: Sequence[Profile],
    rule_ids: Sequence[str],
    now: datetime,
    count: int,
) -> Any:
    """`rule_values` of `rule_ids` for the `count` rows of `table` as a numpy Boolean matrix,
    rows x rules (a null is false, as the fast path's `all(...)` reads it); every rule must
    have a vectorised form. `profiles`: the parsed bodies of NDJSON input (else unused)."""
    import numpy as np

    if not rule_ids:
        return np.zeros((count, 0), dtype=bool)
    masks = _rule_masks(snapshot, table, profiles, list(rule_ids), now)
    return np.column_stack([masks[rid].fill_null(False).to_numpy() for rid in rule_ids])


# -- output --------------------------------------------------------------------------------------


_MASK62 = (1 << 62) - 1
_HEX = b"0123456789abcdef"


def _job_key(workload_id: str, purpose: str) -> tuple[bytes, int]:
    """A job's constant UUID half (8 bytes, version 4) and 62-bit mask for one kind of id."""
    digest = bytearray(
        hashlib.blake2b(f"{workload_id}|{purpose}".encode(), digest_size=16).digest()
    )
    digest[6] = (digest[6] & 0x0F) | 0x40
    return bytes(digest[:8]), int.from_bytes(digest[8:], "big") & _MASK62


def row_uuids(workload_id: str, purpose: str, rows: Any) -> pa.Array:
    """Deterministic UUIDs (version 4 layout), one per input row number (a numpy array): a
    re-run of a job names its rows the same, and no two rows of a job share one. The first
    half is the job's (a hash of its workload id and the id's purpose), the second a
    bijection of the row number on 62 bits (xor-shift-multiply) under the variant bits:
    vectorised, no per-row hashing."""
    import numpy as np

    head, mask = _job_key(workload_id, purpose)
    m62 = np.uint64(_MASK62)
    x = np.asarray(rows, dtype=np.uint64) & m62
    x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & m62
    x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & m62
    x = (x ^ (x >> np.uint64(31)) ^ np.uint64(mask)) | np.uint64(0x8000000000000000)
    count = len(x)
    tail = x.astype(">u8").view(np.uint8).reshape(count, 8)
    hexes = np.frombuffer(_HEX, np.uint8)
    digits = np.empty((count, 16), np.uint8)
    digits[:, 0::2] = hexes[tail >> 4]
    digits[:, 1::2] = hexes[tail & 15]
    prefix = head.hex()
    text = np.empty((count, 36), np.uint8)
    text[:, :19] = np.frombuffer(f"{prefix[:8]}-{prefix[8:12]}-{prefix[12:16]}-".encode(), np.uint8)
    text[:, 19:23] = digits[:, :4]
    text[:, 23] = ord("-")
    text[:, 24:] = digits[:, 4:]
    offsets = np.arange(0, 36 * (count + 1), 36, dtype=np.int32)
    return pa.Array.from_buffers(
        pa.string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(text.tobytes())]
    )


def _component(representation: Mapping[str, Any] | None, placement: Placement) -> Any:
    """The component to deliver: the first whose type is the placement's, else the first (as
    api/decision_response.py `deliverable_component`)."""
    if not representation:
        return None
    components = representation.get("components") or []
    for component in components:
        if component.get("type") == placement.component_type:
            return component
    return components[0] if components else None


def schema(include_content: bool) -> pa.Schema:
    """The output columns (docs/batch.md, "Output")."""
    fields = [
        pa.field("decision_event_id", pa.string(), nullable=False),
        pa.field("timestamp", pa.timestamp("ms", tz="UTC"), nullable=False),
        pa.field("workload_id", pa.string(), nullable=False),
        pa.field("identity_namespace", pa.string()),
        pa.field("identity_id", pa.string()),
        pa.field("proposition_id", pa.string(), nullable=False),
        pa.field("activity_id", pa.string(), nullable=False),
        pa.field("placement_id", pa.string(), nullable=False),
        pa.field("rank", pa.int32()),
        pa.field("option_id", pa.string()),
        pa.field("option_etag", pa.int64()),
        pa.field("score", pa.float64()),
        pa.field("is_fallback", pa.bool_(), nullable=False),
    ]
    if include_content:
        fields += [
            pa.field("content", pa.string()),
            pa.field("delivery_url", pa.string()),
            pa.field("format", pa.string()),
            pa.field("language", pa.list_(pa.string())),
        ]
    return pa.schema(fields)


class _Output:
    """Column lists of the output rows, one row per profile x scope x rank (a scope answered
    by nothing, no fallback included, is one row with a null option)."""

    def __init__(self, job: BatchJob, stats: PartitionStats) -> None:
        self.job = job
        self.stats = stats
        self.schema = schema(job.include_content)
        self.columns: dict[str, list[Any]] = {name: [] for name in self.schema.names}
        self.rows: list[int] = []  # per output row, its input row (the ids are made from it)

    def add(self, profile: Profile, result: DecisionResult) -> None:
        job, cols, stats = self.job, self.columns, self.stats
        namespace = None if profile.namespace is None else profile.namespace.strip().lower()
        for scope in result.scopes:
            chosen: Sequence[ChosenOption | FallbackOption | None]
            if scope.options:
                chosen = scope.options
            elif scope.fallback is not None:
                chosen = [scope.fallback]
                stats.fallbacks += 1
            else:
                chosen = [None]
            for rank, option in enumerate(chosen, 1):
                self.rows.append(profile.row)
                cols["identity_namespace"].append(namespace)
                cols["identity_id"].append(profile.identity)
                cols["activity_id"].append(scope.activity.id)
                cols["placement_id"].append(scope.placement.id)
                cols["rank"].append(None if option is None else rank)
                cols["option_id"].append(None if option is None else option.id)
                cols["option_etag"].append(None if option is None else _etag(option.etag))
                cols["score"].append(option.score if isinstance(option, ChosenOption) else None)
                cols["is_fallback"].append(isinstance(option, FallbackOption))
                if job.include_content:
                    component = (
                        None
                        if option is None
                        else _component(option.representation, scope.placement)
                    )
                    component = component if isinstance(component, Mapping) else {}
                    cols["content"].append(_text(component.get("content")))
                    cols["delivery_url"].append(_text(component.get("deliveryURL")))
                    cols["format"].append(_text(component.get("format")))
                    language = component.get("language")
                    cols["language"].append(
                        [str(x) for x in language] if isinstance(language, list) else None
                    )
        stats.bounds.append(len(self.rows))

    def table(self) -> pa.Table:
        count = len(self.rows)
        cols = self.columns
        cols["timestamp"] = [self.job.now] * count
        cols["workload_id"] = [self.job.workload_id] * count
        columns = {name: pa.array(cols[name], field.type) for name, field in _fields(self.schema)}
        columns.update(output_ids(self.job, self.rows))
        return pa.table({name: columns[name] for name in self.schema.names}, schema=self.schema)


def _fields(table_schema: pa.Schema) -> list[tuple[str, pa.Field]]:
    return [(f.name, f) for f in table_schema if f.name not in _ID_COLUMNS]


_ID_COLUMNS = ("decision_event_id", "proposition_id")


def output_ids(job: BatchJob, rows: Any) -> dict[str, pa.Array]:
    """The id columns of output rows from their input row numbers: `decision_event_id` one
    per profile's decision, `proposition_id` one per profile's decision too (the Decisioning
    API's xdm:propositionId), of another hash (docs/batch.md, "Output")."""
    return {
        "decision_event_id": row_uuids(job.workload_id, "event", rows),
        "proposition_id": row_uuids(job.workload_id, "proposition", rows),
    }


def _etag(value: Any) -> int | None:
    """Stored etags are versions (integers); anything else has no column value."""
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


# -- deciding ------------------------------------------------------------------------------------


def decide_profile(
    job: BatchJob,
    snapshot: Snapshot,
    profile: Profile,
    counters: Mapping[str, int],
    known: Mapping[str, bool] | None = None,
) -> DecisionResult:
    """One row's decision: the online path's engine call (see the module docstring)."""
    assert profile.body is not None  # read_profiles(bodies=True)
    request = DecisionRequest(scopes=job.scopes, profile_key=profile.key)
    # ranking=None: a batch job ranks by a strategy's prior alone (Adobe has no batch
    # decisioning with AI models; docs/batch.md).
    return decide(
        snapshot,
        request,
        profile.body,
        counters,
        now=job.now,
        rng=_rng(job, profile),
        known_rules=known,
        ranking=None,
    )


def _rng(job: BatchJob, profile: Profile) -> random.Random:
    return RowRandom(row_seed(job.seed, profile.key or f"row:{profile.row}"))


def _decide_each(
    job: BatchJob,
    profiles: Sequence[Profile],
    decide_one: Callable[[int, Profile], DecisionResult],
) -> tuple[pa.Table, PartitionStats]:
    stats = PartitionStats()
    out = _Output(job, stats)
    for index, profile in enumerate(profiles):
        result = decide_one(index, profile)
        out.add(profile, result)
        if result.consumption:
            stats.consuming.append((index, tuple((c.key, c.limit) for c in result.consumption)))
    stats.rows = len(profiles)
    return out.table(), stats


def decide_rows(
    job: BatchJob,
    profiles: Sequence[Profile],
    counters: Mapping[str, int],
    known: Sequence[Mapping[str, bool]] | None = None,
) -> tuple[pa.Table, PartitionStats]:
    """Decide `profiles` (read with their bodies) with `decide()`, every one against the same
    `counters` (the caller arbitrates caps: batch/run.py)."""
    snapshot = job_snapshot(job)
    return _decide_each(
        job,
        profiles,
        lambda index, profile: decide_profile(
            job, snapshot, profile, counters, known[index] if known else None
        ),
    )


def decide_partition(
    job: BatchJob, table: pa.Table, running: Mapping[str, int] | None = None
) -> tuple[pa.Table, PartitionStats]:
    """Decide every profile of `table` with the counters read at job start plus `running`
    (the job's own consumption before this partition, as far as the caller knows it).

    Every row sees the same counters: a row's own consumption is reported in
    `stats.consuming` and arbitrated by the caller in input order (batch/run.py), which
    re-decides a row only when a counter it consumed was exhausted by earlier rows."""
    snapshot = job_snapshot(job)
    counters = Counts(job.counters, running or {})
    fast = job_fast_plan(job)
    if fast is None:
        profiles = read_profiles(table)
        known = rule_values(snapshot, table, profiles, job_rule_ids(job), job.now)
        return decide_rows(job, profiles, counters, known)
    from offerbase.batch.columnar import decide_columnar  # numpy: loaded where it is used

    if BODY_COLUMN in table.column_names:  # NDJSON: the bodies are parsed anyway
        profiles = read_profiles(table, bodies=False)
        identities = Identities.of(profiles)
    else:
        profiles, identities = [], read_identities(table)
    matrix = rule_matrix(snapshot, table, profiles, fast.rule_ids, job.now, len(identities.rows))
    return decide_columnar(job, fast, fast.decider(snapshot, counters), identities, matrix)
