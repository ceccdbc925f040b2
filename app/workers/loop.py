"""Thin loops around testable steps, woken by LISTEN/NOTIFY with a timed sweep as safety net."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from app.backoff import Backoff
from app.unavailable import describe, is_database_unavailable

log = logging.getLogger(__name__)

Step = Callable[[], Awaitable[int]]


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
