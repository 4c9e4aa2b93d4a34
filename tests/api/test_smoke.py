async def test_health(client):
    response = await client.get("/health")
    assert response.status_code == 200
    # `status` as it always was, and what was checked (readiness: docs/operations.md).
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}
    live = await client.get("/health/live")
    assert live.status_code == 200
    assert live.json() == {"status": "ok"}


async def test_openapi_served(client):
    response = await client.get("/openapi.json")
    assert response.status_code == 200
    assert "/data/core/dps/offers" in response.json()["paths"]
    assert (await client.get("/docs")).status_code == 200
