"""The typed model of a Decisioning API request body, and its limits.

One model for two uses: decision_request.parse() decodes bodies with it (msgspec), and the
served OpenAPI request schema is generated from it (decisioning_openapi.py). Each member also
names the problem the API reports for it: `problem()` (400) and, for the limits, `limit()` or
`size_limit()` (422); body_problems.py finds the member to blame.
"""

from __future__ import annotations

from typing import Annotated, Any

from msgspec import UNSET, Meta, Struct, field

from offerbase.api.body_problems import limit, problem, size_limit
from offerbase.engine import MAX_ITEM_COUNT, MAX_SCOPES

# Offerbase extensions (documented in docs/decisioning-api.md).
INLINE_PROFILE = "offerbase:profile"
TRACE = "offerbase:trace"
# Identities in a request's identityMap, all namespaces together (Offerbase's bound: each is a
# candidate of the profile lookup, which reads them IDENTITY_CHUNK at a time).
MAX_IDENTITIES = 50

Flag = Annotated[bool, problem("must be true or false")]
Strings = Annotated[list[str], problem("must be an array of strings")]


class DecisionScope(Struct, frozen=True):
    """One proposition request: a decision (activity) and a placement."""

    activity_id: Annotated[str, Meta(min_length=1), problem("is required (a decision id)")] = field(
        name="xdm:activityId"
    )
    placement_id: Annotated[str, Meta(min_length=1), problem("is required (a placement id)")] = (
        field(name="xdm:placementId")
    )
    item_count: (
        Annotated[
            int,
            limit(f"must be between 1 and {MAX_ITEM_COUNT}", ge=1, le=MAX_ITEM_COUNT),
            problem("must be an integer"),
        ]
        | None
    ) = field(name="xdm:itemCount", default=None)


class DecisionIdentity(Struct, frozen=True):
    id: str = field(name="xdm:id")
    # Documented as a boolean, never checked: the store reads it as `primary is True`.
    primary: Annotated[Any, Meta(extra_json_schema={"type": "boolean"})] = UNSET


class DecisionContextData(Struct, frozen=True):
    type: str = field(name="@type")
    data: Any = field(name="xdm:data", default=UNSET)


class DecisionProfile(Struct, frozen=True):
    identity_map: (
        Annotated[
            dict[
                str,
                Annotated[list[DecisionIdentity], problem("must be an array of {xdm:id, primary}")],
            ],
            problem("must map namespaces to arrays of {xdm:id, primary}"),
        ]
        | None
    ) = field(name="xdm:identityMap", default=None)
    decision_request_id: Annotated[str, problem("must be a string")] | None = field(
        name="xdm:decisionRequestId", default=None
    )
    context_data: (
        Annotated[
            list[Annotated[DecisionContextData, problem("must be an object with a string @type")]],
            problem("must be an array of {@type, xdm:data}"),
        ]
        | None
    ) = field(name="xdm:contextData", default=None)
    inline_profile: (
        Annotated[dict[str, Any], problem("must be an object of profile attributes")] | None
    ) = field(name=INLINE_PROFILE, default=None)


class DecisionDuplicates(Struct, frozen=True):
    across_activities: Flag | None = field(name="xdm:acrossActivities", default=None)
    across_placements: Flag | None = field(name="xdm:acrossPlacements", default=None)


class DecisionIncludeMetadata(Struct, frozen=True):
    activity: Strings | None = field(name="xdm:activity", default=None)
    option: Strings | None = field(name="xdm:option", default=None)
    placement: Strings | None = field(name="xdm:placement", default=None)


class DecisionResponseFormat(Struct, frozen=True):
    include_content: Flag | None = field(name="xdm:includeContent", default=None)
    include_metadata: Annotated[DecisionIncludeMetadata, problem("must be an object")] | None = (
        field(name="xdm:includeMetadata", default=None)
    )


Scopes = Annotated[
    list[Annotated[DecisionScope, problem("must be an object")]],
    Meta(min_length=1),
    size_limit(f"at most {MAX_SCOPES} proposition requests are allowed", max_length=MAX_SCOPES),
    problem("must be a non-empty array of {xdm:activityId, xdm:placementId}"),
]


class DecisionRequestBody(Struct, frozen=True):
    """A Decisioning API request."""

    scopes: Scopes = field(name="xdm:propositionRequests")
    profiles: (
        Annotated[
            list[DecisionProfile],
            Meta(min_length=1, max_length=1),
            problem("must be an array holding exactly one profile"),
        ]
        | None
    ) = field(name="xdm:profiles", default=None)
    duplicates: Annotated[DecisionDuplicates, problem("must be an object")] | None = field(
        name="xdm:allowDuplicatePropositions", default=None
    )
    response_format: Annotated[DecisionResponseFormat, problem("must be an object")] | None = field(
        name="xdm:responseFormat", default=None
    )
    dry_run: Flag | None = field(name="xdm:dryRun", default=None)
    trace: Flag | None = field(name=TRACE, default=None)


# The model as body_problems.failures() takes it: with the problem of a body that is no object.
Body = Annotated[DecisionRequestBody, problem("the body must be a JSON object")]
