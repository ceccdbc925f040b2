"""The database goes away mid-run and comes back: fast 503s meanwhile, nothing lost after.

The gateway talks to the real PostgreSQL through a TCP proxy the test cuts (listener
closed, every connection reset) and restores; no restart of anything in between.
`MGW_TEST_OUTAGE_S` lengthens the outage (the issue's soak used 20 s).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.inbound.tokens import callback_token
from tests.conftest import fast_simulator_config
from tests.support.flows import TERMINAL_NAMES, assert_history_is_clean, create_job
from tests.support.gateway import free_port, gateway_settings, running_gateway
from tests.support.payloads import job_body
from tests.support.receiver import Received, running_subscriber
from tests.support.simulator import running_simulator, wait_until
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow

OUTAGE_S = float(os.environ.get("MGW_TEST_OUTAGE_S", "6"))
ANSWER_WITHIN_S = 1.0  # the contract's bound for a 503 while the database is unreachable
JOBS_BEFORE, JOBS_AFTER = 10, 3


@dataclass
class Probes:
    latencies_s: dict[str, list[float]] = field(default_factory=dict)
    statuses: dict[str, Counter[int]] = field(default_factory=dict)

    def record(self, name: str, status: int, elapsed_s: float) -> None:
        self.latencies_s.setdefault(name, []).append(elapsed_s)
        self.statuses.setdefault(name, Counter())[status] += 1

    @property
    def max_s(self) -> float:
        return max(max(values) for values in self.latencies_s.values())


async def _probe(
    probes: Probes, name: str, call: Any, *, expect: int, problem: bool = True
) -> None:
    started = time.monotonic()
    response: httpx.Response = await call
    elapsed_s = time.monotonic() - started
    probes.record(name, response.status_code, elapsed_s)
    assert response.status_code == expect, (name, response.status_code, response.text)
    if problem:
        assert response.headers["content-type"].startswith("application/problem+json"), name
        body = response.json()
        assert body["code"] == "database_unavailable", body
        assert body["status"] == 503
        assert body["request_id"] == response.headers["x-request-id"]
        assert 1 <= int(response.headers["retry-after"]) <= 5
    assert elapsed_s < ANSWER_WITHIN_S, (name, elapsed_s)


async def _during_outage(http: httpx.AsyncClient, job_id: str, token: str) -> Probes:
    probes = Probes()
    callback = f"/v1/upstream/simulator/callbacks/{job_id}?token={token}"
    deadline = time.monotonic() + OUTAGE_S
    while time.monotonic() < deadline:
        await _probe(probes, "createJob", http.post("/v1/jobs", json=job_body()), expect=503)
        await _probe(probes, "getJob", http.get(f"/v1/jobs/{job_id}"), expect=503)
        await _probe(probes, "listJobs", http.get("/v1/jobs"), expect=503)
        await _probe(probes, "callback", http.post(callback, content=b"{}"), expect=503)
        await _probe(probes, "readyz", http.get("/readyz"), expect=503, problem=False)
        await _probe(probes, "healthz", http.get("/healthz"), expect=200, problem=False)
        await asyncio.sleep(0.1)
    return probes


async def _all_terminal(http: httpx.AsyncClient, ids: list[str]) -> list[dict[str, Any]]:
    async def probe() -> list[dict[str, Any]] | None:
        jobs = [(await http.get(f"/v1/jobs/{i}")).json() for i in ids]
        return jobs if all(j.get("status") in TERMINAL_NAMES for j in jobs) else None

    return await wait_until(probe, timeout_s=60.0, interval_s=0.2)


@pytest.mark.parametrize("log_json", [False, True], ids=["console-log", "json-log"])
async def test_database_outage_answers_503_fast_and_loses_nothing(
    database_url: str, log_json: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    proxy = TcpProxy.for_url(database_url, free_port())
    await proxy.start()
    port = free_port()
    sim_config = fast_simulator_config(processing_time_s=1.5)
    try:
        async with running_simulator(sim_config) as sim, running_subscriber() as sub:
            settings = gateway_settings(
                proxy.url_through(database_url),
                sim.base_url,
                public_base_url=f"http://127.0.0.1:{port}",
                log_json=log_json,
                worker_lease_s=4.0,  # must exceed the longest call (the webhook's 3 s)
                submit_unknown_window_s=max(20.0, OUTAGE_S * 3),
            )
            async with running_gateway(settings) as gw:
                key = await gw.new_client()
                async with gw.http(key) as http:
                    ep = await http.post("/v1/webhook-endpoints", json={"url": sub.url})
                    assert ep.status_code == 201, ep.text
                    ids = [await create_job(http, job_body()) for _ in range(JOBS_BEFORE)]
                    await asyncio.sleep(0.8)  # some submitted, some processing
                    listed = (await http.get("/v1/jobs", params={"limit": 100})).json()["data"]
                    in_flight = {j["status"] for j in listed}
                    token = callback_token(settings.secret_bytes, "simulator", ids[0])
                    await proxy.stop()
                    probes = await _during_outage(http, ids[0], token)
                    await proxy.start()
                    ids += [await create_job(http, job_body()) for _ in range(JOBS_AFTER)]
                    final = await _all_terminal(http, ids)
                    histories = [(await http.get(f"/v1/jobs/{i}/events")).json() for i in ids]
                    await wait_until(
                        lambda: _delivered_all(sub.received, ids), timeout_s=30.0, interval_s=0.1
                    )
                    ready = await http.get("/readyz")
    finally:
        await proxy.stop()
    logged = capsys.readouterr().err
    if dump := os.environ.get("MGW_TEST_OUTAGE_LOG"):
        Path(dump).write_text(logged)
    delivered = {json.loads(r.body)["data"]["id"] for r in sub.received}
    print(  # noqa: T201 - the numbers the issue asks for, shown with -s
        f"outage {OUTAGE_S}s: max 503 latency {probes.max_s * 1000:.0f} ms over "
        f"{sum(len(v) for v in probes.latencies_s.values())} probes; statuses "
        f"{Counter(j['status'] for j in final)}; delivered {len(delivered)}/{len(ids)}"
    )
    assert in_flight - TERMINAL_NAMES, in_flight  # the outage hit jobs in flight
    assert ready.status_code == 200
    assert {j["status"] for j in final} == {"succeeded"}, [
        (j["status"], j["error"], history["data"])
        for j, history in zip(final, histories, strict=True)
        if j["status"] != "succeeded"
    ]
    assert delivered == set(ids)
    for history in histories:
        assert_history_is_clean(history["data"])
    # One line per failure, never a traceback per failed step.
    assert logged.count("Traceback") + logged.count('"frames"') <= 2, logged[-3000:]
    assert "database unavailable" in logged


async def _delivered_all(received: list[Received], ids: list[str]) -> bool:
    return {json.loads(r.body)["data"]["id"] for r in received} >= set(ids)
