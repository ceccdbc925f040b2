"""Which job statuses become events, with what data, and which reach the callback_url."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from app.auth.service import new_webhook_secret
from app.clock import utcnow
from app.db.engine import transaction
from app.ids import new_id
from app.jobs.events import publish_status
from app.jobs.views import job_payload
from app.models import Delivery, Event, Job, WebhookEndpoint
from app.statuses import EndpointStatus, JobStatus
from tests.support.steps import Steps

CALLBACK = "http://127.0.0.1:9/callback"


async def new_job(steps: Steps, client_id: str, status: JobStatus) -> Job:
    now = utcnow()
    job = Job(
        id=new_id("job"),
        client_id=client_id,
        status=status,
        model="kling-3.0-motion-control",
        quality="720p",
        model_params={"character_orientation": "image"},
        image_url="https://example.com/a.png",
        video_url="https://example.com/a.mp4",
        callback_url=CALLBACK,
        request_hash="0" * 64,
        cost_estimated_usd=Decimal("1.0000"),
        deadline_at=now + timedelta(hours=1),
        created_at=now,
        updated_at=now,
    )
    async with transaction(steps.runtime.session_factory) as session:
        session.add(job)
    return job


async def subscribe(steps: Steps, client_id: str, event_types: list[str]) -> str:
    now = utcnow()
    endpoint = WebhookEndpoint(
        id=new_id("we"),
        client_id=client_id,
        url="http://127.0.0.1:9/hook",
        event_types=event_types,
        status=EndpointStatus.enabled,
        secret=new_webhook_secret(),
        rate_limit_per_s=10.0,
        max_concurrency=4,
        consecutive_failures=0,
        created_at=now,
        updated_at=now,
    )
    async with transaction(steps.runtime.session_factory) as session:
        session.add(endpoint)
    return endpoint.id


async def published(steps: Steps, job: Job) -> list[tuple[Event, list[Delivery]]]:
    """Publish the job's status in a transaction of its own; every event with its deliveries."""
    async with transaction(steps.runtime.session_factory) as session:
        await publish_status(session, job, job.status)
    async with transaction(steps.runtime.session_factory) as session:
        events = (await session.execute(select(Event).order_by(Event.id))).scalars().all()
        return [
            (
                e,
                list(
                    (
                        await session.execute(select(Delivery).where(Delivery.event_id == e.id))
                    ).scalars()
                ),
            )
            for e in events
        ]


@pytest.mark.parametrize(
    ("status", "event_type"),
    [
        (JobStatus.succeeded, "job.succeeded"),
        (JobStatus.failed, "job.failed"),
        (JobStatus.cancelled, "job.cancelled"),
        (JobStatus.expired, "job.expired"),
    ],
)
async def test_an_outcome_goes_to_subscribers_and_to_the_callback_url(
    steps: Steps, status: JobStatus, event_type: str
) -> None:
    key = await steps.new_client()
    endpoint_id = await subscribe(steps, key.client_id, [event_type])
    job = await new_job(steps, key.client_id, status)

    [(event, deliveries)] = await published(steps, job)

    assert (event.type, event.job_id) == (event_type, job.id)
    assert event.payload["data"] == job_payload(job)
    assert sorted((d.endpoint_id or "", d.target_url or "") for d in deliveries) == sorted(
        [(endpoint_id, ""), ("", CALLBACK)]
    )


async def test_an_outcome_nobody_subscribed_to_still_reaches_the_callback_url(
    steps: Steps,
) -> None:
    key = await steps.new_client()
    job = await new_job(steps, key.client_id, JobStatus.succeeded)

    [(event, [delivery])] = await published(steps, job)

    assert event.type == "job.succeeded"
    assert (delivery.endpoint_id, delivery.target_url) == (None, CALLBACK)


async def test_progress_goes_to_subscribers_only(steps: Steps) -> None:
    key = await steps.new_client()
    endpoint_id = await subscribe(steps, key.client_id, ["job.processing"])
    job = await new_job(steps, key.client_id, JobStatus.processing)

    [(event, [delivery])] = await published(steps, job)

    assert event.type == "job.processing"
    assert (delivery.endpoint_id, delivery.target_url) == (endpoint_id, None)


@pytest.mark.parametrize("status", [JobStatus.submitted, JobStatus.processing, JobStatus.queued])
async def test_progress_nobody_subscribed_to_is_not_stored(steps: Steps, status: JobStatus) -> None:
    key = await steps.new_client()
    await subscribe(steps, key.client_id, ["job.succeeded"])
    job = await new_job(steps, key.client_id, status)

    assert await published(steps, job) == []
