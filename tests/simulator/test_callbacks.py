"""Callbacks: retries, per-task callback faults, TLS, and the upstream's URL refusals."""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme

from tests.support.simulator import (
    CallbackReceiver,
    running_receiver,
    running_simulator,
    sample_create_body,
    wait_until,
)

from .helpers import client_for, fast_config, sim_tasks, task_status, wait_for_status


async def create(
    client: httpx.AsyncClient, callback_url: str, prompt: str | None = None
) -> httpx.Response:
    body = sample_create_body(callback_url=callback_url, prompt=prompt)
    return await client.post("/v1/videos/generations", json=body)


async def create_id(client: httpx.AsyncClient, callback_url: str, prompt: str | None = None) -> str:
    response = await create(client, callback_url, prompt)
    assert response.status_code == 200, response.text
    task_id: str = response.json()["id"]
    return task_id


async def sim_task(client: httpx.AsyncClient, task_id: str) -> dict[str, Any]:
    body: dict[str, Any] = (await client.get(f"/_sim/tasks/{task_id}")).json()
    return body


async def wait_attempts(client: httpx.AsyncClient, task_id: str, count: int) -> dict[str, Any]:
    async def probe() -> dict[str, Any] | None:
        task = await sim_task(client, task_id)
        return task if task["callback_attempts"] >= count else None

    return await wait_until(probe)


def statuses(receiver: CallbackReceiver) -> list[str]:
    return [callback.body["status"] for callback in receiver.received]


async def test_callback_is_retried_until_2xx(client: httpx.AsyncClient) -> None:
    async with running_receiver([500, 500, 200]) as receiver:
        task_id = await create_id(client, receiver.url)
        received = await receiver.wait_for(3)
        task = await wait_attempts(client, task_id, 3)

    assert [callback.answered_status for callback in received] == [500, 500, 200]
    assert all(callback.body == received[0].body for callback in received)
    assert received[0].body["status"] == "completed"
    assert received[0].body["results"]
    assert received[0].headers["content-type"] == "application/json"
    assert [attempt["status_code"] for attempt in task["callback_log"]] == [500, 500, 200]


async def test_callback_gives_up_after_three_retries(client: httpx.AsyncClient) -> None:
    async with running_receiver([503] * 10) as receiver:
        task_id = await create_id(client, receiver.url)
        await receiver.wait_for(4)
        # The last retry delay is 0.05 s: a fifth attempt would have shown up by now.
        await asyncio.sleep(0.3)
        task = await sim_task(client, task_id)

    assert len(receiver.received) == 4
    assert task["callback_attempts"] == 4


async def test_slow_receiver_counts_as_a_failure() -> None:
    config = fast_config(callback_timeout_s=0.1, callback_retry_delays_s=(0.05,))
    async with (
        running_simulator(config) as running,
        client_for(running) as http,
        running_receiver(answer_delay_s=0.5) as receiver,
    ):
        task_id = await create_id(http, receiver.url)
        task = await wait_until(lambda: _all_answered(http, task_id))

    assert [attempt["status_code"] for attempt in task["callback_log"]] == [None, None]
    assert all("Timeout" in attempt["error"] for attempt in task["callback_log"])


async def _all_answered(http: httpx.AsyncClient, task_id: str) -> dict[str, Any] | None:
    task = await sim_task(http, task_id)
    log = task["callback_log"]
    return task if len(log) == 2 and all(attempt["error"] for attempt in log) else None


async def test_failed_task_callback_carries_the_error(client: httpx.AsyncClient) -> None:
    async with running_receiver() as receiver:
        await create_id(client, receiver.url, "#sim:fail=content_policy")
        (callback,) = await receiver.wait_for(1)

    assert callback.body["status"] == "failed"
    assert callback.body["error"]["code"] == "content_policy"


async def test_forced_cancel_sends_a_callback(client: httpx.AsyncClient) -> None:
    async with running_receiver() as receiver:
        task_id = await create_id(client, receiver.url, "#sim:stuck")
        await client.post(f"/_sim/tasks/{task_id}/cancel")
        (callback,) = await receiver.wait_for(1)

    assert callback.body["status"] == "cancelled"


async def test_drop_callback_directive_sends_nothing(client: httpx.AsyncClient) -> None:
    async with running_receiver() as receiver:
        dropped = await create_id(client, receiver.url, "#sim:drop_callback")
        normal = await create_id(client, receiver.url)
        (callback,) = await receiver.wait_for(1)
        await wait_for_status(client, dropped, "completed")
        task = await wait_until(lambda: _dropped(client, dropped))

    assert callback.body["id"] == normal
    assert len(receiver.received) == 1
    assert task["callback_attempts"] == 0


async def _dropped(client: httpx.AsyncClient, task_id: str) -> dict[str, Any] | None:
    task = await sim_task(client, task_id)
    return task if task["callback_dropped"] else None


async def test_dup_callback_directive_repeats_the_callback(client: httpx.AsyncClient) -> None:
    async with running_receiver() as receiver:
        await create_id(client, receiver.url, "#sim:dup_callback=3")
        received = await receiver.wait_for(3)

    assert statuses(receiver) == ["completed"] * 3
    assert received[0].body == received[2].body


async def test_delay_callback_directive_holds_the_callback(client: httpx.AsyncClient) -> None:
    async with running_receiver() as receiver:
        task_id = await create_id(client, receiver.url, "#sim:delay_callback=0.8")
        await wait_for_status(client, task_id, "completed")
        before = len(receiver.received)
        (callback,) = await receiver.wait_for(1)

    assert before == 0
    assert callback.body["id"] == task_id


