"""Small async helpers for end-to-end tests."""

from __future__ import annotations

from collections import Counter
from typing import Any

import httpx

from app.jobs.state import TERMINAL
from tests.support.simulator import RunningSimulator, wait_until

TERMINAL_NAMES = {s.value for s in TERMINAL}


async def wait_for_status(
    http: httpx.AsyncClient, job_id: str, statuses: set[str] | None = None, timeout_s: float = 20.0
) -> dict[str, Any]:
    """A succeeded job counts once its archive is settled too: its job.succeeded event
    is published only then."""
    wanted = statuses or TERMINAL_NAMES

    async def probe() -> dict[str, Any] | None:
        job: dict[str, Any] = (await http.get(f"/v1/jobs/{job_id}")).json()
        if archive_pending(job):
            return None
        return job if job["status"] in wanted else None

    return await wait_until(probe, timeout_s=timeout_s, interval_s=0.05)


async def events(http: httpx.AsyncClient, job_id: str) -> list[dict[str, Any]]:
    response = await http.get(f"/v1/jobs/{job_id}/events")
    data: list[dict[str, Any]] = response.json()["data"]
    return data


def archive_pending(job: dict[str, Any]) -> bool:
    result = job.get("result") or {}
    return job.get("status") == "succeeded" and result.get("archive_status") == "pending"


REQUEUE_CYCLE = {("queued", "submitting"), ("submitting", "queued")}


def assert_history_is_clean(history: list[dict[str, Any]]) -> None:
    """Each transition once (a refused submit's requeue cycle may repeat), versions 1, 2, 3…
    without gaps, at most one terminal state."""
    pairs = [(e["from_status"], e["to_status"]) for e in history]
    once = [p for p in pairs if p not in REQUEUE_CYCLE]
    assert len(once) == len(set(once)), pairs
    assert [e["version"] for e in history] == list(range(1, len(history) + 1))
    assert sum(1 for e in history if e["to_status"] in TERMINAL_NAMES) <= 1


async def create_job(http: httpx.AsyncClient, body: dict[str, Any]) -> str:
    response = await http.post("/v1/jobs", json=body)
    assert response.status_code == 202, response.text
    job_id: str = response.json()["id"]
    return job_id


def submissions_per_job(sim: RunningSimulator) -> Counter[str]:
    """How many upstream tasks were created for each gateway job (we send the job id as
    Idempotency-Key, and the simulator records it)."""
    return Counter(t.idempotency_key or "?" for t in sim.simulator.store.all())
