from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from app.money import Money


class UsageTotals(BaseModel):
    jobs: dict[str, int]
    billed_seconds: int
    billed_usd: Money
    estimated_usd_in_flight: Money
    # Estimates of creates whose outcome is unknown: the upstream may have charged them.
    at_risk_usd: Money


class Usage(UsageTotals):
    model_config = ConfigDict(populate_by_name=True)

    from_: datetime = Field(alias="from")
    to: datetime
    client_id: str | None
    currency: Literal["USD"] = "USD"
    clients: dict[str, UsageTotals] | None = None
