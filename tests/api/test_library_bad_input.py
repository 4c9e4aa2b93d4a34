"""Bad input: always a 4xx problem naming the field, never a 500, never a partial write."""

from __future__ import annotations

import pytest
from factories import ALL_KINDS, Api, body, criterion, html_representation, pointers, problem, url


@pytest.fixture
def api(client, tenant) -> Api:
    return Api(client, tenant)


async def post_raw(api: Api, kind: str, content: bytes, content_type: str | None):
    headers = dict(api.headers)
    if content_type is not None:
        headers["Content-Type"] = content_type
    return await api.client.post(url(kind), content=content, headers=headers)


async def assert_nothing_stored(api: Api, kind: str) -> None:
    listed = await api.list(kind)
    assert listed.status_code == 200
    assert listed.json()["total"] == 0


@pytest.mark.parametrize("kind", ALL_KINDS)
@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b'{"name": "x",', "application/json", 400),
        (b"{'name': 'x'}", "application/json", 400),
        (b"", "application/json", 400),
        (b"   ", "application/json", 400),
        (b'{"name": "x"}', "text/plain", 400),
        (b'{"name": "x"}', None, 400),
        (b"name=x", "application/x-www-form-urlencoded", 400),
        (b"[1, 2]", "application/json", 422),
        (b'"just a string"', "application/json", 422),
        (b"null", "application/json", 422),
        (b"\xff\xfe", "application/json", 400),
        (b'{"name": 1' + b"0" * 30 + b"}", "application/json", 422),  # not a string
        (b"[" * 5000 + b"]" * 5000, "application/json", 400),  # nesting too deep
    ],
)
async def test_unparseable_or_wrong_shape_bodies(api, kind, content, content_type, status):
    response = await post_raw(api, kind, content, content_type)
    payload = problem(response, status)
    if content_type in ("text/plain", None, "application/x-www-form-urlencoded"):
        assert payload["detail"].startswith("A valid content-type must be specified")
        assert payload["type"].endswith("/bad-request")
        assert payload["errors"][0]["pointer"] == "content-type"
    await assert_nothing_stored(api, kind)


async def test_json_media_type_variants_are_accepted(api):
    for content_type in ("application/json; charset=utf-8", "application/vnd.adobe.xdm+json"):
        response = await post_raw(
            api, "tag", b'{"name": "%s"}' % content_type.encode(), content_type
        )
        assert response.status_code == 201, (content_type, response.text)


@pytest.mark.parametrize(
    ("kind", "fields", "pointer"),
    [
        ("tag", {"name": 5}, "/name"),
        ("tag", {"name": ""}, "/name"),
        ("tag", {"name": None}, "/name"),
        ("tag", {"description": ["x"]}, "/description"),
        ("tag", {"colour": "red"}, "/colour"),
        ("personalized-offer", {"status": "bogus"}, "/status"),
        ("personalized-offer", {"status": "DRAFT"}, "/status"),
        ("personalized-offer", {"rank": {"priority": "high"}}, "/rank/priority"),
        ("personalized-offer", {"rank": {"priority": -1}}, "/rank/priority"),
        ("personalized-offer", {"rank": {"priority": True}}, "/rank/priority"),
        ("personalized-offer", {"rank": {"weight": 1}}, "/rank/weight"),
        ("personalized-offer", {"labels": "core/C1"}, "/labels"),
        (
            "personalized-offer",
            {"selectionConstraint": {"startDate": "yesterday"}},
            "/selectionConstraint/startDate",
        ),
        (
            "personalized-offer",
            {
                "selectionConstraint": {
                    "startDate": "2024-02-01T00:00:00Z",
                    "endDate": "2024-01-01T00:00:00Z",
                }
            },
            "/selectionConstraint/endDate",
        ),
        (
            "decision",
            {"startDate": "2024-02-01T00:00:00.000+00:00", "endDate": "2024-01-31T00:00:00Z"},
            "/endDate",
        ),
        ("decision", {"status": "approved"}, "/status"),
        ("placement", {"itemCount": 31}, "/itemCount"),
        ("placement", {"itemCount": 0}, "/itemCount"),
        ("placement", {"componentType": "video"}, "/componentType"),
        ("placement", {"channel": "web"}, "/channel"),
        ("placement", {"allowDuplicatePlacements": "no"}, "/allowDuplicatePlacements"),
        ("collection", {"filterType": "some-tags"}, "/filterType"),
        ("ranking-formula", {"returnType": {"type": "string"}}, "/returnType/type"),
        ("decision-rule", {"condition": {"type": "SQL", "value": "true"}}, "/condition/type"),
    ],
)
async def test_invalid_fields_are_422_at_the_pointer(api, kind, fields, pointer):
    response = await api.post(kind, body(kind, **fields))
    payload = problem(response, 422)
    assert pointer in pointers(payload), payload
    await assert_nothing_stored(api, kind)


