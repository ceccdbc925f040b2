"""Money: conservative estimates at create, settlement from the result's real duration."""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

from app.settings import BillingRounding, ProviderConfig

MAX_SECONDS_BY_ORIENTATION = {"image": 10, "video": 30}
CENT_PRECISION = Decimal("0.0001")
# Budgets are NUMERIC(12, 4): the largest value the column holds.
MIN_BUDGET_USD = Decimal("0")
MAX_BUDGET_USD = Decimal("99999999.9999")


def _usd(value: float) -> Decimal:
    return Decimal(str(value)).quantize(CENT_PRECISION, rounding=ROUND_HALF_UP)


def billable_seconds(duration_s: float, rounding: BillingRounding) -> int:
    """The provider's rule: nearest second (half up) or ceiling."""
    if rounding == "ceil":
        return max(1, math.ceil(duration_s - 1e-9))
    return max(1, int(Decimal(str(duration_s)).quantize(Decimal(1), rounding=ROUND_HALF_UP)))


def estimate_usd(
    providers: list[ProviderConfig], quality: str, orientation: str, duration_s: float | None
) -> Decimal:
    """Ceil of the known input duration, else the longest output the model allows, at the
    highest enabled price: failover may land the job on any of them."""
    seconds = math.ceil(duration_s) if duration_s else MAX_SECONDS_BY_ORIENTATION[orientation]
    price = max((p.price_per_s(quality) for p in providers if p.enabled), default=0.0)
    return _usd(price * seconds)


def settle_usd(provider: ProviderConfig, quality: str, duration_s: float) -> tuple[Decimal, int]:
    seconds = billable_seconds(duration_s, provider.billing_rounding)
    return _usd(provider.price_per_s(quality) * seconds), seconds
