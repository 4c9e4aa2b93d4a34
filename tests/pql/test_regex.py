"""Regular expressions in PQL (`matches`, `regexGroup`, `like`) run on RE2: a hostile pattern,
in a rule or read from profile data, costs time linear in the text, and what RE2 cannot run is
a compile error when the rule is saved."""

from __future__ import annotations

import pytest

from offerbase import regex
from offerbase.pql import PqlError, compile

HOSTILE_TEXT = "a" * 100_000 + "b"


def test_the_engine_is_re2() -> None:
    assert regex.ENGINE == "RE2"
    assert type(regex.compile_regex("a")).__module__.startswith("re2")


@pytest.mark.parametrize(
    "source",
    [
        's matches "(a+)+$"',
        's.matches("(a+)+$")',
        "s.matches(p)",
        's.regexGroup("(a|aa)+$") = "x"',
    ],
)
def test_catastrophic_backtracking_patterns_return(source: str) -> None:
    # Python's `re` would not return from these within the test run; RE2 answers at once.
    assert compile(source).evaluate({"s": HOSTILE_TEXT, "p": "(a+)+$"}) is False
    assert compile(source).evaluate({"s": "aaa", "p": "(a+)+$"}) is ("regexGroup" not in source)


def test_like_with_many_wildcards_returns() -> None:
    rule = compile("s like p")
    assert rule.evaluate({"s": HOSTILE_TEXT, "p": "%a%a%a%a%a%a%a%a%c"}) is False
    assert rule.evaluate({"s": HOSTILE_TEXT, "p": "%a%a%a%a%a%a%a%a%b"}) is True


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        (r's matches "(a)\\1"', "invalid escape sequence"),
        ('s.matches("(?=a)")', "invalid perl operator"),
        ('s.matches("(?<!a)b")', "invalid perl operator"),
        ('s.regexGroup("a{2000}")', "invalid repetition size"),
        ('s.matches("((a{100}){100}){100}")', "invalid repetition size"),
        ('s.matches("[")', "missing ]"),
        ('s.matches("' + "x" * 1001 + '")', "longer than 1000 characters"),
        ('s like "' + "%" * 1001 + '"', "longer than 1000 characters"),
        ('s.matches("\\ud800")', "lone surrogate"),
        ("s.matches(3)", "must be a string"),
        ("s.regexGroup(true)", "must be a string"),
    ],
)
def test_patterns_re2_cannot_run_are_compile_errors(source: str, reason: str) -> None:
    with pytest.raises(PqlError, match="invalid regular expression|invalid like pattern|regular"):
        compile(source)
    with pytest.raises(PqlError) as info:
        compile(source)
    assert reason in str(info.value)


def test_patterns_from_profile_data_that_re2_refuses_match_nothing() -> None:
    for pattern in ["(a)\\1", "(?=a)", "x" * 1001, "("]:
        assert compile("s.matches(p)").evaluate({"s": "aa", "p": pattern}) is False
        assert compile('s.regexGroup(p) = "a"').evaluate({"s": "aa", "p": pattern}) is False
    assert compile("s like p").evaluate({"s": "a", "p": "%" * 1001}) is False


def test_text_without_utf8_form_matches_nothing() -> None:
    # A `\ud800` escape makes a lone surrogate, which RE2 (UTF-8) cannot read: no match, no error.
    assert compile('"\\ud800" matches "."').evaluate({}) is False
    assert compile('"\\ud800" like "%"').evaluate({}) is False
    assert compile('"\\ud800".regexGroup(".") = "x"').evaluate({}) is False


def test_semantics_kept() -> None:
    assert compile('s matches "^Jo.n"').evaluate({"s": "John"}) is True
    assert compile('s.matches("(?i)JOHN")').evaluate({"s": "john"}) is True
    assert compile('s.regexGroup("(?P<n>o)h", 1) = "o"').evaluate({"s": "John"}) is True
    assert compile('s like "J_h%"').evaluate({"s": "J\nhn"}) is True  # `_` takes a newline
    assert compile('s like "a.c"').evaluate({"s": "abc"}) is False  # `.` is literal in like
