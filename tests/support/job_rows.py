"""Plain async factories for job rows, written straight to a step test's database."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from app.clock import utcnow
from app.db.engine import transaction
from app.ids import new_id
from app.jobs import repository as repo
from app.jobs.schemas import MODEL_ID
from app.models import Job, JobEvent
from app.runtime import Runtime
from app.statuses import JobStatus

IMAGE_URL = "https://media.example.com/character.png"
VIDEO_URL = "https://media.example.com/motion.mp4"


async def insert_job(rt: Runtime, client_id: str, **fields: Any) -> str:
    """A queued 720p job unless `fields` say otherwise; returns its id."""
    now = utcnow()
    values: dict[str, Any] = {
        "id": new_id("job"),
        "client_id": client_id,
        "status": JobStatus.queued,
        "progress": 0,
        "version": 1,
        "model": MODEL_ID,
        "quality": "720p",
        "model_params": {"character_orientation": "image", "keep_sound": True},
        "image_url": IMAGE_URL,
        "video_url": VIDEO_URL,
        "request_hash": "0" * 64,
        "providers_tried": [],
        "submit_attempts": 0,
        "poll_attempts": 0,
        "submit_unknown": False,
        "callback_registered": False,
        "cost_estimated_usd": Decimal("1.1340"),
        "deadline_at": now + timedelta(hours=1),
        "created_at": now,
        "updated_at": now,
    }
    values.update(fields)
    async with transaction(rt.session_factory) as session:
        session.add(Job(**values))
    return str(values["id"])


async def read_job(rt: Runtime, job_id: str) -> Job:
    async with transaction(rt.session_factory) as session:
        job = await repo.get_job(session, job_id)
    assert job is not None, f"job {job_id} is not in the database"
    return job


async def read_events(rt: Runtime, job_id: str) -> list[JobEvent]:
    async with transaction(rt.session_factory) as session:
        return list(await repo.list_events(session, job_id))
