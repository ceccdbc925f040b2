"""The reconciler, one step at a time: a create whose answer was lost (a 500 or a timeout
after the task was made, its callback dropped) is found by every mechanism the provider
offers, adopted and finished; where none can find it, it stays visible with its estimate
at risk until an operator adopts a task or rules it out."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from typer.testing import CliRunner

from app.cli import cli
from app.clock import utcnow
from app.jobs import polling, unknown
from app.jobs.state import TERMINAL
from app.jobs.unknown import NotAdoptable, TaskAlreadyTracked, UnknownUpstreamTask
from app.jobs.views import at_risk_usd
from app.models import Job
from app.runtime import Runtime
from app.settings import ProviderConfig
from app.simulator.config import SimulatorConfig
from app.statuses import JobStatus
from app.workers import janitor, reconciler, submitter
from app.workers.loop import Pool
from tests.conftest import fast_simulator_config
from tests.support.jobs import ago, create, history, load, sim_tasks, update_row
from tests.support.simulator import (
    RunningSimulator,
    fast_kling_config,
    install_faults,
    kling_provider_config,
    running_simulator,
)
from tests.support.steps import Steps, close_steps, open_steps, step_settings

SUBMIT_TIMEOUT_S = 0.5
DROPPED: dict[str, Any] = {"callbacks": {"drop": True}}
LOST_500: dict[str, Any] = {"create": {"status": 500, "create_anyway": True, "count": 1}}
LOST_TIMEOUT: dict[str, Any] = {"create": {"timeout": True, "hang_s": 1.0, "count": 1}}
NO_LIST: dict[str, Any] = {"list": {"status": 503}}
LOSSES = [pytest.param(LOST_500, id="500-after-create"), pytest.param(LOST_TIMEOUT, id="timeout")]


@dataclass
class Rig:
    steps: Steps
    sim: RunningSimulator

    @property
    def rt(self) -> Runtime:
        return self.steps.runtime


def evolink(honors: bool = False) -> Callable[[str], ProviderConfig]:
    def config(base_url: str) -> ProviderConfig:
        return ProviderConfig(
            name="simulator", base_url=base_url, api_key="sim-key", honors_idempotency_key=honors
        )

    return config


@contextlib.asynccontextmanager
async def rig(
    database_url: str,
    sim_config: SimulatorConfig,
    provider: Callable[[str], ProviderConfig],
) -> AsyncIterator[Rig]:
    async with running_simulator(sim_config) as sim:
        settings = step_settings(
            database_url,
            sim.base_url,
            provider_submit_timeout_s=SUBMIT_TIMEOUT_S,
            providers=[provider(sim.base_url)],
        )
        steps = await open_steps(settings)
        try:
            yield Rig(steps, sim)
        finally:
            await close_steps(steps)


def kling(base_url: str) -> ProviderConfig:
    return kling_provider_config(base_url)


async def lose_a_create(r: Rig, faults: dict[str, Any]) -> Job:
    """Create a job and submit it into `faults` (its callbacks dropped): outcome unknown."""
    job, _ = await create(r.rt, await r.steps.new_client())
    await install_faults(r.sim, {**faults, **DROPPED})
    pool = Pool(4, asyncio.Event())
    assert await submitter.step(r.rt, pool) == 1
    await pool.drain(grace_s=10.0)
    stored = await load(r.rt, job.id)
    assert (stored.status, stored.submit_unknown, stored.provider_task_id) == (
        JobStatus.submitting,
        True,
        None,
    )
    assert at_risk_usd(stored) == stored.cost_estimated_usd > 0
    return stored


async def look_now(r: Rig, job_id: str) -> int:
    await update_row(r.rt, job_id, next_attempt_at=ago(0.01))
    return await reconciler.step(r.rt)


async def finish(r: Rig, job_id: str) -> Job:
    """Poll the adopted task (its callbacks are dropped) until the job ends."""
    for _ in range(200):
        job = await load(r.rt, job_id)
        if job.status in TERMINAL:
            return job
        await polling.force_poll(r.rt, job_id)
        await asyncio.sleep(0.05)
    raise AssertionError(f"job {job_id} did not end")


async def upstream_tasks(r: Rig) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = (await sim_tasks(r.sim))["tasks"]
    return tasks


async def assert_found_and_billed(r: Rig, job_id: str, found_by: str) -> Job:
    stored = await load(r.rt, job_id)
    [task] = await upstream_tasks(r)  # exactly one upstream task
    assert stored.provider_task_id == task["id"]
    assert stored.submit_unknown is False
    events = await history(r.rt, job_id)
    adopted = next(e for e in events if e.from_status == "submitting")
    assert (adopted.source, (adopted.detail or {}).get("found_by")) == ("reconciler", found_by)
    done = await finish(r, job_id)
    assert done.status is JobStatus.succeeded
    assert done.cost_billed_usd is not None
    assert done.cost_billed_usd > 0
    assert at_risk_usd(done) == 0
    assert len(await upstream_tasks(r)) == 1
    return done


# --- the aggregator ------------------------------------------------------------------


@pytest.mark.parametrize("loss", LOSSES)
async def test_the_aggregator_task_list_finds_a_lost_create(
    step_database_url: str, loss: dict[str, Any]
) -> None:
    async with rig(step_database_url, fast_simulator_config(), evolink()) as r:
        job = await lose_a_create(r, loss)

        assert await look_now(r, job.id) == 1

        await assert_found_and_billed(r, job.id, "task_list")
        assert (await sim_tasks(r.sim))["create_calls"] == 1  # never sent again


@pytest.mark.parametrize("loss", LOSSES)
async def test_an_idempotent_replay_returns_the_existing_task(
    step_database_url: str, loss: dict[str, Any]
) -> None:
    """Configured as honouring `Idempotency-Key` (and the list taken away): the replay."""
    sim_config = fast_simulator_config(honor_idempotency_key=True)
    async with rig(step_database_url, sim_config, evolink(honors=True)) as r:
        job = await lose_a_create(r, {**loss, **NO_LIST})

        assert await look_now(r, job.id) == 1

        await assert_found_and_billed(r, job.id, "idempotent_replay")
        assert (await sim_tasks(r.sim))["create_calls"] == 2  # the replay: the same task


async def test_with_no_way_to_find_it_the_job_stays_at_risk_until_an_operator_adopts(
    step_database_url: str,
) -> None:
    async with rig(step_database_url, fast_simulator_config(), evolink()) as r:
        job = await lose_a_create(r, {**LOST_500, **NO_LIST})
        [task] = await upstream_tasks(r)

        before = utcnow()
        assert await look_now(r, job.id) == 1  # the list fails: look again later
        looked = await load(r.rt, job.id)
        assert looked.next_attempt_at is not None
        assert looked.next_attempt_at > before
        assert (looked.status, at_risk_usd(looked)) == (
            JobStatus.submitting,
            job.cost_estimated_usd,
        )

        window = timedelta(seconds=r.rt.settings.submit_unknown_window_s + 1)
        await update_row(r.rt, job.id, submit_sent_at=utcnow() - window)
        assert await look_now(r, job.id) == 1  # the last look: the window has closed
        closed = await load(r.rt, job.id)
        assert closed.next_attempt_at is None
        assert await janitor.Janitor(r.rt).step() == 0  # nobody fails it
        closed = await load(r.rt, job.id)
        assert (closed.status, at_risk_usd(closed)) == (
            JobStatus.submitting,
            job.cost_estimated_usd,
        )

        adopted = await unknown.operator_adopt(r.rt, job.id, task["id"])

        assert (adopted.provider_task_id, adopted.submit_unknown) == (task["id"], False)
        done = await finish(r, job.id)
        assert done.status is JobStatus.succeeded
        assert at_risk_usd(done) == 0
        assert (done.cost_billed_usd or 0) > 0
        assert len(await upstream_tasks(r)) == 1


async def test_an_operator_rules_out_a_create_that_made_no_task(step_database_url: str) -> None:
    async with rig(step_database_url, fast_simulator_config(), evolink()) as r:
        job = await lose_a_create(r, {"create": {"status": 500, "count": 1}, **NO_LIST})
        assert await upstream_tasks(r) == []
        assert await look_now(r, job.id) == 1

        ruled = await unknown.rule_out(r.rt, job.id, "no such task in the provider's console")

        assert (ruled.status, ruled.error_code, ruled.submit_unknown) == (
            JobStatus.failed,
            "submit_ruled_out",
            False,
        )
        assert (at_risk_usd(ruled), ruled.cost_billed_usd) == (Decimal("0"), Decimal("0"))
        with pytest.raises(NotAdoptable):
            await unknown.rule_out(r.rt, job.id, None)


async def test_an_operator_cannot_adopt_an_unknown_or_taken_task(step_database_url: str) -> None:
    async with rig(step_database_url, fast_simulator_config(), evolink()) as r:
        job = await lose_a_create(r, {**LOST_500, **NO_LIST})
        [task] = await upstream_tasks(r)
        other, _ = await create(r.rt, await r.steps.new_client("other"))
        await update_row(
            r.rt,
            other.id,
            status=JobStatus.submitted,
            provider_name="simulator",
            provider_task_id=task["id"],
        )

        with pytest.raises(UnknownUpstreamTask):
            await unknown.operator_adopt(r.rt, job.id, "task-unified-0-nosuchid")
        with pytest.raises(TaskAlreadyTracked):
            await unknown.operator_adopt(r.rt, job.id, task["id"])
        with pytest.raises(NotAdoptable):  # its outcome is known
            await unknown.operator_adopt(r.rt, other.id, task["id"])
        assert (await load(r.rt, job.id)).submit_unknown is True


async def test_the_list_adopts_nothing_it_cannot_tell_apart(step_database_url: str) -> None:
    """The list shows our task, but another job already tracks it (an operator attached
    it there): a task is never adopted by two jobs, so this one stays unknown."""
    async with rig(step_database_url, fast_simulator_config(), evolink()) as r:
        job = await lose_a_create(r, LOST_500)
        [task] = await upstream_tasks(r)
        twin, _ = await create(r.rt, await r.steps.new_client("twin"))
        await update_row(
            r.rt,
            twin.id,
            status=JobStatus.submitted,
            provider_name="simulator",
            provider_task_id=task["id"],
        )

        assert await look_now(r, job.id) == 1

        stored = await load(r.rt, job.id)
        assert (stored.status, stored.provider_task_id, stored.submit_unknown) == (
            JobStatus.submitting,
            None,
            True,
        )


async def test_a_late_create_answer_after_expiry_keeps_its_task_and_cost_visible(
    step_database_url: str,
) -> None:
    async with rig(step_database_url, fast_simulator_config(), evolink()) as r:
        job, _ = await create(r.rt, await r.steps.new_client())
        [attempt] = await submitter.claim(r.rt, limit=1)
        await update_row(r.rt, job.id, deadline_at=ago(1))
        assert await janitor.settle_stale(r.rt) == 1  # expired while its create is in flight
        assert (await load(r.rt, job.id)).status is JobStatus.expired

        await submitter.send(r.rt, attempt)  # ... and the provider made the task

        stored = await load(r.rt, job.id)
        [task] = await upstream_tasks(r)
        assert (stored.status, stored.provider_task_id) == (JobStatus.expired, task["id"])
        assert at_risk_usd(stored) == stored.cost_estimated_usd > 0


# --- Kling ---------------------------------------------------------------------------


@pytest.mark.parametrize("loss", LOSSES)
async def test_kling_finds_a_lost_create_by_its_external_task_id(
    step_database_url: str, loss: dict[str, Any]
) -> None:
    async with rig(step_database_url, fast_kling_config(), kling) as r:
        job = await lose_a_create(r, loss)

        assert await look_now(r, job.id) == 1

        await assert_found_and_billed(r, job.id, "external_id")
        [task] = await upstream_tasks(r)
        assert task["external_task_id"] == job.id


async def test_kling_a_worker_killed_mid_create_is_reconciled(step_database_url: str) -> None:
    """The create is held; the worker dies (cancelled, as a SIGKILL would end it); its
    lease runs out; the janitor marks the outcome unknown; the reconciler finds the task."""
    async with rig(step_database_url, fast_kling_config(), kling) as r:
        job, _ = await create(r.rt, await r.steps.new_client())
        await install_faults(r.sim, {"create": {"timeout": True, "count": 1}, **DROPPED})
        [attempt] = await submitter.claim(r.rt, limit=1)
        sending = asyncio.create_task(submitter.send(r.rt, attempt))
        for _ in range(100):
            if await upstream_tasks(r):
                break
            await asyncio.sleep(0.02)
        sending.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sending
        await update_row(r.rt, job.id, locked_until=ago(1))

        assert await janitor.settle_stale(r.rt) == 1
        assert await reconciler.step(r.rt) == 1

        await assert_found_and_billed(r, job.id, "external_id")


async def test_kling_finds_nothing_when_no_task_was_made(step_database_url: str) -> None:
    async with rig(step_database_url, fast_kling_config(), kling) as r:
        job = await lose_a_create(r, {"create": {"status": 500, "count": 1}})

        assert await look_now(r, job.id) == 1

        stored = await load(r.rt, job.id)
        assert (stored.status, stored.submit_unknown) == (JobStatus.submitting, True)
        assert stored.next_attempt_at is not None
        assert await upstream_tasks(r) == []


async def test_the_cli_adopts_a_task_for_an_operator(step_database_url: str) -> None:
    """`motion-gateway jobs adopt ID TASK_ID`, in a process of its own settings."""
    async with rig(step_database_url, fast_simulator_config(), evolink()) as r:
        job = await lose_a_create(r, {**LOST_500, **NO_LIST})
        [task] = await upstream_tasks(r)
        env = {
            "DATABASE_URL": step_database_url,
            "MGW_ENVIRONMENT": "test",
            "MGW_AUTO_MIGRATE": "false",
            "MGW_SECRET_KEY": r.rt.settings.secret_key,
            "MGW_PROVIDERS": json.dumps(
                [{"name": "simulator", "base_url": r.sim.base_url, "api_key": "sim-key"}]
            ),
        }

        result = await asyncio.to_thread(
            CliRunner().invoke, cli, ["jobs", "adopt", job.id, task["id"], "--json"], env=env
        )

        assert result.exit_code == 0, result.output
        shown = json.loads(result.output)
        assert (shown["provider"]["task_id"], shown["cost"]["at_risk"]) == (task["id"], "0.0000")
        assert (await load(r.rt, job.id)).provider_task_id == task["id"]
        again = await asyncio.to_thread(
            CliRunner().invoke, cli, ["jobs", "adopt", job.id, task["id"]], env=env
        )
        assert again.exit_code == 1
        assert "not_adoptable" in again.output


async def test_an_ambiguous_answer_after_expiry_keeps_the_estimate_at_risk(
    step_database_url: str,
) -> None:
    async with rig(step_database_url, fast_simulator_config(), evolink()) as r:
        job, _ = await create(r.rt, await r.steps.new_client())
        [attempt] = await submitter.claim(r.rt, limit=1)
        await update_row(r.rt, job.id, deadline_at=ago(1))
        assert await janitor.settle_stale(r.rt) == 1  # expired while its create is out
        await install_faults(r.sim, LOST_500)

        await submitter.send(r.rt, attempt)  # ... and the answer is a 500 after the task

        stored = await load(r.rt, job.id)
        assert (stored.status, stored.submit_unknown) == (JobStatus.expired, True)
        assert at_risk_usd(stored) == stored.cost_estimated_usd > 0
