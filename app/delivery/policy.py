"""The delivery rules as pure decisions, so each one is tested with plain values.

What to sign with, whether an endpoint may take one more send now, what counts as
delivered, when to try again, how long a circuit stays open, when to give up on an
endpoint. Nothing here does I/O or reads the clock: callers pass `now`, and the retry
jitter is an argument, so the same inputs always give the same answer.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

# A GCRA lets a quiet endpoint take about one second's worth of sends at once.
RATE_BURST = timedelta(seconds=1.0)
# Retry-After is honoured only where it means "later, please", not on every failure.
RETRY_AFTER_STATUSES = frozenset({429, 503})
# The leased send outlives its own timeout by this much, so a live send is never re-claimed.
LEASE_MARGIN_S = 5.0
# 2**16 already exceeds any sane cap; bounding the exponent keeps the float finite.
MAX_CIRCUIT_DOUBLINGS = 16


def signing_secrets(
    secret: str, previous_secret: str | None, previous_expires_at: datetime | None, now: datetime
) -> list[str]:
    """The current secret, plus the previous one while the rotation overlap lasts, so
    receivers that have not switched yet keep verifying."""
    secrets = [secret]
    if previous_secret and previous_expires_at and previous_expires_at > now:
        secrets.append(previous_secret)
    return secrets


def lease_until(now: datetime, timeout_s: float) -> datetime:
    """A crashed sender's delivery becomes due again once this passes."""
    return now + timedelta(seconds=timeout_s + LEASE_MARGIN_S)


@dataclass(frozen=True)
class Admission:
    """Either admitted (with the endpoint's next rate state) or when to look again."""

    rate_tat: datetime | None = None
    retry_at: datetime | None = None

    @property
    def admitted(self) -> bool:
        return self.retry_at is None


def admit(room: int, rate_tat: datetime | None, rate_per_s: float, now: datetime) -> Admission:
    """May an endpoint with `room` free slots and GCRA state `rate_tat` take a send now?

    No free slot: not now, but it stays due (`retry_at == now`): a finishing send wakes
    the loop, so there is nothing to schedule. Over the rate: `retry_at` is when the
    theoretical arrival time comes back within the burst.
    """
    if room <= 0:
        return Admission(retry_at=now)
    tat = max(rate_tat or now, now)
    if tat - now > RATE_BURST:
        return Admission(retry_at=tat)
    return Admission(rate_tat=tat + timedelta(seconds=1.0 / rate_per_s))


def delivered(status_code: int | None) -> bool:
    """Only a 2xx counts: a redirect is not followed, so it is not a delivery either."""
    return status_code is not None and 200 <= status_code < 300


def failure_reason(status_code: int | None, error: str | None) -> str:
    """The line the delivery log shows for a failed attempt."""
    if error:
        return error
    if status_code is not None and 300 <= status_code < 400:
        return f"HTTP {status_code}: redirects are not followed"
    return f"HTTP {status_code}"


def jitter() -> float:
    """±10 %, so deliveries that failed together do not all come back together."""
    return random.uniform(0.9, 1.1)  # noqa: S311 - spreading load, not a secret


def retry_delay_s(
    schedule_s: Sequence[float],
    step: int,
    *,
    status_code: int | None,
    retry_after_s: float | None,
    retry_after_max_s: float,
    jitter: float,
) -> float | None:
    """The wait before schedule step `step`, or None when the schedule is exhausted.

    Step 0 is the first send; a failure moves to the next step. A 429/503 with
    Retry-After waits at least that long, but never longer than `retry_after_max_s`:
    a receiver cannot park a delivery for ever.
    """
    if step >= len(schedule_s):
        return None
    delay_s = schedule_s[step] * jitter
    if status_code in RETRY_AFTER_STATUSES and retry_after_s is not None:
        delay_s = max(delay_s, min(retry_after_s, retry_after_max_s))
    return delay_s


def circuit_open_s(
    consecutive_failures: int, threshold: int, base_s: float, max_s: float
) -> float | None:
    """How long the circuit stays open after this many failures in a row (None: closed).

    It opens at the threshold and doubles with each further failure (each one a failed
    probe), up to `max_s`.
    """
    over = consecutive_failures - threshold
    if over < 0:
        return None
    return float(min(base_s * 2 ** min(over, MAX_CIRCUIT_DOUBLINGS), max_s))


def disable_reason(
    *, gone: bool, failing_since: datetime, now: datetime, disable_after_s: float
) -> str | None:
    """Why to disable the endpoint now, or None to keep trying.

    410 Gone is the receiver saying it wants no more; otherwise only a failure streak
    that has lasted `disable_after_s` (long outages, not one bad minute) disables it.
    """
    if gone:
        return "the endpoint answered 410 Gone"
    if (now - failing_since).total_seconds() >= disable_after_s:
        return f"every delivery failed since {failing_since.isoformat()}"
    return None
