"""A bounded schemathesis run against the served `/openapi.json` (SQLite and PostgreSQL).

Every operation of the served document is exercised with generated requests, positive (valid per
the published schema) and negative (invalid), carrying a real credential's headers. Each response
must not be a 5xx, and must match the documented status codes, content types and schemas.

How it runs: the app's database engine lives on the test's event loop (session fixtures), so the
hypothesis loop runs in a worker thread and sends each request back to that loop through the
`client` fixture (httpx over ASGI). No request goes around the ASGI app.

Path parameters `entity_id` are drawn half the time from entities created beforehand (a placement,
a tag, a fallback offer), so reads, patches, replaces and deletes also reach existing entities and
their 200 bodies are checked, not only 404s.

Every operation of the document runs, under five checks: not a server error, documented status
codes, content types and response schemas, and positive data acceptance (a request the document
calls valid is not refused with a 400/422: `schema_valid_request_accepted`). That last check
holds everywhere but where JSON Schema cannot say the rule, and exactly there:

* U+0000 is generated nowhere (`allow_x00=False`): every API refuses it in any string or member
  name, one rule for the whole server, said once here rather than as a pattern on every string;
* positive requests send no `start`: a list's cursor is signed by this server, or (the Offer
  Library) Adobe's form, the first sort key's value, which depends on `orderby`;
* PATCH: whether a JSON Patch applies and whether the patched entity or profile is valid depend
  on what is stored;
* a 422 made only of UNEXPRESSIBLE errors: the cross-field rules of catalog/specs.py, PQL that
  does not compile, references to entities that do not exist, a tag name already used, the
  offer kind `offer-type` picks, the decision request's total of offers per response.

Bounds: 10 valid and 5 invalid examples per operation, no deadline, derandomized (a fixed seed),
no shrinking (each failure is reported as it was found, with a curl command), and the
`too_slow`/`filter_too_much`/`data_too_large` health checks are off because a bounded run over a
large request schema trips them without saying anything about the API.

The stateful phase (`test_schemathesis_stateful_phase`) then runs schemathesis' state machine
over the links it infers from the document (a write receipt's `id` feeds the `entity_id` of the
item operations, and so on): sequences of calls, each response checked as above. Bounded to 30
scenarios of at most 8 steps, under the same checks. Generated create bodies that the document
cannot tell apart (a reference to a missing entity, a cross-field rule) are refused, so chains
reach a created entity in some scenarios only; the test asserts that links were found and that
scenarios had more than one step.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import hypothesis
import hypothesis.strategies as st
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    positive_data_acceptance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation import GenerationMode

from conftest import Tenant, make_tenant

ROOT = "/data/core/dps/"
TIMINGS = os.environ.get("OFFERBASE_SCHEMATHESIS_TIMINGS") == "1"
SEEDS = Path(__file__).parents[1] / "fixtures" / "seeds"
# Examples per operation: 10 valid + 5 invalid requests (15 per operation).
MAX_EXAMPLES = {GenerationMode.POSITIVE: 10, GenerationMode.NEGATIVE: 5}
# Rejections of a schema-valid request that the document cannot describe (JSON Schema has no
# way to say them), by the messages of the rules that make them: the cross-field rules of
# catalog/specs.py (`Obj.checks`) and PQL that does not compile. A 422 whose every error is one
# of these is not held against the document; any other error in it still is.
UNEXPRESSIBLE = re.compile(
    "|".join(
        [
            r"Invalid PQL at line",  # a rule's condition, a formula's expression
            r"\) is before ",  # dates_in_order: endDate before startDate
            r"^profileConstraintType is ",  # _profile_constraint_rule
            r"^(eligibilityRule|segmentIdentities) is only used when",
            r"^An? \S+ component needs ",  # _component_content_rule
            r"^Must be a string for a \S+ component",
            r"already has a representation",  # _one_representation_per_placement
            r"^events includes 'custom'",  # _custom_events_need_query
            r"^Has \d+ ids; at most",  # _collection_ids_limit: the bound depends on filterType
            r"^orderEvaluationType is ",  # _order_rule
            r"^Give either filter|^optionSelection needs|^optionSelectionType is ",
            r"^The criteria name \d+ distinct",  # _decision_guardrails
            # _strategy_rule: features by type, and the goal cannot be the trial itself
            r"^A personalized-optimization strategy needs|^An auto-optimization strategy is not",
            r"^display is what a trial is",
            # `offer-type` picks which of the two offer schemas (an anyOf) the body must fit;
            # a body of the other kind has a member this kind does not know.
            r"^Unknown field .* in a (personalized|fallback) offer;",
            r"^at most \d+ offers per response",  # the sum of the scopes' itemCount
            # A report's range: from after to, or longer than reports.MAX_DAYS (cross-field).
            r"^The range (starts \(.*\) after it ends|covers more than \d+ days)",
            # What is stored, not the request: references to other entities, unique names.
            r"^No \S+ with id .* exists in this sandbox\.$",
            r"^The name .* is already used by ",
            r"^Guardrail: at most \d+ ",  # a sandbox's total (5 ranking strategies)
        ]
    )
)


def _rejects_only_unexpressible(response: Any) -> bool:
    if response.status_code != 422:
        return False
    errors = json.loads(response.content).get("errors") or []
    return bool(errors) and all(UNEXPRESSIBLE.search(e.get("detail", "")) for e in errors)


@schemathesis.check
def schema_valid_request_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    """positive_data_acceptance, but for what the document cannot describe:

    * PATCH: whether a JSON Patch applies (a `remove` of a missing member, a `test`) and whether
      the patched entity or profile is valid depend on what is stored, not on the request;
    * a 422 made only of UNEXPRESSIBLE errors."""
    if case.method.upper() == "PATCH" or _rejects_only_unexpressible(response):
        return None
    return positive_data_acceptance(ctx, response, case)


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx: Any, value: Any) -> dict[str, Any]:
    """The profile import's body (NDJSON text), which schemathesis has no serializer for."""
    text = value if isinstance(value, str) else json.dumps(value)
    return {"data": text.encode("utf-8", "surrogatepass")}


