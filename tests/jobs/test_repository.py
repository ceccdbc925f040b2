"""The claim queries of `app.jobs.repository` on real rows: what is due, in which order, how
many, and that a row another transaction holds is skipped, not waited for."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.clock import utcnow
from app.db.engine import transaction
from app.jobs import repository as repo
from app.models import Job
from app.runtime import Runtime
from app.statuses import TERMINAL, JobStatus
from tests.support.jobs import ago, insert_row, later, load
from tests.support.steps import Steps

Claim = Callable[[AsyncSession, datetime], Awaitable[list[Job]]]


def _submits(session: AsyncSession, now: datetime) -> Awaitable[list[Job]]:
    return repo.claim_due_submits(session, now=now, limit=10)


def _polls(session: AsyncSession, now: datetime) -> Awaitable[list[Job]]:
    return repo.claim_due_polls(session, now=now, limit=10, lease_s=30.0)


def _stale(session: AsyncSession, now: datetime) -> Awaitable[list[Job]]:
    return repo.claim_stale(session, now=now, limit=10)


async def _claim(rt: Runtime, claim: Claim, now: datetime | None = None) -> list[str]:
    async with transaction(rt.session_factory) as session:
        # A claim that waited on a held row instead of skipping it errors here, not hangs.
        await session.execute(text("SET LOCAL lock_timeout = '5s'"))
        return [j.id for j in await claim(session, now or utcnow())]


@asynccontextmanager
async def _held(rt: Runtime, job_id: str) -> AsyncIterator[None]:
    """Another replica's open transaction holding the job's row lock."""
    async with rt.session_factory() as session, session.begin():
        assert await repo.lock_job(session, job_id) is not None
        yield


async def _row(db_steps: Steps, **fields: Any) -> Job:
    key = await db_steps.new_client()
    return await insert_row(db_steps.runtime, key.client_id, **fields)


def _polled(**fields: Any) -> dict[str, Any]:
    values: dict[str, Any] = {
        "status": JobStatus.submitted,
        "provider_name": "simulator",
        "provider_task_id": "task-1",
        "next_poll_at": ago(1),
    }
    values.update(fields)
    return values


# --- claim_due_submits ---------------------------------------------------------------------


async def test_due_submits_are_queued_jobs_due_now_oldest_due_first(db_steps: Steps) -> None:
    rt, now = db_steps.runtime, utcnow()
    second = await _row(db_steps, next_attempt_at=ago(5, now))
    first = await _row(db_steps, next_attempt_at=ago(10, now))
    await _row(db_steps, next_attempt_at=later(5, now))  # backing off
    await _row(db_steps, status=JobStatus.submitting, next_attempt_at=ago(10, now))

    assert await _claim(rt, _submits, now) == [first.id, second.id]


async def test_due_submits_honour_the_limit(db_steps: Steps) -> None:
    rt, now = db_steps.runtime, utcnow()
    jobs = [await _row(db_steps, next_attempt_at=ago(10 - i, now)) for i in range(3)]

    async with transaction(rt.session_factory) as session:
        claimed = await repo.claim_due_submits(session, now=now, limit=2)

    assert [j.id for j in claimed] == [jobs[0].id, jobs[1].id]


async def test_due_submits_skip_a_row_another_transaction_holds(db_steps: Steps) -> None:
    rt = db_steps.runtime
    held = await _row(db_steps, next_attempt_at=ago(10))
    free = await _row(db_steps, next_attempt_at=ago(5))

    async with _held(rt, held.id):
        claimed_while_held = await _claim(rt, _submits)

    assert claimed_while_held == [free.id]
    assert await _claim(rt, _submits) == [held.id, free.id]


async def test_two_open_claims_get_disjoint_rows(db_steps: Steps) -> None:
    rt = db_steps.runtime
    jobs = [await _row(db_steps, next_attempt_at=ago(10 - i)) for i in range(3)]

    async with rt.session_factory() as first, first.begin():
        mine = await repo.claim_due_submits(first, now=utcnow(), limit=2)
        theirs = await _claim(rt, _submits)

    assert [j.id for j in mine] == [jobs[0].id, jobs[1].id]
    assert theirs == [jobs[2].id]


# --- claim_due_polls -----------------------------------------------------------------------


async def test_due_polls_push_the_lease_out_and_count_the_attempt(db_steps: Steps) -> None:
    rt, now = db_steps.runtime, utcnow()
    job = await _row(db_steps, **_polled(poll_attempts=2))

    async with transaction(rt.session_factory) as session:
        claimed = await repo.claim_due_polls(session, now=now, limit=10, lease_s=30.0)

    assert [j.id for j in claimed] == [job.id]
    stored = await load(rt, job.id)
    assert stored.next_poll_at == now + timedelta(seconds=30)
    assert stored.poll_attempts == 3
    assert stored.status is JobStatus.submitted
    assert await _claim(rt, _polls, now) == []  # the lease keeps it from a second claim
    assert await _claim(rt, _polls, now + timedelta(seconds=31)) == [job.id]


async def test_due_polls_are_jobs_at_the_provider_oldest_due_first(db_steps: Steps) -> None:
    rt, now = db_steps.runtime, utcnow()
    processing = await _row(
        db_steps, **_polled(status=JobStatus.processing, next_poll_at=ago(2, now))
    )
    submitted = await _row(db_steps, **_polled(next_poll_at=ago(9, now)))
    adopted = await _row(
        db_steps, **_polled(status=JobStatus.submitting, next_poll_at=ago(5, now))
    )  # a callback named its task while the submit was in flight
    await _row(db_steps, **_polled(next_poll_at=later(5, now)))  # not due
    await _row(
        db_steps, **_polled(status=JobStatus.submitting, provider_task_id=None, next_poll_at=ago(9))
    )
    await _row(db_steps, **_polled(status=JobStatus.queued, provider_task_id=None))

    assert await _claim(rt, _polls, now) == [submitted.id, adopted.id, processing.id]


async def test_due_polls_honour_the_limit(db_steps: Steps) -> None:
    rt, now = db_steps.runtime, utcnow()
    jobs = [await _row(db_steps, **_polled(next_poll_at=ago(10 - i, now))) for i in range(3)]

    async with transaction(rt.session_factory) as session:
        claimed = await repo.claim_due_polls(session, now=now, limit=1, lease_s=30.0)

    assert [j.id for j in claimed] == [jobs[0].id]
    assert (await load(rt, jobs[1].id)).poll_attempts == 0


async def test_due_polls_skip_a_row_another_transaction_holds(db_steps: Steps) -> None:
    rt = db_steps.runtime
    held = await _row(db_steps, **_polled(next_poll_at=ago(10)))
    free = await _row(db_steps, **_polled(next_poll_at=ago(5)))

    async with _held(rt, held.id):
        claimed_while_held = await _claim(rt, _polls)

    assert claimed_while_held == [free.id]
    stored = await load(rt, held.id)
    assert (stored.poll_attempts, stored.next_poll_at) == (0, held.next_poll_at)


# --- claim_stale ---------------------------------------------------------------------------


async def test_stale_includes_every_live_job_past_its_deadline(db_steps: Steps) -> None:
    rt = db_steps.runtime
    live = [JobStatus.queued, JobStatus.submitting, JobStatus.submitted, JobStatus.processing]
    past = [await _row(db_steps, status=s, deadline_at=ago(1), provider_task_id="t") for s in live]
    for status in live:
        await _row(db_steps, status=status, deadline_at=later(60), provider_task_id="t")

    assert sorted(await _claim(rt, _stale)) == sorted(j.id for j in past)


async def test_stale_includes_submits_whose_lease_ran_out(db_steps: Steps) -> None:
    rt = db_steps.runtime
    crashed = await _row(db_steps, status=JobStatus.submitting, locked_until=ago(1))
    await _row(  # its outcome is unknown already: the reconciler's, never the janitor's
        db_steps, status=JobStatus.submitting, submit_unknown=True, next_attempt_at=ago(1)
    )
    await _row(  # ... even past its deadline: expiring it would hide a task that may be billed
        db_steps, status=JobStatus.submitting, submit_unknown=True, deadline_at=ago(1)
    )
    await _row(db_steps, status=JobStatus.submitting, locked_until=later(60))  # in flight
    await _row(  # a callback named its task: the poller's, not the janitor's
        db_steps, status=JobStatus.submitting, provider_task_id="task-1", locked_until=ago(1)
    )

    assert sorted(await _claim(rt, _stale)) == [crashed.id]


async def _lookups(session: AsyncSession, now: datetime) -> list[Job]:
    return await repo.claim_due_lookups(session, now=now, limit=10, lease_s=30.0)


async def test_lookups_claim_due_unresolved_unknown_submits_and_lease_them(
    db_steps: Steps,
) -> None:
    rt = db_steps.runtime
    due = await _row(
        db_steps, status=JobStatus.submitting, submit_unknown=True, next_attempt_at=ago(1)
    )
    await _row(  # not yet due
        db_steps, status=JobStatus.submitting, submit_unknown=True, next_attempt_at=later(60)
    )
    await _row(  # the window closed: nothing looks automatically any more
        db_steps, status=JobStatus.submitting, submit_unknown=True, next_attempt_at=None
    )
    await _row(  # its task is known
        db_steps,
        status=JobStatus.submitting,
        submit_unknown=True,
        provider_task_id="task-1",
        next_attempt_at=ago(1),
    )
    await _row(db_steps, status=JobStatus.submitting, next_attempt_at=ago(1))  # in flight

    assert await _claim(rt, _lookups) == [due.id]
    assert await _claim(rt, _lookups) == []  # leased


async def test_lookups_skip_a_row_another_transaction_holds(db_steps: Steps) -> None:
    rt = db_steps.runtime
    fields: dict[str, Any] = {
        "status": JobStatus.submitting,
        "submit_unknown": True,
        "next_attempt_at": ago(1),
    }
    held = await _row(db_steps, **fields)
    free = await _row(db_steps, **fields)

    async with _held(rt, held.id):
        assert await _claim(rt, _lookups) == [free.id]


async def test_stale_honours_the_limit(db_steps: Steps) -> None:
    rt, now = db_steps.runtime, utcnow()
    for _ in range(3):
        await _row(db_steps, deadline_at=ago(1, now))

    async with transaction(rt.session_factory) as session:
        claimed = await repo.claim_stale(session, now=now, limit=2)

    assert len(claimed) == 2


async def test_stale_skips_a_row_another_transaction_holds(db_steps: Steps) -> None:
    rt = db_steps.runtime
    held = await _row(db_steps, deadline_at=ago(1))
    free = await _row(db_steps, deadline_at=ago(1))

    async with _held(rt, held.id):
        claimed_while_held = await _claim(rt, _stale)

    assert claimed_while_held == [free.id]


# --- terminal jobs -------------------------------------------------------------------------


async def test_terminal_jobs_are_never_claimed(db_steps: Steps) -> None:
    """Even with every due column in the past (as a bad write might leave them)."""
    for status in sorted(TERMINAL):
        await _row(
            db_steps,
            status=status,
            provider_task_id="task-1",
            next_attempt_at=ago(10),
            next_poll_at=ago(10),
            locked_until=ago(10),
            deadline_at=ago(10),
            submit_unknown=True,
            completed_at=ago(5),
        )

    for claim in (_submits, _polls, _stale, _lookups):
        assert await _claim(db_steps.runtime, claim) == [], claim.__name__
