"""Delivering one event to one destination: prepare → send → record.

`prepare.claim` leases what may go now (admission under each endpoint's concurrency
cap, rate limit and circuit) and commits; `send.send` makes the signed POST with no
transaction open; `record.record` writes the attempt, the next schedule step and the
endpoint's health. A worker claims through `claim` and runs each `deliver` as a task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from app.delivery.prepare import Claim, claim
from app.delivery.record import record
from app.delivery.send import Outbound, send

if TYPE_CHECKING:
    from app.runtime import Runtime  # annotations only: the runtime sits above the domains

__all__ = ["Claim", "Outbound", "claim", "deliver"]


async def deliver(rt: Runtime, client: httpx.AsyncClient, ob: Outbound) -> None:
    await record(rt, ob, await send(client, ob))
