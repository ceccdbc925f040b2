"""Money: conservative estimates at create, settlement from the result's real duration.

All arithmetic is `Decimal`: a price with up to 6 places times whole seconds is exact,
and only the final amount is rounded (half up) to 4 places.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

from app.money import PLACES, usd
from app.settings import BillingRounding, ProviderConfig

MAX_SECONDS_BY_ORIENTATION = {"image": 10, "video": 30}
CENT_PRECISION = PLACES


def _exact(duration_s: float | Decimal) -> Decimal:
    # str() of a float is its shortest round-tripping form: 5.1 stays 5.1, not 5.0999….
    return duration_s if isinstance(duration_s, Decimal) else Decimal(str(duration_s))


def billable_seconds(duration_s: float | Decimal, rounding: BillingRounding) -> int:
    """The provider's rule: nearest second (half up) or ceiling; at least one second."""
    mode = ROUND_CEILING if rounding == "ceil" else ROUND_HALF_UP
    return max(1, int(_exact(duration_s).to_integral_value(rounding=mode)))


def estimate_usd(
    providers: list[ProviderConfig], quality: str, orientation: str, duration_s: float | None
) -> Decimal:
    """Ceil of the known input duration, else the longest output the model allows, at the
    highest enabled price: failover may land the job on any of them."""
    seconds = (
        int(_exact(duration_s).to_integral_value(rounding=ROUND_CEILING))
        if duration_s
        else MAX_SECONDS_BY_ORIENTATION[orientation]
    )
    price = max((p.price_per_s(quality) for p in providers if p.enabled), default=Decimal(0))
    return usd(price * seconds)


def settle_usd(provider: ProviderConfig, quality: str, duration_s: float) -> tuple[Decimal, int]:
    seconds = billable_seconds(duration_s, provider.billing_rounding)
    return usd(provider.price_per_s(quality) * seconds), seconds
