"""Callbacks on the Kling wire: one per status change, bare task object, no retry."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.simulator import (
    CallbackReceiver,
    RunningSimulator,
    fast_kling_config,
    install_faults,
    kling_client,
    running_receiver,
    running_simulator,
    sample_kling_body,
    wait_until,
)

CREATE = "/v1/videos/motion-control"


@pytest.fixture
async def ksim() -> AsyncIterator[RunningSimulator]:
    async with running_simulator(fast_kling_config()) as running:
        yield running


@pytest.fixture
async def kclient(ksim: RunningSimulator) -> AsyncIterator[httpx.AsyncClient]:
    async with kling_client(ksim) as http:
        yield http


async def create_task(http: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await http.post(CREATE, json=sample_kling_body(**fields))
    assert response.json()["code"] == 0, response.text
    task: dict[str, Any] = response.json()["data"]
    return task


async def query(http: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    task: dict[str, Any] = (await http.get(f"{CREATE}/{task_id}")).json()["data"]
    return task


async def admin_task(http: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    summary: dict[str, Any] = (await http.get(f"/_sim/tasks/{task_id}")).json()
    return summary


async def wait_summary(http: httpx.AsyncClient, task_id: str, done: str) -> dict[str, Any]:
    """The admin summary once `done` is truthy in it (e.g. `callback_dropped`)."""

    async def probe() -> dict[str, Any] | None:
        summary = await admin_task(http, task_id)
        return summary if summary[done] else None

    return await wait_until(probe)


def statuses(receiver: CallbackReceiver) -> list[str]:
    return [callback.body["task_status"] for callback in receiver.received]


async def test_a_callback_on_every_status_change(kclient: httpx.AsyncClient) -> None:
    async with running_receiver() as receiver:
        task = await create_task(kclient, callback_url=receiver.url, external_task_id="job-cb")
        received = await receiver.wait_for(3)
        final = await query(kclient, task["task_id"])

    assert statuses(receiver) == ["submitted", "processing", "succeed"]
    assert received[-1].body == final
    assert all("code" not in callback.body for callback in received)
    assert all(cb.body["task_info"] == {"external_task_id": "job-cb"} for cb in received)
    assert all(callback.headers["content-type"] == "application/json" for callback in received)
    updated = [callback.body["updated_at"] for callback in received]
    assert updated == sorted(updated)


async def test_no_callback_for_creation_when_configured_so() -> None:
    config = fast_kling_config(kling_callback_on_submit=False)
    async with (
        running_simulator(config) as running,
        kling_client(running) as http,
        running_receiver() as receiver,
    ):
        await create_task(http, callback_url=receiver.url)
        await receiver.wait_for(2)

    assert statuses(receiver) == ["processing", "succeed"]


async def test_a_failed_callback_is_not_retried(kclient: httpx.AsyncClient) -> None:
    async with running_receiver([500] * 10) as receiver:
        task_id = (await create_task(kclient, callback_url=receiver.url))["task_id"]
        await receiver.wait_for(3)
        await asyncio.sleep(0.3)  # a retry, had there been one, would have come by now
        summary = await admin_task(kclient, task_id)

    assert statuses(receiver) == ["submitted", "processing", "succeed"]
    assert [attempt["status_code"] for attempt in summary["callback_log"]] == [500, 500, 500]


async def test_drop_callback_sends_nothing(kclient: httpx.AsyncClient) -> None:
    async with running_receiver() as receiver:
        body = {"callback_url": receiver.url, "prompt": "#sim:drop_callback #sim:stuck"}
        task_id = (await create_task(kclient, **body))["task_id"]
        await kclient.post(f"/_sim/tasks/{task_id}/complete")
        summary = await wait_summary(kclient, task_id, "callback_dropped")

    assert (await query(kclient, task_id))["task_status"] == "succeed"
    assert receiver.received == []
    assert summary["callback_attempts"] == 0


async def test_dup_and_out_of_order_callbacks(kclient: httpx.AsyncClient) -> None:
    async with running_receiver() as receiver:
        await create_task(
            kclient, callback_url=receiver.url, prompt="#sim:dup_callback=2 #sim:out_of_order"
        )
        await receiver.wait_for(5)

    assert statuses(receiver) == ["submitted", "processing", "succeed", "succeed", "processing"]


async def test_early_callbacks_arrive_before_the_create_answer(
    kclient: httpx.AsyncClient,
) -> None:
    async with running_receiver() as receiver:
        task = await create_task(kclient, callback_url=receiver.url, prompt="#sim:early_callback")
        arrived = statuses(receiver)

    assert task["task_status"] == "submitted"
    assert arrived == ["submitted", "succeed"]


async def test_global_callback_drop_applies_to_a_whole_task(
    ksim: RunningSimulator, kclient: httpx.AsyncClient
) -> None:
    await install_faults(ksim, {"callbacks": {"drop": True, "count": 1}})
    async with running_receiver() as receiver:
        dropped = (await create_task(kclient, callback_url=receiver.url))["task_id"]
        await create_task(kclient, callback_url=receiver.url)
        await receiver.wait_for(3)
        summary = await wait_summary(kclient, dropped, "callback_dropped")

    assert summary["callback_attempts"] == 0
    assert all(callback.body["task_id"] != dropped for callback in receiver.received)
