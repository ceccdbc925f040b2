"""The endpoints API itself: CRUD, validation, and that clients never see each other's."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.gateway import Gateway

URL = "http://127.0.0.1:9/hook"  # loopback is allowed in the test environment


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"url": URL, "event_types": ["job.exploded"]}, "validation_error"),
        ({"url": URL, "event_types": []}, "event_types_empty"),
        ({"url": "not a url"}, "webhook_url_not_allowed"),
        ({"url": "https://10.0.0.1/hook"}, "webhook_url_not_allowed"),
        ({"url": URL, "max_concurrency": 0}, "validation_error"),
        ({"url": URL, "secret": "whsec_mine"}, "validation_error"),
    ],
)
async def test_invalid_endpoints_are_422_and_not_stored(
    module_gateway: Gateway, body: dict[str, Any], code: str
) -> None:
    key = await module_gateway.new_client()
    async with module_gateway.http(key) as http:
        response = await http.post("/v1/webhook-endpoints", json=body)
        listed = (await http.get("/v1/webhook-endpoints")).json()
    assert response.status_code == 422, response.text
    assert response.json()["code"] == code
    assert response.json()["errors"]
    assert listed == {"data": [], "next_cursor": None}


async def test_crud_and_pagination(module_gateway: Gateway) -> None:
    key = await module_gateway.new_client()
    async with module_gateway.http(key) as http:
        created = [
            (await http.post("/v1/webhook-endpoints", json={"url": f"{URL}/{i}"})).json()
            for i in range(3)
        ]
        first = (await http.get("/v1/webhook-endpoints", params={"limit": 2})).json()
        second = (
            await http.get(
                "/v1/webhook-endpoints", params={"limit": 2, "cursor": first["next_cursor"]}
            )
        ).json()
        target = created[0]["id"]
        patched = await http.patch(
            f"/v1/webhook-endpoints/{target}",
            json={"description": "orders", "event_types": ["job.failed"]},
        )
        fetched = (await http.get(f"/v1/webhook-endpoints/{target}")).json()
        deleted = await http.delete(f"/v1/webhook-endpoints/{target}")
        gone = await http.get(f"/v1/webhook-endpoints/{target}")
        remaining = (await http.get("/v1/webhook-endpoints")).json()["data"]
    assert all(c["secret"].startswith("whsec_") and c["status"] == "enabled" for c in created)
    assert [e["id"] for e in first["data"] + second["data"]] == [c["id"] for c in reversed(created)]
    assert second["next_cursor"] is None
    assert "secret" not in fetched  # shown on create and rotate only
    assert patched.json()["event_types"] == ["job.failed"]
    assert fetched["description"] == "orders"
    assert deleted.status_code == 204
    assert gone.status_code == 404
    assert target not in {e["id"] for e in remaining}


async def test_another_clients_endpoints_and_deliveries_are_404(module_gateway: Gateway) -> None:
    owner, other = await module_gateway.new_client("owner"), await module_gateway.new_client("x")
    async with module_gateway.http(owner) as ho, module_gateway.http(other) as hx:
        ep = (await ho.post("/v1/webhook-endpoints", json={"url": URL})).json()["id"]
        responses = [
            await hx.get(f"/v1/webhook-endpoints/{ep}"),
            await hx.patch(f"/v1/webhook-endpoints/{ep}", json={"status": "disabled"}),
            await hx.delete(f"/v1/webhook-endpoints/{ep}"),
            await hx.post(f"/v1/webhook-endpoints/{ep}/rotate-secret"),
            await hx.get(f"/v1/webhook-endpoints/{ep}/deliveries"),
            await hx.post(
                f"/v1/webhook-endpoints/{ep}/redeliver", json={"since": "2026-01-01T00:00:00Z"}
            ),
        ]
        missing_delivery = await hx.post("/v1/deliveries/dlv_nope/redeliver")
        still_there = await ho.get(f"/v1/webhook-endpoints/{ep}")
    assert [r.status_code for r in responses] == [404] * 6
    assert {r.json()["code"] for r in responses} == {"webhook_endpoint_not_found"}
    assert missing_delivery.status_code == 404
    assert still_there.json()["status"] == "enabled"


async def test_client_webhook_secret_needs_a_key(module_gateway: Gateway) -> None:
    key = await module_gateway.new_client()
    async with module_gateway.http(key) as http:
        mine = await http.get("/v1/webhook-secret")
    async with module_gateway.http() as anonymous:
        refused = await anonymous.get("/v1/webhook-secret")
    assert mine.json() == {"secret": key.webhook_secret}
    assert refused.status_code == 401


@pytest.mark.parametrize("path", ["/v1/webhook-endpoints", "/v1/webhook-endpoints/{id}/deliveries"])
@pytest.mark.parametrize("cursor", ["zzz", "dlv_x' OR 1=1", "job_0123456789abcdef"])
async def test_a_cursor_this_api_did_not_issue_is_422(
    module_gateway: Gateway, path: str, cursor: str
) -> None:
    key = await module_gateway.new_client()
    async with module_gateway.http(key) as http:
        endpoint = (await http.post("/v1/webhook-endpoints", json={"url": URL})).json()
        response = await http.get(path.format(id=endpoint["id"]), params={"cursor": cursor})
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_cursor"
    assert response.json()["errors"][0]["loc"] == ["query", "cursor"]


async def test_the_schema_says_event_types_cannot_be_empty(module_gateway: Gateway) -> None:
    async with module_gateway.http() as http:
        spec = (await http.get("/openapi.json")).json()
    for name in ("EndpointCreate", "EndpointUpdate"):
        prop = spec["components"]["schemas"][name]["properties"]["event_types"]
        [array] = [s for s in prop["anyOf"] if s.get("type") == "array"]
        assert array["minItems"] == 1
