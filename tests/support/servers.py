"""Loopback servers for tests and benchmarks: any ASGI app on a free port, in this loop."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Callable
from dataclasses import dataclass

import uvicorn
from fastapi import FastAPI

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
    make_config: Callable[..., uvicorn.Config] = uvicorn.Config,
) -> RunningServer:
    """Serve `app` on host:port (0 = any free port) and return once it accepts.

    `make_config` builds uvicorn's Config (the gateway passes its own, with the head
    limit). On stop, open connections get `graceful_shutdown_s` to finish. The bound matters
    for TLS: an idle keep-alive connection whose client is still open never answers
    close_notify, and would otherwise hold the stop (and the app's lifespan shutdown).
    """
    sock = _bind(host, port)
    bound_port = sock.getsockname()[1]
    config = make_config(
        app,
        # None: keep the process's own logging (one formatter, redaction) in place.
        log_config=None,
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