async def test_early_callback_arrives_before_the_create_answer(
    client: httpx.AsyncClient,
) -> None:
    async with running_receiver() as receiver:
        response = await create(client, receiver.url, "#sim:early_callback")
        received_before_answer = list(receiver.received)

    assert response.status_code == 200
    assert response.json()["status"] == "pending"
    assert [callback.body["status"] for callback in received_before_answer] == ["completed"]
    assert received_before_answer[0].body["id"] == response.json()["id"]


async def test_out_of_order_sends_a_stale_body_last(client: httpx.AsyncClient) -> None:
    async with running_receiver() as receiver:
        task_id = await create_id(client, receiver.url, "#sim:out_of_order")
        received = await receiver.wait_for(2)
        final = await task_status(client, task_id)

    assert statuses(receiver) == ["completed", "processing"]
    assert "results" not in received[1].body
    assert final["status"] == "completed"


async def test_global_drop_fault_counts(client: httpx.AsyncClient) -> None:
    await client.post("/_sim/faults", json={"callbacks": {"drop": True, "count": 1}})
    async with running_receiver() as receiver:
        dropped = await create_id(client, receiver.url)
        await wait_for_status(client, dropped, "completed")
        delivered = await create_id(client, receiver.url)
        (callback,) = await receiver.wait_for(1)

    assert callback.body["id"] == delivered
    assert (await sim_task(client, dropped))["callback_dropped"] is True


async def test_task_without_callback_url_sends_nothing(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/videos/generations", json=sample_create_body())
    task_id = response.json()["id"]

    await wait_for_status(client, task_id, "completed")

    assert (await sim_task(client, task_id))["callback_attempts"] == 0


# --- TLS -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def tls_cert_file(tls_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = tmp_path_factory.mktemp("tls") / "receiver.pem"
    cert = tls_ca.issue_cert("127.0.0.1", "localhost")
    cert.private_key_and_cert_chain_pem.write_to_path(str(path))
    yield str(path)
    Path(path).unlink(missing_ok=True)


async def test_https_callback_with_a_trusted_ca(tls_ca: trustme.CA, tls_cert_file: str) -> None:
    context = ssl.create_default_context()
    tls_ca.configure_trust(context)
    async with (
        running_simulator(fast_config(callback_verify=context)) as running,
        client_for(running) as http,
        running_receiver(ssl_certfile=tls_cert_file, ssl_keyfile=tls_cert_file) as receiver,
    ):
        assert receiver.url.startswith("https://")
        await create_id(http, receiver.url)
        (callback,) = await receiver.wait_for(1)

    assert callback.body["status"] == "completed"


async def test_https_callback_to_an_untrusted_cert_fails(
    client: httpx.AsyncClient, tls_cert_file: str
) -> None:
    async with running_receiver(ssl_certfile=tls_cert_file, ssl_keyfile=tls_cert_file) as receiver:
        task_id = await create_id(client, receiver.url)
        task = await wait_attempts(client, task_id, 4)

    assert receiver.received == []
    assert all(attempt["error"] for attempt in task["callback_log"])


# --- callback URL policy -------------------------------------------------------------

REFUSED_URLS = {
    "http scheme": "http://callbacks.example.com/hook",
    "loopback": "https://127.0.0.1/hook",
    "loopback range": "https://127.9.9.9:8443/hook",
    "ten": "https://10.1.2.3/hook",
    "one seven two": "https://172.16.5.4/hook",
    "one nine two": "https://192.168.1.10/hook",
    "ipv6 loopback": "https://[::1]/hook",
    "ipv4-mapped loopback": "https://[::ffff:127.0.0.1]/hook",
    "name resolving to loopback": "https://localhost/hook",
    "too long": "https://callbacks.example.com/" + "a" * 2030,
    "not a url": "callbacks",
    "other scheme": "ftp://callbacks.example.com/hook",
}


@pytest.fixture(scope="module")
async def strict_client() -> AsyncIterator[httpx.AsyncClient]:
    """One strict simulator for the refusal cases, which leave no state behind."""
    async with (
        running_simulator(fast_config(allow_insecure_callbacks=False)) as running,
        client_for(running) as http,
    ):
        yield http


@pytest.mark.parametrize("url", REFUSED_URLS.values(), ids=REFUSED_URLS.keys())
async def test_strict_upstream_refuses_callback_url(
    strict_client: httpx.AsyncClient, url: str
) -> None:
    before = await sim_tasks(strict_client)

    response = await create(strict_client, url)

    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.json()["error"]["code"] == "invalid_callback_url"
    assert (await sim_tasks(strict_client))["tasks"] == before["tasks"]


async def test_strict_upstream_accepts_a_public_https_host() -> None:
    async with (
        running_simulator(fast_config(allow_insecure_callbacks=False)) as running,
        client_for(running) as http,
    ):
        # `stuck` keeps the task from ever ending, so nothing is sent to that address.
        response = await create(http, "https://93.184.216.34/hook", "#sim:stuck")

    assert response.status_code == 200, response.text


async def test_dev_mode_accepts_loopback_http(client: httpx.AsyncClient) -> None:
    response = await create(client, "http://127.0.0.1:9/hook", "#sim:stuck")
    too_long = await create(client, "http://127.0.0.1/" + "a" * 2040, "#sim:stuck")

    assert response.status_code == 200, response.text
    assert too_long.status_code == 400
