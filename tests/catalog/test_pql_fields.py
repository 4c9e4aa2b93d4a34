"""PQL members are checked through offerbase.pql and errors point at the value."""

from __future__ import annotations

import pytest

from offerbase.catalog import CatalogValidationError, validate

from . import examples as ex


def test_rule_condition_is_checked_as_a_rule(fake_pql: list[tuple[str, str]]) -> None:
    validate("decision-rule", ex.fresh(ex.DECISION_RULE))
    assert fake_pql == [(ex.DECISION_RULE["condition"]["value"], "rule")]


def test_formula_expression_is_checked_as_a_formula(fake_pql: list[tuple[str, str]]) -> None:
    validate("ranking-formula", ex.fresh(ex.RANKING_FORMULA))
    assert fake_pql == [(ex.RANKING_FORMULA["expression"]["value"], "formula")]


@pytest.mark.parametrize(
    ("kind", "member", "base"),
    [
        ("decision-rule", "condition", ex.DECISION_RULE),
        ("ranking-formula", "expression", ex.RANKING_FORMULA),
    ],
)
def test_pql_error_becomes_a_field_error(
    fake_pql: list[tuple[str, str]], kind: str, member: str, base: dict[str, object]
) -> None:
    body = ex.fresh(base)  # type: ignore[arg-type]
    body[member]["value"] = "profile.a BAD"
    with pytest.raises(CatalogValidationError) as info:
        validate(kind, body)
    [error] = info.value.errors
    assert error.pointer == f"/{member}/value"
    assert "line 1, column 5" in error.message
    assert "unexpected token 'BAD'" in error.message


def test_missing_defined_on_is_filled_from_profile_paths(fake_pql: list[tuple[str, str]]) -> None:
    body = {
        "name": "r",
        "condition": {"type": "PQL", "format": "pql/text", "value": "profile.b.x and profile.a.y"},
    }
    stored = validate("decision-rule", body)
    assert stored["definedOn"] == {"profile": {"referencePaths": ["a.y", "b.x"]}}
    assert "definedOn" not in body  # the input is not modified


def test_sent_defined_on_is_kept(fake_pql: list[tuple[str, str]]) -> None:
    stored = validate("decision-rule", ex.fresh(ex.DECISION_RULE))
    assert stored["definedOn"] == ex.DECISION_RULE["definedOn"]


def test_pql_is_not_called_when_the_value_is_ill_typed(fake_pql: list[tuple[str, str]]) -> None:
    body = {"name": "r", "condition": {"value": 3}}
    with pytest.raises(CatalogValidationError) as info:
        validate("decision-rule", body)
    assert [e.pointer for e in info.value.errors] == ["/condition/value"]
    assert fake_pql == []


def _real_pql_available() -> bool:
    try:
        from offerbase import pql
    except ImportError:
        return False
    return hasattr(pql, "compile") and hasattr(pql, "PqlError")


real_pql = pytest.mark.skipif(not _real_pql_available(), reason="offerbase.pql not available yet")


@real_pql
def test_real_pql_rejects_a_broken_rule() -> None:
    body = {
        "name": "r",
        "condition": {"type": "PQL", "format": "pql/text", "value": "person.name ==="},
    }
    with pytest.raises(CatalogValidationError) as info:
        validate("decision-rule", body)
    [error] = info.value.errors
    assert error.pointer == "/condition/value"
    assert "line 1, column" in error.message


@real_pql
def test_real_pql_fills_reference_paths() -> None:
    body = {
        "name": "r",
        "condition": {
            "type": "PQL",
            "format": "pql/text",
            "value": 'profile.person.name.firstName.equals("Joe", false)',
        },
    }
    stored = validate("decision-rule", body)
    paths = stored["definedOn"]["profile"]["referencePaths"]
    assert paths == sorted(paths)
    assert any("firstName" in p for p in paths)
