"""`app.jobs.service` against real PostgreSQL: create, get, list, cancel, events."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.db.engine import transaction
from app.errors import PaymentRequired
from app.jobs import service
from app.jobs.errors import IdempotencyConflict, InvalidCursor, JobNotFound, NotCancellable
from app.jobs.schemas import JobList
from app.statuses import JobStatus
from tests.support.jobs import (
    body,
    count_jobs,
    create,
    history,
    insert_row,
    load,
    principal,
    steps_of,
)
from tests.support.steps import Steps

# 720p, orientation "image", duration unknown: 10 s at the default $0.1134/s.
ESTIMATE = Decimal("1.1340")


async def test_create_stores_a_queued_job_due_now_with_one_created_event(db_steps: Steps) -> None:
    rt, key = db_steps.runtime, await db_steps.new_client()

    job, created = await create(rt, key, body(prompt="a dance", metadata={"k": "v"}))

    assert created is True
    stored = await load(rt, job.id)
    assert stored.client_id == key.client_id
    assert stored.status is JobStatus.queued
    assert (stored.version, stored.progress, stored.submit_attempts) == (1, 0, 0)
    assert (stored.prompt, stored.metadata_) == ("a dance", {"k": "v"})
    assert stored.image_url == "https://203.0.113.10/character.png"
    assert stored.cost_estimated_usd == ESTIMATE
    assert stored.next_attempt_at == stored.created_at
    assert (stored.deadline_at - stored.created_at).total_seconds() == rt.settings.job_deadline_s
    assert stored.provider_name is None
    assert stored.completed_at is None
    events = await history(rt, job.id)
    assert steps_of(events) == [(None, "queued", 1)]
    assert events[0].source == "api"


async def test_the_same_key_and_body_return_the_first_job_without_a_second_row(
    db_steps: Steps,
) -> None:
    rt, key = db_steps.runtime, await db_steps.new_client()

    first, first_created = await create(rt, key, body(), idem="order-1")
    again, again_created = await create(rt, key, body(), idem="order-1")

    assert (first_created, again_created) == (True, False)
    assert again.id == first.id
    assert await count_jobs(rt) == 1
    assert steps_of(await history(rt, first.id)) == [(None, "queued", 1)]


async def test_the_same_key_with_another_body_is_the_documented_409(db_steps: Steps) -> None:
    rt, key = db_steps.runtime, await db_steps.new_client()
    await create(rt, key, body(), idem="order-1")

    with pytest.raises(IdempotencyConflict) as raised:
        await create(rt, key, body(quality="1080p"), idem="order-1")

    assert (raised.value.status_code, raised.value.code) == (409, "idempotency_key_reused")
    assert await count_jobs(rt) == 1


async def test_an_idempotency_key_belongs_to_one_client(db_steps: Steps) -> None:
    rt = db_steps.runtime
    alice, bob = await db_steps.new_client("alice"), await db_steps.new_client("bob")

    a, _ = await create(rt, alice, body(), idem="same")
    b, b_created = await create(rt, bob, body(quality="1080p"), idem="same")

    assert b_created is True
    assert a.id != b.id
    assert (await load(rt, b.id)).client_id == bob.client_id


async def test_without_a_key_each_create_is_a_new_job(db_steps: Steps) -> None:
    rt, key = db_steps.runtime, await db_steps.new_client()

    a, _ = await create(rt, key)
    b, _ = await create(rt, key)

    assert a.id != b.id
    assert await count_jobs(rt) == 2


async def test_a_create_over_the_budget_is_402_and_stores_nothing(db_steps: Steps) -> None:
    rt = db_steps.runtime
    key = await db_steps.new_client(budget_usd=Decimal("2.00"))
    await create(rt, key)  # reserves 1.1340 of 2.00

    with pytest.raises(PaymentRequired) as raised:
        await create(rt, key)

    assert (raised.value.status_code, raised.value.code) == (402, "budget_exceeded")
    assert raised.value.extra == {
        "budget_usd": "2.0000",
        "committed_usd": "1.1340",
        "estimate_usd": "1.1340",
    }
    assert await count_jobs(rt) == 1


async def test_a_replay_of_a_reserved_job_is_not_charged_again(db_steps: Steps) -> None:
    rt = db_steps.runtime
    key = await db_steps.new_client(budget_usd=Decimal("1.50"))
    first, _ = await create(rt, key, idem="k")

    again, created = await create(rt, key, idem="k")  # a second reservation would be 402

    assert (again.id, created) == (first.id, False)


async def test_a_finished_job_counts_its_billed_cost_not_its_reservation(db_steps: Steps) -> None:
    rt = db_steps.runtime
    key = await db_steps.new_client(budget_usd=Decimal("2.00"))
    await insert_row(
        rt,
        key.client_id,
        status=JobStatus.succeeded,
        cost_estimated_usd=Decimal("1.1340"),
        cost_billed_usd=Decimal("0.5670"),
    )

    job, created = await create(rt, key)  # 0.5670 + 1.1340 <= 2.00

    assert created is True
    assert (await load(rt, job.id)).status is JobStatus.queued


async def test_get_returns_the_callers_job_and_hides_anothers(db_steps: Steps) -> None:
    rt = db_steps.runtime
    alice, bob = await db_steps.new_client("alice"), await db_steps.new_client("bob")
    job, _ = await create(rt, alice)

    async with transaction(rt.session_factory) as session:
        found = await service.get_job(session, principal(alice), job.id)
        with pytest.raises(JobNotFound):
            await service.get_job(session, principal(bob), job.id)

    assert found.id == job.id


async def test_list_pages_newest_first_with_a_cursor_until_none(db_steps: Steps) -> None:
    rt = db_steps.runtime
    key, other = await db_steps.new_client("mine"), await db_steps.new_client("other")
    ids = [(await create(rt, key))[0].id for _ in range(5)]
    await create(rt, other)

    pages: list[JobList] = []
    cursor: str | None = None
    async with transaction(rt.session_factory) as session:
        while True:
            page = await service.list_jobs(
                session, principal(key), status=None, limit=2, cursor=cursor
            )
            pages.append(page)
            if page.next_cursor is None:
                break
            cursor = page.next_cursor

    newest_first = sorted(ids, reverse=True)
    assert [[j.id for j in p.data] for p in pages] == [
        newest_first[0:2],
        newest_first[2:4],
        newest_first[4:5],
    ]
    assert [p.next_cursor for p in pages] == [newest_first[1], newest_first[3], None]


async def test_list_filters_by_status(db_steps: Steps) -> None:
    rt, key = db_steps.runtime, await db_steps.new_client()
    queued, _ = await create(rt, key)
    done = await insert_row(rt, key.client_id, status=JobStatus.failed)

    async with transaction(rt.session_factory) as session:
        failed = await service.list_jobs(
            session, principal(key), status=JobStatus.failed, limit=10, cursor=None
        )
        live = await service.list_jobs(
            session, principal(key), status=JobStatus.queued, limit=10, cursor=None
        )

    assert [j.id for j in failed.data] == [done.id]
    assert [j.id for j in live.data] == [queued.id]
    assert failed.next_cursor is None


async def test_list_refuses_a_cursor_it_did_not_issue(db_steps: Steps) -> None:
    rt, key = db_steps.runtime, await db_steps.new_client()

    async with transaction(rt.session_factory) as session:
        with pytest.raises(InvalidCursor) as raised:
            await service.list_jobs(
                session, principal(key), status=None, limit=10, cursor="not-a-job-id"
            )

    assert (raised.value.status_code, raised.value.code) == (422, "invalid_cursor")


async def test_cancel_of_a_queued_job_cancels_it_here_with_one_event(db_steps: Steps) -> None:
    rt, key = db_steps.runtime, await db_steps.new_client()
    job, _ = await create(rt, key)

    async with transaction(rt.session_factory) as session:
        answered = await service.cancel_job(session, rt, principal(key), job.id)

    assert answered.status is JobStatus.cancelled
    stored = await load(rt, job.id)
    assert (stored.status, stored.version) == (JobStatus.cancelled, 2)
    assert stored.completed_at is not None
    assert stored.next_attempt_at is None
    events = await history(rt, job.id)
    assert steps_of(events) == [(None, "queued", 1), ("queued", "cancelled", 2)]
    assert events[-1].source == "api"


async def test_cancel_of_a_submitted_job_the_provider_cannot_cancel_is_409_unchanged(
    db_steps: Steps,
) -> None:
    """The evolink wire has no cancel: the job stays submitted, nothing is recorded."""
    rt, key = db_steps.runtime, await db_steps.new_client()
    job = await insert_row(
        rt,
        key.client_id,
        status=JobStatus.submitted,
        version=3,
        provider_name="simulator",
        provider_task_id="task-unit-1",
    )

    async with transaction(rt.session_factory) as session:
        with pytest.raises(NotCancellable) as raised:
            await service.cancel_job(session, rt, principal(key), job.id)

    assert (raised.value.status_code, raised.value.code) == (409, "not_cancellable")
    stored = await load(rt, job.id)
    assert (stored.status, stored.version, stored.completed_at) == (JobStatus.submitted, 3, None)
    assert await history(rt, job.id) == []


_NOT_CANCELLABLE = [JobStatus.submitting, JobStatus.succeeded, JobStatus.expired]


async def test_cancel_outside_queued_or_at_provider_is_409(db_steps: Steps) -> None:
    rt, key = db_steps.runtime, await db_steps.new_client()
    jobs = [await insert_row(rt, key.client_id, status=s) for s in _NOT_CANCELLABLE]

    for job in jobs:
        async with transaction(rt.session_factory) as session:
            with pytest.raises(NotCancellable):
                await service.cancel_job(session, rt, principal(key), job.id)

    assert [(await load(rt, j.id)).status for j in jobs] == _NOT_CANCELLABLE


async def test_cancel_of_another_clients_job_is_not_found(db_steps: Steps) -> None:
    rt = db_steps.runtime
    alice, bob = await db_steps.new_client("alice"), await db_steps.new_client("bob")
    job, _ = await create(rt, alice)

    async with transaction(rt.session_factory) as session:
        with pytest.raises(JobNotFound):
            await service.cancel_job(session, rt, principal(bob), job.id)

    assert (await load(rt, job.id)).status is JobStatus.queued


async def test_events_list_the_history_in_order_and_only_for_the_owner(db_steps: Steps) -> None:
    rt = db_steps.runtime
    alice, bob = await db_steps.new_client("alice"), await db_steps.new_client("bob")
    job, _ = await create(rt, alice)
    async with transaction(rt.session_factory) as session:
        await service.cancel_job(session, rt, principal(alice), job.id)

    async with transaction(rt.session_factory) as session:
        listed = await service.list_events(session, principal(alice), job.id)
        with pytest.raises(JobNotFound):
            await service.list_events(session, principal(bob), job.id)

    assert [(e.from_status, e.to_status, e.version, e.source) for e in listed.data] == [
        (None, JobStatus.queued, 1, "api"),
        (JobStatus.queued, JobStatus.cancelled, 2, "api"),
    ]
    assert listed.data[0].id < listed.data[1].id
