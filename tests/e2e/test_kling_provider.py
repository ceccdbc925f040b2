"""The gateway driving a provider that speaks the official Kling API (UPSTREAM.md §B)."""

from __future__ import annotations

from decimal import Decimal

from app.settings import ProviderConfig
from tests.conftest import fast_simulator_config
from tests.support.flows import (
    assert_history_is_clean,
    create_job,
    events,
    wait_for_status,
)
from tests.support.gateway import free_port, gateway_settings, running_gateway
from tests.support.payloads import job_body
from tests.support.simulator import fast_kling_config, install_faults, running_simulator


def kling_provider(base_url: str, **prices: Decimal) -> ProviderConfig:
    config = fast_kling_config()
    return ProviderConfig(
        name="kling",
        kind="kling",
        base_url=base_url,
        access_key=config.kling_access_key,
        secret_key=config.kling_secret_key,
        **prices,
    )


async def test_a_job_succeeds_through_the_kling_wire(database_url: str) -> None:
    async with running_simulator(fast_kling_config()) as sim:
        settings = gateway_settings(
            database_url,
            sim.base_url,
            providers=[kling_provider(sim.base_url)],
            public_base_url=f"http://127.0.0.1:{free_port()}",
        )
        async with running_gateway(settings) as gateway:
            key = await gateway.new_client()
            async with gateway.http(key) as http:
                job_id = await create_job(http, job_body(quality="1080p"))
                job = await wait_for_status(http, job_id)
                history = await events(http, job_id)
        [task] = sim.simulator.store.all()
    assert job["status"] == "succeeded", job
    assert job["provider"] == {"name": "kling", "task_id": task.id}
    assert job["result"]["video_url"]
    assert job["cost"]["billed_seconds"] == 5
    assert job["cost"]["billed"] == "0.7560"  # 5 s × $0.1512
    assert_history_is_clean(history)


async def test_failover_from_a_broke_kling_account_to_the_aggregator(database_url: str) -> None:
    """Kling answers HTTP 429 / code 1102 (balance exhausted): an account problem, so the
    job goes to the next provider instead of failing."""
    async with (
        running_simulator(fast_kling_config()) as kling,
        running_simulator(fast_simulator_config()) as aggregator,
    ):
        providers = [
            kling_provider(kling.base_url, price_720p_usd_per_s=Decimal("0.10")),
            ProviderConfig(name="aggregator", base_url=aggregator.base_url, api_key="k"),
        ]
        await install_faults(kling, {"create": {"status": 429, "code": 1102}})
        settings = gateway_settings(
            database_url,
            aggregator.base_url,
            providers=providers,
            public_base_url=f"http://127.0.0.1:{free_port()}",
        )
        async with running_gateway(settings) as gateway:
            key = await gateway.new_client()
            async with gateway.http(key) as http:
                job = await wait_for_status(http, await create_job(http, job_body()))
    assert job["status"] == "succeeded"
    assert job["provider"]["name"] == "aggregator"
    assert kling.simulator.store.all() == []
