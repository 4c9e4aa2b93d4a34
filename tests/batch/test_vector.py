"""Vectorised eligibility (batch/vector.py) against the reference, the engine's PQL closures.

Generated rules (a grammar over a few profile paths, every translated operator, literals of
mixed types) and generated profiles (missing attributes, nulls, wrong types, numeric and boolean
strings, huge integers, NaN, lists, nested objects): wherever the translation decides a row it
gives the closure's answer, and `eligible_mask` gives the closure's answer everywhere.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

import builders
from offerbase import pql
from offerbase.batch import vector
from offerbase.batch.vector import compile_rule, eligible_mask, profile_frame
from offerbase.catalog import load_catalog, validate
from offerbase.engine import Snapshot, build_snapshot

SETTINGS = settings(
    max_examples=int(os.environ.get("VECTOR_EXAMPLES", "200")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
CASES = json.loads((Path(__file__).parents[1] / "pql" / "cases.json").read_text())


def snapshot_of(sources: Sequence[str], broken: Sequence[str] = ()) -> Snapshot:
    """Rules r0, r1, ... through the catalog's validation and loader, as the server stores them;
    `broken` ones (b0, ...) skip validation, as a rule stored before a stricter check would."""
    bodies = []
    for i, source in enumerate(sources):
        body = builders.rule(f"r{i}", source)
        bodies.append({**validate("decision-rule", body), "id": body["id"], "etag": 1})
    bodies += [builders.rule(f"b{i}", source) for i, source in enumerate(broken)]
    return build_snapshot(load_catalog({"decision-rule": bodies}))


def closure(expr: Any, profile: Mapping[str, Any]) -> bool:
    try:
        return expr.evaluate(profile) is True
    except pql.PqlError:
        return False


def check(source: str, profiles: list[dict[str, Any]], *, entry_point: bool = True) -> bool:
    """Assert the translation agrees with the closures (and `eligible_mask` with them on every
    row, unless not `entry_point`); True when the rule was translated."""
    try:
        expr = pql.compile(source)
    except pql.PqlError:
        assume(False)
    expected = [closure(expr, p) for p in profiles]
    vec = compile_rule(expr)
    if vec is not None:
        frame = profile_frame(profiles, vec.meta.root_names())
        got = frame.with_columns(vec.alias("#m")).get_column("#m").to_list()
        decided = [(i, g, e) for i, (g, e) in enumerate(zip(got, expected, strict=True))]
        wrong = [(profiles[i], g, e) for i, g, e in decided if g is not None and g != e]
        assert not wrong, (source, wrong)
    if not entry_point:
        return vec is not None
    masks = eligible_mask(snapshot_of([source]), ["r0"], profiles)
    mask = masks["r0"]
    assert (mask is None) == (vec is None)
    if mask is not None:
        assert mask.to_list() == expected, source
    return vec is not None


# ---- generated profiles ------------------------------------------------------------------

STRINGS = [
    "",
    "US",
    "us",
    "a",
    "ab",
    "abc",
    "Abc",
    "b",
    "5",
    " 7 ",
    "2.5",
    "1e3",
    "-1",
    "100",
    "nan",
    "inf",
    "9007199254740993",
    "true",
    "TRUE",
    "False",
    "ß",
    "SS",
    "İ",
    "\u212a",  # KELVIN SIGN, whose lower() is an ASCII "k"
    "k",
]
NUMBERS = [0, 1, -1, 3, 100, 2.5, -0.0, 0.5, 2**53, 2**53 + 1, -(2**60), 10**20, 1e300]
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(NUMBERS),
    st.integers(-3, 300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(STRINGS),
    st.text(alphabet="aAbB5 .ßİ", max_size=3),
)
VALUES = st.one_of(
    SCALARS,
    SCALARS,
    st.lists(SCALARS, max_size=2),
    st.dictionaries(st.sampled_from(["c", "x"]), SCALARS, max_size=2),
)
SEGMENTS = st.sampled_from(
    [
        {"ups": {"s1": {"status": "realized"}}},
        {"ups": {"s1": {"status": "exited"}}},
        {"other": {"s1": {"status": "existing"}}},
        {"ups": {"s2": {"status": "realized"}}},
        "s1",
    ]
)


def optional(key: str, values: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.one_of(st.just({}), values.map(lambda v: {key: v}))


PROFILES = st.builds(
    lambda *parts: {k: v for part in parts for k, v in part.items()},
    optional("a", VALUES),
    optional(
        "b",
        st.one_of(
            VALUES,
            st.builds(
                lambda *ps: {k: v for p in ps for k, v in p.items()},
                optional("c", VALUES),
                optional("d", VALUES),
            ),
        ),
    ),
    optional("e", VALUES),
    optional("segmentMembership", SEGMENTS),
)

# ---- generated rules ---------------------------------------------------------------------

PATHS = st.sampled_from(["a", "b.c", "b.d", "e", "profile.a", "profile.b.c", "b"])
LITERALS = st.one_of(
    st.sampled_from(STRINGS).map(json.dumps),
    st.sampled_from(["0", "1", "2.5", "3", "100", "1e3", ".5", "9007199254740993", "1e300"]),
    st.sampled_from(["true", "false"]),
)
VALUE_EXPRS = st.recursive(
    st.one_of(PATHS, PATHS, LITERALS),
    lambda v: st.one_of(
        st.tuples(v, st.sampled_from(["+", "-", "*", "/", "%"]), v).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"
        ),
        v.map(lambda x: f"(-({x}))"),
    ),
    max_leaves=3,
)
OPS = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])
METHODS = st.sampled_from(sorted(pql.functions.STRING_METHODS))
BASE_PREDICATES = st.one_of(
    st.tuples(VALUE_EXPRS, OPS, VALUE_EXPRS).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
    st.tuples(VALUE_EXPRS, st.sampled_from(["in", "notIn"]), st.lists(LITERALS, max_size=3)).map(
        lambda t: f"{t[0]} {t[1]} [{', '.join(t[2])}]"
    ),
    st.tuples(VALUE_EXPRS, st.sampled_from(["isNull", "isNotNull"])).map(
        lambda t: f"({t[0]}).{t[1]}()"
    ),
    st.tuples(
        VALUE_EXPRS, METHODS, VALUE_EXPRS, st.sampled_from(["", ", false", ", true", ", 0"])
    ).map(lambda t: f"({t[0]}).{t[1]}({t[2]}{t[3]})"),
    st.sampled_from(['inSegment("s1")', 'inSegment("s2")', "inSegment(1)"]),
    VALUE_EXPRS,  # a value in a boolean position: truthiness
    st.tuples(VALUE_EXPRS, OPS, VALUE_EXPRS, LITERALS).map(
        lambda t: f"({t[0]} {t[1]} {t[2]}) = {t[3]}"  # a predicate used as a value
    ),
)
RULES = st.recursive(
    BASE_PREDICATES,
    lambda p: st.one_of(
        st.tuples(p, st.sampled_from(["and", "or"]), p).map(lambda t: f"({t[0]}) {t[1]} ({t[2]})"),
        p.map(lambda x: f"not ({x})"),
    ),
    max_leaves=4,
)


@SETTINGS
@given(source=RULES, profiles=st.lists(PROFILES, min_size=1, max_size=12))
def test_generated_rules_agree_with_the_closures(
    source: str, profiles: list[dict[str, Any]]
) -> None:
    check(source, profiles)


def test_the_common_rule_shapes_are_vectorised() -> None:
    """The translation covers what catalogs are made of (None would silently mean per row)."""
    shapes = [
        'profile.loyalty.points >= 300 and profile.homeAddress.country = "US"',
        'homeAddress.country in ["US", "CA"] or not (age < 18)',
        'person.name.firstName.equals("joe", false) and email.endsWith("@example.com")',
        'city.startsWith("San") or city.contains("x", false) or city.doesNotContain("y")',
        "(orders.total * 1.2 - discount) / 2 > 100",
        "email.isNotNull() and phone.isNull() and optIn",
        'inSegment("849807b6") and not tier notIn ["gold", "silver"]',
        "age != 30 and score <= 2.5 and vip = true",
    ]
    missing = [s for s in shapes if compile_rule(pql.compile(s)) is None]
    assert not missing


def test_what_is_left_to_the_closures() -> None:
    """Rules reading the offer, context or parameters, and untranslated constructs: None."""
    for source in [
        "offer.rank.priority > 1",
        "@{_xdm.context.additionalParameters;version=1}.weather = 'hot'".replace("'", '"'),
        'xEvent.type = "click"',
        'name matches "^a"',
        'name like "a%"',
        "a % 2 = 0",
        "tags.includes(1)",
        "birthDate occurs before today",
        "select t from tags where t = 1",
        "a in tags",
    ]:
        assert compile_rule(pql.compile(source)) is None, source


# ---- the fixed cases of tests/pql/cases.json ---------------------------------------------


def _profile_cases() -> dict[str, list[tuple[dict[str, Any], bool]]]:
    by_source: dict[str, list[tuple[dict[str, Any], bool]]] = {}
    for case in CASES:
        if case["kind"] != "rule" or "expect" not in case:
            continue
        if any(k in case for k in ("offer", "context", "params", "now")):
            continue
        by_source.setdefault(case["source"], []).append((case.get("profile", {}), case["expect"]))
    return by_source


def test_the_pql_case_table() -> None:
    by_source = _profile_cases()
    sources = list(by_source)
    snapshot = snapshot_of(sources)
    vectorised = 0
    for i, source in enumerate(sources):
        profiles = [p for p, _ in by_source[source]]
        expected = [e is True for _, e in by_source[source]]
        mask = eligible_mask(snapshot, [f"r{i}"], profiles)[f"r{i}"]
        if mask is not None:
            vectorised += 1
            assert mask.to_list() == expected, source
    # The table is mostly about time, arrays and regexes; the translated share must not shrink.
    assert vectorised >= 40, vectorised


# ---- entry point behaviour ---------------------------------------------------------------

PROFILES_FIXED = [
    {"loyalty": {"points": 450}, "homeAddress": {"country": "US"}},
    {"loyalty": {"points": "450"}, "homeAddress": {"country": "US"}},
    {"loyalty": {"points": 50}, "homeAddress": {"country": "US"}},
    {"loyalty": {"points": [450]}, "homeAddress": {"country": "US"}},  # one-item list: closure
    {"loyalty": {"points": 450}, "homeAddress": {"country": "FR"}},
    {"homeAddress": {"country": "US"}},
    {},
]
RULE = 'profile.loyalty.points >= 300 and profile.homeAddress.country = "US"'


def test_eligible_mask_on_dicts_arrow_and_polars() -> None:
    """A frame's rows are profiles as `to_dicts()` reads them; typed columns, struct columns,
    list columns (undecided in the frame, so per row) give the closures' answers."""
    snapshot = snapshot_of([RULE, "offer.rank.priority > 1"], broken=["this is not pql"])
    typed = [PROFILES_FIXED[i] for i in (0, 2, 4, 5, 6)]
    lists = [{"loyalty": {"points": [450]}, "homeAddress": {"country": "US"}}, {"loyalty": {}}]
    expr = pql.compile(RULE)
    for profiles in (
        PROFILES_FIXED,
        pa.Table.from_pylist(typed),
        pl.DataFrame(typed),
        pl.DataFrame(lists),
    ):
        rows = profiles if isinstance(profiles, list) else pl.DataFrame(profiles).to_dicts()
        masks = eligible_mask(snapshot, ["r0", "r1", "b0", "unknown"], profiles)
        assert masks["r0"] is not None
        assert masks["r0"].to_list() == [closure(expr, p) for p in rows]
        assert masks["r1"] is None  # reads the offer: per row, per offer
        assert masks["b0"] is not None
        assert not masks["b0"].any()
        assert masks["unknown"] is not None
        assert not masks["unknown"].any()
    assert eligible_mask(snapshot, ["r0"], pl.DataFrame(lists))["r0"].to_list() == [True, False]  # type: ignore[union-attr]


