"""A subscriber on loopback that timestamps every delivery and answers as told.

`delay_s` holds every answer back (a hanging endpoint); `fail_fraction` answers 500 to
that share of deliveries, drawn from a seeded generator so runs are repeatable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass, field

from fastapi import FastAPI, Request, Response

from tests.support.servers import start_server


@dataclass(frozen=True)
class Arrival:
    at: float
    """Wall clock (time.time()) when the request reached the handler."""
    webhook_id: str
    event_type: str
    job_id: str | None
    job_status: str | None
    answered: int


@dataclass
class Subscriber:
    delay_s: float = 0.0
    fail_fraction: float = 0.0
    seed: int = 0
    url: str = ""
    arrivals: list[Arrival] = field(default_factory=list)
    _rng: random.Random = field(init=False)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    _released: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/hook")
        async def hook(request: Request) -> Response:
            """Record one delivery; answer 500 to a random share, after `delay_s`."""
            at = time.time()
            raw = await request.body()
            event_type, job_id, job_status = "?", None, None
            with contextlib.suppress(ValueError, AttributeError):
                body = json.loads(raw)
                data = body.get("data") or {}
                event_type = str(body.get("type", "?"))
                job_id = str(data["id"]) if data.get("id") else None
                job_status = str(data["status"]) if data.get("status") else None
            failing = self.fail_fraction > 0 and self._rng.random() < self.fail_fraction
            status = 500 if failing else 200
            arrival = Arrival(
                at=at,
                webhook_id=request.headers.get("webhook-id", ""),
                event_type=event_type,
                job_id=job_id,
                job_status=job_status,
                answered=status,
            )
            async with self._changed:
                self.arrivals.append(arrival)
                self._changed.notify_all()
            if self.delay_s > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._released.wait(), self.delay_s)
            return Response(status_code=status, content=b"ok")

        return app

    def release(self) -> None:
        """Answer every held-back request now (and later ones at once)."""
        self._released.set()

    def first_arrivals(self) -> dict[str, Arrival]:
        """The first delivery of each job's event, by job id."""
        first: dict[str, Arrival] = {}
        for arrival in self.arrivals:
            if arrival.job_id is not None and arrival.job_id not in first:
                first[arrival.job_id] = arrival
        return first

    def delivered_jobs(self) -> set[str]:
        """Jobs with at least one delivery this subscriber accepted (2xx)."""
        return {a.job_id for a in self.arrivals if a.job_id and 200 <= a.answered < 300}

    async def wait_for_jobs(
        self, job_ids: Iterable[str], timeout_s: float, *, accepted: bool = False
    ) -> bool:
        """True once every job has a delivery (accepted ones only if asked); False on timeout."""
        wanted = set(job_ids)

        def done() -> bool:
            seen = self.delivered_jobs() if accepted else set(self.first_arrivals())
            return wanted <= seen

        try:
            async with asyncio.timeout(timeout_s), self._changed:
                await self._changed.wait_for(done)
        except TimeoutError:
            return False
        return True


@contextlib.asynccontextmanager
async def running_subscriber(
    *, delay_s: float = 0.0, fail_fraction: float = 0.0, seed: int = 0
) -> AsyncIterator[Subscriber]:
    subscriber = Subscriber(delay_s=delay_s, fail_fraction=fail_fraction, seed=seed)
    server = await start_server(subscriber.app(), "127.0.0.1", 0)
    subscriber.url = f"{server.base_url}/hook"
    try:
        yield subscriber
    finally:
        subscriber.release()  # answers still held back go out now, so nothing outlives the stop
        await server.stop()
