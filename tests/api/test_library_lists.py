"""Lists: property filters, orderby, limit, links, and exact paging while others write."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from factories import Api, body, problem


@pytest.fixture
def api(client, tenant) -> Api:
    return Api(client, tenant)


OFFERS = [
    # id, name, status, priority, description
    ("o1", "Summer Sale", "approved", 1, "hot"),
    ("o2", "Winter sale extra", "draft", 2, None),
    ("o3", "Black Friday", "approved", 3, "cold"),
    ("o4", "Spring", "archived", 10, None),
    ("o5", "SALE", "approved", 0, "x"),
]


@pytest.fixture
async def offers(api):
    for entity_id, name, status, priority, description in OFFERS:
        fields = {"name": name, "status": status, "rank": {"priority": priority}}
        if description is not None:
            fields["description"] = description
        await api.create("personalized-offer", entity_id=entity_id, **fields)
    return api


async def matching(api, *filters: str, orderby: str = "id") -> list[str]:
    params = [("property", f) for f in filters]
    response = await api.list("personalized-offer", *params, ("orderby", orderby))
    assert response.status_code == 200, response.text
    payload = response.json()
    assert payload["count"] == len(payload["results"]) == payload["total"]
    return [item["id"] for item in payload["results"]]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (["status==approved"], ["o1", "o3", "o5"]),
        (["status!=approved"], ["o2", "o4"]),
        (["rank.priority>=2"], ["o2", "o3", "o4"]),
        (["rank.priority>2"], ["o3", "o4"]),
        (["rank.priority<2"], ["o1", "o5"]),
        (["rank.priority<=2"], ["o1", "o2", "o5"]),
        (["rank.priority==10"], ["o4"]),  # numeric, not text: 10 > 2 but "10" < "2"
        (["name~.*sale.*"], ["o1", "o2", "o5"]),  # case-insensitive
        (["name~sale"], ["o5"]),  # the whole value must match
        (["name~S.*"], ["o1", "o4", "o5"]),
        (["description"], ["o1", "o3", "o5"]),  # bare field: present
        (["!description"], ["o2", "o4"]),
        (["!status==approved"], ["o2", "o4"]),
        (["status==approved", "rank.priority>=1"], ["o1", "o3"]),  # repeated: AND
        (["status==approved,rank.priority>=1"], ["o1", "o3"]),  # comma: AND
        (["status==approved,name~.*sale.*", "rank.priority<1"], ["o5"]),
        (["id==o3"], ["o3"]),
        (["id!=o3"], ["o1", "o2", "o4", "o5"]),
        (["id~o[12]"], ["o1", "o2"]),
        (["id>o3"], ["o4", "o5"]),
        (["etag==1"], ["o1", "o2", "o3", "o4", "o5"]),
        (["etag>1"], []),
        (["name==Black Friday"], ["o3"]),
        (["nosuchfield"], []),
        (["nosuchfield==x"], []),
    ],
)
async def test_property_filters(offers, filters, expected):
    assert await matching(offers, *filters) == expected


async def test_filters_on_modified_and_etag_after_updates(offers):
    patched = await offers.patch(
        "personalized-offer", "o2", [{"op": "replace", "path": "/name", "value": "Renamed"}]
    )
    assert patched.status_code == 200
    assert await matching(offers, "etag>=2") == ["o2"]
    modified = (await offers.read("personalized-offer", "o2"))["modified"]
    assert "o2" in await matching(offers, f"modified>={modified}")
    assert "o2" not in await matching(offers, f"modified<{modified}")
    created = (await offers.read("personalized-offer", "o1"))["created"]
    assert "o1" in await matching(offers, f"created=={created}")


async def test_orderby(offers):
    assert await matching(offers, orderby="rank.priority") == ["o5", "o1", "o2", "o3", "o4"]
    assert await matching(offers, orderby="-rank.priority") == ["o4", "o3", "o2", "o1", "o5"]
    assert await matching(offers, orderby="status,-rank.priority") == [
        "o3",
        "o1",
        "o5",
        "o4",
        "o2",
    ]
    assert await matching(offers, orderby="-id") == ["o5", "o4", "o3", "o2", "o1"]
    # Default: most recently modified first.
    response = await offers.list("personalized-offer")
    default = [item["id"] for item in response.json()["results"]]
    assert default == ["o5", "o4", "o3", "o2", "o1"]
    touched = await offers.patch(
        "personalized-offer", "o2", [{"op": "replace", "path": "/status", "value": "approved"}]
    )
    assert touched.status_code == 200
    response = await offers.list("personalized-offer")
    assert [item["id"] for item in response.json()["results"]][0] == "o2"
    modified = [item["modified"] for item in response.json()["results"]]
    assert modified == sorted(modified, reverse=True)


async def test_envelope_and_links(offers):
    response = await offers.list("personalized-offer", ("limit", "2"), ("orderby", "id"))
    payload = response.json()
    assert set(payload) == {"results", "count", "total", "_links"}
    assert payload["count"] == 2
    assert payload["total"] == 5
    links = payload["_links"]
    assert links["self"]["type"] == "application/json"
    assert links["self"]["href"].startswith("/offers?")
    assert "prev" not in links
    assert links["next"]["href"].startswith("/offers?")

    second = (await offers.follow(links["next"]["href"])).json()
    assert [item["id"] for item in second["results"]] == ["o3", "o4"]
    assert second["total"] == 5
    assert "prev" in second["_links"]
    back = (await offers.follow(second["_links"]["prev"]["href"])).json()
    assert [item["id"] for item in back["results"]] == ["o1", "o2"]
    third = (await offers.follow(second["_links"]["next"]["href"])).json()
    assert [item["id"] for item in third["results"]] == ["o5"]
    assert "next" not in third["_links"]
    # The self link reproduces the page.
    again = (await offers.follow(second["_links"]["self"]["href"])).json()
    assert again["results"] == second["results"]
    # Filters survive in the links.
    filtered = await offers.list(
        "personalized-offer", ("property", "status==approved"), ("limit", "1")
    )
    next_href = filtered.json()["_links"]["next"]["href"]
    assert parse_qs(urlsplit(next_href).query)["property"] == ["status==approved"]
    page = (await offers.follow(next_href)).json()
    assert page["total"] == 3


async def test_limit_default_and_bounds(api):
    for _ in range(55):
        await api.create("tag")
    response = await api.list("tag")
    payload = response.json()
    assert payload["count"] == 50
    assert payload["total"] == 55
    assert "limit=50" in payload["_links"]["self"]["href"]
    for bad in ("0", "1001", "-1", "many"):
        problem(await api.list("tag", ("limit", bad)), 400)
    assert (await api.list("tag", ("limit", "1000"))).json()["count"] == 55


@pytest.mark.parametrize(
    ("param", "value"),
    [
        ("property", "==x"),
        ("property", "na me==x"),
        ("property", "name~(unclosed"),
        ("orderby", "na me"),
        ("orderby", "-"),
        ("orderby", "a,b,c,d,e,f"),
        ("start", "not-a-cursor"),
    ],
)
async def test_bad_list_parameters_are_400_naming_the_parameter(offers, param, value):
    payload = problem(await offers.list("personalized-offer", (param, value)), 400)
    text = payload["detail"] + " ".join(e["pointer"] for e in payload.get("errors", []))
    assert param in text or (param == "start" and "cursor" in text)


async def test_regex_syntax_is_the_same_on_every_backend(offers):
    # RE2 runs `~` on SQLite and PostgreSQL alike: Python's named groups, `\\d`, `(?i)`, and
    # `\\b` as a word boundary (PostgreSQL's own dialect would read it as a backspace).
    assert await matching(offers, "name~(?P<n>Spring)") == ["o4"]
    assert await matching(offers, "name~.*\\bsale\\b.*") == ["o1", "o2", "o5"]
    assert await matching(offers, "rank.priority~\\d\\d") == ["o4"]  # numbers as JSON text
    assert await matching(offers, "etag~1") == ["o1", "o2", "o3", "o4", "o5"]


async def test_regex_reads_booleans_as_their_json_text(api):
    # SQLite stores booleans as 1 and 0: `~` still sees `true` and `false`, as on PostgreSQL.
    await api.create("ranking-formula", entity_id="exd", exdFunction=True)
    await api.create("ranking-formula", entity_id="od", exdFunction=False)
    assert await api.ids("ranking-formula", ("property", "exdFunction~TR.E")) == ["exd"]
    assert await api.ids("ranking-formula", ("property", "exdFunction~f.*")) == ["od"]
    assert await api.ids("ranking-formula", ("property", "exdFunction~[01]")) == []


async def test_negated_regex_holds_for_a_missing_field_on_every_backend(offers):
    assert await matching(offers, "description~.*o.*") == ["o1", "o3"]
    assert await matching(offers, "!description~.*o.*") == ["o2", "o4", "o5"]
    assert await matching(offers, "!rank~.*") == ["o1", "o2", "o3", "o4", "o5"]  # an object


@pytest.mark.parametrize(
    "pattern",
    ["(a)\\1", "(?=a)", "(?<!a)b", "a{2000}", "((a{100}){100}){100}", "x" * 1001, "(?P<n"],
)
async def test_patterns_re2_cannot_run_are_400(offers, pattern):
    payload = problem(await offers.list("personalized-offer", ("property", f"name~{pattern}")), 400)
    assert "not a valid regular expression" in payload["detail"]
    assert [e["pointer"] for e in payload["errors"]] == ["property"]


async def test_catastrophic_backtracking_pattern_returns_with_the_right_answer(api):
    # `(a+)+$` against `aaa...ab` takes Python's backtracking `re` exponential time; RE2 is
    # linear, so the list answers (asserted by its result, not by a clock).
    from offerbase import regex

    assert regex.ENGINE == "RE2"
    await api.create("personalized-offer", entity_id="long", name="a" * 2000 + "b")
    await api.create("personalized-offer", entity_id="short", name="aaaa")
    assert await matching(api, "name~(a+)+$") == ["short"]
    assert await matching(api, "name~(a|aa)+") == ["short"]
    assert await matching(api, "!name~(a+)+$") == ["long"]


async def test_regex_filters_page_exactly(api):
    for index in range(7):
        name = f"{'keep' if index % 2 else 'drop'}{index}"
        await api.create("tag", entity_id=f"t{index}", name=name)
    first = await api.list("tag", ("property", "name~KEEP.*"), ("orderby", "id"), ("limit", "2"))
    payload = first.json()
    assert ([item["id"] for item in payload["results"]], payload["total"]) == (["t1", "t3"], 3)
    following = (await api.follow(payload["_links"]["next"]["href"])).json()
    assert [item["id"] for item in following["results"]] == ["t5"]
    assert "next" not in following["_links"]


async def test_numeric_comparison_against_text_fields_is_not_an_error(offers):
    # `name` is a string everywhere: a numeric comparison matches nothing, it does not fail.
    assert await matching(offers, "name>5") == []
    assert await matching(offers, "name==5") == []
    await offers.create("personalized-offer", entity_id="o6", name="7", rank={"priority": 7})
    assert await matching(offers, "name==7") == ["o6"]


async def collect(api: Api, first_href: str, between) -> list[str]:  # type: ignore[no-untyped-def]
    seen: list[str] = []
    page = (await api.follow(first_href)).json()
    step = 0
    while True:
        seen.extend(item["id"] for item in page["results"])
        if "next" not in page["_links"]:
            return seen
        await between(step)
        step += 1
        page = (await api.follow(page["_links"]["next"]["href"])).json()


@pytest.mark.parametrize("orderby", ["-modified", "rank.priority", "name", "id"])
async def test_paging_visits_every_match_once_while_others_write(api, orderby):
    kind = "personalized-offer"
    for i in range(12):
        await api.create(
            kind, entity_id=f"p{i:02d}", name=f"Name {i:02d}", rank={"priority": i % 5}
        )
    start = await api.list(kind, ("orderby", orderby), ("limit", "1000"))
    expected = [item["id"] for item in start.json()["results"]]
    assert len(expected) == 12
    first = await api.list(kind, ("orderby", orderby), ("limit", "3"))
    assert first.json()["total"] == 12
    counter = iter(range(1000))

    async def between(step: int) -> None:
        # Create, patch the sort keys of not-yet-seen and seen items, delete one.
        n = next(counter)
        await api.create(kind, entity_id=f"new{n}", name="A new", rank={"priority": 0})
        for victim in (expected[-1], expected[0]):
            response = await api.patch(
                kind,
                victim,
                [
                    {"op": "replace", "path": "/name", "value": f"AAA {n}"},
                    {"op": "replace", "path": "/rank/priority", "value": 100 + n},
                ],
            )
            assert response.status_code == 200
        if step < 3:
            deleted = await api.delete(kind, expected[4 + step * 2])
            assert deleted.status_code == 200

    href = "/offers?" + str(first.request.url.query, "ascii")
    seen = await collect(api, href, between)
    assert seen == expected

    # A fresh list shows the writes.
    now = await api.ids(kind)
    assert "new0" in now
    assert expected[4] not in now


async def test_cursor_from_one_sandbox_reads_only_that_sandbox(client, tenant):
    prod = Api(client, tenant)
    dev = Api(client, tenant.in_sandbox("dev"))
    for _ in range(3):
        await prod.create("tag")
    await dev.create("tag")
    first = (await prod.list("tag", ("limit", "1"))).json()
    href = first["_links"]["next"]["href"]
    # Cursors are signed for their sandbox: another sandbox's is refused, never read.
    response = await dev.follow(href)
    assert "for this sandbox" in problem(response, 400)["detail"]
    assert (await prod.follow(href)).status_code == 200


async def test_list_never_shows_other_kinds(api):
    await api.create("tag", name="Sale")
    await api.create("placement", name="Sale")
    assert len(await api.ids("tag", ("property", "name==Sale"))) == 1
    assert len(await api.ids("placement", ("property", "name==Sale"))) == 1
    assert await api.ids("collection", ("property", "name==Sale")) == []


async def test_body_filter_on_booleans_and_nested(api):
    await api.create("ranking-formula", entity_id="exd", exdFunction=True)
    await api.create("ranking-formula", entity_id="od", exdFunction=False)
    await api.create("ranking-formula", entity_id="none")
    assert await api.ids("ranking-formula", ("property", "exdFunction==true")) == ["exd"]
    assert await api.ids("ranking-formula", ("property", "exdFunction==false")) == ["od"]
    assert sorted(await api.ids("ranking-formula", ("property", "exdFunction!=true"))) == [
        "none",
        "od",
    ]
    assert sorted(await api.ids("ranking-formula", ("property", "returnType.type==INTEGER"))) == [
        "exd",
        "none",
        "od",
    ]
    assert body("tag")["name"]  # factories stay importable


async def test_orderBy_is_orderby(offers):
    # Adobe's parameter tables spell it orderBy; its examples orderby.
    response = await offers.list("personalized-offer", ("orderBy", "-rank.priority"))
    assert response.status_code == 200, response.text
    assert [item["id"] for item in response.json()["results"]] == ["o4", "o3", "o2", "o1", "o5"]
    links = response.json()["_links"]["self"]["href"]
    assert parse_qs(urlsplit(links).query)["orderby"] == ["-rank.priority"]
    assert "orderBy" not in parse_qs(urlsplit(links).query)


@pytest.mark.parametrize("param", ["orderbyy", "filter", "sort", "href"])
async def test_an_unknown_list_parameter_is_400_naming_it(offers, param):
    payload = problem(await offers.list("personalized-offer", (param, "name")), 400)
    assert payload["errors"][0]["pointer"] == param
    assert "property" in payload["detail"]


async def test_a_client_built_start_in_adobes_form_pages_after_that_value(offers):
    first = await offers.list("personalized-offer", ("orderby", "-modified"), ("limit", "2"))
    page = first.json()["results"]
    assert [item["id"] for item in page] == ["o5", "o4"]
    # As Adobe's next links show it: the sort key's value at the page boundary.
    after = page[-1]["modified"]
    second = await offers.list(
        "personalized-offer", ("orderby", "-modified"), ("limit", "2"), ("start", after)
    )
    assert second.status_code == 200, second.text
    assert [item["id"] for item in second.json()["results"]] == ["o3", "o2"]
    # Its next link goes on from there, and the whole list is visited once.
    rest = (await offers.follow(second.json()["_links"]["next"]["href"])).json()
    assert [item["id"] for item in rest["results"]] == ["o1"]
    # The same instant written with an offset means the same boundary.
    offset = after.replace("Z", "+00:00")
    same = await offers.list(
        "personalized-offer", ("orderby", "-modified"), ("limit", "2"), ("start", offset)
    )
    assert same.json()["results"] == second.json()["results"]
    # Ascending order starts after the value the other way; other fields take their value.
    by_name = await offers.list("personalized-offer", ("orderby", "name"), ("start", "SALE"))
    assert [item["name"] for item in by_name.json()["results"]] == [
        "Spring",
        "Summer Sale",
        "Winter sale extra",
    ]


@pytest.mark.parametrize("start", ["yesterday", "2026-13-01T00:00:00Z"])
async def test_a_start_that_is_neither_a_cursor_nor_a_time_is_400(offers, start):
    payload = problem(await offers.list("personalized-offer", ("start", start)), 400)
    assert payload["errors"][0]["pointer"] == "start"
