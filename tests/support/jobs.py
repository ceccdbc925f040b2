"""Helpers for step tests on job rows: create through the service, read back, insert odd rows.

Every helper opens its own transaction, as a request or a worker step would, so what a test
reads back is what was committed.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import func, select

from app.auth.principal import Principal
from app.auth.service import IssuedKey
from app.clock import utcnow
from app.db.engine import transaction
from app.ids import new_id
from app.jobs import service
from app.jobs.schemas import JobCreate
from app.models import Event, Job, JobEvent
from app.runtime import Runtime
from app.statuses import JobStatus
from tests.support.payloads import job_body
from tests.support.simulator import RunningSimulator


def principal(key: IssuedKey) -> Principal:
    return Principal(key.client_id, False, key.webhook_secret)


def body(**overrides: Any) -> JobCreate:
    return JobCreate.model_validate(job_body(**overrides))


async def create(
    rt: Runtime, key: IssuedKey, create_body: JobCreate | None = None, idem: str | None = None
) -> tuple[Job, bool]:
    """`service.create_job` in a transaction of its own, as `POST /v1/jobs` runs it."""
    async with transaction(rt.session_factory) as session:
        return await service.create_job(session, rt, principal(key), create_body or body(), idem)


async def load(rt: Runtime, job_id: str) -> Job:
    async with transaction(rt.session_factory) as session:
        job = await session.get(Job, job_id)
        assert job is not None, job_id
        return job


async def history(rt: Runtime, job_id: str) -> list[JobEvent]:
    async with transaction(rt.session_factory) as session:
        stmt = select(JobEvent).where(JobEvent.job_id == job_id).order_by(JobEvent.id)
        return list((await session.execute(stmt)).scalars())


def steps_of(events: Sequence[JobEvent]) -> list[tuple[str | None, str, int]]:
    """(from, to, version) of each event: the shape a history is asserted in."""
    return [
        (str(e.from_status) if e.from_status else None, str(e.to_status), e.version) for e in events
    ]


async def outbox_types(rt: Runtime, job_id: str) -> list[str]:
    async with transaction(rt.session_factory) as session:
        stmt = select(Event.type).where(Event.job_id == job_id).order_by(Event.created_at)
        return list((await session.execute(stmt)).scalars())


async def count_jobs(rt: Runtime) -> int:
    async with transaction(rt.session_factory) as session:
        return int((await session.execute(select(func.count()).select_from(Job))).scalar_one())


async def insert_row(rt: Runtime, client_id: str, **fields: Any) -> Job:
    """A job row in whatever state a test needs, bypassing the service (for odd states)."""
    now = utcnow()
    values: dict[str, Any] = {
        "id": new_id("job"),
        "client_id": client_id,
        "status": JobStatus.queued,
        "progress": 0,
        "version": 1,
        "model": "kling-v3-motion-control",
        "quality": "720p",
        "prompt": None,
        "model_params": {"character_orientation": "image", "keep_sound": True},
        "image_url": "https://203.0.113.10/character.png",
        "video_url": "https://203.0.113.10/motion.mp4",
        "request_hash": "0" * 64,
        "providers_tried": [],
        "submit_attempts": 0,
        "poll_attempts": 0,
        "submit_unknown": False,
        "callback_registered": False,
        "cost_estimated_usd": Decimal("1.1340"),
        "next_attempt_at": None,
        "deadline_at": now + timedelta(hours=1),
        "created_at": now,
        "updated_at": now,
    }
    values.update(fields)
    async with transaction(rt.session_factory) as session:
        job = Job(**values)
        session.add(job)
        await session.flush()
        return job


async def update_row(rt: Runtime, job_id: str, **fields: Any) -> None:
    async with transaction(rt.session_factory) as session:
        job = await session.get(Job, job_id)
        assert job is not None, job_id
        for name, value in fields.items():
            setattr(job, name, value)


def ago(seconds: float, now: datetime | None = None) -> datetime:
    return (now or utcnow()) - timedelta(seconds=seconds)


def later(seconds: float, now: datetime | None = None) -> datetime:
    return (now or utcnow()) + timedelta(seconds=seconds)


async def set_faults(sim: RunningSimulator, rules: dict[str, Any]) -> None:
    """Install global fault rules through the simulator's own control API."""
    async with httpx.AsyncClient(base_url=sim.base_url) as http:
        response = await http.post("/_sim/faults", json=rules)
        response.raise_for_status()


async def sim_tasks(sim: RunningSimulator) -> dict[str, Any]:
    """`GET /_sim/tasks`: every task the simulator holds, and how many creates it answered."""
    async with httpx.AsyncClient(base_url=sim.base_url) as http:
        response = await http.get("/_sim/tasks")
        response.raise_for_status()
        answer: dict[str, Any] = response.json()
        return answer
