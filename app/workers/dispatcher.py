"""Deliver due events to subscribers: claimed through the delivery domain, each send its own task.

Sends run as independent tasks under a global cap (a `Pool`); the claim itself keeps each
endpoint within its own concurrency cap, rate limit and circuit, so one slow or dead
endpoint can hold at most its own few slots and never the others'.
"""

from __future__ import annotations

import httpx

from app.clock import utcnow
from app.delivery import pipeline
from app.runtime import Runtime
from app.workers.loop import Pool


async def step(rt: Runtime, client: httpx.AsyncClient, pool: Pool) -> int:
    """Top the in-flight sends up to the pool's cap with due deliveries."""
    if not pool.free:
        return 0
    claimed = await pipeline.claim(rt, pool.free)
    if claimed.deferred_until is not None:
        # wake exactly when the rate limit lets the next one go, not at the next sweep
        pool.wake_after((claimed.deferred_until - utcnow()).total_seconds())
    for ob in claimed.sends:
        pool.spawn(pipeline.deliver(rt, client, ob), f"delivery {ob.delivery_id}")
    return len(claimed.sends)
