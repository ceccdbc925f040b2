"""Thin loops around testable steps, woken by LISTEN/NOTIFY with a timed sweep as safety net."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from app.db.errors import describe, is_database_unavailable

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[int]]


class Wakeups:
    """One LISTEN connection per process; a NOTIFY on a channel sets that channel's event.

    The connection is checked every few seconds and remade, with backoff, whenever it
    is lost: a database outage costs wake-ups (the sweeps still run), never the listener.
    """

    def __init__(self, dsn: str, channels: list[str], *, timeout_s: float = 5.0) -> None:
        self._dsn = dsn
        self._timeout_s = timeout_s
        self.events = {channel: asyncio.Event() for channel in channels}

    def _on_notify(self, _conn: Any, _pid: int, channel: str, _payload: str) -> None:
        if event := self.events.get(channel):
            event.set()

    async def run(self, stop: asyncio.Event) -> None:
        backoff = Backoff()
        while not stop.is_set():
            try:
                await self._listen(stop, backoff)
            except Exception as exc:
                delay_s = backoff.next_s()
                log.warning(
                    "LISTEN connection lost (%s); sweeps still run; retry in %.1fs",
                    describe(exc),
                    delay_s,
                )
                await _sleep_or_stop(stop, delay_s)

    async def _listen(self, stop: asyncio.Event, backoff: Backoff) -> None:
        conn = await asyncpg.connect(self._dsn, timeout=self._timeout_s)
        try:
            for channel in self.events:
                await conn.add_listener(channel, self._on_notify)
            if backoff.failures:
                log.warning("LISTEN connection restored")
            backoff.reset()
            for event in self.events.values():
                event.set()  # anything committed while we were not listening
            while not stop.is_set():
                await _sleep_or_stop(stop, 2.0)
                if conn.is_closed():
                    raise ConnectionError("the LISTEN connection was closed")
                # A peer that vanished without a reset is only noticed by asking.
                await conn.execute("SELECT 1", timeout=self._timeout_s)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), self._timeout_s)


class Backoff:
    """Doubling delays from `base_s` to `max_s` while failures repeat."""

    def __init__(self, base_s: float = 0.5, max_s: float = 5.0) -> None:
        self.base_s, self.max_s = base_s, max_s
        self.failures = 0

    def next_s(self) -> float:
        self.failures += 1
        return float(min(self.max_s, self.base_s * 2 ** (self.failures - 1)))

    def reset(self) -> None:
        self.failures = 0


async def _sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)


async def _wait_any(events: list[asyncio.Event], timeout_s: float) -> None:
    waiters = [asyncio.ensure_future(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


def _log_step_failure(name: str, exc: Exception, failures: int, delay_s: float) -> None:
    """One line per failure; a traceback only for the first of a streak of real errors."""
    if is_database_unavailable(exc):
        log.warning(
            "worker %s: database unavailable (%s); retry in %.1fs", name, describe(exc), delay_s
        )
    elif failures == 1:
        log.exception("worker %s step failed; retry in %.1fs", name, delay_s)
    else:
        log.error(
            "worker %s step failed again (%d in a row: %s); retry in %.1fs",
            name,
            failures,
            describe(exc),
            delay_s,
        )


async def run_loop(
    name: str, step: Step, wake: asyncio.Event, stop: asyncio.Event, sweep_s: float
) -> None:
    """Run `step` until it finds nothing, then wait for a wake-up or the sweep interval.

    A failing step backs off (doubling up to 5 s, cut short by a wake-up: the LISTEN
    connection coming back is one) and the loop resumes by itself once the cause is gone.
    """
    backoff = Backoff(base_s=min(sweep_s, 0.5))
    while not stop.is_set():
        wake.clear()
        try:
            done = await step()
        except Exception as exc:
            delay_s = backoff.next_s()
            _log_step_failure(name, exc, backoff.failures, delay_s)
            await _wait_any([stop, wake], delay_s)
            continue
        if backoff.failures:
            log.warning("worker %s resumed after %d failed steps", name, backoff.failures)
            backoff.reset()
        if done:
            continue
        await _wait_any([stop, wake], sweep_s)


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
        except Exception as exc:
            if is_database_unavailable(exc):
                log.warning(
                    "%s: database unavailable (%s); its lease brings it back", name, describe(exc)
                )
            else:
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
