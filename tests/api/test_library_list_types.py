"""A numeric filter over a field that holds strings for some entities and numbers for others."""

WEB = "https://ns.adobe.com/xdm/channel-types/web"


async def test_numeric_filter_skips_non_numbers(client, tenant):
    headers = tenant.headers
    for name, count in (("a", 3), ("b", 7), ("c", None)):
        body = {"name": name, "channel": WEB}
        if count is not None:
            body["itemCount"] = count
        response = await client.post("/data/core/dps/placements", json=body, headers=headers)
        assert response.status_code == 201
    # `name` holds strings only: a numeric comparison matches nothing and never fails.
    by_name = await client.get("/data/core/dps/placements?property=name>5", headers=headers)
    assert by_name.status_code == 200
    assert by_name.json()["total"] == 0
    by_count = await client.get("/data/core/dps/placements?property=itemCount>5", headers=headers)
    assert [p["name"] for p in by_count.json()["results"]] == ["b"]
