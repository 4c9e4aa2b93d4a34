"""Property tests: whatever the text or the data, the library raises PqlError or nothing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from offerbase.pql import PqlError, compile

SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

VOCAB = [
    *"a b c x person name orders price tags offer profile boosted xEvent segmentMembership".split(),
    *"and or not AND NOT in notIn like matches occurs select from where let if".split(),
    *"now today yesterday tomorrow this last next before after between on".split(),
    *"day days month hours year week".split(),
    *"equals contains startsWith get count sum average min max head filter exists".split(),
    *"isNull isNotNull intersects distinct keys values regexGroup getMonth inSegment date".split(),
    *". , ( ) [ ] = != < <= > >= + - * / % ! :".split(),
    '"x"',
    '"%a_"',
    '"^a.*"',
    '""',
    "0",
    "1",
    "2.5",
    "-3",
    "true",
    "false",
    "@{T}",
    "@event{T}",
    "$1",
    "^",
    "{",
    "}",
    "'",
    '"',
    "\\",
    "#",
]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(10**15), 10**15)
    | st.floats(allow_nan=True)
    | st.text(max_size=8)
    | st.sampled_from(["2018-08-28T10:00:00Z", "realized", "x", "1.5", "true"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(list("abcx") + ["name", "price", "status"]), inner, max_size=4
        )
    ),
    max_leaves=12,
)
profiles = st.dictionaries(
    st.sampled_from(["a", "b", "c", "x", "person", "orders", "tags", "segmentMembership"]),
    json_values,
    max_size=5,
)
CASES = json.loads((Path(__file__).parent / "cases.json").read_text())
SOURCES = sorted({(c["source"], c["kind"]) for c in CASES if "error" not in c})
NOW = datetime(2018, 8, 28, 10, 30, tzinfo=UTC)


def _evaluate(source: str, kind: Any, profile: dict[str, Any]) -> None:
    try:
        expr = compile(source, kind)
    except PqlError:
        return
    try:
        result = expr.evaluate(
            profile,
            offer=profile,
            context={"T": profile},
            params={"boosted": profile, "xEvent": [profile]},
            now=NOW,
        )
    except PqlError:
        return
    if kind == "rule":
        assert result is True or result is False
    else:
        assert result is None or type(result) in (int, float)


@SETTINGS
@given(st.text(max_size=60))
def test_random_text(source: str) -> None:
    _evaluate(source, "rule", {"a": 1})


@SETTINGS
@given(
    st.lists(st.sampled_from(VOCAB), min_size=1, max_size=14),
    st.sampled_from(["rule", "formula"]),
    profiles,
)
def test_random_token_soup(tokens: list[str], kind: str, profile: dict[str, Any]) -> None:
    _evaluate(" ".join(tokens), kind, profile)


@SETTINGS
@given(st.sampled_from(SOURCES), profiles)
def test_known_rules_on_random_data(source: tuple[str, str], profile: dict[str, Any]) -> None:
    _evaluate(source[0], source[1], profile)
