"""`billing.service.usage_for`: whose usage a caller may read, and for which period."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.auth.principal import Principal
from app.billing import service
from app.billing.schemas import Usage
from app.clock import utcnow
from app.db.engine import transaction
from app.errors import Forbidden, Unprocessable
from tests.support.steps import Steps


def principal(client_id: str, *, admin: bool = False) -> Principal:
    return Principal(client_id=client_id, is_admin=admin, webhook_secret="whsec_test")


async def usage_for(
    steps: Steps,
    caller: Principal,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    client_id: str | None = None,
) -> Usage:
    async with transaction(steps.runtime.session_factory) as session:
        return await service.usage_for(session, caller, start=start, end=end, client_id=client_id)


async def test_a_client_reads_its_own_usage_for_this_month(steps: Steps) -> None:
    me = await steps.new_client()
    before = utcnow()

    usage = await usage_for(steps, principal(me.client_id))

    assert usage.client_id == me.client_id
    assert usage.clients is None
    assert usage.from_ == service.month_start(before)
    assert usage.to > before


async def test_a_client_may_name_itself_but_no_other(steps: Steps) -> None:
    me, other = await steps.new_client("me"), await steps.new_client("other")

    mine = await usage_for(steps, principal(me.client_id), client_id=me.client_id)
    with pytest.raises(Forbidden) as caught:
        await usage_for(steps, principal(me.client_id), client_id=other.client_id)

    assert mine.client_id == me.client_id
    assert (caught.value.status_code, caught.value.code) == (403, "admin_required")


async def test_an_admin_reads_one_client_or_every_client(steps: Steps) -> None:
    admin, user = await steps.new_client("ops", admin=True), await steps.new_client("user")

    one = await usage_for(steps, principal(admin.client_id, admin=True), client_id=user.client_id)
    everyone = await usage_for(steps, principal(admin.client_id, admin=True))

    assert (one.client_id, one.clients) == (user.client_id, None)
    assert everyone.client_id is None
    assert everyone.clients == {}  # no jobs yet, so no client has a row


async def test_a_period_must_end_after_it_starts(steps: Steps) -> None:
    me = await steps.new_client()
    start = datetime(2026, 2, 1, tzinfo=UTC)

    with pytest.raises(Unprocessable) as caught:
        await usage_for(steps, principal(me.client_id), start=start, end=start)

    error = caught.value
    assert (error.code, error.extra["errors"]) == (
        "invalid_period",
        [{"loc": ["query", "to"], "msg": "`to` must be after `from`"}],
    )


async def test_naive_times_are_taken_as_utc(steps: Steps) -> None:
    me = await steps.new_client()
    start = datetime(2026, 1, 1)

    usage = await usage_for(
        steps, principal(me.client_id), start=start, end=start + timedelta(days=31)
    )

    assert (usage.from_, usage.to) == (
        datetime(2026, 1, 1, tzinfo=UTC),
        datetime(2026, 2, 1, tzinfo=UTC),
    )
