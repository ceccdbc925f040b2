"""Client settings as operators read and change them (`/v1/admin/clients/{id}`)."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from app.money import MAX_BUDGET_USD, MIN_BUDGET_USD, Money


# No docstrings on these models: a docstring becomes the OpenAPI component's description.
class ClientUpdate(BaseModel):
    # Only the fields given change; `clear_budget` removes the monthly budget.
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=200)
    monthly_budget_usd: Decimal | None = Field(
        default=None, ge=MIN_BUDGET_USD, le=MAX_BUDGET_USD, decimal_places=4
    )
    clear_budget: bool = False
    disabled: bool | None = None


class ClientOut(BaseModel):
    id: str
    name: str
    is_admin: bool
    disabled: bool
    monthly_budget_usd: Money | None
