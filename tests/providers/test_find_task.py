"""`find_task` of each adapter against the simulator: it finds the task a create made
(whose answer we pretend was lost), never makes a second one, and finds nothing rather
than a wrong task."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from app.providers.base import Mechanism, RetryableError, SubmitRequest
from app.providers.evolink import EvolinkProvider, match_listed
from app.providers.kling import KlingProvider
from tests.support.simulator import (
    admin_tasks,
    fast_kling_config,
    install_faults,
    running_simulator,
)

from .helpers import FAST

CALLBACK = "http://127.0.0.1:9/v1/upstream/evolink/callbacks/job_0001?token=t"
REQUEST = SubmitRequest(
    job_id="job_0001",
    image_url="https://media.example.com/character.png",
    video_url="https://media.example.com/motion.mp4",
    quality="720p",
    character_orientation="image",
    callback_url=CALLBACK,
)


def evolink(base_url: str, http: httpx.AsyncClient, **kwargs: Any) -> EvolinkProvider:
    return EvolinkProvider("evolink", base_url, "sk-test", http, timeout_s=2.0, **kwargs)


def kling(base_url: str, http: httpx.AsyncClient) -> KlingProvider:
    config = fast_kling_config()
    return KlingProvider(
        "kling", base_url, config.kling_access_key, config.kling_secret_key, http, timeout_s=2.0
    )


def now() -> datetime:
    return datetime.now(UTC)


# --- the aggregator ------------------------------------------------------------------


def test_mechanisms_follow_the_configuration(http: httpx.AsyncClient) -> None:
    assert evolink("http://x", http).reconcile_mechanisms == (Mechanism.task_list,)
    both = evolink("http://x", http, honors_idempotency_key=True)
    assert both.reconcile_mechanisms == (Mechanism.idempotent_replay, Mechanism.task_list)
    none = evolink("http://x", http, task_list_lookup=False)
    assert none.reconcile_mechanisms == ()


async def test_the_task_list_finds_our_task_by_its_callback_url(http: httpx.AsyncClient) -> None:
    async with running_simulator(FAST) as sim:
        provider = evolink(sim.base_url, http)
        sent = now()
        made = await provider.submit(REQUEST)
        await provider.submit(replace(REQUEST, job_id="job_0002", callback_url=CALLBACK + "2"))

        found = await provider.find_task(REQUEST, submitted_at=sent, idempotency_key="job_0001")

        assert found is not None
        assert (found.snapshot.task_id, found.mechanism) == (made.task_id, Mechanism.task_list)
        assert len(await admin_tasks(sim)) == 2  # looking made nothing


async def test_the_task_list_finds_nothing_outside_the_window(http: httpx.AsyncClient) -> None:
    async with running_simulator(FAST) as sim:
        provider = evolink(sim.base_url, http)
        await provider.submit(REQUEST)
        long_after = now() + timedelta(hours=2)

        assert (
            await provider.find_task(REQUEST, submitted_at=long_after, idempotency_key="k") is None
        )


async def test_a_failing_task_list_is_retryable(http: httpx.AsyncClient) -> None:
    async with running_simulator(FAST) as sim:
        await install_faults(sim, {"list": {"status": 503}})
        provider = evolink(sim.base_url, http)

        with pytest.raises(RetryableError):
            await provider.find_task(REQUEST, submitted_at=now(), idempotency_key="job_0001")


async def test_an_idempotent_replay_returns_the_existing_task(http: httpx.AsyncClient) -> None:
    async with running_simulator(replace_config(honor_idempotency_key=True)) as sim:
        provider = evolink(sim.base_url, http, honors_idempotency_key=True)
        made = await provider.submit(REQUEST)
        await install_faults(sim, {"list": {"status": 503}})

        found = await provider.find_task(REQUEST, submitted_at=now(), idempotency_key="job_0001")

        assert found is not None
        assert (found.snapshot.task_id, found.mechanism) == (
            made.task_id,
            Mechanism.idempotent_replay,
        )
        assert len(await admin_tasks(sim)) == 1


async def test_a_failed_replay_falls_back_to_the_list(http: httpx.AsyncClient) -> None:
    async with running_simulator(replace_config(honor_idempotency_key=True)) as sim:
        provider = evolink(sim.base_url, http, honors_idempotency_key=True)
        made = await provider.submit(REQUEST)
        await install_faults(sim, {"create": {"status": 503, "count": 1}})

        found = await provider.find_task(REQUEST, submitted_at=now(), idempotency_key="job_0001")

        assert found is not None
        assert (found.snapshot.task_id, found.mechanism) == (made.task_id, Mechanism.task_list)


def replace_config(**changes: Any) -> Any:
    return FAST.model_copy(update=changes)


def listed(**fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": "task-unified-1-aaaaaaaa",
        "object": "video.generation.task",
        "created": int(now().timestamp()),
        "model": "kling-v3-motion-control",
        "status": "pending",
        "progress": 0,
        "image_urls": [REQUEST.image_url],
        "video_urls": [REQUEST.video_url],
        "callback_url": CALLBACK,
    }
    item.update(fields)
    return {key: value for key, value in item.items() if value is not None}


def match(items: list[Mapping[str, Any]], request: SubmitRequest = REQUEST) -> str | None:
    found = match_listed(items, request, submitted_at=now(), timeout_s=30.0)
    return None if found is None else found.task_id


def test_the_list_match_is_conservative() -> None:
    assert match([listed()]) == "task-unified-1-aaaaaaaa"
    other_job = listed(id="task-unified-1-bbbbbbbb", callback_url=CALLBACK + "x")
    assert match([listed(), other_job]) == "task-unified-1-aaaaaaaa"
    # two tasks claiming our callback URL: not told apart, nothing adopted
    assert match([listed(), listed(id="task-unified-1-cccccccc")]) is None
    # a task that shows nothing of its request is never ours
    assert match([listed(callback_url=None, image_urls=None, video_urls=None)]) is None
    # outside the window, of another model
    assert match([listed(created=int(now().timestamp()) - 3600)]) is None
    assert match([listed(model="another-model")]) is None


def test_without_a_callback_url_the_inputs_must_match_and_be_unique() -> None:
    request = replace(REQUEST, callback_url=None, prompt="dance")
    bare = listed(callback_url=None, prompt="dance")
    assert match([bare], request) == "task-unified-1-aaaaaaaa"
    assert match([listed(callback_url=None, prompt="walk")], request) is None
    assert (
        match(
            [bare, listed(id="task-unified-1-dddddddd", callback_url=None, prompt="dance")], request
        )
        is None
    )


# --- Kling ---------------------------------------------------------------------------


async def test_kling_finds_our_task_by_its_external_task_id(http: httpx.AsyncClient) -> None:
    async with running_simulator(fast_kling_config()) as sim:
        provider = kling(sim.base_url, http)
        assert provider.reconcile_mechanisms == (Mechanism.external_id,)
        made = await provider.submit(REQUEST)

        found = await provider.find_task(REQUEST, submitted_at=now(), idempotency_key="job_0001")

        assert found is not None
        assert (found.snapshot.task_id, found.mechanism) == (made.task_id, Mechanism.external_id)
        assert len(await admin_tasks(sim)) == 1


async def test_kling_finds_nothing_for_a_job_it_never_saw(http: httpx.AsyncClient) -> None:
    async with running_simulator(fast_kling_config()) as sim:
        provider = kling(sim.base_url, http)
        await provider.submit(REQUEST)
        other = replace(REQUEST, job_id="job_0099")

        assert await provider.find_task(other, submitted_at=now(), idempotency_key="x") is None


async def test_kling_lookup_failures_are_retryable(http: httpx.AsyncClient) -> None:
    async with running_simulator(fast_kling_config()) as sim:
        await install_faults(sim, {"query": {"status": 500, "count": 1}})
        provider = kling(sim.base_url, http)

        with pytest.raises(RetryableError):
            await provider.find_task(REQUEST, submitted_at=now(), idempotency_key="job_0001")
