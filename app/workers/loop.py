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


class Pool:
    """In-flight work of one loop, as independent tasks under a cap.

    A step claims only as many items as there are free slots and spawns one task each, so a
    slow call holds its own slot and never the next claim. A finished task wakes the loop.
    """

    def __init__(self, size: int, wake: asyncio.Event) -> None:
        self._size = size
        self._wake = wake
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def free(self) -> int:
        return max(0, self._size - len(self._tasks))

    def spawn(self, work: Awaitable[None], name: str) -> None:
        task = asyncio.ensure_future(self._guard(work, name))
        self._tasks.add(task)
        task.add_done_callback(self._done)

    async def _guard(self, work: Awaitable[None], name: str) -> None:
        try:
            await work
        except Exception:
            log.exception("%s failed; its lease brings the item back", name)

    def wake_after(self, delay_s: float) -> None:
        asyncio.get_running_loop().call_later(max(0.0, delay_s), self._wake.set)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        self._wake.set()

    async def drain(self, grace_s: float) -> None:
        """Let in-flight work finish briefly, then cancel it: leases bring it back later."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=grace_s)
        for task in set(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
