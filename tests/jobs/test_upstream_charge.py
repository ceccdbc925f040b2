"""The upstream's own report of its charge is kept beside our settlement, and drift is
flagged where the provider's unit has a configured price."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from app.jobs import polling
from app.jobs.views import to_out
from app.metrics import REGISTRY
from app.providers.base import TaskSnapshot, TaskStatus
from app.providers.evolink import parse_task as parse_evolink
from app.providers.kling import parse_task as parse_kling
from app.settings import ProviderConfig
from app.statuses import JobStatus
from tests.support.jobs import insert_row, load
from tests.support.simulator import RunningSimulator
from tests.support.steps import Steps, close_steps, open_steps, step_settings

# The simulator's credits: 12 per second at 720p, i.e. 0.1134 / 12 = 0.00945 USD each.
CREDIT_USD = Decimal("0.00945")


@pytest.fixture
async def priced(step_database_url: str, simulator: RunningSimulator) -> AsyncIterator[Steps]:
    provider = ProviderConfig(
        name="simulator",
        base_url=simulator.base_url,
        api_key="sim-key",
        upstream_unit_usd=CREDIT_USD,
    )
    settings = step_settings(step_database_url, simulator.base_url, providers=[provider])
    opened = await open_steps(settings)
    try:
        yield opened
    finally:
        await close_steps(opened)


def done(credits: int) -> TaskSnapshot:
    return TaskSnapshot(
        task_id="task-1",
        status=TaskStatus.succeeded,
        progress=100,
        result_urls=("https://cdn.example.com/out.mp4",),
        video_duration_s=5.0,
        upstream_charge=Decimal(credits),
        upstream_charge_unit="credits",
    )


def drift_count() -> float:
    sample = REGISTRY.get_sample_value("mgw_upstream_charge_drift_total", {"provider": "simulator"})
    return sample or 0.0


@pytest.mark.parametrize(("credits", "drift"), [(60, False), (90, True)])
async def test_the_reported_charge_is_kept_and_drift_flagged(
    priced: Steps, credits: int, drift: bool
) -> None:
    rt = priced.runtime
    key = await priced.new_client()
    job = await insert_row(
        rt,
        key.client_id,
        status=JobStatus.processing,
        provider_name="simulator",
        provider_task_id="task-1",
    )
    before = drift_count()

    await polling.apply(rt, job.id, done(credits), source="poller")

    stored = await load(rt, job.id)
    assert stored.status is JobStatus.succeeded
    assert stored.cost_billed_usd == Decimal("0.5670")  # 5 s x 0.1134
    assert (stored.upstream_charge, stored.upstream_charge_unit) == (Decimal(credits), "credits")
    assert stored.upstream_charge_drift is drift
    assert drift_count() - before == (1 if drift else 0)
    upstream = to_out(stored).cost.upstream
    assert upstream is not None
    assert (upstream.amount, upstream.unit, upstream.drift) == (f"{credits}.0000", "credits", drift)


def test_the_adapters_read_the_upstream_charge() -> None:
    evolink = parse_evolink(
        {"id": "task-unified-1-a", "status": "completed", "usage": {"credits_reserved": 60}}
    )
    assert (evolink.upstream_charge, evolink.upstream_charge_unit) == (Decimal(60), "credits")
    kling = parse_kling(
        {
            "task_id": "1",
            "task_status": "succeed",
            "task_result": {"videos": [], "final_unit_deduction": "2.5"},
        }
    )
    assert (kling.upstream_charge, kling.upstream_charge_unit) == (Decimal("2.5"), "units")
    bare = parse_kling({"task_id": "1", "task_status": "processing"})
    assert (bare.upstream_charge, bare.upstream_charge_unit) == (None, None)
