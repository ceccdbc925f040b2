"""What the simulator keeps faithful beyond the basics: env knobs, the create request
kept, the aggregator's task list, Kling's query by external_task_id, result lengths."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import av
import httpx
import pytest
from fastapi import FastAPI
from typer.testing import CliRunner

from app import cli
from app.simulator.config import SimulatorConfig
from app.simulator.media import FRAME_RATE
from tests.support.simulator import (
    RunningSimulator,
    fast_kling_config,
    kling_client,
    running_simulator,
    sample_create_body,
    sample_kling_body,
)

from .helpers import fast_config, wait_for_status

ENV = {
    "MGW_SIM_RESULT_TTL_S": "5",
    "MGW_SIM_PENDING_TIME_S": "0.5",
    "MGW_SIM_HONOR_IDEMPOTENCY_KEY": "true",
    "MGW_SIM_CALLBACK_RETRY_DELAYS_S": "0.5, 1",
    "MGW_SIM_ACCEPTED_API_KEYS": '["sk-a", "sk-b"]',
}


def assert_env_knobs(config: SimulatorConfig) -> None:
    assert config.result_ttl_s == 5
    assert config.pending_time_s == 0.5
    assert config.honor_idempotency_key is True
    assert config.callback_retry_delays_s == (0.5, 1.0)
    assert config.accepted_api_keys == {"sk-a", "sk-b"}


def test_serve_with_simulator_reads_the_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)

    server = cli._simulator_server("127.0.0.1", 8001)

    app = server.config.app
    assert isinstance(app, FastAPI)
    config = app.state.simulator.config
    assert_env_knobs(config)
    assert config.allow_insecure_callbacks is True  # the dev default, as env leaves it


def test_the_simulator_command_reads_the_env(monkeypatch: pytest.MonkeyPatch) -> None:
    served: list[Any] = []

    class NoServer:
        def __init__(self, app: Any) -> None:
            served.append(app)

        async def serve(self) -> None:
            return None

    monkeypatch.setattr(cli, "_server", lambda app, host, port: NoServer(app))
    env = {**ENV, "MGW_SIM_WIRE": "kling", "MGW_SIM_ALLOW_INSECURE_CALLBACKS": "false"}

    result = CliRunner().invoke(cli.cli, ["simulator"], env=env)
    flagged = CliRunner().invoke(cli.cli, ["simulator", "--wire", "evolink"], env=env)

    assert (result.exit_code, flagged.exit_code) == (0, 0), result.output + flagged.output
    config = served[0].state.simulator.config
    assert_env_knobs(config)
    assert (config.wire, config.allow_insecure_callbacks) == ("kling", False)
    assert served[1].state.simulator.config.wire == "evolink"  # a flag beats the env


async def test_the_create_request_is_kept(sim: RunningSimulator, client: httpx.AsyncClient) -> None:
    body = sample_create_body(prompt="a dancer #sim:stuck")
    task_id = (await client.post("/v1/videos/generations", json=body)).json()["id"]

    shown = (await client.get(f"/_sim/tasks/{task_id}")).json()

    assert shown["request"] == body


async def test_the_aggregator_lists_an_accounts_tasks(
    sim: RunningSimulator, client: httpx.AsyncClient
) -> None:
    ids = [
        (await client.post("/v1/videos/generations", json=sample_create_body())).json()["id"]
        for _ in range(3)
    ]
    other = httpx.AsyncClient(base_url=sim.base_url, headers={"Authorization": "Bearer sk-other"})
    async with other:
        await other.post("/v1/videos/generations", json=sample_create_body())

    listed = (await client.get("/v1/tasks")).json()
    first = (await client.get("/v1/tasks", params={"limit": 2})).json()

    assert listed["object"] == "list"
    assert [task["id"] for task in listed["data"]] == ids[::-1]
    assert listed["has_more"] is False
    assert [task["id"] for task in first["data"]] == ids[:0:-1]
    assert first["has_more"] is True


async def test_kling_finds_a_task_by_its_external_task_id() -> None:
    async with running_simulator(fast_kling_config()) as running, kling_client(running) as http:
        created = await http.post(
            "/v1/videos/motion-control", json=sample_kling_body(external_task_id="job-42")
        )
        by_external = await http.get("/v1/videos/motion-control/job-42")
        unknown = await http.get("/v1/videos/motion-control/job-43")

    assert by_external.json()["data"]["task_id"] == created.json()["data"]["task_id"]
    assert (unknown.status_code, unknown.json()["code"]) == (404, 1202)


def clip_seconds(mp4: bytes) -> float:
    with av.open(io.BytesIO(mp4), mode="r") as container:
        return sum(1 for _ in container.decode(video=0)) / FRAME_RATE


@pytest.mark.parametrize("prompt", [None, "#sim:duration=7.5"])
async def test_the_result_lasts_as_long_as_reported(prompt: str | None) -> None:
    async with (
        running_simulator(fast_config(video_duration_s=3)) as running,
        httpx.AsyncClient(
            base_url=running.base_url, headers={"Authorization": "Bearer sk-test"}
        ) as http,
    ):
        body = sample_create_body(prompt=prompt)
        task_id = (await http.post("/v1/videos/generations", json=body)).json()["id"]
        task = await wait_for_status(http, task_id, "completed")
        video = await http.get(task["results"][0])

    seconds = await asyncio.to_thread(clip_seconds, video.content)
    assert abs(seconds - task["task_info"]["video_duration"]) <= 1 / FRAME_RATE
