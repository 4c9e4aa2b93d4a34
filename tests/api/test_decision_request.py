"""The Decisioning API body parser (decision_request.parse) on its own: the spellings it accepts,
the problem it reports for each member, which one it reports when there are several, and the
served request schema generated from its model."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from offerbase.api import decisioning_openapi
from offerbase.api.decision_request import parse
from offerbase.api.decision_request_model import MAX_IDENTITIES
from offerbase.api.problems import ApiProblem
from offerbase.engine import MAX_ITEM_COUNT, MAX_OPTIONS_PER_RESPONSE, MAX_SCOPES, ScopeRequest

SCOPE = {"xdm:activityId": "dec", "xdm:placementId": "web"}
EMAIL = {"Email": [{"xdm:id": "a@b.c", "primary": True}]}


def _identities(count: int) -> dict[str, list[dict[str, str]]]:
    """`count` identities over three namespaces (the limit counts all namespaces together)."""
    spread: dict[str, list[dict[str, str]]] = {"Email": [], "ECID": [], "Phone": []}
    for index in range(count):
        spread[list(spread)[index % 3]].append({"xdm:id": f"id-{index}"})
    return spread


def test_identities_up_to_the_limit_are_accepted() -> None:
    identities = _identities(MAX_IDENTITIES)
    parsed = parse(request(**{"xdm:profiles": [{"xdm:identityMap": identities}]}))
    assert parsed.identity_map == identities


def request(**fields: Any) -> dict[str, Any]:
    return {"xdm:propositionRequests": [SCOPE], **fields}


def problem_of(body: Any) -> dict[str, Any]:
    with pytest.raises(ApiProblem) as caught:
        parse(body)
    result: dict[str, Any] = orjson.loads(caught.value.response().body)
    return result


def test_a_full_request() -> None:
    parsed = parse(
        {
            "xdm:propositionRequests": [{**SCOPE, "xdm:itemCount": 3}],
            "xdm:profiles": [
                {
                    "xdm:identityMap": EMAIL,
                    "xdm:decisionRequestId": "req-1",
                    "xdm:contextData": [{"@type": "t", "xdm:data": {"k": 1}}],
                    "offerbase:profile": {"age": 30},
                }
            ],
            "xdm:allowDuplicatePropositions": {"xdm:acrossActivities": False},
            "xdm:responseFormat": {
                "xdm:includeContent": True,
                "xdm:includeMetadata": {"xdm:option": ["name", "characteristics"]},
            },
            "xdm:dryRun": True,
        },
        trace_param=True,
    )
    assert parsed.scopes == [ScopeRequest("dec", "web", 3)]
    assert parsed.identity_map == EMAIL
    assert parsed.decision_request_id == "req-1"
    assert parsed.context == {"t": {"k": 1}}
    assert parsed.inline_profile == {"age": 30}
    assert (parsed.across_activities, parsed.across_placements) == (False, None)
    assert parsed.include_content is True
    assert parsed.metadata.option == frozenset({"name", "characteristics"})
    assert parsed.metadata.activity == frozenset()
    assert (parsed.dry_run, parsed.trace) == (True, True)


def test_unprefixed_names_are_accepted_and_the_prefixed_one_wins() -> None:
    plain = parse({"xdm:propositionRequests": [{"activityId": "d", "placementId": "p"}]})
    assert plain.scopes == [ScopeRequest("d", "p", None)]
    count = parse({"xdm:propositionRequests": [{**SCOPE, "itemCount": 2}]})
    assert count.scopes == [ScopeRequest("dec", "web", 2)]
    both = {**SCOPE, "xdm:itemCount": 1, "activityId": 5, "itemCount": "x"}
    assert parse({"xdm:propositionRequests": [both]}).scopes == [ScopeRequest("dec", "web", 1)]
    context = parse(
        request(
            **{
                "xdm:profiles": [
                    {"xdm:contextData": [{"@type": "a", "data": 1}, {"@type": "b", "data": 2}]}
                ]
            }
        )
    )
    assert context.context == {"a": 1, "b": 2}
    empty = parse(request(**{"xdm:profiles": [{"xdm:contextData": [{"@type": "a"}]}]}))
    assert empty.context == {"a": {}}


def test_the_identity_map_is_passed_on_as_sent() -> None:
    identities = {"Email": [{"id": "a@b.c", "authenticatedState": "ambiguous"}]}
    body = request(**{"xdm:profiles": [{"xdm:identityMap": identities}]})
    sent = copy.deepcopy(body)
    assert parse(body).identity_map == identities
    assert body == sent  # the parser never changes its input


def test_null_and_empty_optional_members_read_as_absent() -> None:
    nulls = parse(
        {
            "xdm:propositionRequests": [{**SCOPE, "xdm:itemCount": None}],
            "xdm:profiles": None,
            "xdm:allowDuplicatePropositions": None,
            "xdm:responseFormat": {"xdm:includeContent": None, "xdm:includeMetadata": None},
            "xdm:dryRun": None,
            "offerbase:trace": None,
        }
    )
    falsy = parse(
        request(
            **{
                "xdm:allowDuplicatePropositions": False,
                "xdm:responseFormat": {"xdm:includeMetadata": []},
            }
        )
    )
    for parsed in (nulls, falsy):
        assert parsed.scopes == [ScopeRequest("dec", "web", None)]
        assert (parsed.across_activities, parsed.include_content, parsed.dry_run) == (
            None,
            None,
            False,
        )
        assert parsed.identity_map == {}
        assert parsed.metadata.activity == frozenset()


@pytest.mark.parametrize(
    ("body", "status", "pointer", "detail"),
    [
        ([SCOPE], 400, "", "the body must be a JSON object"),
        ({}, 400, "/xdm:propositionRequests", "must be a non-empty array of "),
        (request(**{"xdm:propositionRequests": []}), 400, "/xdm:propositionRequests", "must be"),
        (
            {"xdm:propositionRequests": [SCOPE] * (MAX_SCOPES + 1)},
            422,
            "/xdm:propositionRequests",
            f"at most {MAX_SCOPES} proposition requests are allowed",
        ),
        ({"xdm:propositionRequests": [SCOPE, 5]}, 400, "/xdm:propositionRequests/1", "must be"),
        (
            {"xdm:propositionRequests": [{"xdm:placementId": "p"}]},
            400,
            "/xdm:propositionRequests/0/xdm:activityId",
            "is required (a decision id)",
        ),
        (
            {"xdm:propositionRequests": [{"xdm:activityId": "d", "placementId": ""}]},
            400,
            "/xdm:propositionRequests/0/xdm:placementId",
            "is required (a placement id)",
        ),
        (
            {"xdm:propositionRequests": [{**SCOPE, "xdm:itemCount": True}]},
            400,
            "/xdm:propositionRequests/0/xdm:itemCount",
            "must be an integer",
        ),
        (
            {"xdm:propositionRequests": [{**SCOPE, "itemCount": 0}]},
            422,
            "/xdm:propositionRequests/0/xdm:itemCount",
            f"must be between 1 and {MAX_ITEM_COUNT}",
        ),
        (
            {"xdm:propositionRequests": [{**SCOPE, "xdm:itemCount": 30}] * 4},
            422,
            "/xdm:propositionRequests",
            f"at most {MAX_OPTIONS_PER_RESPONSE} offers per response; 120 were requested",
        ),
        (request(**{"xdm:profiles": [5]}), 400, "/xdm:profiles", "must be an array holding"),
        (
            request(**{"xdm:profiles": [{"offerbase:profile": []}]}),
            400,
            "/xdm:profiles/0/offerbase:profile",
            "must be an object of profile attributes",
        ),
        (
            request(**{"xdm:profiles": [{"xdm:identityMap": {"a/b": [{"id": 1}]}}]}),
            400,
            "/xdm:profiles/0/xdm:identityMap/a/b",
            "must be an array of {xdm:id, primary}",
        ),
        (
            request(**{"xdm:profiles": [{"xdm:contextData": [{"xdm:data": {}}]}]}),
            400,
            "/xdm:profiles/0/xdm:contextData/0",
            "must be an object with a string @type",
        ),
        (
            request(**{"xdm:responseFormat": {"xdm:includeMetadata": {"xdm:option": [1]}}}),
            400,
            "/xdm:responseFormat/xdm:includeMetadata/xdm:option",
            "must be an array of strings",
        ),
        (request(**{"xdm:responseFormat": True}), 400, "/xdm:responseFormat", "must be an object"),
        (request(**{"offerbase:trace": 1}), 400, "/offerbase:trace", "must be true or false"),
        (
            request(**{"xdm:profiles": [{"xdm:identityMap": _identities(MAX_IDENTITIES + 1)}]}),
            422,
            "/xdm:profiles/0/xdm:identityMap",
            f"at most {MAX_IDENTITIES} identities per request; {MAX_IDENTITIES + 1} were sent",
        ),
    ],
)
def test_each_member_reports_its_own_problem(
    body: Any, status: int, pointer: str, detail: str
) -> None:
    problem = problem_of(body)
    assert problem["status"] == status
    assert problem["title"] == ("Bad Request" if status == 400 else "Unprocessable Entity")
    assert problem["detail"].startswith(f"{pointer}: {detail}")
    assert problem["errors"] == [
        {"pointer": pointer, "detail": problem["detail"][len(pointer) + 2 :]}
    ]


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        # The member that comes first in the API's order wins, whatever order they were sent in.
        (
            {
                "xdm:dryRun": "yes",
                "xdm:profiles": [{"xdm:identityMap": 5}],
                "xdm:allowDuplicatePropositions": 5,
                "xdm:propositionRequests": [SCOPE],
            },
            "/xdm:allowDuplicatePropositions",
        ),
        (
            {"xdm:dryRun": "yes", "xdm:profiles": [{"xdm:identityMap": 5}], **request()},
            "/xdm:profiles/0/xdm:identityMap",
        ),
        (
            {
                "offerbase:trace": 1,
                "xdm:allowDuplicatePropositions": {"xdm:acrossActivities": 1},
                **request(),
            },
            "/offerbase:trace",
        ),
        (
            {
                "xdm:profiles": [{}, {}],
                "xdm:propositionRequests": [{**SCOPE, "xdm:itemCount": 30}] * 4,
            },
            "/xdm:propositionRequests",
        ),
        (
            {"xdm:propositionRequests": [{"xdm:activityId": "d"}, {"xdm:placementId": "p"}]},
            "/xdm:propositionRequests/0/xdm:placementId",
        ),
    ],
)
def test_with_several_errors_the_first_in_the_api_order_is_reported(
    body: dict[str, Any], pointer: str
) -> None:
    assert problem_of(body)["errors"][0]["pointer"] == pointer


def test_the_served_request_schema_is_generated_from_the_model(app) -> None:  # type: ignore[no-untyped-def]
    document = app.openapi()
    operation = document["paths"]["/data/core/ods/decisions"]["post"]
    for content in operation["requestBody"]["content"].values():
        assert content["schema"] == {"$ref": "#/components/schemas/DecisionRequestBody"}
    components = document["components"]["schemas"]
    for name, schema in decisioning_openapi.REQUEST_COMPONENTS.items():
        assert components[name] == schema
    scopes = components["DecisionRequestBody"]["properties"]["xdm:propositionRequests"]
    assert (scopes["minItems"], scopes["maxItems"]) == (1, MAX_SCOPES)
    count = components["DecisionScope"]["properties"]["xdm:itemCount"]
    # Null is read as absent, but not part of the documented contract.
    assert count == {"type": "integer", "minimum": 1, "maximum": MAX_ITEM_COUNT}
    assert components["DecisionScope"]["required"] == ["xdm:activityId", "xdm:placementId"]


def test_an_integral_float_item_count_is_that_integer() -> None:
    # JSON Schema's `integer` (the served schema's type) includes 2.0, as the catalog does.
    parsed = parse(request(**{"xdm:propositionRequests": [{**SCOPE, "xdm:itemCount": 2.0}]}))
    assert parsed.scopes[0].item_count == 2
    assert isinstance(parsed.scopes[0].item_count, int)
    problem = problem_of(request(**{"xdm:propositionRequests": [{**SCOPE, "xdm:itemCount": 2.5}]}))
    assert problem["errors"][0]["pointer"] == "/xdm:propositionRequests/0/xdm:itemCount"
