"""Optimistic concurrency (If-Match) and parallel writers: nothing lost, no duplicate ids."""

from __future__ import annotations

import asyncio

import pytest
from factories import Api, body, problem

N = 30


@pytest.fixture
def api(client, tenant) -> Api:
    return Api(client, tenant)


RENAME = [{"op": "replace", "path": "/name", "value": "Renamed"}]


@pytest.mark.parametrize("if_match", ['"1"', "1", 'W/"1"', "*", '"7", "1"'])
async def test_if_match_current_etag_succeeds(api, if_match):
    tag = await api.create("tag")
    response = await api.patch("tag", tag, RENAME, headers={"If-Match": if_match})
    assert response.status_code == 200, response.text
    assert response.json()["etag"] == 2


@pytest.mark.parametrize("method", ["patch", "put", "delete"])
@pytest.mark.parametrize("if_match", ['"1"', "1", 'W/"1"'])
async def test_stale_if_match_is_412_and_changes_nothing(api, method, if_match):
    tag = await api.create("tag", description="v1")
    assert (await api.patch("tag", tag, RENAME)).status_code == 200  # now etag 2
    before = await api.read("tag", tag)
    headers = {"If-Match": if_match}
    if method == "patch":
        response = await api.patch("tag", tag, [{"op": "remove", "path": "/description"}], headers)
    elif method == "put":
        response = await api.put("tag", tag, body("tag"), headers)
    else:
        response = await api.delete("tag", tag, headers)
    problem(response, 412)
    assert await api.read("tag", tag) == before

    # With the current etag the same request goes through.
    current = {"If-Match": '"2"'}
    if method == "patch":
        ok = await api.patch("tag", tag, [{"op": "remove", "path": "/description"}], current)
    elif method == "put":
        ok = await api.put("tag", tag, body("tag"), current)
    else:
        ok = await api.delete("tag", tag, current)
    assert ok.status_code == 200, ok.text


async def test_if_match_star_on_delete_and_missing_entity(api):
    tag = await api.create("tag")
    assert (await api.delete("tag", tag, {"If-Match": "*"})).status_code == 200
    problem(await api.delete("tag", tag, {"If-Match": "*"}), 404)


async def test_parallel_patches_appending_to_an_array_lose_nothing(api):
    offer = await api.create("personalized-offer", labels=[])
    results = await asyncio.gather(
        *(
            api.patch(
                "personalized-offer", offer, [{"op": "add", "path": "/labels/-", "value": f"l/{i}"}]
            )
            for i in range(N)
        )
    )
    assert [r.status_code for r in results] == [200] * N
    assert sorted(r.json()["etag"] for r in results) == list(range(2, N + 2))
    form = await api.read("personalized-offer", offer)
    assert sorted(form["labels"]) == sorted(f"l/{i}" for i in range(N))
    assert form["etag"] == 1 + N


async def test_parallel_patches_replacing_distinct_fields_lose_nothing(api):
    fields = {f"attr{i}": "" for i in range(N)}
    offer = await api.create("personalized-offer", characteristics=fields)
    results = await asyncio.gather(
        *(
            api.patch(
                "personalized-offer",
                offer,
                [{"op": "replace", "path": f"/characteristics/attr{i}", "value": f"v{i}"}],
            )
            for i in range(N)
        )
    )
    assert [r.status_code for r in results] == [200] * N
    form = await api.read("personalized-offer", offer)
    assert form["characteristics"] == {f"attr{i}": f"v{i}" for i in range(N)}
    assert form["etag"] == 1 + N


async def test_parallel_patches_with_the_same_if_match_exactly_one_wins(api):
    tag = await api.create("tag")
    results = await asyncio.gather(
        *(
            api.patch(
                "tag",
                tag,
                [{"op": "replace", "path": "/description", "value": f"d{i}"}],
                headers={"If-Match": '"1"'},
            )
            for i in range(10)
        )
    )
    statuses = sorted(r.status_code for r in results)
    assert statuses == [200] + [412] * 9
    assert (await api.read("tag", tag))["etag"] == 2


async def test_parallel_creates_of_distinct_ids(api):
    results = await asyncio.gather(
        *(api.post("placement", body("placement"), f"pl{i}") for i in range(N))
    )
    assert [r.status_code for r in results] == [201] * N
    assert sorted(await api.ids("placement")) == sorted(f"pl{i}" for i in range(N))
    auto = await asyncio.gather(*(api.post("tag", body("tag")) for _ in range(N)))
    assert [r.status_code for r in auto] == [201] * N
    assert len({r.json()["id"] for r in auto}) == N
    assert len(await api.ids("tag")) == N


async def test_parallel_creates_of_the_same_id_exactly_one_wins(api):
    results = await asyncio.gather(
        *(api.post("placement", body("placement", name=f"n{i}"), "samePlacement") for i in range(N))
    )
    statuses = sorted(r.status_code for r in results)
    assert statuses == [201] + [409] * (N - 1)
    winner = next(r for r in results if r.status_code == 201)
    assert await api.ids("placement") == ["samePlacement"]
    form = await api.read("placement", "samePlacement")
    assert form["etag"] == 1
    assert form["createdBy"] == winner.json()["createdBy"]


async def test_parallel_creates_of_the_same_tag_name_exactly_one_wins(api):
    results = await asyncio.gather(
        *(api.post("tag", body("tag", name="Only once")) for _ in range(10))
    )
    assert sorted(r.status_code for r in results) == [201] + [422] * 9
    assert len(await api.ids("tag")) == 1


async def test_parallel_delete_and_reference_never_leave_a_dangling_reference(api):
    """Either the delete wins (the offer is refused) or the offer wins (the delete is 409)."""
    for round_ in range(5):
        placement = await api.create("placement")
        offer_body = body(
            "personalized-offer",
            representations=[
                {
                    "channel": "https://ns.adobe.com/xdm/channel-types/web",
                    "placement": placement,
                    "components": [{"type": "html", "format": "text/html", "content": "x"}],
                }
            ],
        )
        created, deleted = await asyncio.gather(
            api.post("personalized-offer", offer_body), api.delete("placement", placement)
        )
        assert {(created.status_code, deleted.status_code)} <= {(201, 409), (422, 200)}, round_
        placement_exists = (await api.get("placement", placement)).status_code == 200
        assert placement_exists == (created.status_code == 201)
