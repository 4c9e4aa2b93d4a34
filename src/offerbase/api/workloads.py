"""Batch decisioning over HTTP, as Adobe's Batch Decisioning API:
`POST /data/core/dwm/workloads/decisions` queues a workload (one decision per profile of one
audience, written to a dataset), `GET .../decisions/{workloadId}` follows it. Datasets, where
results go, are `/data/core/dwm/datasets` (an Offerbase extension: Adobe's datasets live in its
Catalog Service, a separate API; here a dataset is only an output location). Authenticated like
the Offer Library API; everything is found in the caller's sandbox only. The runner is
api/workload_runs.py.
"""

from __future__ import annotations

import random
import secrets
import time
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from starlette.responses import Response

from offerbase.api import schemas
from offerbase.api.auth import CallerDep
from offerbase.api.bodies import read_json
from offerbase.api.deps import ServicesDep
from offerbase.api.problems import ApiProblem, field_error
from offerbase.api.responses import json_response
from offerbase.api.store_problems import transaction
from offerbase.catalog.specs import MAX_ITEM_COUNT
from offerbase.engine import DecisionError, DecisionRequest, ScopeRequest, decide
from offerbase.engine.model import MAX_SCOPES
from offerbase.store import datasets as dataset_store
from offerbase.store import workloads as store
from offerbase.store.errors import MAX_NAME_CHARS

DATASETS = "/data/core/dwm/datasets"
DECISIONS = "/data/core/dwm/workloads/decisions"
router = APIRouter(tags=["Batch decisioning"])
MAX_SEGMENT_ID_CHARS = 255
MAX_ENTITY_ID_CHARS = 255

# -- published schemas: what the routes check, as they check it ------------------------------

_DATASET_ID_SCHEMA = {
    "type": "string",
    "pattern": dataset_store.ID_PATTERN,
    "maxLength": 64,
}
DATASET_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["id", "org", "sandbox", "name", "path", "created"],
    "properties": {
        "id": _DATASET_ID_SCHEMA,
        "org": {"type": "string"},
        "sandbox": {"type": "string"},
        "name": {"type": "string"},
        "path": {"type": "string"},
        "created": {"type": "string"},
    },
}
DATASET_CREATE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "additionalProperties": False,
    "properties": {"name": {"type": "string", "maxLength": MAX_NAME_CHARS}},
}
_DATASET_LIST_SCHEMA = {
    "type": "object",
    "required": ["results", "count"],
    "properties": {
        "results": {"type": "array", "items": DATASET_SCHEMA},
        "count": {"type": "integer"},
    },
}
_ID_STRING = {"type": "string", "minLength": 1, "maxLength": MAX_ENTITY_ID_CHARS}
WORKLOAD_REQUEST_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["xdm:segmentIds", "xdm:dataSetId", "xdm:propositionRequests"],
    "properties": {
        "xdm:segmentIds": {
            "type": "array",
            "minItems": 1,
            "maxItems": 1,
            "items": {"type": "string", "minLength": 1, "maxLength": MAX_SEGMENT_ID_CHARS},
            "description": "Exactly one audience id: the stored profiles whose "
            "segmentMembership holds it (realized or existing).",
        },
        "xdm:dataSetId": _DATASET_ID_SCHEMA,
        "xdm:propositionRequests": {
            "type": "array",
            "minItems": 1,
            "maxItems": MAX_SCOPES,
            "items": {
                "type": "object",
                "required": ["xdm:activityId", "xdm:placementId"],
                "properties": {
                    "xdm:activityId": _ID_STRING,
                    "xdm:placementId": _ID_STRING,
                    "xdm:itemCount": {"type": "integer", "minimum": 1, "maximum": MAX_ITEM_COUNT},
                },
            },
        },
        "xdm:includeContent": {"type": "boolean"},
    },
}
WORKLOAD_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["@id", "xdm:imsOrgId", "ode:createDate", "ode:status"],
    "properties": {
        "@id": {"type": "string"},
        "xdm:imsOrgId": {"type": "string"},
        "ode:createDate": {"type": "integer"},
        "ode:status": {
            "type": "string",
            "enum": [store.QUEUED, *store.RUNNING, *store.FINISHED],
        },
        "ode:statusDetail": {"type": "object"},
    },
}