@pytest.mark.parametrize("kind", ALL_KINDS)
async def test_missing_required_name_is_422(api, kind):
    sent = body(kind)
    del sent["name"]
    assert "/name" in pointers(problem(await api.post(kind, sent), 422))
    await assert_nothing_stored(api, kind)


async def test_every_problem_is_reported_at_once(api):
    sent = body("personalized-offer", status="bogus", rank={"priority": "x"}, extra=1)
    found = set(pointers(problem(await api.post("personalized-offer", sent), 422)))
    assert found == {"/status", "/rank/priority", "/extra"}


async def test_over_guardrail_arrays(api):
    cap = {"limit": 1, "scope": "global", "entity": "offer"}
    response = await api.post(
        "personalized-offer", body("personalized-offer", frequencyCappingConstraints=[cap] * 11)
    )
    assert pointers(problem(response, 422)) == ["/frequencyCappingConstraints"]
    ok = await api.post(
        "personalized-offer", body("personalized-offer", frequencyCappingConstraints=[cap] * 10)
    )
    assert ok.status_code == 201, ok.text

    placements = [f"pl{i}" for i in range(31)]
    response = await api.post("decision", body("decision", criteria=[criterion(placements, "c")]))
    assert "/criteria/0/placements" in pointers(problem(response, 422))

    response = await api.post("personalized-offer", body("personalized-offer", tags=["t"] * 21))
    assert "/tags" in pointers(problem(response, 422))
    response = await api.post(
        "personalized-offer",
        body("personalized-offer", characteristics={f"k{i}": "v" for i in range(31)}),
    )
    assert "/characteristics" in pointers(problem(response, 422))
    assert await api.ids("decision") == []
    assert len(await api.ids("personalized-offer")) == 1


@pytest.mark.parametrize(
    ("kind", "member"),
    [("decision-rule", "condition"), ("ranking-formula", "expression")],
)
async def test_invalid_pql_is_422_with_line_and_column(api, kind, member):
    broken = {"type": "PQL", "format": "pql/text", "value": "profile.age >\n  (1 +"}
    response = await api.post(kind, body(kind, **{member: broken}))
    payload = problem(response, 422)
    assert pointers(payload) == [f"/{member}/value"]
    message = payload["errors"][0]["detail"]
    assert "line 2" in message
    assert "column" in message
    await assert_nothing_stored(api, kind)


async def test_invalid_pql_in_a_patch_changes_nothing(api):
    rule = await api.create("decision-rule")
    before = await api.read("decision-rule", rule)
    ops = [{"op": "replace", "path": "/condition/value", "value": "profile.a == 1"}]
    payload = problem(await api.patch("decision-rule", rule, ops), 422)
    assert pointers(payload) == ["/condition/value"]
    assert "line 1, column" in payload["errors"][0]["detail"]
    assert await api.read("decision-rule", rule) == before


@pytest.mark.parametrize(
    ("ops", "pointer"),
    [
        ([{"op": "replace", "path": "/status", "value": "bogus"}], "/status"),
        ([{"op": "remove", "path": "/name"}], "/name"),
        ([{"op": "add", "path": "/unknownField", "value": 1}], "/unknownField"),
        ([{"op": "replace", "path": "/rank/priority", "value": -5}], "/rank/priority"),
    ],
)
async def test_patch_making_the_entity_invalid_is_422(api, ops, pointer):
    offer = await api.create("personalized-offer")
    before = await api.read("personalized-offer", offer)
    payload = problem(await api.patch("personalized-offer", offer, ops), 422)
    assert pointers(payload) == [pointer]
    assert await api.read("personalized-offer", offer) == before


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b'"replace everything"', 400),
        (b"42", 400),
        (b"true", 400),
        (b"null", 400),
        (b"[42]", 400),
        (b'[{"op": "frobnicate", "path": "/name"}]', 400),
        (b'[{"op": "replace", "path": "name", "value": "x"}]', 400),
        (b'[{"op": "replace", "path": "/name"}]', 400),
        (b'[{"op": "move", "path": "/name"}]', 400),
        (b"[", 400),
        (b"", 400),
    ],
)
async def test_malformed_patch_documents_are_400(api, content, status):
    tag = await api.create("tag")
    before = await api.read("tag", tag)
    headers = {**api.headers, "Content-Type": "application/json"}
    response = await api.client.patch(url("tag", tag), content=content, headers=headers)
    problem(response, status)
    assert await api.read("tag", tag) == before


