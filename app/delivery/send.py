"""Send: one signed POST of a prepared delivery, and what came of it. No database here:
the claim committed before, and `record` commits after, so a slow receiver holds no lock."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime

import httpx

from app import __version__
from app.clock import utcnow
from app.delivery.policy import delivered
from app.delivery.signer import standard_headers
from app.net import UrlRejected

log = logging.getLogger(__name__)

USER_AGENT = f"motion-gateway-webhooks/{__version__}"
# Enough of a receiver's answer to debug it from the delivery log, and no more.
MAX_LOGGED_BODY_BYTES = 1024


@dataclass(frozen=True)
class Outbound:
    """Everything one attempt needs, read under the claim's locks."""

    delivery_id: str
    event_id: str
    event_created_at: datetime
    endpoint_id: str | None
    url: str
    body: str
    secrets: list[str]
    attempt: int


@dataclass(frozen=True)
class Outcome:
    status_code: int | None = None
    error: str | None = None
    response_body: str | None = None
    retry_after_s: float | None = None
    duration_ms: int = 0

    @property
    def ok(self) -> bool:
        return delivered(self.status_code)


def parse_retry_after_s(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP-date is rare from webhook receivers; the schedule applies


def _headers(ob: Outbound) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-attempt": str(ob.attempt),
        **standard_headers(ob.secrets, ob.event_id, utcnow(), ob.body),
    }


async def _post(client: httpx.AsyncClient, ob: Outbound) -> Outcome:
    """Read at most MAX_LOGGED_BODY_BYTES of the answer: a huge body cannot stall the send.
    The client does not follow redirects, so a 3xx comes back here as itself."""
    try:
        async with client.stream(
            "POST", ob.url, content=ob.body.encode(), headers=_headers(ob)
        ) as resp:
            body = b""
            async for chunk in resp.aiter_raw():
                body += chunk
                if len(body) >= MAX_LOGGED_BODY_BYTES:
                    break
            return Outcome(
                status_code=resp.status_code,
                response_body=body[:MAX_LOGGED_BODY_BYTES].decode("utf-8", errors="replace"),
                retry_after_s=parse_retry_after_s(resp.headers.get("retry-after")),
            )
    except UrlRejected as exc:
        # The delivery log is the client's to read: what a name resolved to, or which
        # address is private, would make it a scanning oracle. The specifics: log only.
        log.info("delivery %s to %r refused by the URL policy: %s", ob.delivery_id, ob.url, exc)
        return Outcome(error=f"refused by the URL policy: {exc.public_reason}")
    except httpx.TimeoutException:
        return Outcome(error="timed out")
    except httpx.HTTPError as exc:
        return Outcome(error=f"{type(exc).__name__}: {exc}"[:500])


async def send(client: httpx.AsyncClient, ob: Outbound) -> Outcome:
    """One attempt; a refused URL, a timeout or a transport error is an `Outcome` too."""
    started = time.monotonic()
    outcome = await _post(client, ob)
    return replace(outcome, duration_ms=int((time.monotonic() - started) * 1000))
