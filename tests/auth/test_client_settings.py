"""`auth.service.update_client`: an operator's change to a client, on PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.auth import service
from app.auth.errors import ClientNotFound
from app.auth.schemas import ClientOut, ClientUpdate
from app.db.engine import transaction
from app.models import Client
from tests.support.steps import Steps


async def update(steps: Steps, client_id: str, **changes: object) -> ClientOut:
    async with transaction(steps.runtime.session_factory) as session:
        client = await service.update_client(
            session, client_id, ClientUpdate.model_validate(changes)
        )
        return service.client_out(client)


async def stored(steps: Steps, client_id: str) -> Client:
    async with transaction(steps.runtime.session_factory) as session:
        client = await session.get(Client, client_id)
    assert client is not None
    return client


async def test_every_setting_changes_and_is_stored(steps: Steps) -> None:
    issued = await steps.new_client("before")

    out = await update(
        steps, issued.client_id, name="after", monthly_budget_usd="12.50", disabled=True
    )

    assert out == ClientOut(
        id=issued.client_id,
        name="after",
        is_admin=False,
        disabled=True,
        monthly_budget_usd=12.5,
    )
    client = await stored(steps, issued.client_id)
    assert (client.name, client.monthly_budget_usd, client.disabled) == (
        "after",
        Decimal("12.50"),
        True,
    )


async def test_fields_not_given_stay_as_they_were(steps: Steps) -> None:
    issued = await steps.new_client("keeps", admin=True, budget_usd=Decimal("3"))

    out = await update(steps, issued.client_id)

    assert (out.name, out.is_admin, out.disabled, out.monthly_budget_usd) == (
        "keeps",
        True,
        False,
        Decimal("3"),
    )


async def test_clear_budget_wins_over_a_budget_given_with_it(steps: Steps) -> None:
    issued = await steps.new_client(budget_usd=Decimal("3"))

    out = await update(steps, issued.client_id, monthly_budget_usd="9", clear_budget=True)

    assert out.monthly_budget_usd is None
    assert (await stored(steps, issued.client_id)).monthly_budget_usd is None


async def test_a_disabled_client_is_no_longer_found_by_its_key(steps: Steps) -> None:
    issued = await steps.new_client()

    await update(steps, issued.client_id, disabled=True)

    async with transaction(steps.runtime.session_factory) as session:
        assert await service.client_for_key(session, issued.api_key) is None
    await update(steps, issued.client_id, disabled=False)
    async with transaction(steps.runtime.session_factory) as session:
        found = await service.client_for_key(session, issued.api_key)
    assert found is not None
    assert found.id == issued.client_id


async def test_an_unknown_client_is_client_not_found(steps: Steps) -> None:
    with pytest.raises(ClientNotFound) as caught:
        await update(steps, "cli_nope", name="x")

    error = caught.value
    assert (error.status_code, error.code, error.detail) == (
        404,
        "client_not_found",
        "no client cli_nope",
    )
