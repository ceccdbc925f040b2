"""Money: `Decimal` US dollars from settings to JSON, never a binary float.

Amounts carry 4 decimal places (rounded half up) and leave the service as decimal
strings (`"0.5670"`), so no client parses them into a float by accident.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Annotated, Final

from pydantic import PlainSerializer, WithJsonSchema

PLACES: Final = Decimal("0.0001")
ZERO: Final = Decimal("0.0000")
PATTERN: Final = r"^-?[0-9]+\.[0-9]{4}$"
# Amounts are stored as NUMERIC(12, 4): budgets must fit the column.
MIN_BUDGET_USD: Final = Decimal("0")
MAX_BUDGET_USD: Final = Decimal("99999999.9999")


def usd(value: Decimal | int | str) -> Decimal:
    """`value` rounded to 4 places, half up (a price times whole seconds rarely needs it)."""
    return Decimal(value).quantize(PLACES, rounding=ROUND_HALF_UP)


def usd_text(value: Decimal) -> str:
    return f"{usd(value):f}"


Money = Annotated[
    Decimal,
    PlainSerializer(usd_text, return_type=str),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": PATTERN,
            "description": "US dollars as a decimal string with 4 places",
            "examples": ["0.5670"],
        }
    ),
]