def test_rows_the_translation_leaves_open_go_to_the_closure() -> None:
    expr = compile_rule(pql.compile(RULE))
    assert expr is not None
    frame = profile_frame(PROFILES_FIXED, expr.meta.root_names())
    raw = frame.with_columns(expr.alias("#m")).get_column("#m").to_list()
    assert raw[3] is None  # the list is undecided in the frame...
    masks = eligible_mask(snapshot_of([RULE]), ["r0"], PROFILES_FIXED)
    assert masks["r0"] is not None
    assert masks["r0"][3] is True


def test_a_rule_that_reads_nothing_has_one_answer_per_profile() -> None:
    masks = eligible_mask(snapshot_of(["true", "not true"]), ["r0", "r1"], PROFILES_FIXED)
    assert masks["r0"] is not None
    assert masks["r0"].to_list() == [True] * len(PROFILES_FIXED)
    assert masks["r1"] is not None
    assert masks["r1"].to_list() == [False] * len(PROFILES_FIXED)


# ---- the property test catches a wrong translation ---------------------------------------


@contextmanager
def swapped(table: dict[str, Any], a: str, b: str) -> Iterator[None]:
    saved = dict(table)
    table[a], table[b] = saved[b], saved[a]
    try:
        yield
    finally:
        table.clear()
        table.update(saved)


