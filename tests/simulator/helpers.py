"""Shared values for the simulator tests."""

from __future__ import annotations

from typing import Any

import httpx

from app.simulator.config import SimulatorConfig
from tests.support.simulator import RunningSimulator, wait_until

API_KEY = "sk-test"

# Short timers so a whole lifecycle takes a fraction of a second; callbacks may go to
# the loopback receivers the tests start.
FAST = SimulatorConfig(
    pending_time_s=0.02,
    processing_time_s=0.15,
    callback_retry_delays_s=(0.05, 0.05, 0.05),
    callback_timeout_s=2.0,
    allow_insecure_callbacks=True,
    fault_hang_s=5.0,
)


def fast_config(**changes: Any) -> SimulatorConfig:
    return SimulatorConfig.model_validate({**FAST.model_dump(), **changes})


def client_for(running: RunningSimulator, api_key: str = API_KEY) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=running.base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=10.0
    )


async def task_status(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    response = await client.get(f"/v1/tasks/{task_id}")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def wait_for_status(
    client: httpx.AsyncClient, task_id: str, *statuses: str
) -> dict[str, Any]:
    """Poll the task until its status is one of `statuses` (bounded)."""

    async def probe() -> dict[str, Any] | None:
        body = await task_status(client, task_id)
        return body if body["status"] in statuses else None

    return await wait_until(probe)


async def sim_tasks(client: httpx.AsyncClient) -> dict[str, Any]:
    response = await client.get("/_sim/tasks")
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body
