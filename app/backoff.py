"""Pacing for retry loops: doubling delays while failures repeat, and a stoppable sleep."""

from __future__ import annotations

import asyncio
import contextlib


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


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