def _json(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": schema}}}}


def _bad(pointer: str, message: str, status: int = 400) -> ApiProblem:
    title = {400: "Bad Request", 404: "Not Found", 422: "Unprocessable Entity"}[status]
    return ApiProblem(
        status, title, f"{pointer}: {message}", errors=[field_error(pointer, message)]
    )


DatasetId = Annotated[str, Path(alias="datasetId", json_schema_extra=_DATASET_ID_SCHEMA)]
WorkloadId = Annotated[
    str,
    # Published only: a malformed id is answered like an unknown one, 404.
    Path(alias="workloadId", json_schema_extra={"type": "string", "pattern": store.ID_PATTERN}),
]

# -- datasets --------------------------------------------------------------------------------


@router.post(
    DATASETS,
    summary="Create a dataset: where batch decisioning results go (under the data directory)",
    status_code=201,
    openapi_extra=_body(DATASET_CREATE_SCHEMA),
    responses={
        **schemas.COMMON_RESPONSES,
        201: _json("Created; the dataset. Location names it.", DATASET_SCHEMA),
        413: schemas.problem_response("The body is too large."),
        422: schemas.problem_response("Invalid field values; `errors` names each JSON pointer."),
    },
)
async def create_dataset(request: Request, caller: CallerDep, services: ServicesDep) -> Response:
    body = await read_json(request)
    if not isinstance(body, dict):
        raise _bad("", "The body is a JSON object.", 422)
    unknown = sorted(set(body) - {"name"})
    if unknown:
        # No `path` over HTTP: a client must not choose where the server writes.
        raise _bad(f"/{unknown[0]}", "Unknown field; a dataset has name.", 422)
    name = body.get("name", "")
    if not isinstance(name, str):
        raise _bad("/name", "The name is a string.", 422)
    async with transaction(services.db, write=True) as conn:
        created = await dataset_store.create_dataset(
            conn, caller.sandbox, data_dir=services.settings.data_dir, name=name
        )
    return json_response(created.shown(), 201, headers={"Location": f"{DATASETS}/{created.id}"})


@router.get(
    DATASETS,
    summary="List the sandbox's datasets, oldest first",
    responses={
        **schemas.COMMON_RESPONSES,
        200: _json(
            f"Every dataset (at most {dataset_store.MAX_PER_SANDBOX}).", _DATASET_LIST_SCHEMA
        ),
    },
)
async def list_datasets(caller: CallerDep, services: ServicesDep) -> Response:
    async with transaction(services.db, write=False) as conn:
        found = await dataset_store.list_datasets(conn, caller.sandbox)
    results = [dataset.shown() for dataset in found]
    return json_response({"results": results, "count": len(results)})


@router.get(
    f"{DATASETS}/{{datasetId}}",
    summary="Read a dataset",
    responses={
        **schemas.COMMON_RESPONSES,
        200: _json("The dataset.", DATASET_SCHEMA),
        404: schemas.problem_response("No dataset with this id in the caller's sandbox."),
    },
)
async def get_dataset(caller: CallerDep, services: ServicesDep, dataset_id: DatasetId) -> Response:
    async with transaction(services.db, write=False) as conn:
        found = await dataset_store.get_dataset(conn, caller.sandbox, dataset_id)
    if found is None:
        raise ApiProblem(404, "Not Found", f"No dataset with id '{dataset_id[:80]}' here.")
    return json_response(found.shown())


# -- workloads -------------------------------------------------------------------------------


def _string(value: Any, pointer: str, limit: int) -> str:
    if not isinstance(value, str) or not value:
        raise _bad(pointer, "Must be a non-empty string.")
    if len(value) > limit:
        raise _bad(pointer, f"At most {limit} characters.")
    return value


def parse_workload_request(body: Any) -> dict[str, Any]:
    """Adobe's request, checked field by field (400 naming the JSON pointer), normalised into
    what the runner reads: segmentId, dataSetId, propositionRequests, includeContent."""
    if not isinstance(body, dict):
        raise _bad("", "The body is a JSON object.")
    for name in WORKLOAD_REQUEST_SCHEMA["required"]:
        if name not in body:
            raise _bad(f"/{name}", "Required.")
    segments = body["xdm:segmentIds"]
    if not isinstance(segments, list) or len(segments) != 1:
        raise _bad("/xdm:segmentIds", "Exactly one audience id, in an array.")
    segment_id = _string(segments[0], "/xdm:segmentIds/0", MAX_SEGMENT_ID_CHARS)
    dataset_id = body["xdm:dataSetId"]
    if not isinstance(dataset_id, str) or not dataset_store.valid_id(dataset_id):
        raise _bad("/xdm:dataSetId", "A dataset id (1 to 64 of A-Z a-z 0-9 . _ : -).")
    scopes = body["xdm:propositionRequests"]
    if not isinstance(scopes, list) or not 1 <= len(scopes) <= MAX_SCOPES:
        raise _bad("/xdm:propositionRequests", f"An array of 1 to {MAX_SCOPES} requests.")
    parsed: list[dict[str, Any]] = []
    for index, scope in enumerate(scopes):
        here = f"/xdm:propositionRequests/{index}"
        if not isinstance(scope, dict):
            raise _bad(here, "An object with xdm:activityId and xdm:placementId.")
        for name in ("xdm:activityId", "xdm:placementId"):
            if name not in scope:
                raise _bad(f"{here}/{name}", "Required.")
        item: dict[str, Any] = {
            "activityId": _string(scope["xdm:activityId"], f"{here}/xdm:activityId", 255),
            "placementId": _string(scope["xdm:placementId"], f"{here}/xdm:placementId", 255),
        }
        if "xdm:itemCount" in scope:
            count = scope["xdm:itemCount"]
            if isinstance(count, float) and count.is_integer():
                count = int(count)  # 3.0 is an integer to JSON Schema
            if isinstance(count, bool) or not isinstance(count, int):
                raise _bad(f"{here}/xdm:itemCount", "An integer.")
            if not 1 <= count <= MAX_ITEM_COUNT:
                raise _bad(f"{here}/xdm:itemCount", f"From 1 to {MAX_ITEM_COUNT}; {count} given.")
            item["itemCount"] = count
        parsed.append(item)
    include = body.get("xdm:includeContent", False)
    if not isinstance(include, bool):
        raise _bad("/xdm:includeContent", "true or false.")
    return {
        "segmentId": segment_id,
        "dataSetId": dataset_id,
        "propositionRequests": parsed,
        "includeContent": include,
    }


@router.post(
    DECISIONS,
    summary="Start a batch decisioning workload: a decision for every profile of one audience",
    openapi_extra=_body(WORKLOAD_REQUEST_SCHEMA),
    responses={
        **schemas.COMMON_RESPONSES,
        200: _json("Queued; follow it with GET .../decisions/{workloadId}.", WORKLOAD_SCHEMA),
        404: schemas.problem_response("The dataset, decision or placement does not exist."),
        413: schemas.problem_response("The body is too large."),
        422: schemas.problem_response("The decision cannot be used (not live, out of dates)."),
    },
)
async def start_workload(request: Request, caller: CallerDep, services: ServicesDep) -> Response:
    parsed = parse_workload_request(await read_json(request))
    snapshot = await services.snapshots.get(caller.sandbox, recheck=True)
    scopes = [
        ScopeRequest(s["activityId"], s["placementId"], s.get("itemCount"))
        for s in parsed["propositionRequests"]
    ]
    try:
        # The engine's own checks of every scope (unknown ids 404, a decision that is not
        # live 422, ...), before anything is queued: an empty profile's decision, discarded.
        decide(
            snapshot,
            DecisionRequest(scopes=scopes),
            {},
            {},
            now=services.clock(),
            rng=random.Random(0),
        )
    except DecisionError as exc:
        errors = [field_error(exc.pointer, exc.detail)] if exc.pointer else []
        raise ApiProblem(exc.status, exc.title, exc.detail, errors=errors) from exc
    # A seed per workload, kept with it: its random tie-breaks can be replayed.
    parsed["seed"] = secrets.randbits(63)
    async with transaction(services.db, write=True) as conn:
        dataset = await dataset_store.get_dataset(conn, caller.sandbox, parsed["dataSetId"])
        if dataset is None:
            raise _bad("/xdm:dataSetId", "No dataset with this id in this sandbox.", 404)
        created = await store.create_workload(
            conn, caller.sandbox, dataset, parsed, int(time.time() * 1000)
        )
    services.workloads.wake()
    return json_response(created.shown(), 200, headers={"Location": f"{DECISIONS}/{created.id}"})


@router.get(
    f"{DECISIONS}/{{workloadId}}",
    summary="Read a batch decisioning workload's status",
    responses={
        **schemas.COMMON_RESPONSES,
        200: _json("The workload: ode:status and, once known, ode:statusDetail.", WORKLOAD_SCHEMA),
        404: schemas.problem_response("No workload with this id in the caller's sandbox."),
    },
)
async def get_workload(
    caller: CallerDep, services: ServicesDep, workload_id: WorkloadId
) -> Response:
    async with transaction(services.db, write=False) as conn:
        found = await store.get_workload(conn, caller.sandbox, workload_id)
    if found is None:
        raise ApiProblem(404, "Not Found", f"No workload with id '{workload_id[:80]}' here.")
    return json_response(found.shown())
