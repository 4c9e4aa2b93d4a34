"""The Python API around the language: compile/check/evaluate, reported paths, limits."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from offerbase.pql import PqlError, check, compile

CT = "_xdm.context.additionalParameters;version=1"


def test_rule_returns_bool_and_formula_number() -> None:
    rule = compile('a = "x"')
    assert rule.evaluate({"a": "x"}) is True
    assert rule.evaluate({}) is False
    formula = compile("a * 2", "formula")
    assert formula.evaluate({"a": 2}) == 4
    assert formula.evaluate({}) is None
    assert (rule.source, rule.kind, formula.kind) == ('a = "x"', "rule", "formula")
    assert repr(rule) == "<pql rule 'a = \"x\"'>"


def test_check() -> None:
    check('person.name.firstName.equals("Joe", false)')
    check("offer.rank.priority * 2", "formula")
    with pytest.raises(PqlError) as info:
        check("a = = 1")
    assert (info.value.line, info.value.column) == (1, 5)


def test_bad_arguments() -> None:
    with pytest.raises(PqlError):
        compile(42)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="kind"):
        compile("a", "query")  # type: ignore[arg-type]


def test_error_excerpt_on_a_middle_line() -> None:
    with pytest.raises(PqlError) as info:
        compile("a = 1\nand b ==\n2")
    err = info.value
    assert (err.line, err.column) == (2, 7)
    assert err.excerpt == "and b ==\n      ^"
    assert str(err).endswith(err.excerpt)


def test_now_defaults_to_the_current_utc_time() -> None:
    rule = compile("t occurs <= 1 hour before now")
    recent = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    assert rule.evaluate({"t": recent}) is True
    naive_now = datetime(2018, 8, 28, 10, 30)
    assert rule.evaluate({"t": "2018-08-28T10:00:00Z"}, now=naive_now) is True


def test_datetime_and_date_values_in_the_profile() -> None:
    rule = compile("t occurs today")
    now = datetime(2018, 8, 28, 10, 30, tzinfo=UTC)
    assert rule.evaluate({"t": datetime(2018, 8, 28, 1)}, now=now) is True
    assert rule.evaluate({"t": datetime(2018, 8, 27, 23, tzinfo=UTC)}, now=now) is False
    assert rule.evaluate({"t": date(2018, 8, 28)}, now=now) is True


def test_tuples_behave_like_arrays() -> None:
    assert compile("a = [1, 2]").evaluate({"a": (1, 2)}) is True
    assert compile("a.count() = 2").evaluate({"a": (1, 2)}) is True
    assert compile("a.b = 1").evaluate({"a": ({"b": 1},)}) is True


def test_misc_null_corners() -> None:
    assert compile('m = "x"').evaluate({"m": {"k": 1}}) is False
    assert compile("n like p").evaluate({"n": 3, "p": "3"}) is False
    assert compile('a.intersection(["x"]).isNull()').evaluate({}) is True
    assert compile("sum and true").evaluate({"sum": 1}) is True
    assert compile("exists and forall").evaluate({"exists": 1, "forall": 1}) is True
    with pytest.raises(PqlError, match=r"unknown function sum\(\)"):
        compile("sum(1)")


def test_named_params() -> None:
    formula = compile(
        "offer.rank.priority * if(offer.tags.intersects(boosted.tags), 2, 1)", "formula"
    )
    offer = {"rank": {"priority": 3}, "tags": ["a"]}
    assert formula.evaluate({}, offer=offer, params={"boosted": {"tags": ["a"]}}) == 6
    # An extra parameter the expression was not compiled for is still honoured (recompiled once).
    rule = compile('segment.name = "gold"')
    assert rule.evaluate({"segment": {"name": "gold"}}) is True
    assert rule.evaluate({}, params={"segment": {"name": "gold"}}) is True
    assert rule.evaluate({}, params={"segment": {"name": "gold"}}) is True
    for i in range(20):  # many different parameter sets: still right, the cache stays bounded
        assert rule.evaluate({}, params={"segment": {"name": "gold"}, f"p{i}": 1}) is True
    assert len(rule._variants) == 16
    declared = compile('segment.name = "gold"', params=["segment"])
    assert declared.evaluate({"segment": {"name": "gold"}}) is False
    assert declared.profile_paths == frozenset()


def test_reported_paths() -> None:
    rule = compile(
        'profile.person.name.firstName.equals("Joe", false) and homeAddress.city = "x"'
        ' and inSegment("s") and offer.rank.priority > 1'
        " and @{" + CT + "}.weather.isNotNull()"
        " and (select c from @{" + CT + '} where c.channel = "web")'
        " and person.orders[price > 5].count() > 0"
        " and profile.visits[n > 1]"
        " and (select X from xEvent where X.a)"
        " and let v = person.scores in v.math > 1"
        " and let w = 1 in w"
    )
    assert rule.profile_paths == {
        "person.name.firstName",
        "homeAddress.city",
        "segmentMembership",
        "person.orders",
        "person.orders.price",
        "visits",
        "visits.n",
        "person.scores",
        "person.scores.math",
    }
    assert rule.context_paths == {"@{" + CT + "}.weather", "@{" + CT + "}", "@{" + CT + "}.channel"}


def test_profile_attribute_guardrail() -> None:
    ok = " and ".join(f"a{i} = 1" for i in range(25))
    assert len(compile(ok).profile_paths) == 25
    with pytest.raises(PqlError, match="more than 25 profile attributes") as info:
        compile(ok + " and a25 = 1")
    assert info.value.column == len(ok) + 6


def test_context_attribute_guardrail() -> None:
    ok = " and ".join(f"@{{T}}.c{i} = 1" for i in range(30))
    assert len(compile(ok).context_paths) == 30
    with pytest.raises(PqlError, match="more than 30 context attributes"):
        compile(ok + " and @{T}.c30 = 1")


def test_size_limits() -> None:
    body = "x" * (15 * 1024 - 6)
    check(f'a = "{body}"')
    with pytest.raises(PqlError, match="longer than 15 KB") as info:
        check(f'a = "{body}x"')
    assert (info.value.line, info.value.column) == (1, 1)
    with pytest.raises(PqlError, match="longer than 15 KB"):
        check('a = "' + "é" * (8 * 1024) + '"')
    with pytest.raises(PqlError, match="longer than 8 KB"):
        check(f'a = "{body}"', "formula")


def test_nesting_limit() -> None:
    check("(" * 30 + "a" + ")" * 30)
    check("a" + "[b]" * 40)
    with pytest.raises(PqlError, match="deeper than 30"):
        check("f(" * 31 + ")" * 31)
    with pytest.raises(PqlError, match="too complex"):
        check("a" + ".head()" * 250)


def test_long_flat_chains_do_not_recurse() -> None:
    n = 2000
    assert compile(" + ".join(["1"] * n), "formula").evaluate({}) == n
    assert compile(" and ".join(["a"] * n)).evaluate({"a": 1}) is True


class Exploding(Mapping[str, Any]):
    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("boom")

    def __iter__(self) -> Iterator[str]:
        return iter(())

    def __len__(self) -> int:
        return 0

    def get(self, key: str, default: Any = None) -> Any:
        raise RuntimeError("boom")


def test_unexpected_failures_become_pql_errors() -> None:
    with pytest.raises(PqlError, match="evaluation failed"):
        compile("a = 1").evaluate(Exploding())


def test_pql_errors_raised_during_evaluation_pass_through(monkeypatch: pytest.MonkeyPatch) -> None:
    expr = compile("a = 1")

    def fail(p: Any, e: Any) -> Any:
        raise PqlError("inner")

    monkeypatch.setattr(expr, "_fn", fail)
    with pytest.raises(PqlError, match="inner"):
        expr.evaluate({})


def test_long_lines_are_cut_around_the_caret() -> None:
    src = "a = 1 and " * 30 + "b =="
    with pytest.raises(PqlError) as info:
        compile(src)
    text, caret = info.value.excerpt.split("\n")
    assert text.startswith("...")
    assert not text.endswith("...")
    assert text[len(caret) - 1 : len(caret) + 1] == "=="
    src = "b == 1" + " and a = 1" * 30
    with pytest.raises(PqlError) as info:
        compile(src)
    text, caret = info.value.excerpt.split("\n")
    assert text.endswith("...")
    assert text[len(caret) - 1 :].startswith("==")
    src = "a = 1 and " * 15 + "b == 1" + " and a = 1" * 15
    with pytest.raises(PqlError) as info:
        compile(src)
    text, caret = info.value.excerpt.split("\n")
    assert text.startswith("...")
    assert text.endswith("...")
    assert text[len(caret) - 1 :].startswith("==")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("a < c", True),
        ("a <= c", True),
        ("c < a", False),
        ("c >= a", True),
        ("s < z", True),
        ('a in ["1"]', True),
        ('a in ["2", 3]', False),
        ('offer = "x"', False),
        ("xEvent = 1", False),
        ("n - 1 = 41 and n * 2 = 84 and n + 1 = 43", True),
        ("s - 1 = 0 or s * 2 = 0 or s + 1 = 0", False),
    ],
)
def test_comparisons_between_fields(source: str, expected: bool) -> None:
    assert compile(source).evaluate({"a": 1, "c": 2.5, "n": "42", "s": "x", "z": "y"}) is expected


@pytest.mark.parametrize(
    "source",
    [
        "big + 1.5",
        "big - 1.5",
        "big * 1.5",
        "big / 3",
        "big % 1.5",
        "inf % 2",
        "[big, 1].average()",
        '"1e999" * 1 - inf',
    ],
)
def test_overflow_gives_null(source: str) -> None:
    formula = compile(source, "formula")
    result = formula.evaluate({"big": 10**400, "inf": float("inf")})
    assert result is None


def test_huge_int_arithmetic_is_exact() -> None:
    assert compile("big + 1", "formula").evaluate({"big": 10**400}) == 10**400 + 1


@pytest.mark.parametrize(
    ("source", "params", "offer", "context", "reads"),
    [
        ("age > 18", (), False, False, set()),
        ("offer.rank.priority > 1", (), True, False, set()),
        ("profile.age > offer.characteristics.min", (), True, False, set()),
        ('@{_xdm.context.device;version=1}.type = "mobile"', (), False, True, set()),
        ("boosted.tags.count() > 0", ("boosted",), False, False, {"boosted"}),
        ("weather.temp > 20", ("weather",), False, False, {"weather"}),
        ('xEvent.type = "click"', (), False, False, {"xEvent"}),
        # inside a filter a bare name may fall back to the offer: it counts as read
        ("tags.filter(offer = 1).count() > 0", (), True, False, set()),
    ],
)
def test_expression_says_what_it_reads(
    source: str, params: tuple[str, ...], offer: bool, context: bool, reads: set[str]
) -> None:
    expr = compile(source, params=params)
    assert expr.reads_offer is offer
    assert expr.reads_context is context
    assert expr.reads_params == reads
