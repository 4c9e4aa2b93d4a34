"""``validate(kind, body)``: check a request body and return the normalized body to store.

Normalization only turns integral floats into ints and drops read-only metadata
(``METADATA_FIELDS``) echoed back by clients on PUT; enum values are kept as the client spelled
them (``enums.canonical`` gives their meaning). Defaults are *not* injected: reads echo what
the client sent, like Adobe; the loader (``catalog.load``) applies ``catalog.defaults`` when it
builds the domain model.

PQL (``condition.value`` of rules, ``expression.value`` of formulas, ``customQuery`` of an
offer's frequency caps) is compiled with
``offerbase.pql.compile(value, "rule"|"formula", params=...)`` where params are the
``definedOn`` inputs (``load.defined_on_params``); a ``PqlError`` becomes a FieldError at
``/condition/value``, ``/expression/value`` or
``/frequencyCappingConstraints/{i}/customQuery`` whose message carries "line L, column C".

Decision rules: when ``definedOn`` is absent it is filled as
``{"profile": {"referencePaths": [...]}}`` from the compiled condition's ``profile_paths``
(sorted), like Adobe's UI-created rules, so consumers can see which profile attributes a rule
reads. A client-sent ``definedOn`` is kept as sent.

Adobe's Decision Management guardrails enforced per entity: placements per criterion and per
decision (30), collections per decision (30), collection qualifiers per offer and per collection
(20), offers per collection (500), capping rules per offer (10), offer attributes
(``characteristics``) per offer (30), placement ``itemCount`` (1..30). PQL size, attribute and
nesting limits are enforced by ``offerbase.pql.check``.

Guardrails deliberately *not* enforced:

* "Offer size incl. attributes 1KB" and "representation size 1KB": the unit of measurement is
  not documented (serialized JSON? UTF-8 of content only? with or without keys) and Adobe's
  own examples with HTML content would come close; a wrong guess would reject valid offers.
* Totals per sandbox (10K offers, 1K placements, 10K decisions, 1K live decisions, 1K
  qualifiers, 10K rules+formulas, 5 AI models, 20,000 capping configurations): they need the
  store's counts; that is the store's job.
* "Ranking functions per decision 30" (GR-old only): a decision names at most one formula per
  criterion, and criteria per decision are not limited by the docs.
"""

from __future__ import annotations

from typing import Any

from offerbase import pql
from offerbase.catalog.errors import CatalogValidationError, FieldError
from offerbase.catalog.load import defined_on_params
from offerbase.catalog.schema import Obj
from offerbase.catalog.specs import SPECS

METADATA_FIELDS: frozenset[str] = frozenset(
    {
        "id",
        "etag",
        "created",
        "modified",
        "schemas",
        "createdBy",
        "lastModifiedBy",
        "createdDate",
        "lastModifiedDate",
        "sandboxId",
        "createdByClientId",
        "lastModifiedByClientId",
        "datasetId",
        "_links",
    }
)

# Which PQL member to compile, and as what, per kind.
_PQL_MEMBERS: dict[str, tuple[str, pql.Kind]] = {
    "decision-rule": ("condition", "rule"),
    "ranking-formula": ("expression", "formula"),
}


def validate(kind: str, body: object) -> dict[str, Any]:
    """Validate ``body`` as a ``kind`` entity; return the normalized body to store.

    Raises ``CatalogValidationError`` listing every problem found, or ``ValueError`` for an
    unknown ``kind`` (a programming error, not a client error).
    """
    try:
        spec = SPECS[kind]
    except KeyError:
        raise ValueError(f"unknown kind {kind!r}; expected one of {sorted(SPECS)}") from None
    errors: list[FieldError] = []
    if not isinstance(body, dict):
        raise CatalogValidationError([FieldError("", "The request body must be a JSON object.")])
    normalized = _check_top(spec, body, errors)
    if kind in _PQL_MEMBERS:
        member, mode = _PQL_MEMBERS[kind]
        _check_pql(kind, normalized, member, mode, errors)
    if kind == "personalized-offer":
        _check_cap_queries(normalized, errors)
    if errors:
        raise CatalogValidationError(errors)
    return normalized


def _check_top(spec: Obj, body: dict[str, Any], errors: list[FieldError]) -> dict[str, Any]:
    # Metadata is dropped only at the top level, where reads put it.
    stripped = {k: v for k, v in body.items() if k not in METADATA_FIELDS}
    result: dict[str, Any] = spec.check(stripped, "", errors)
    return result


def _check_cap_queries(body: dict[str, Any], errors: list[FieldError]) -> None:
    """Each frequency cap's customQuery is a PQL rule over the event (`xEvent`), compiled
    now like every rule, so a cap never silently counts nothing."""
    caps = body.get("frequencyCappingConstraints")
    if not isinstance(caps, list):
        return
    for index, cap in enumerate(caps):
        query = cap.get("customQuery") if isinstance(cap, dict) else None
        if not isinstance(query, str) or not query.strip():
            continue  # missing or ill-typed: reported by the schema
        try:
            pql.compile(query, "rule")
        except pql.PqlError as exc:
            message = exc.message.rstrip(".")
            errors.append(
                FieldError(
                    f"/frequencyCappingConstraints/{index}/customQuery",
                    f"Invalid PQL at line {exc.line}, column {exc.column}: {message}.",
                )
            )


def _check_pql(
    kind: str, body: dict[str, Any], member: str, mode: pql.Kind, errors: list[FieldError]
) -> None:
    holder = body.get(member)
    value = holder.get("value") if isinstance(holder, dict) else None
    if not isinstance(value, str) or not value.strip():
        return  # missing/ill-typed value was already reported by the schema
    # definedOn names extra inputs (e.g. `boosted`): the compiler must know them so that
    # `boosted.tags` reads the input rather than a profile field. The same list binds them in
    # the engine (load.defined_on_params).
    params = [name for name, _ in defined_on_params(body.get("definedOn"))]
    try:
        compiled = pql.compile(value, mode, params=params)
    except pql.PqlError as exc:
        message = exc.message.rstrip(".")
        errors.append(
            FieldError(
                f"/{member}/value",
                f"Invalid PQL at line {exc.line}, column {exc.column}: {message}.",
            )
        )
        return
    if kind == "decision-rule" and "definedOn" not in body:
        body["definedOn"] = {"profile": {"referencePaths": sorted(compiled.profile_paths)}}
