"""Per-process provider health: a circuit breaker and a query token bucket per provider.

Process-local on purpose: each replica learns a provider's health from its own calls.
"""

from __future__ import annotations

import asyncio
import enum
import time
from dataclasses import dataclass, field


class CircuitState(enum.StrEnum):
    closed = "closed"
    open = "open"
    half_open = "half_open"


@dataclass
class CircuitBreaker:
    """Closed → open after `failure_threshold` failures in a row → half-open after `open_s`,
    when one probe call is let through; its outcome closes or reopens the circuit.

    A probe slot whose outcome never arrives (the caller crashed, or its transaction failed
    after choosing the provider) is given up after `probe_timeout_s`, so a provider can
    never be jammed out of rotation for the life of the process.
    """

    failure_threshold: int
    open_s: float
    probe_timeout_s: float = 60.0
    failures: int = 0
    opened_at: float | None = None
    probe_started_at: float | None = None

    def state(self, now: float | None = None) -> CircuitState:
        if self.opened_at is None:
            return CircuitState.closed
        now = time.monotonic() if now is None else now
        return CircuitState.half_open if now - self.opened_at >= self.open_s else CircuitState.open

    @property
    def probing(self) -> bool:
        return self.probe_started_at is not None

    def allows(self, now: float | None = None) -> bool:
        """Closed: yes. Open: no. Half-open: one probe at a time, a lost one timing out."""
        now = time.monotonic() if now is None else now
        current = self.state(now)
        if current is CircuitState.closed:
            return True
        if current is CircuitState.open:
            return False
        started = self.probe_started_at
        if started is not None and now - started < self.probe_timeout_s:
            return False
        self.probe_started_at = now
        return True

    def record_success(self) -> None:
        """The provider answered, whatever it said about the job."""
        self.failures, self.opened_at, self.probe_started_at = 0, None, None

    def record_failure(self, now: float | None = None) -> None:
        self.failures += 1
        self.probe_started_at = None
        if self.failures >= self.failure_threshold or self.opened_at is not None:
            self.opened_at = time.monotonic() if now is None else now


@dataclass
class TokenBucket:
    """Bounds upstream queries; a 429's Retry-After pauses it for everyone in this process."""

    rate_per_s: float
    burst: int
    tokens: float = field(init=False)
    updated: float = field(default_factory=time.monotonic)
    paused_until: float = 0.0

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)

    def pause(self, seconds: float) -> None:
        self.paused_until = max(self.paused_until, time.monotonic() + seconds)

    def _wait_s(self) -> float:
        now = time.monotonic()
        if now < self.paused_until:
            return self.paused_until - now
        self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate_per_s)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return 0.0
        return (1 - self.tokens) / self.rate_per_s

    async def acquire(self) -> None:
        while (wait_s := self._wait_s()) > 0:  # noqa: ASYNC110 - sleeps until a refill, not a poll
            await asyncio.sleep(wait_s)