async def test_patch_and_put_need_a_json_content_type(api):
    tag = await api.create("tag")
    before = await api.read("tag", tag)
    headers = {**api.headers, "Content-Type": "text/plain"}
    for method in ("PATCH", "PUT"):
        response = await api.client.request(
            method, url("tag", tag), content=b'{"name": "x"}', headers=headers
        )
        assert problem(response, 400)["detail"].startswith("A valid content-type must be specified")
    assert await api.read("tag", tag) == before


async def test_put_with_a_non_object_is_422(api):
    tag = await api.create("tag")
    before = await api.read("tag", tag)
    problem(await api.put("tag", tag, ["not", "an", "object"]), 422)
    assert await api.read("tag", tag) == before


async def test_body_over_the_limit_is_413(services, api):
    limit = services.settings.max_body_bytes
    big = body("tag", description="x" * (limit + 10))
    # The message names the limit and the setting that changes it.
    detail = problem(await api.post("tag", big), 413)["detail"]
    assert str(limit) in detail
    assert "OFFERBASE_MAX_BODY_BYTES" in detail

    async def stream():  # no Content-Length: the limit is enforced while reading
        yield b'{"name": "big", "description": "'
        for _ in range(limit // 65536 + 2):
            yield b"x" * 65536
        yield b'"}'

    headers = {**api.headers, "Content-Type": "application/json"}
    response = await api.client.post(url("tag"), content=stream(), headers=headers)
    problem(response, 413)
    await assert_nothing_stored(api, "tag")


@pytest.mark.parametrize(
    ("payload", "pointer"),
    [
        ({"name": "nul\u0000name"}, "/name"),
        ({"name": "ok", "description": "a\u0000"}, "/description"),
    ],
)
async def test_nul_characters_in_strings_are_422_not_500(api, payload, pointer):
    # PostgreSQL cannot store U+0000; both backends refuse it the same way.
    response = await api.post("tag", payload)
    assert pointers(problem(response, 422)) == [pointer]
    await assert_nothing_stored(api, "tag")
    response = await api.post(
        "personalized-offer", body("personalized-offer", characteristics={"k\u0000": "v"})
    )
    assert pointers(problem(response, 422)) == ["/characteristics/k\u0000"]
    tag = await api.create("tag")
    ops = [{"op": "replace", "path": "/name", "value": "x\u0000"}]
    assert pointers(problem(await api.patch("tag", tag, ops), 422)) == ["/0/value"]


async def test_nul_in_ids_and_filters_is_not_a_500(api):
    tag = await api.create("tag")
    problem(await api.client.get(url("tag", "a%00b"), headers=api.headers), 404)
    problem(await api.client.delete(url("tag", "a%00b"), headers=api.headers), 404)
    response = await api.client.post(url("tag", "a%00b"), json=body("tag"), headers=api.headers)
    problem(response, 400)
    problem(await api.list("tag", ("property", "name==a\u0000b")), 400)
    assert await api.ids("tag") == [tag]


async def test_overlong_chosen_id_is_400_not_500(api):
    problem(await api.post("tag", body("tag"), "x" * 256), 400)
    await assert_nothing_stored(api, "tag")
    problem(await api.get("tag", "x" * 300), 404)
    ok = await api.post("tag", body("tag"), "y" * 255)
    assert ok.status_code == 201, ok.text


@pytest.mark.parametrize("raw", [b"1e30", b"1" + b"0" * 30, b"-1" + b"0" * 25])
async def test_integers_beyond_64_bits_are_422_and_do_not_poison_reads(api, raw):
    content = b'{"name": "big", "rank": {"priority": ' + raw + b"}}"
    headers = {**api.headers, "Content-Type": "application/json"}
    response = await api.client.post(url("personalized-offer"), content=content, headers=headers)
    assert pointers(problem(response, 422)) == ["/rank/priority"]
    listed = await api.list("personalized-offer")
    assert listed.status_code == 200
    assert listed.json()["total"] == 0
    ok = await api.post("personalized-offer", body("personalized-offer", rank={"priority": 2.0}))
    assert ok.status_code == 201, ok.text
    assert (await api.read("personalized-offer", ok.json()["id"]))["rank"] == {"priority": 2}


async def test_patch_with_too_many_operations_is_413_and_changes_nothing(api):
    from offerbase.catalog.patch import MAX_PATCH_OPERATIONS

    tag = await api.create("tag")
    before = await api.read("tag", tag)
    ops = [{"op": "test", "path": "/name", "value": before["name"]}] * (MAX_PATCH_OPERATIONS + 1)
    payload = problem(await api.patch("tag", tag, ops), 413)
    assert f"at most {MAX_PATCH_OPERATIONS} operations" in payload["detail"]
    assert await api.read("tag", tag) == before


async def test_copy_amplification_is_413_before_memory_grows(services, api):
    # 60 doublings of a 1 KB description would need 2**60 KB: refused when the copies would
    # write more than the body limit, with nothing written.
    tag = await api.create("tag", description="x" * 1000)
    before = await api.read("tag", tag)
    ops = [{"op": "add", "path": "/characteristics", "value": {"a": [[]]}}]
    ops += [{"op": "copy", "from": "/characteristics/a", "path": "/characteristics/a/-"}] * 60
    payload = problem(await api.patch("tag", tag, ops), 413)
    assert f"more than {services.settings.max_body_bytes} bytes" in payload["detail"]
    assert await api.read("tag", tag) == before


def _nested(depth: int) -> object:
    value: object = "leaf"
    for _ in range(depth):
        value = {"a": value}
    return value


async def _json_offer(api: Api, content: object) -> dict:
    placement = await api.create("placement")
    representation = html_representation(placement)
    representation["components"] = [
        {"type": "json", "format": "application/json", "content": content}
    ]
    return body("personalized-offer", representations=[representation])


@pytest.mark.parametrize(
    ("depth", "pointer", "message"),
    [
        (65, "/representations/0/components/0/content", "Nested deeper than 64 levels"),
        (250, "", "The body is nested deeper than 128 levels"),
        (300, "", "The body is nested deeper than 128 levels"),
    ],
)
async def test_json_nested_deeper_than_can_be_served_is_422_at_write(api, depth, pointer, message):
    # A json component nested 250+ levels used to be stored, and then every list and every
    # decision with content in the sandbox answered 500 (orjson serializes 254 levels).
    response = await api.post("personalized-offer", await _json_offer(api, _nested(depth)))
    payload = problem(response, 422)
    assert pointers(payload) == [pointer]
    assert message in payload["detail"]
    await assert_nothing_stored(api, "personalized-offer")


async def test_json_at_the_depth_limit_is_stored_and_served(api):
    offer = await api.create("personalized-offer", await _json_offer(api, _nested(64)))
    assert (await api.list("personalized-offer")).status_code == 200
    read = await api.read("personalized-offer", offer)
    assert read["representations"][0]["components"][0]["content"] == _nested(64)


async def test_a_patch_cannot_nest_deeper_than_the_limit(api):
    offer = await api.create("personalized-offer", await _json_offer(api, _nested(40)))
    before = await api.read("personalized-offer", offer)
    deep = "/representations/0/components/0/content" + "/a" * 40
    ops = [{"op": "replace", "path": deep, "value": _nested(40)}]
    payload = problem(await api.patch("personalized-offer", offer, ops), 422)
    assert pointers(payload) == ["/representations/0/components/0/content"]
    assert "Nested deeper than 64 levels" in payload["detail"]
    assert await api.read("personalized-offer", offer) == before


@pytest.mark.parametrize("kind", ["tag", "personalized-offer"])
async def test_a_body_nested_past_the_request_limit_is_422_not_500(api, kind):
    # orjson parses 1000 levels; walking them recursively (the U+0000 check) overflowed.
    content = b'{"name": "deep", "characteristics": {"a": ' + b"[" * 1000 + b"]" * 1000 + b"}}"
    headers = {**api.headers, "Content-Type": "application/json"}
    response = await api.client.post(url(kind), content=content, headers=headers)
    assert "nested deeper than 128 levels" in problem(response, 422)["detail"]
    await assert_nothing_stored(api, kind)
