"""Money is exact: Decimal arithmetic from the price setting to the JSON string."""

from __future__ import annotations

from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.billing.pricing import billable_seconds, estimate_usd, settle_usd
from app.jobs.schemas import JobCost
from app.money import usd
from app.settings import BillingRounding, ProviderConfig

# Prices with up to 6 decimal places, from a tenth of a cent to a dollar per second.
prices = st.decimals(
    min_value=Decimal("0.001"), max_value=Decimal("1"), places=6, allow_nan=False
).filter(lambda p: p > 0)
# Durations as providers report them: floats from 0.1 s to 30 s, a few decimals.
durations = st.decimals(min_value=Decimal("0.1"), max_value=Decimal("30"), places=3).map(float)
roundings = st.sampled_from(["nearest", "ceil"])


def _provider(price: Decimal, rounding: BillingRounding) -> ProviderConfig:
    return ProviderConfig(
        name="p",
        base_url="http://127.0.0.1:1",
        api_key="k",
        price_720p_usd_per_s=price,
        price_1080p_usd_per_s=price,
        billing_rounding=rounding,
    )


def _reference_seconds(duration_s: float, rounding: str) -> int:
    """The rule written out independently: nearest second half up, or ceiling; ≥ 1."""
    exact = Decimal(repr(duration_s))
    mode = ROUND_CEILING if rounding == "ceil" else ROUND_HALF_UP
    return max(1, int(exact.quantize(Decimal(1), rounding=mode)))


@given(price=prices, duration_s=durations, rounding=roundings)
def test_settlement_is_price_times_rounded_seconds_exactly(
    price: Decimal, duration_s: float, rounding: BillingRounding
) -> None:
    amount, seconds = settle_usd(_provider(price, rounding), "720p", duration_s)

    assert seconds == _reference_seconds(duration_s, rounding)
    assert amount == (price * seconds).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP)
    assert isinstance(amount, Decimal)


def test_the_float_counterexample_rounds_as_decimal_arithmetic_says() -> None:
    # In binary floats 0.11345 × 7 = 0.79414999… and rounds down to 0.7941.
    amount, seconds = settle_usd(_provider(Decimal("0.11345"), "nearest"), "720p", 7.0)
    assert (amount, seconds) == (Decimal("0.7942"), 7)


@pytest.mark.parametrize(
    ("duration_s", "rounding", "seconds"),
    [
        (5.0, "nearest", 5),
        (5.5, "nearest", 6),
        (5.49, "nearest", 5),
        (5.01, "ceil", 6),
        (5.0, "ceil", 5),
        (0.1, "nearest", 1),
        (0.1, "ceil", 1),
    ],
)
def test_billable_seconds(duration_s: float, rounding: BillingRounding, seconds: int) -> None:
    assert billable_seconds(duration_s, rounding) == seconds


def test_the_estimate_takes_the_highest_enabled_price_and_the_longest_output() -> None:
    cheap, dear = _provider(Decimal("0.1134"), "nearest"), _provider(Decimal("0.126"), "ceil")
    assert estimate_usd([cheap, dear], "720p", "video", None) == Decimal("3.7800")  # 30 s
    assert estimate_usd([cheap], "720p", "image", 4.2) == Decimal("0.5670")  # ceil 4.2 = 5 s


def test_amounts_leave_as_strings_with_four_places() -> None:
    cost = JobCost(
        estimated=usd(Decimal("1.5")), billed=usd(0), billed_seconds=None, at_risk=usd("0.56700")
    )
    assert cost.model_dump(mode="json") == {
        "currency": "USD",
        "estimated": "1.5000",
        "billed": "0.0000",
        "billed_seconds": None,
        "at_risk": "0.5670",
        "upstream": None,
    }


def test_prices_parse_from_decimal_strings_and_keep_their_places() -> None:
    config = ProviderConfig.model_validate(
        {"name": "p", "base_url": "http://x", "api_key": "k", "price_720p_usd_per_s": "0.113456"}
    )
    assert config.price_720p_usd_per_s == Decimal("0.113456")
