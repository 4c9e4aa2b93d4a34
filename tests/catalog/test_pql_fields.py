"""PQL members are compiled on save (as a rule or as a formula, with the definedOn inputs) and
errors point at the value with line and column."""

from __future__ import annotations

import pytest

from offerbase.catalog import CatalogValidationError, validate

from . import examples as ex


def _rule(value: object, **extra: object) -> dict[str, object]:
    return {
        "name": "r",
        "condition": {"type": "PQL", "format": "pql/text", "value": value},
        **extra,
    }


@pytest.mark.parametrize(
    ("kind", "member", "base"),
    [
        ("decision-rule", "condition", ex.DECISION_RULE),
        ("ranking-formula", "expression", ex.RANKING_FORMULA),
    ],
)
def test_pql_error_becomes_a_field_error(kind: str, member: str, base: dict[str, object]) -> None:
    body = ex.fresh(base)  # type: ignore[arg-type]
    body[member]["value"] = "a = 1 ==="
    with pytest.raises(CatalogValidationError) as info:
        validate(kind, body)
    [error] = info.value.errors
    assert error.pointer == f"/{member}/value"
    assert error.message.startswith("Invalid PQL at line 1, column 7: ")


def test_rule_is_compiled_as_a_rule_and_formula_as_a_formula() -> None:
    # 10 KB is within the 15 KB limit of a rule, beyond the 8 KB limit of a formula
    long = " or ".join(["a = 1"] * 1100)
    assert 8 * 1024 < len(long) < 15 * 1024
    validate("decision-rule", _rule(long))
    formula = ex.fresh(ex.RANKING_FORMULA)
    formula["expression"]["value"] = long
    with pytest.raises(CatalogValidationError) as info:
        validate("ranking-formula", formula)
    assert info.value.errors[0].pointer == "/expression/value"
    assert "8 KB" in info.value.errors[0].message


def test_defined_on_inputs_are_known_to_the_compiler() -> None:
    # `weather` is an input named in definedOn, so `weather.temp` does not read the profile
    stored = validate(
        "decision-rule",
        _rule("weather.temp > 20", definedOn={"weather": {"schema": {"altId": "_x.w"}}}),
    )
    assert stored["definedOn"] == {"weather": {"schema": {"altId": "_x.w"}}}  # kept as sent


def test_missing_defined_on_is_filled_from_profile_paths() -> None:
    body = _rule("profile.b.x and profile.a.y")
    stored = validate("decision-rule", body)
    assert stored["definedOn"] == {"profile": {"referencePaths": ["a.y", "b.x"]}}
    assert "definedOn" not in body  # the input is not modified


def test_sent_defined_on_is_kept() -> None:
    stored = validate("decision-rule", ex.fresh(ex.DECISION_RULE))
    assert stored["definedOn"] == ex.DECISION_RULE["definedOn"]


def test_ill_typed_value_is_one_schema_error() -> None:
    with pytest.raises(CatalogValidationError) as info:
        validate("decision-rule", _rule(3))
    assert [e.pointer for e in info.value.errors] == ["/condition/value"]
