"""Helpers to run the simulator (and a callback receiver) on loopback for tests.

Usage from any test:

    async with running_simulator(SimulatorConfig(processing_time_s=0.2)) as sim:
        httpx.post(f"{sim.base_url}/v1/videos/generations", ...)
        sim.simulator.store.all()  # or GET {sim.base_url}/_sim/tasks

    async with running_simulator(fast_kling_config()) as sim:
        async with kling_client(sim) as http:
            await http.post("/v1/videos/motion-control", json=sample_kling_body())
        await admin_tasks(sim)

Nothing here imports pytest, so e2e tests and benchmarks can use it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import httpx
import jwt
from fastapi import FastAPI, Request, Response

from app.settings import ProviderConfig
from app.simulator.app import create_simulator_app
from app.simulator.config import SimulatorConfig
from app.simulator.service import Simulator
from tests.support.servers import RunningServer, start_server

T = TypeVar("T")


@dataclass
class RunningSimulator:
    """A live simulator: where it listens and the in-process handle on its state."""

    base_url: str
    config: SimulatorConfig
    simulator: Simulator
    server: RunningServer

    async def stop(self) -> None:
        self.simulator.begin_shutdown()
        await self.server.stop()


async def start_simulator(
    config: SimulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> RunningSimulator:
    app = create_simulator_app(config)
    simulator: Simulator = app.state.simulator
    server = await start_server(app, host, port)
    return RunningSimulator(server.base_url, simulator.config, simulator, server)


@contextlib.asynccontextmanager
async def running_simulator(
    config: SimulatorConfig | None = None, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[RunningSimulator]:
    """Run a simulator for the duration of the block."""
    running = await start_simulator(config, host, port)
    try:
        yield running
    finally:
        await running.stop()


@dataclass
class ReceivedCallback:
    body: Any
    headers: dict[str, str]
    answered_status: int


@dataclass
class CallbackReceiver:
    """Records every POST to `/callback` and answers with the scripted statuses.

    `statuses` are used in order, then `default_status` for every later request;
    `answer_delay_s` holds each answer back (to make the sender time out).
    """

    statuses: Sequence[int] = ()
    default_status: int = 200
    answer_delay_s: float = 0.0
    received: list[ReceivedCallback] = field(default_factory=list)
    url: str = ""
    _arrived: asyncio.Condition = field(default_factory=asyncio.Condition)

    def build_app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/callback")
        async def callback(request: Request) -> Response:
            """Record one callback and answer the next scripted status."""
            index = len(self.received)
            status = self.statuses[index] if index < len(self.statuses) else self.default_status
            raw = await request.body()
            try:
                body: Any = json.loads(raw)
            except ValueError:
                body = raw.decode(errors="replace")
            async with self._arrived:
                self.received.append(ReceivedCallback(body, dict(request.headers), status))
                self._arrived.notify_all()
            if self.answer_delay_s > 0:
                await asyncio.sleep(self.answer_delay_s)
            return Response(status_code=status)

        return app

    async def wait_for(self, count: int, timeout_s: float = 10.0) -> list[ReceivedCallback]:
        """Wait until `count` callbacks arrived (TimeoutError after `timeout_s`)."""
        async with asyncio.timeout(timeout_s), self._arrived:
            await self._arrived.wait_for(lambda: len(self.received) >= count)
        return self.received


@contextlib.asynccontextmanager
async def running_receiver(
    statuses: Sequence[int] = (),
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    answer_delay_s: float = 0.0,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> AsyncIterator[CallbackReceiver]:
    """Run a callback receiver; its `url` is ready to use as a callback_url."""
    receiver = CallbackReceiver(statuses=statuses, answer_delay_s=answer_delay_s)
    server = await start_server(
        receiver.build_app(), host, port, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile
    )
    receiver.url = f"{server.base_url}/callback"
    try:
        yield receiver
    finally:
        await server.stop()


def sample_create_body(**overrides: Any) -> dict[str, Any]:
    """A valid create body (UPSTREAM.md §A); keyword arguments replace top-level fields."""
    body: dict[str, Any] = {
        "model": "kling-v3-motion-control",
        "image_urls": ["https://media.example.com/character.png"],
        "video_urls": ["https://media.example.com/motion.mp4"],
        "quality": "720p",
        "model_params": {"character_orientation": "image", "keep_sound": True},
    }
    body.update(overrides)
    return body


async def wait_until(
    probe: Callable[[], Awaitable[T | None]], timeout_s: float = 10.0, interval_s: float = 0.02
) -> T:
    """Call `probe` until it returns something truthy; TimeoutError after `timeout_s`."""
    async with asyncio.timeout(timeout_s):
        while True:
            value = await probe()
            if value:
                return value
            await asyncio.sleep(interval_s)


# --- the Kling wire ------------------------------------------------------------------


def mint_kling_jwt(
    access_key: str,
    secret_key: str,
    *,
    now_s: float | None = None,
    ttl_s: float = 1800.0,
    not_before_s: float = 5.0,
) -> str:
    """A token as the official docs build one: valid from `not_before_s` ago for `ttl_s`."""
    now = time.time() if now_s is None else now_s
    claims = {"iss": access_key, "exp": int(now + ttl_s), "nbf": int(now - not_before_s)}
    return jwt.encode(claims, secret_key, algorithm="HS256")


def fast_kling_config(**changes: Any) -> SimulatorConfig:
    """The Kling wire with short timers, loopback callbacks and a short `timeout` fault."""
    settings: dict[str, Any] = {
        "wire": "kling",
        "pending_time_s": 0.02,
        "processing_time_s": 0.1,
        "callback_timeout_s": 2.0,
        "allow_insecure_callbacks": True,
        "fault_hang_s": 5.0,
    }
    return SimulatorConfig.model_validate({**settings, **changes})


def sample_kling_body(**overrides: Any) -> dict[str, Any]:
    """A valid create body (UPSTREAM.md §B); keywords replace top-level fields, None drops one."""
    body: dict[str, Any] = {
        "model_name": "kling-v3",
        "image_url": "https://media.example.com/character.png",
        "video_url": "https://media.example.com/motion.mp4",
        "keep_original_sound": "yes",
        "character_orientation": "image",
        "mode": "std",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def kling_token(running: RunningSimulator, **claims: float) -> str:
    """A token the simulator accepts; `mint_kling_jwt` options (`now_s`, `ttl_s`...) apply."""
    config = running.config
    return mint_kling_jwt(config.kling_access_key, config.kling_secret_key, **claims)


def kling_client(running: RunningSimulator, token: str | None = None) -> httpx.AsyncClient:
    """A client for the simulator that sends a valid (or the given) bearer JWT."""
    bearer = token if token is not None else kling_token(running)
    return httpx.AsyncClient(
        base_url=running.base_url, headers={"Authorization": f"Bearer {bearer}"}, timeout=10.0
    )


async def install_faults(running: RunningSimulator, rules: dict[str, Any]) -> None:
    """`POST /_sim/faults`; raises on a refused rule."""
    async with httpx.AsyncClient(base_url=running.base_url) as admin:
        response = await admin.post("/_sim/faults", json=rules)
    response.raise_for_status()


async def admin_tasks(running: RunningSimulator) -> list[dict[str, Any]]:
    """`GET /_sim/tasks`: every task's summary, in creation order."""
    async with httpx.AsyncClient(base_url=running.base_url) as admin:
        response = await admin.get("/_sim/tasks")
    response.raise_for_status()
    tasks: list[dict[str, Any]] = response.json()["tasks"]
    return tasks


def kling_provider_config(base_url: str, name: str = "kling", **fields: Any) -> ProviderConfig:
    """A gateway `ProviderConfig` for a simulator on the Kling wire (`fast_kling_config`)."""
    config = fast_kling_config()
    return ProviderConfig(
        name=name,
        kind="kling",
        base_url=base_url,
        access_key=config.kling_access_key,
        secret_key=config.kling_secret_key,
        **fields,
    )
