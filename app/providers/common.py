"""What every provider adapter shares: transport-failure translation, Retry-After, and
tolerant number parsing. The split into Retryable / Permanent / Ambiguous is what the
router's failover and the at-most-once rule for paid creates rely on."""

from __future__ import annotations

import email.utils
import math
import time
from decimal import Decimal
from typing import Any

import httpx

from app.providers.base import AmbiguousError, PermanentError, ProviderError, RetryableError


def optional_float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def describe(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def is_bad_url(exc: Exception) -> bool:
    # A misconfigured base URL fails the same way on every try.
    return isinstance(exc, httpx.UnsupportedProtocol | httpx.InvalidURL)


def create_transport_error(exc: Exception) -> ProviderError:
    if is_bad_url(exc):
        return PermanentError("bad_provider_url", describe(exc))
    # Failing to connect (or to get a pooled connection) means no byte was sent.
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout | httpx.PoolTimeout):
        return RetryableError("connect_failed", describe(exc))
    # Timeouts and broken connections after sending: the task may exist upstream.
    return AmbiguousError("outcome_unknown", describe(exc))


def fetch_transport_error(exc: Exception) -> ProviderError:
    if is_bad_url(exc):
        return PermanentError("bad_provider_url", describe(exc))
    # A query changes nothing upstream, so any network failure is safe to retry.
    return RetryableError("network_error", describe(exc))


def retry_after_s(response: httpx.Response) -> float | None:
    """Retry-After as seconds, from either its delta-seconds or its HTTP-date form."""
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def optional_decimal(value: Any) -> Decimal | None:
    """A non-negative amount from a number or a numeric string; None otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        number = Decimal(str(value).strip())
    except ArithmeticError:
        return None
    return number if number.is_finite() and number >= 0 else None
