"""Thin loops around testable steps, woken by LISTEN/NOTIFY with a timed sweep as safety net."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[int]]


class Wakeups:
    """One LISTEN connection per process; a NOTIFY on a channel sets that channel's event."""

    def __init__(self, dsn: str, channels: list[str]) -> None:
        self._dsn = dsn
        self.events = {channel: asyncio.Event() for channel in channels}

    def _on_notify(self, _conn: Any, _pid: int, channel: str, _payload: str) -> None:
        if event := self.events.get(channel):
            event.set()

    async def run(self, stop: asyncio.Event) -> None:
        backoff_s = 0.5
        while not stop.is_set():
            try:
                conn = await asyncpg.connect(self._dsn)
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("LISTEN connection failed (%s); sweeps still run", exc)
                await _sleep_or_stop(stop, backoff_s)
                backoff_s = min(backoff_s * 2, 10.0)
                continue
            backoff_s = 0.5
            try:
                for channel in self.events:
                    await conn.add_listener(channel, self._on_notify)
                for event in self.events.values():
                    event.set()  # anything committed while we were not listening
                while not stop.is_set() and not conn.is_closed():
                    await _sleep_or_stop(stop, 1.0)
            finally:
                with contextlib.suppress(Exception):
                    await conn.close()


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def run_loop(
    name: str, step: Step, wake: asyncio.Event, stop: asyncio.Event, sweep_s: float
) -> None:
    """Run `step` until it finds nothing, then wait for a wake-up or the sweep interval."""
    while not stop.is_set():
        wake.clear()
        try:
            done = await step()
        except Exception:
            log.exception("worker %s step failed", name)
            done = 0
            await _sleep_or_stop(stop, min(sweep_s, 1.0))
        if done:
            continue
        waiter = asyncio.ensure_future(wake.wait())
        stopper = asyncio.ensure_future(stop.wait())
        _, pending = await asyncio.wait(
            {waiter, stopper}, timeout=sweep_s, return_when=asyncio.FIRST_COMPLETED
        )
        for task in pending:
            task.cancel()
