"""Job rows by id for step tests: thin names over `tests.support.jobs`, whose factory
they share, with media URLs of their own (some tests assert them)."""

from __future__ import annotations

from typing import Any

from app.runtime import Runtime
from tests.support.jobs import history as read_events
from tests.support.jobs import insert_row
from tests.support.jobs import load as read_job

IMAGE_URL = "https://media.example.com/character.png"
VIDEO_URL = "https://media.example.com/motion.mp4"

__all__ = ["IMAGE_URL", "VIDEO_URL", "insert_job", "read_events", "read_job"]


async def insert_job(rt: Runtime, client_id: str, **fields: Any) -> str:
    """A queued 720p job unless `fields` say otherwise; returns its id."""
    fields.setdefault("image_url", IMAGE_URL)
    fields.setdefault("video_url", VIDEO_URL)
    return (await insert_row(rt, client_id, **fields)).id
