"""Helpers to run the simulator (and a callback receiver) on loopback for tests.

Usage from any test:

    async with running_simulator(SimulatorConfig(processing_time_s=0.2)) as sim:
        httpx.post(f"{sim.base_url}/v1/videos/generations", ...)
        sim.simulator.store.all()  # or GET {sim.base_url}/_sim/tasks

Nothing here imports pytest, so e2e tests and scripts can use it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI, Request, Response

from app.simulator.app import create_simulator_app
from app.simulator.config import SimulatorConfig
from app.simulator.service import Simulator

T = TypeVar("T")
_STARTUP_TIMEOUT_S = 15.0
_GRACEFUL_SHUTDOWN_S = 1  # whole seconds: uvicorn types it as int
_SHUTDOWN_TIMEOUT_S = 10.0


class _LoopbackServer(uvicorn.Server):
    """uvicorn's server, woken at once by `request_exit` instead of at its next 0.1 s tick.

    Test suites start and stop hundreds of servers; the tick would cost each stop 0.1 s.
    """

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self._exit_requested = asyncio.Event()

    def request_exit(self) -> None:
        self.should_exit = True
        self._exit_requested.set()

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            # on_tick refreshes the Date header when counter % 10 == 0, i.e. each second.
            counter += 10
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._exit_requested.wait()


@dataclass
class RunningServer:
    """A uvicorn server on a loopback socket, started in the current event loop."""

    base_url: str
    server: _LoopbackServer
    task: asyncio.Task[None]
    sock: socket.socket

    async def stop(self) -> None:
        """Stop serving and run the app's lifespan shutdown.

        Requests still running after the graceful period (see `start_server`) are
        cancelled; a shutdown that hangs past `_SHUTDOWN_TIMEOUT_S` is cancelled too.
        """
        self.server.request_exit()
        try:
            async with asyncio.timeout(_SHUTDOWN_TIMEOUT_S):
                await asyncio.shield(self.task)
        except TimeoutError:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        finally:
            self.sock.close()


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP explicitly: with proto 0 asyncio does not set TCP_NODELAY on accepted
    # connections, and every kept-alive request then waits ~40 ms for delayed ACKs.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


async def _wait_started(server: _LoopbackServer, task: asyncio.Task[None]) -> None:
    async with asyncio.timeout(_STARTUP_TIMEOUT_S):
        while not server.started:
            if task.done():
                task.result()  # re-raises the startup failure
                raise RuntimeError("server stopped before it started")
            await asyncio.sleep(0.01)


async def start_server(
    app: FastAPI,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    graceful_shutdown_s: int = _GRACEFUL_SHUTDOWN_S,
) -> RunningServer:
    """Serve `app` on host:port (0 = any free port) and return once it accepts.

    On stop, open connections get `graceful_shutdown_s` to finish. The bound matters
    for TLS: an idle keep-alive connection whose client is still open never answers
    close_notify, and would otherwise hold the stop (and the app's lifespan shutdown).
    """
    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        timeout_graceful_shutdown=graceful_shutdown_s,
    )
    server = _LoopbackServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await _wait_started(server, task)
    except BaseException:
        sock.close()
        raise
    scheme = "https" if ssl_certfile else "http"
    shown_host = f"[{host}]" if ":" in host else host
    return RunningServer(f"{scheme}://{shown_host}:{bound_port}", server, task, sock)


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