def _drop_opaque_cursor(case: Any) -> None:
    """A positive request sends no `start`: a list's `start` is a cursor this server signed
    (from `_links`), or, in the Offer Library, Adobe's form, the first sort key's value at the
    page boundary, which depends on `orderby`; neither can be generated from the document, and
    a wrong one is a documented 400. (Negative requests keep theirs.)"""
    if case.meta.generation.mode.is_positive and case.query:
        case.query.pop("start", None)


CHECKS = [
    not_a_server_error,
    schema_valid_request_accepted,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


async def _seed(client: httpx.AsyncClient, headers: dict[str, str]) -> dict[str, list[str]]:
    """One existing entity per kind we can create from a seed body; their ids by collection."""
    placement = json.loads((SEEDS / "placement-web.json").read_text())
    fallback = json.loads((SEEDS / "fallback-offer-create.json").read_text())
    created: dict[str, list[str]] = {}
    for path, query, body, entity_id in [
        ("placements", "", placement, "offerPlacement1234"),
        ("tags", "", {"name": "Schemathesis tag"}, "schemathesisTag1"),
        ("offers", "?offer-type=fallback", fallback, "fallbackOffer1234"),
    ]:
        response = await client.post(
            f"/data/core/dps/{path}/{entity_id}{query}", json=body, headers=headers
        )
        assert response.status_code == 201, response.text
        created[path] = [entity_id]
    return created


def _to_httpx(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Transport kwargs (requests-style) from schemathesis -> httpx.AsyncClient.request kwargs."""
    out: dict[str, Any] = {
        "method": kwargs["method"],
        "url": kwargs["url"],
        "headers": kwargs.get("headers") or {},
        "params": kwargs.get("params") or None,
    }
    if "json" in kwargs:
        out["json"] = kwargs["json"]
    data = kwargs.get("data")
    if isinstance(data, (bytes, str)):
        out["content"] = data
    elif data is not None:
        out["data"] = data
    if kwargs.get("files"):
        out["files"] = kwargs["files"]
    return out


def _run_operation(
    operation: Any,
    mode: GenerationMode,
    loop: asyncio.AbstractEventLoop,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    known: list[str],
    failures: dict[tuple[str, str], str],
) -> None:
    label = f"{operation.label} [{mode.value}]"
    use_known = st.sampled_from(known) if known else st.nothing()

    @hypothesis.given(
        case=operation.as_strategy(generation_mode=mode), known_id=st.none() | use_known
    )
    @hypothesis.settings(
        max_examples=MAX_EXAMPLES[mode],
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.filter_too_much,
            HealthCheck.data_too_large,
        ],
    )
    def check(case: Any, known_id: str | None) -> None:
        if known_id is not None and "entity_id" in (case.path_parameters or {}):
            case.path_parameters["entity_id"] = known_id
        _drop_opaque_cursor(case)
        kwargs = case.as_transport_kwargs(base_url="http://offerbase.test")
        kwargs["headers"] = {**(kwargs.get("headers") or {}), **headers}
        future = asyncio.run_coroutine_threadsafe(client.request(**_to_httpx(kwargs)), loop)
        try:
            response = future.result(timeout=60)
        except Exception as exc:  # raised out of the app: a served 500
            failures.setdefault(
                (label, repr(exc)),
                f"{label} -> unhandled {exc!r}\n{case.as_curl_command(headers=headers)}",
            )
            return
        try:
            case.validate_response(response, checks=CHECKS, headers=kwargs["headers"])
        except (AssertionError, BaseExceptionGroup) as exc:  # one report per distinct failure
            failures.setdefault(
                (label, type(exc).__name__ + str(exc).splitlines()[0]),
                f"{label} -> {response.status_code}\n{exc}\nbody: {response.text[:500]}",
            )

    try:
        check()
    except hypothesis.errors.Unsatisfiable:
        # Negative mode has nothing to make invalid in an operation without parameters or
        # body (GET /health); that is not a gap in the run.
        if mode is GenerationMode.POSITIVE or operation.body or operation.query:
            failures[(label, "unsatisfiable")] = f"{label}: no request could be generated"


def _run(
    schema: Any,
    loop: asyncio.AbstractEventLoop,
    client: httpx.AsyncClient,
    headers: dict[str, str],
    seeded: dict[str, list[str]],
) -> list[str]:
    failures: dict[tuple[str, str], str] = {}
    for result in schema.get_all_operations():
        operation = result.ok()
        collection = operation.path.split("/")[4] if operation.path.startswith(ROOT) else ""
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            started = time.perf_counter()
            _run_operation(
                operation, mode, loop, client, headers, seeded.get(collection, []), failures
            )
            if TIMINGS:
                print(f"{time.perf_counter() - started:6.2f}s {operation.label} {mode.value}")
    return list(failures.values())


def _load(document: dict[str, Any]) -> Any:
    schema = schemathesis.openapi.from_dict(document)
    # Every string and member name with U+0000 is refused, by every API (api/bodies.py, the
    # profile store, list filters, ids): one rule for the whole server, said once here rather
    # than as a pattern on every string of the document.
    schema.config.generation.update(allow_x00=False)
    return schema


async def test_schemathesis_against_served_openapi(app, client, tenant):
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    schema = _load(response.json())
    seeded = await _seed(client, tenant.headers)
    loop = asyncio.get_running_loop()
    failures = await asyncio.to_thread(_run, schema, loop, client, tenant.headers, seeded)
    if failures:
        pytest.fail(f"{len(failures)} schemathesis failure(s):\n\n" + "\n\n".join(failures))


# -- the stateful phase ----------------------------------------------------------------------
# Scenarios chain calls along the links schemathesis infers from the served document (an
# entity's id in a write receipt feeds `entity_id` of the item operations). Bounds: 30
# scenarios of at most 8 steps, derandomized, no shrinking.
STATEFUL_SETTINGS = hypothesis.settings(
    max_examples=30,
    stateful_step_count=8,
    deadline=None,
    derandomize=True,
    database=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _run_stateful(
    schema: Any,
    loop: asyncio.AbstractEventLoop,
    client: httpx.AsyncClient,
    new_tenant: Callable[[], Awaitable[Tenant]],
) -> tuple[list[str], int, int]:
    """Run the state machine; returns (failures, steps taken, transitions in the document).

    Each scenario starts in a tenant of its own: hypothesis replays scenarios and requires the
    same calls to give the same answers, which a tenant filled by earlier scenarios would not
    (a create of an id that exists already is a 409)."""
    from schemathesis.core.transport import Response

    failures: dict[str, str] = {}
    steps = 0

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        headers: dict[str, str] = {}

        def setup(self) -> None:
            tenant = asyncio.run_coroutine_threadsafe(new_tenant(), loop).result(timeout=60)
            self.headers = tenant.headers

        def call(self, case: Any, **kwargs: Any) -> Any:
            nonlocal steps
            steps += 1
            _drop_opaque_cursor(case)
            transport = case.as_transport_kwargs(base_url="http://offerbase.test")
            transport["headers"] = {**(transport.get("headers") or {}), **self.headers}
            future = asyncio.run_coroutine_threadsafe(client.request(**_to_httpx(transport)), loop)
            return Response.from_httpx(future.result(timeout=60), verify=True)

        def validate_response(self, response: Any, case: Any, **kwargs: Any) -> None:
            headers = self.headers
            try:
                case.validate_response(response, checks=CHECKS, headers=headers)
            except (AssertionError, BaseExceptionGroup) as exc:
                key = f"{case.operation.label}: {type(exc).__name__} {str(exc).splitlines()[0]}"
                failures.setdefault(
                    key,
                    f"{case.operation.label} -> {response.status_code}\n{exc}\n"
                    f"body: {response.content[:500]!r}\n{case.as_curl_command(headers=headers)}",
                )

    Machine.run(settings=STATEFUL_SETTINGS)
    return list(failures.values()), steps, schema.statistic.transitions.total


async def test_schemathesis_stateful_phase(app, client):
    response = await client.get("/openapi.json")
    schema = _load(response.json())
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    failures, steps, transitions = await asyncio.to_thread(
        _run_stateful, schema, loop, client, lambda: make_tenant(app, client, ("prod", "dev"))
    )
    if TIMINGS:
        elapsed = time.perf_counter() - started
        print(f"stateful: {steps} steps over {transitions} links in {elapsed:.1f}s")
    assert transitions > 0  # links were found: the phase ran scenarios, not single calls
    assert steps > STATEFUL_SETTINGS.max_examples  # scenarios of more than one step
    if failures:
        pytest.fail(f"{len(failures)} stateful failure(s):\n\n" + "\n\n".join(failures))
