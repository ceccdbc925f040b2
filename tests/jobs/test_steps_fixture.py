"""The step fixtures give each test an empty database of its own."""

from __future__ import annotations

from sqlalchemy import func, select

from app.db.engine import transaction
from app.models import Client
from tests.support.steps import Steps


async def test_each_step_test_starts_from_an_empty_database(steps: Steps) -> None:
    await steps.new_client()

    async with transaction(steps.runtime.session_factory) as session:
        count = (await session.execute(select(func.count()).select_from(Client))).scalar_one()

    assert count == 1