# Each mutation with the rules of the grammar that use the mutated operator (the whole grammar
# finds them too, only slower).
MUTATIONS = {
    "gt-ge": (vector._ORDER, ">", ">=", st.tuples(VALUE_EXPRS, VALUE_EXPRS).map(" > ".join)),
    "starts-ends": (
        vector._STRING_TESTS,
        "startsWith",
        "endsWith",
        st.tuples(PATHS, st.sampled_from(STRINGS).map(json.dumps)).map(
            lambda t: f"{t[0]}.startsWith({t[1]})"
        ),
    ),
    "plus-minus": (
        vector._ARITH,
        "+",
        "-",
        st.tuples(PATHS, LITERALS).map(lambda t: f"{t[0]} + {t[1]} > {t[0]}"),
    ),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_a_mutated_translation_fails_the_property_test(mutation: str) -> None:
    """The standard check that the property test can fail: a small mutation of the
    translation must be found by it."""
    table, a, b, rules = MUTATIONS[mutation]

    @settings(
        # Enough that finding the mutation does not hang on one derandomized seed (500 missed
        # starts-ends once an unrelated change moved the seed).
        max_examples=2000,
        deadline=None,
        derandomize=True,  # the same examples every run: the test must not be flaky
        phases=[Phase.generate],  # finding it is the point; shrinking would only cost time
        suppress_health_check=list(HealthCheck),
    )
    @given(source=rules, profiles=st.lists(PROFILES, min_size=1, max_size=12))
    def property_under_mutation(source: str, profiles: list[dict[str, Any]]) -> None:
        check(source, profiles, entry_point=False)

    with swapped(table, a, b), pytest.raises(AssertionError):
        property_under_mutation()
