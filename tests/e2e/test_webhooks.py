"""Subscriber webhooks end to end: real gateway, real simulator, real receivers."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from tests.conftest import Stack, StackFactory
from tests.support.flows import create_job, wait_for_status
from tests.support.payloads import job_body
from tests.support.receiver import Answer, Received, running_subscriber


def verify(secret: str, received: Received) -> dict[str, Any]:
    payload: dict[str, Any] = Webhook(secret).verify(received.body, received.headers)
    return payload


async def endpoint(http: httpx.AsyncClient, url: str, **fields: Any) -> dict[str, Any]:
    response = await http.post("/v1/webhook-endpoints", json={"url": url, **fields})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def one_job(stack: Stack, http: httpx.AsyncClient, **body: Any) -> dict[str, Any]:
    job_id = await create_job(http, job_body(**body))
    return await wait_for_status(http, job_id)


async def test_deliveries_verify_with_the_standard_library(make_stack: StackFactory) -> None:
    async with make_stack() as stack, running_subscriber() as sub:
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            ep = await endpoint(http, sub.url)
            assert ep["secret"].startswith("whsec_")
            assert ep["event_types"] == [
                "job.cancelled",
                "job.expired",
                "job.failed",
                "job.succeeded",
            ]
            job = await one_job(stack, http)
            [delivery] = await sub.wait_for(1)
    payload = verify(ep["secret"], delivery)
    assert payload["type"] == "job.succeeded"
    assert payload["id"] == delivery.headers["webhook-id"]
    assert payload["id"].startswith("evt_")
    assert payload["data"]["id"] == job["id"]
    assert payload["data"]["status"] == "succeeded"
    assert payload["data"]["result"]["video_url"]
    assert payload["data"]["version"] == job["version"]
    assert delivery.headers["webhook-attempt"] == "1"
    assert delivery.headers["user-agent"].startswith("motion-gateway-webhooks/")
    tampered = Received(
        delivery.body.replace(b"succeeded", b"failed"),
        delivery.headers,
        delivery.at,
        delivery.monotonic,
    )
    with pytest.raises(WebhookVerificationError):
        verify(ep["secret"], tampered)
    stale_at = datetime.now(UTC) - timedelta(minutes=10)
    stale_headers = delivery.headers | {
        "webhook-timestamp": str(int(stale_at.timestamp())),
        "webhook-signature": Webhook(ep["secret"]).sign(
            delivery.headers["webhook-id"], stale_at, delivery.body.decode()
        ),
    }
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify(ep["secret"], Received(delivery.body, stale_headers, delivery.at, 0))


async def test_rotation_signs_with_both_secrets(make_stack: StackFactory) -> None:
    async with make_stack() as stack, running_subscriber() as sub:
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            ep = await endpoint(http, sub.url)
            rotated = await http.post(f"/v1/webhook-endpoints/{ep['id']}/rotate-secret")
            new_secret = rotated.json()["secret"]
            await one_job(stack, http)
            [delivery] = await sub.wait_for(1)
    assert new_secret != ep["secret"]
    assert len(delivery.headers["webhook-signature"].split(" ")) == 2
    assert verify(ep["secret"], delivery)["type"] == "job.succeeded"  # a receiver not yet updated
    assert verify(new_secret, delivery)["type"] == "job.succeeded"  # a receiver already updated


async def test_retries_keep_the_webhook_id_and_the_log_shows_each_attempt(
    make_stack: StackFactory,
) -> None:
    script = [Answer(500), Answer(500), Answer(200)]
    async with make_stack() as stack, running_subscriber(script) as sub:
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            ep = await endpoint(http, sub.url)
            await one_job(stack, http)
            received = await sub.wait_for(3)
            await asyncio.sleep(0.3)
            log = (await http.get(f"/v1/webhook-endpoints/{ep['id']}/deliveries")).json()
    assert len({r.headers["webhook-id"] for r in received}) == 1
    assert [r.headers["webhook-attempt"] for r in received] == ["1", "2", "3"]
    [delivery] = log["data"]
    assert delivery["status"] == "succeeded"
    assert delivery["attempts"] == 3
    assert [a["status_code"] for a in delivery["attempt_log"]] == [500, 500, 200]
    assert delivery["attempt_log"][0]["error"] == "HTTP 500"
    assert delivery["attempt_log"][2]["response_body"] == "ok"


async def test_retry_after_is_honoured(make_stack: StackFactory) -> None:
    script = [Answer(429, headers={"Retry-After": "1"})]
    async with make_stack() as stack, running_subscriber(script) as sub:
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            await endpoint(http, sub.url)
            await one_job(stack, http)
            first, second = await sub.wait_for(2)
    assert second.monotonic - first.monotonic >= 0.95  # schedule says 0.2 s; Retry-After wins


async def test_exhausted_retries_end_dead_and_redeliver_brings_it_back(
    make_stack: StackFactory,
) -> None:
    async with (
        make_stack(webhook_retry_schedule_s=[0.0, 0.1]) as stack,
        running_subscriber([Answer(500), Answer(500)]) as sub,
    ):
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            ep = await endpoint(http, sub.url)
            await one_job(stack, http)
            await sub.wait_for(2)
            deliveries_url = f"/v1/webhook-endpoints/{ep['id']}/deliveries"
            dead = await _wait_delivery(http, deliveries_url, "dead")
            # parked while we ask twice, so both requests land on the same due delivery
            await http.patch(f"/v1/webhook-endpoints/{ep['id']}", json={"status": "disabled"})
            first = await http.post(f"/v1/deliveries/{dead['id']}/redeliver")
            again = await http.post(f"/v1/deliveries/{dead['id']}/redeliver")
            await http.patch(f"/v1/webhook-endpoints/{ep['id']}", json={"status": "enabled"})
            received = await sub.wait_for(3)
            done = await _wait_delivery(http, deliveries_url, "succeeded")
            await asyncio.sleep(0.5)
    assert first.status_code == again.status_code == 202
    assert first.json()["status"] == again.json()["status"] == "pending"
    assert done["attempts"] == 3
    assert len(sub.received) == 3  # two redeliver calls while due make one send
    assert len({r.headers["webhook-id"] for r in received}) == 1


async def test_bulk_redeliver_sends_what_was_missed_once(make_stack: StackFactory) -> None:
    async with make_stack() as stack, running_subscriber() as sub:
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            since = datetime.now(UTC).isoformat()
            ep = await endpoint(http, sub.url)
            await http.patch(f"/v1/webhook-endpoints/{ep['id']}", json={"status": "disabled"})
            jobs = [await one_job(stack, http) for _ in range(2)]
            assert sub.received == []
            enabled = await http.patch(
                f"/v1/webhook-endpoints/{ep['id']}", json={"status": "enabled"}
            )
            url = f"/v1/webhook-endpoints/{ep['id']}/redeliver"
            first = await http.post(url, json={"since": since})
            second = await http.post(url, json={"since": since})
            received = await sub.wait_for(2)
            await asyncio.sleep(0.5)
    assert enabled.json()["status"] == "enabled"
    assert first.status_code == 202
    assert first.json() == {"requeued": 0, "created": 2}
    assert second.json()["created"] == 0
    assert len(sub.received) == 2
    assert {json.loads(r.body)["data"]["id"] for r in received} == {j["id"] for j in jobs}


async def test_gone_disables_the_endpoint_and_tells_the_owner(make_stack: StackFactory) -> None:
    async with (
        make_stack() as stack,
        running_subscriber(default=Answer(410)) as gone,
        running_subscriber() as other,
    ):
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            ep_gone = await endpoint(http, gone.url)
            ep_other = await endpoint(http, other.url, event_types=["job.failed"])
            await one_job(stack, http)
            await gone.wait_for(1)
            [notice] = await other.wait_for(1)
            state = (await http.get(f"/v1/webhook-endpoints/{ep_gone['id']}")).json()
    assert state["status"] == "disabled"
    assert "410" in state["disabled_reason"]
    payload = verify(ep_other["secret"], notice)
    assert payload["type"] == "endpoint.disabled"
    assert payload["data"]["endpoint_id"] == ep_gone["id"]


async def test_event_type_filter_and_opt_in_events(make_stack: StackFactory) -> None:
    async with (
        make_stack() as stack,
        running_subscriber() as failed_only,
        running_subscriber() as progress,
    ):
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            await endpoint(http, failed_only.url, event_types=["job.failed"])
            await endpoint(http, progress.url, event_types=["job.submitted", "job.succeeded"])
            await one_job(stack, http)
            failed = await one_job(stack, http, prompt="#sim:fail")
            got = await progress.wait_for(3)
            [only] = await failed_only.wait_for(1)
    assert json.loads(only.body)["data"]["id"] == failed["id"]
    types = sorted(json.loads(r.body)["type"] for r in got)
    assert types == ["job.submitted", "job.submitted", "job.succeeded"]


async def test_per_job_callback_url_is_signed_with_the_client_secret(
    make_stack: StackFactory,
) -> None:
    async with make_stack() as stack, running_subscriber() as sub:
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            secret = (await http.get("/v1/webhook-secret")).json()["secret"]
            job = await one_job(stack, http, callback_url=sub.url)
            [delivery] = await sub.wait_for(1)
    assert secret == key.webhook_secret
    payload = verify(secret, delivery)
    assert payload["data"]["id"] == job["id"]
    assert payload["data"]["callback_url"] == sub.url


async def test_rate_limit_and_circuit_are_enforced(make_stack: StackFactory) -> None:
    async with make_stack() as stack, running_subscriber() as sub:
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            await endpoint(http, sub.url, rate_limit_per_s=2, event_types=["job.submitted"])
            for _ in range(6):
                await create_job(http, job_body())
            received = await sub.wait_for(6)
    span = received[-1].monotonic - received[0].monotonic
    assert span >= 1.0  # 6 sends at 2/s with a one-second burst cannot all go at once


async def test_failing_endpoint_opens_its_circuit(make_stack: StackFactory) -> None:
    async with (
        make_stack(
            webhook_circuit_threshold=2,
            webhook_circuit_open_s=30.0,
            webhook_circuit_open_max_s=30.0,
        ) as stack,
        running_subscriber(default=Answer(500)) as sub,
    ):
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            # one at a time, so the circuit's threshold is met before a third send can start
            ep = await endpoint(http, sub.url, event_types=["job.submitted"], max_concurrency=1)
            for _ in range(4):
                await create_job(http, job_body())
            await sub.wait_for(2)
            await asyncio.sleep(1.0)
            state = (await http.get(f"/v1/webhook-endpoints/{ep['id']}")).json()
            metrics = (await http.get("/metrics")).text
    assert state["consecutive_failures"] == 2
    assert state["circuit_open_until"] is not None
    assert len(sub.received) == 2  # the rest of the backlog is parked, not sent
    # the gauge spans the whole database, which other tests share: at least our four
    gauge = next(
        line
        for line in metrics.splitlines()
        if line.startswith('mgw_webhook_backlog{endpoint_state="circuit_open"}')
    )
    assert float(gauge.rsplit(" ", 1)[1]) >= 4


async def _wait_delivery(http: httpx.AsyncClient, url: str, status: str) -> dict[str, Any]:
    async with asyncio.timeout(15):
        while True:
            data = (await http.get(url, params={"status": status})).json()["data"]
            if data:
                found: dict[str, Any] = data[0]
                return found
            await asyncio.sleep(0.05)


async def test_sustained_failure_disables_the_endpoint_and_says_so(
    make_stack: StackFactory,
) -> None:
    async with (
        make_stack(webhook_disable_after_s=0.5, webhook_circuit_threshold=100) as stack,
        running_subscriber(default=Answer(503)) as failing,
        running_subscriber() as other,
    ):
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            ep = await endpoint(http, failing.url)
            other_ep = await endpoint(http, other.url, event_types=["job.failed"])
            await one_job(stack, http)
            [notice] = await other.wait_for(1)
            state = (await http.get(f"/v1/webhook-endpoints/{ep['id']}")).json()
    assert len(failing.received) >= 2
    assert state["status"] == "disabled"
    assert state["disabled_reason"].startswith("every delivery failed since")
    assert verify(other_ep["secret"], notice)["data"]["endpoint_id"] == ep["id"]


async def test_delivery_logs_are_purged_after_the_retention(make_stack: StackFactory) -> None:
    from app.workers.janitor import Janitor

    async with make_stack(webhook_log_retention_s=0.0) as stack, running_subscriber() as sub:
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            ep = await endpoint(http, sub.url)
            await one_job(stack, http)
            await sub.wait_for(1)
            url = f"/v1/webhook-endpoints/{ep['id']}/deliveries"
            await _wait_delivery(http, url, "succeeded")
            await Janitor(stack.gateway.runtime).housekeeping()
            after = (await http.get(url)).json()["data"]
    assert after == []
