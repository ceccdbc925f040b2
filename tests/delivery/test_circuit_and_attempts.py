"""Hardening of the delivery pipeline, step by step against real PostgreSQL: an operator's
redeliver is the open circuit's probe, the circuit never stretches a schedule beyond its
own wait (and the stored next_attempt_at says so), bulk redelivery never backfills events
older than the endpoint, and the attempt number survives a crash mid-send."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from app.auth.principal import Principal
from app.clock import utcnow
from app.db.engine import transaction
from app.delivery import pipeline, prepare, service
from app.delivery import repository as repo
from app.delivery.record import record
from app.delivery.send import Outcome
from app.models import Delivery, WebhookEndpoint
from app.runtime import Runtime
from app.statuses import DeliveryStatus, EndpointStatus
from tests.delivery.factories import deliveries_of, load, new_endpoint, publish, set_columns
from tests.support.receiver import Answer, running_subscriber
from tests.support.steps import Steps

# A fast schedule: the circuit (30 s) is far longer than the early steps, far shorter
# than the last one.
SCHEDULE_S = [0.0, 0.1, 0.1, 3600.0]
THRESHOLD = 2
OPEN_S = 30.0
URL = "http://127.0.0.1:9/hook"  # never dialled where a test only claims


@pytest.fixture
def rt(steps: Steps) -> Runtime:
    steps.runtime.settings = steps.runtime.settings.model_copy(
        update={
            "webhook_retry_schedule_s": SCHEDULE_S,
            "webhook_circuit_threshold": THRESHOLD,
            "webhook_circuit_open_s": OPEN_S,
            "webhook_circuit_open_max_s": 3600.0,
            "webhook_disable_after_s": 86400.0,
        }
    )
    return steps.runtime


def principal_of(client_id: str) -> Principal:
    return Principal(client_id=client_id, is_admin=False, webhook_secret="whsec_unused")


async def test_the_circuit_holds_deliveries_only_until_it_closes_and_says_so(
    steps: Steps, rt: Runtime
) -> None:
    key = await steps.new_client()
    async with running_subscriber(default=Answer(500)) as sub:
        ep = await new_endpoint(steps, key.client_id, sub.url)
        first, second = [await publish(steps, key.client_id) for _ in range(2)]
        sends = (await prepare.claim(rt, 10)).sends
        for ob in sends:  # two failures in a row: the second one opens the circuit
            await pipeline.deliver(rt, rt.webhook_client, ob)
        opened = await load(steps, WebhookEndpoint, ep.id)
        during = await publish(steps, key.client_id)  # an event while the circuit is open

    until = opened.circuit_open_until
    assert until is not None
    assert opened.consecutive_failures == THRESHOLD
    # Their own schedule said +0.1 s; the circuit says `until`; what is stored is exactly
    # the later of the two: the circuit's wait, nothing more.
    for event in (first, second, during):
        [delivery] = await deliveries_of(steps, event.id)
        assert delivery.status in (DeliveryStatus.pending, DeliveryStatus.failed)
        assert delivery.next_attempt_at == until
    assert (await prepare.claim(rt, 10)).sends == []


async def test_a_later_own_schedule_is_not_moved_by_the_circuit(steps: Steps, rt: Runtime) -> None:
    key = await steps.new_client()
    async with running_subscriber(default=Answer(500)) as sub:
        ep = await new_endpoint(steps, key.client_id, sub.url, consecutive_failures=THRESHOLD - 1)
        event = await publish(steps, key.client_id)
        [delivery] = await deliveries_of(steps, event.id)
        await set_columns(steps, Delivery, delivery.id, schedule_step=len(SCHEDULE_S) - 2)
        [ob] = (await prepare.claim(rt, 10)).sends
        before = utcnow()
        await pipeline.deliver(rt, rt.webhook_client, ob)

    endpoint = await load(steps, WebhookEndpoint, ep.id)
    stored = await load(steps, Delivery, delivery.id)
    assert endpoint.circuit_open_until is not None
    assert stored.next_attempt_at is not None
    # ±10 % jitter on a 3600 s step: far beyond the 30 s circuit, and left alone by it.
    assert stored.next_attempt_at >= before + timedelta(seconds=0.9 * SCHEDULE_S[-1])
    assert stored.next_attempt_at > endpoint.circuit_open_until


async def test_an_operator_redeliver_is_the_open_circuits_probe(steps: Steps, rt: Runtime) -> None:
    key = await steps.new_client()
    async with running_subscriber() as sub:
        ep = await new_endpoint(steps, key.client_id, sub.url)
        dead, held = [await publish(steps, key.client_id) for _ in range(2)]
        until = utcnow() + timedelta(hours=1)
        await set_columns(
            steps,
            WebhookEndpoint,
            ep.id,
            consecutive_failures=THRESHOLD + 5,
            failing_since=utcnow(),
            circuit_open_until=until,
        )
        [dead_row] = await deliveries_of(steps, dead.id)
        [held_row] = await deliveries_of(steps, held.id)
        await set_columns(steps, Delivery, dead_row.id, status=DeliveryStatus.dead)
        await set_columns(steps, Delivery, held_row.id, next_attempt_at=until)
        assert (await prepare.claim(rt, 10)).sends == []  # the open circuit holds everything

        async with transaction(rt.session_factory) as session:
            accepted = await service.redeliver(session, principal_of(key.client_id), dead_row.id)
            accepted_at = accepted.next_attempt_at
        claimed = (await prepare.claim(rt, 10)).sends
        assert [ob.delivery_id for ob in claimed] == [dead_row.id]  # the probe, and only it
        await pipeline.deliver(rt, rt.webhook_client, claimed[0])

    assert accepted_at is not None
    assert accepted_at <= utcnow()
    assert len(sub.received) == 1
    sent = await load(steps, Delivery, dead_row.id)
    assert sent.status is DeliveryStatus.succeeded
    closed = await load(steps, WebhookEndpoint, ep.id)
    assert (closed.circuit_open_until, closed.consecutive_failures) == (None, 0)


async def test_a_failed_operator_probe_reopens_the_circuit(steps: Steps, rt: Runtime) -> None:
    key = await steps.new_client()
    async with running_subscriber(default=Answer(500)) as sub:
        ep = await new_endpoint(steps, key.client_id, sub.url)
        event = await publish(steps, key.client_id)
        await set_columns(
            steps,
            WebhookEndpoint,
            ep.id,
            consecutive_failures=THRESHOLD,
            failing_since=utcnow(),
            circuit_open_until=utcnow() + timedelta(hours=1),
        )
        [row] = await deliveries_of(steps, event.id)
        await set_columns(steps, Delivery, row.id, status=DeliveryStatus.dead)
        async with transaction(rt.session_factory) as session:
            await service.redeliver(session, principal_of(key.client_id), row.id)
        [ob] = (await prepare.claim(rt, 10)).sends
        before = utcnow()
        await pipeline.deliver(rt, rt.webhook_client, ob)

    endpoint = await load(steps, WebhookEndpoint, ep.id)
    stored = await load(steps, Delivery, row.id)
    assert endpoint.consecutive_failures == THRESHOLD + 1
    assert endpoint.circuit_open_until is not None
    assert endpoint.circuit_open_until >= before + timedelta(seconds=2 * OPEN_S)
    assert stored.next_attempt_at == endpoint.circuit_open_until


async def test_bulk_redelivery_never_backfills_events_older_than_the_endpoint(
    steps: Steps, rt: Runtime
) -> None:
    key = await steps.new_client()
    before_endpoint = await publish(steps, key.client_id)
    ep = await new_endpoint(steps, key.client_id, URL, status=EndpointStatus.disabled)
    missed = await publish(steps, key.client_id)  # the endpoint existed, but was disabled
    await set_columns(steps, WebhookEndpoint, ep.id, status=EndpointStatus.enabled)

    since = before_endpoint.created_at - timedelta(days=1)
    async with transaction(rt.session_factory) as session:
        result = await service.bulk_redeliver(session, principal_of(key.client_id), ep.id, since)

    assert (result.requeued, result.created) == (0, 1)
    assert await deliveries_of(steps, before_endpoint.id) == []
    [delivery] = await deliveries_of(steps, missed.id)
    assert delivery.endpoint_id == ep.id


async def test_a_send_lost_mid_flight_counts_and_the_next_carries_the_next_number(
    steps: Steps, rt: Runtime
) -> None:
    key = await steps.new_client()
    async with running_subscriber() as sub:
        await new_endpoint(steps, key.client_id, sub.url)
        event = await publish(steps, key.client_id)
        [lost] = (await prepare.claim(rt, 10)).sends  # then the sender crashes: no record
        await set_columns(
            steps, Delivery, lost.delivery_id, locked_until=utcnow() - timedelta(seconds=1)
        )
        [resent] = (await prepare.claim(rt, 10)).sends
        await pipeline.deliver(rt, rt.webhook_client, resent)
        # the crashed sender's answer, if it ever came, winds nothing back
        await record(rt, lost, Outcome(status_code=500))

    assert (lost.attempt, resent.attempt) == (1, 2)
    [received] = sub.received
    assert received.headers["webhook-attempt"] == "2"
    [delivery] = await deliveries_of(steps, event.id)
    assert (delivery.status, delivery.attempts) == (DeliveryStatus.succeeded, 2)


async def test_holding_for_the_circuit_skips_rows_a_claim_has_locked(
    steps: Steps, rt: Runtime
) -> None:
    """Waiting for them could close a deadlock cycle (the benchmark found one): a row
    another transaction holds is left to it, the rest say when the circuit closes."""
    key = await steps.new_client()
    ep = await new_endpoint(steps, key.client_id, URL)
    locked_event, free_event = [await publish(steps, key.client_id) for _ in range(2)]
    [locked] = await deliveries_of(steps, locked_event.id)
    [free] = await deliveries_of(steps, free_event.id)
    until = utcnow() + timedelta(minutes=5)

    async with transaction(rt.session_factory) as holder:
        assert await repo.get_delivery(holder, locked.id, None, lock=True) is not None
        async with asyncio.timeout(60), transaction(rt.session_factory) as session:  # hang guard
            held = await repo.hold_for_circuit(session, ep.id, until, except_id="dlv_none")

    assert held == 1
    assert (await load(steps, Delivery, free.id)).next_attempt_at == until
    assert (await load(steps, Delivery, locked.id)).next_attempt_at == locked.next_attempt_at
