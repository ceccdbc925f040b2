"""Creating jobs under load and tracing what happened to each one afterwards."""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from tests.support.simulator import RunningSimulator

TERMINAL = frozenset({"succeeded", "failed", "cancelled", "expired"})


class BenchError(RuntimeError):
    """The stack misbehaved in a way that makes the measurement meaningless."""


def progress(message: str) -> None:
    """Progress goes to stderr; stdout carries only the result."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def wall(value: str | None) -> float | None:
    """An RFC 3339 timestamp from the API as a Unix time."""
    return datetime.fromisoformat(value).timestamp() if value else None


@dataclass(frozen=True)
class Launch:
    job_id: str
    posted_at: float
    """Wall clock just before the request was sent."""
    api_ms: float
    """Time until the 202 answer arrived."""


Body = dict[str, Any]
BodyFor = Callable[[int], Body]
"""The request body of the i-th job of a run."""


async def create_one(http: httpx.AsyncClient, body: Body) -> Launch:
    posted_at, started = time.time(), time.perf_counter()
    response = await http.post("/v1/jobs", json=body)
    api_ms = (time.perf_counter() - started) * 1000
    if response.status_code != 202:
        raise BenchError(f"POST /v1/jobs answered {response.status_code}: {response.text[:300]}")
    return Launch(str(response.json()["id"]), posted_at, api_ms)


async def launch_sequential(
    http: httpx.AsyncClient, count: int, body_for: BodyFor
) -> tuple[list[Launch], float]:
    """(launches, elapsed seconds), one request after the other."""
    started = time.perf_counter()
    launches = [await create_one(http, body_for(i)) for i in range(count)]
    return launches, time.perf_counter() - started


async def launch_concurrent(
    http: httpx.AsyncClient, count: int, concurrency: int, body_for: BodyFor
) -> tuple[list[Launch], float]:
    """(launches, elapsed seconds) with `concurrency` requests always in flight."""
    launches: list[Launch] = []
    next_index = 0

    async def worker() -> None:
        nonlocal next_index
        while next_index < count:
            index, next_index = next_index, next_index + 1
            launches.append(await create_one(http, body_for(index)))

    started = time.perf_counter()
    async with asyncio.TaskGroup() as group:
        for _ in range(min(concurrency, count)):
            group.create_task(worker())
    return launches, time.perf_counter() - started


async def launch_steady(
    http: httpx.AsyncClient, count: int, rate_per_s: float, body_for: BodyFor
) -> list[Launch]:
    """Open loop: job i is created at start + i / rate, however slow earlier answers are."""
    loop = asyncio.get_running_loop()
    start = loop.time()

    async def one(i: int) -> Launch:
        await asyncio.sleep(max(0.0, start + i / rate_per_s - loop.time()))
        return await create_one(http, body_for(i))

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(one(i)) for i in range(count)]
    return [t.result() for t in tasks]


@dataclass(frozen=True)
class Trace:
    """What happened to one job, in wall-clock seconds."""

    launch: Launch
    status: str
    created_at: float | None
    submitted_at: float | None
    completed_at: float | None
    callback_sent_at: float | None
    arrival: float | None


async def fetch_jobs(
    http: httpx.AsyncClient, job_ids: Sequence[str], *, with_events: bool = False
) -> dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]:
    """Each job (and its event history) by id, 16 requests at a time."""
    gate = asyncio.Semaphore(16)
    out: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {}

    async def one(job_id: str) -> None:
        async with gate:
            job: dict[str, Any] = (await http.get(f"/v1/jobs/{job_id}")).json()
            history: list[dict[str, Any]] = []
            if with_events:
                history = (await http.get(f"/v1/jobs/{job_id}/events")).json()["data"]
            out[job_id] = (job, history)

    async with asyncio.TaskGroup() as group:
        for job_id in job_ids:
            group.create_task(one(job_id))
    return out


def first_callbacks(sim: RunningSimulator) -> dict[str, float]:
    """Job id → when the simulator started its first callback attempt (wall clock)."""
    out: dict[str, float] = {}
    for task in sim.simulator.store.all():
        if task.idempotency_key and task.callback_attempts:
            out[task.idempotency_key] = task.callback_attempts[0].sent_at
    return out


async def trace(
    http: httpx.AsyncClient,
    sim: RunningSimulator,
    launches: Sequence[Launch],
    arrivals: dict[str, float],
) -> list[Trace]:
    jobs = await fetch_jobs(http, [launch.job_id for launch in launches], with_events=True)
    callbacks = first_callbacks(sim)
    traces = []
    for launch in launches:
        job, history = jobs[launch.job_id]
        submitted = next((e for e in history if e["to_status"] == "submitted"), None)
        traces.append(
            Trace(
                launch=launch,
                status=str(job["status"]),
                created_at=wall(job.get("created_at")),
                submitted_at=wall(submitted["created_at"]) if submitted else None,
                completed_at=wall(job.get("completed_at")),
                callback_sent_at=callbacks.get(launch.job_id),
                arrival=arrivals.get(launch.job_id),
            )
        )
    return traces


def gaps_ms(traces: Sequence[Trace], start: str, end: str) -> list[float]:
    """(end − start) in ms for every trace that has both timestamps."""
    out = []
    for t in traces:
        a = t.launch.posted_at if start == "posted" else getattr(t, start)
        b = getattr(t, end)
        if a is not None and b is not None:
            out.append((b - a) * 1000)
    return out
