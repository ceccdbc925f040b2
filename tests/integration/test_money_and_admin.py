"""Budgets (402), usage reports and the admin routes, over HTTP on PostgreSQL."""

from __future__ import annotations

import asyncio

from tests.support.flows import create_job, wait_for_status
from tests.support.gateway import Gateway
from tests.support.payloads import job_body

# 720p, orientation image: at most 10 s at the highest configured price ($0.1134/s)
ESTIMATE_720P_IMAGE = 1.134


async def _admin(gw: Gateway) -> tuple[str, dict[str, str]]:
    admin = await gw.new_client("ops", admin=True)
    return admin.client_id, {"Authorization": f"Bearer {admin.api_key}"}


async def test_budget_refuses_the_job_that_would_overspend(module_gateway: Gateway) -> None:
    key = await module_gateway.new_client("budgeted")
    _, admin_headers = await _admin(module_gateway)
    async with module_gateway.http(key) as http:
        set_budget = await http.post(
            f"/v1/admin/clients/{key.client_id}",
            json={"monthly_budget_usd": 2.5},
            headers=admin_headers,
        )
        first = await http.post("/v1/jobs", json=job_body())
        second = await http.post("/v1/jobs", json=job_body())
        third = await http.post("/v1/jobs", json=job_body())
        listed = (await http.get("/v1/jobs")).json()["data"]
    assert set_budget.status_code == 200
    assert set_budget.json()["monthly_budget_usd"] == "2.5000"
    assert first.status_code == second.status_code == 202
    assert third.status_code == 402
    assert third.headers["content-type"].startswith("application/problem+json")
    assert third.json()["code"] == "budget_exceeded"
    assert len(listed) == 2  # the refused job was not stored


async def test_concurrent_creates_cannot_overspend(module_gateway: Gateway) -> None:
    key = await module_gateway.new_client("racer")
    _, admin_headers = await _admin(module_gateway)
    async with module_gateway.http(key) as http:
        await http.post(
            f"/v1/admin/clients/{key.client_id}",
            json={"monthly_budget_usd": 2.5},
            headers=admin_headers,
        )
        responses = await asyncio.gather(
            *(http.post("/v1/jobs", json=job_body()) for _ in range(6))
        )
    assert sorted(r.status_code for r in responses) == [202, 202, 402, 402, 402, 402]


async def test_usage_reports_billed_and_in_flight(module_gateway: Gateway) -> None:
    key = await module_gateway.new_client("user")
    admin_id, admin_headers = await _admin(module_gateway)
    async with module_gateway.http(key) as http:
        job_id = await create_job(http, job_body())
        await wait_for_status(http, job_id)
        mine = (await http.get("/v1/usage")).json()
        other = await http.get("/v1/usage", params={"client_id": admin_id})
        as_admin = (
            await http.get("/v1/usage", params={"client_id": key.client_id}, headers=admin_headers)
        ).json()
        everyone = (await http.get("/v1/usage", headers=admin_headers)).json()
        bad = await http.get(
            "/v1/usage", params={"from": "2026-02-01T00:00:00Z", "to": "2026-01-01T00:00:00Z"}
        )
    assert mine["client_id"] == key.client_id
    assert mine["jobs"] == {"succeeded": 1}
    assert mine["billed_seconds"] == 5
    assert mine["billed_usd"] == "0.5670"
    assert mine["estimated_usd_in_flight"] == "0.0000"
    assert mine["at_risk_usd"] == "0.0000"
    assert {"from", "to"} <= mine.keys()
    assert other.status_code == 403
    assert as_admin["billed_usd"] == "0.5670"
    assert key.client_id in everyone["clients"]
    assert bad.status_code == 422


async def test_admin_routes_need_the_admin_scope(module_gateway: Gateway) -> None:
    key = await module_gateway.new_client("plain")
    async with module_gateway.http(key) as http:
        for method, path in (
            ("GET", "/v1/admin/providers"),
            ("GET", "/v1/admin/jobs"),
            ("POST", "/v1/admin/jobs/job_x/poll"),
            ("POST", f"/v1/admin/clients/{key.client_id}"),
        ):
            response = await http.request(method, path, json={} if method == "POST" else None)
            assert response.status_code == 403, path
            assert response.json()["code"] == "admin_required"


async def test_admin_providers_stuck_jobs_and_forced_poll(module_gateway: Gateway) -> None:
    key = await module_gateway.new_client("owner")
    _, admin_headers = await _admin(module_gateway)
    async with module_gateway.http(key) as http:
        job_id = await create_job(http, job_body())
        await wait_for_status(http, job_id)
        providers = (await http.get("/v1/admin/providers", headers=admin_headers)).json()
        stuck = (
            await http.get("/v1/admin/jobs", params={"stuck": "true"}, headers=admin_headers)
        ).json()
        polled = await http.post(f"/v1/admin/jobs/{job_id}/poll", headers=admin_headers)
        missing = await http.post("/v1/admin/jobs/job_nope/poll", headers=admin_headers)
        no_client = await http.post("/v1/admin/clients/cli_nope", json={}, headers=admin_headers)
        disabled = await http.post(
            f"/v1/admin/clients/{key.client_id}", json={"disabled": True}, headers=admin_headers
        )
        locked_out = await http.get("/v1/jobs")
    [sim] = providers["data"]
    assert sim["name"] == "simulator"
    assert sim["circuit"] == "closed"
    assert sim["price_usd_per_s"] == {"720p": "0.1134", "1080p": "0.1512"}
    assert all(j["id"] != job_id for j in stuck["data"])
    assert polled.status_code == 200
    assert polled.json()["status"] == "succeeded"
    assert missing.status_code == no_client.status_code == 404
    assert disabled.json()["disabled"] is True
    assert locked_out.status_code == 401
