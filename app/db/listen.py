"""LISTEN/NOTIFY wake-ups: one listening connection per process, remade when lost."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import asyncpg

from app.backoff import Backoff, sleep_or_stop
from app.unavailable import describe

log = logging.getLogger(__name__)


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
                await sleep_or_stop(stop, delay_s)

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
                await sleep_or_stop(stop, 2.0)
                if conn.is_closed():
                    raise ConnectionError("the LISTEN connection was closed")
                # A peer that vanished without a reset is only noticed by asking.
                await conn.execute("SELECT 1", timeout=self._timeout_s)
        finally:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(conn.close(), self._timeout_s)
