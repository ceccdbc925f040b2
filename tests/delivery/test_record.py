"""The record step against real PostgreSQL, fed by real sends to a real receiver: the
exact columns an attempt writes to its delivery, its attempt log and its endpoint."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from app.auth.service import new_webhook_secret
from app.clock import utcnow
from app.delivery import pipeline, prepare
from app.delivery.record import record
from app.delivery.send import Outbound, Outcome
from app.models import Delivery, WebhookEndpoint
from app.runtime import Runtime
from app.statuses import DeliveryStatus, EndpointStatus
from tests.delivery.factories import (
    attempts_of,
    deliveries_of,
    events_of,
    load,
    new_endpoint,
    publish,
    set_columns,
)
from tests.support.receiver import Answer, Receiver, running_subscriber
from tests.support.steps import Steps

SCHEDULE_S = [0.0, 60.0, 120.0]
THRESHOLD = 3
OPEN_S = 30.0
RETRY_AFTER_MAX_S = 900.0


@pytest.fixture
def rt(steps: Steps) -> Runtime:
    """Round numbers, so each expected column is easy to state."""
    steps.runtime.settings = steps.runtime.settings.model_copy(
        update={
            "webhook_retry_schedule_s": SCHEDULE_S,
            "webhook_circuit_threshold": THRESHOLD,
            "webhook_circuit_open_s": OPEN_S,
            "webhook_circuit_open_max_s": 3600.0,
            "webhook_retry_after_max_s": RETRY_AFTER_MAX_S,
            "webhook_disable_after_s": 86400.0,
        }
    )
    return steps.runtime


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with running_subscriber() as sub:
        yield sub


async def claim_one(rt: Runtime) -> Outbound:
    [ob] = (await prepare.claim(rt, 10)).sends
    return ob


async def deliver_one(rt: Runtime) -> tuple[Outbound, datetime, datetime]:
    """Claim, send and record one delivery; the clock before and after, to bound times."""
    ob = await claim_one(rt)
    before = utcnow()
    await pipeline.deliver(rt, rt.webhook_client, ob)
    return ob, before, utcnow()


def between(value: datetime | None, low: datetime, high: datetime, delay_s: float) -> bool:
    delay = timedelta(seconds=delay_s)
    return value is not None and low + delay <= value <= high + delay


async def test_a_2xx_succeeds_and_resets_the_endpoint(
    steps: Steps, rt: Runtime, receiver: Receiver
) -> None:
    key = await steps.new_client()
    streak_since = utcnow() - timedelta(hours=1)
    ep = await new_endpoint(
        steps, key.client_id, receiver.url, consecutive_failures=2, failing_since=streak_since
    )
    event = await publish(steps, key.client_id)

    ob, before, after = await deliver_one(rt)

    delivery = await load(steps, Delivery, ob.delivery_id)
    assert delivery.status is DeliveryStatus.succeeded
    assert (delivery.attempts, delivery.schedule_step, delivery.locked_until) == (1, 0, None)
    assert (delivery.last_status_code, delivery.last_error) == (200, None)
    assert delivery.delivered_at is not None
    assert before <= delivery.delivered_at <= after
    [attempt] = await attempts_of(steps, delivery.id)
    assert (attempt.attempt, attempt.status_code, attempt.error) == (1, 200, None)
    assert attempt.response_body == "ok"
    endpoint = await load(steps, WebhookEndpoint, ep.id)
    assert (endpoint.consecutive_failures, endpoint.failing_since) == (0, None)
    assert endpoint.circuit_open_until is None
    assert receiver.received[0].headers["webhook-id"] == event.id


async def test_a_failure_moves_to_the_next_schedule_step(steps: Steps, rt: Runtime) -> None:
    key = await steps.new_client()
    async with running_subscriber(default=Answer(500)) as sub:
        ep = await new_endpoint(steps, key.client_id, sub.url)
        await publish(steps, key.client_id)
        ob, before, after = await deliver_one(rt)

    delivery = await load(steps, Delivery, ob.delivery_id)
    assert delivery.status is DeliveryStatus.failed
    assert (delivery.attempts, delivery.schedule_step, delivery.locked_until) == (1, 1, None)
    assert (delivery.last_status_code, delivery.last_error) == (500, "HTTP 500")
    assert delivery.delivered_at is None
    assert delivery.next_attempt_at is not None
    low, high = before + timedelta(seconds=54), after + timedelta(seconds=66)  # 60 s ± 10 %
    assert low <= delivery.next_attempt_at <= high
    [attempt] = await attempts_of(steps, delivery.id)
    assert (attempt.attempt, attempt.status_code, attempt.error) == (1, 500, "HTTP 500")
    endpoint = await load(steps, WebhookEndpoint, ep.id)
    assert endpoint.consecutive_failures == 1
    assert endpoint.failing_since is not None
    assert before <= endpoint.failing_since <= after
    assert endpoint.circuit_open_until is None  # below the threshold
    assert endpoint.status is EndpointStatus.enabled


async def test_a_failure_on_the_last_step_is_dead(steps: Steps, rt: Runtime) -> None:
    key = await steps.new_client()
    async with running_subscriber(default=Answer(500)) as sub:
        await new_endpoint(steps, key.client_id, sub.url)
        event = await publish(steps, key.client_id)
        [pending] = await deliveries_of(steps, event.id)
        await set_columns(steps, Delivery, pending.id, schedule_step=len(SCHEDULE_S) - 1)
        ob, _, _ = await deliver_one(rt)

    delivery = await load(steps, Delivery, ob.delivery_id)
    assert delivery.status is DeliveryStatus.dead
    assert (delivery.schedule_step, delivery.attempts) == (len(SCHEDULE_S), 1)
    assert delivery.next_attempt_at == pending.next_attempt_at  # nothing more is scheduled
    assert delivery.locked_until is None


@pytest.mark.parametrize(
    ("answer", "delay_s"),
    [
        (Answer(429, headers={"Retry-After": "600"}), 600.0),  # longer than the step: it wins
        (Answer(503, headers={"Retry-After": "86400"}), RETRY_AFTER_MAX_S),  # but is bounded
    ],
)
async def test_retry_after_is_honoured_within_bounds(
    steps: Steps, rt: Runtime, answer: Answer, delay_s: float
) -> None:
    key = await steps.new_client()
    async with running_subscriber(default=answer) as sub:
        await new_endpoint(steps, key.client_id, sub.url)
        await publish(steps, key.client_id)
        ob, before, after = await deliver_one(rt)

    delivery = await load(steps, Delivery, ob.delivery_id)
    assert delivery.status is DeliveryStatus.failed
    assert delivery.last_status_code == answer.status
    assert between(delivery.next_attempt_at, before, after, delay_s)


async def test_a_redirect_is_a_failure(steps: Steps, rt: Runtime, receiver: Receiver) -> None:
    key = await steps.new_client()
    async with running_subscriber(default=Answer(302, headers={"Location": receiver.url})) as sub:
        await new_endpoint(steps, key.client_id, sub.url)
        await publish(steps, key.client_id)
        ob, _, _ = await deliver_one(rt)

    delivery = await load(steps, Delivery, ob.delivery_id)
    assert delivery.status is DeliveryStatus.failed
    assert delivery.last_status_code == 302
    assert delivery.last_error == "HTTP 302: redirects are not followed"
    assert receiver.received == []


async def test_410_kills_the_delivery_and_disables_the_endpoint(
    steps: Steps, rt: Runtime, receiver: Receiver
) -> None:
    key = await steps.new_client()
    async with running_subscriber(default=Answer(410)) as gone:
        ep = await new_endpoint(steps, key.client_id, gone.url)
        sibling = await new_endpoint(steps, key.client_id, receiver.url, event_types=["job.failed"])
        await publish(steps, key.client_id)
        ob, before, after = await deliver_one(rt)

    delivery = await load(steps, Delivery, ob.delivery_id)
    assert (delivery.status, delivery.schedule_step) == (DeliveryStatus.dead, 1)
    endpoint = await load(steps, WebhookEndpoint, ep.id)
    assert endpoint.status is EndpointStatus.disabled
    assert endpoint.disabled_reason == "the endpoint answered 410 Gone"
    assert before <= endpoint.updated_at <= after
    # The owner hears of it through its other endpoint (whatever its filter), not this one.
    [notice] = await events_of(steps, key.client_id, "endpoint.disabled")
    assert notice.payload["data"] == {
        "endpoint_id": ep.id,
        "url": gone.url,
        "reason": "the endpoint answered 410 Gone",
        "status": "disabled",
    }
    assert [d.endpoint_id for d in await deliveries_of(steps, notice.id)] == [sibling.id]


async def test_410_from_a_job_callback_is_an_ordinary_failure(steps: Steps, rt: Runtime) -> None:
    key = await steps.new_client()
    async with running_subscriber(default=Answer(410)) as callback:
        await publish(steps, key.client_id, extra_url=callback.url)
        ob, _, _ = await deliver_one(rt)

    delivery = await load(steps, Delivery, ob.delivery_id)
    assert (delivery.status, delivery.schedule_step) == (DeliveryStatus.failed, 1)
    assert await events_of(steps, key.client_id, "endpoint.disabled") == []


async def test_the_circuit_opens_at_the_threshold_then_doubles(steps: Steps, rt: Runtime) -> None:
    key = await steps.new_client()
    async with running_subscriber(default=Answer(500)) as sub:
        ep = await new_endpoint(steps, key.client_id, sub.url, consecutive_failures=THRESHOLD - 1)
        await publish(steps, key.client_id)
        _, before, after = await deliver_one(rt)
        opened = await load(steps, WebhookEndpoint, ep.id)

        await set_columns(steps, WebhookEndpoint, ep.id, circuit_open_until=None)
        await publish(steps, key.client_id)
        _, before2, after2 = await deliver_one(rt)
        reopened = await load(steps, WebhookEndpoint, ep.id)

    assert opened.consecutive_failures == THRESHOLD
    assert between(opened.circuit_open_until, before, after, OPEN_S)
    assert reopened.consecutive_failures == THRESHOLD + 1
    assert between(reopened.circuit_open_until, before2, after2, 2 * OPEN_S)
    assert reopened.status is EndpointStatus.enabled


async def test_a_sustained_failure_streak_disables_the_endpoint(steps: Steps, rt: Runtime) -> None:
    key = await steps.new_client()
    since = utcnow() - timedelta(seconds=rt.settings.webhook_disable_after_s + 1)
    async with running_subscriber(default=Answer(500)) as sub:
        ep = await new_endpoint(steps, key.client_id, sub.url, failing_since=since)
        await publish(steps, key.client_id)
        ob, _, _ = await deliver_one(rt)

    endpoint = await load(steps, WebhookEndpoint, ep.id)
    assert endpoint.status is EndpointStatus.disabled
    assert endpoint.disabled_reason == f"every delivery failed since {since.isoformat()}"
    delivery = await load(steps, Delivery, ob.delivery_id)
    assert delivery.status is DeliveryStatus.failed  # the delivery itself keeps its schedule
    assert len(await events_of(steps, key.client_id, "endpoint.disabled")) == 1


async def test_a_rotation_sends_both_signatures(
    steps: Steps, rt: Runtime, receiver: Receiver
) -> None:
    key = await steps.new_client()
    old = new_webhook_secret()
    ep = await new_endpoint(
        steps,
        key.client_id,
        receiver.url,
        previous_secret=old,
        previous_secret_expires_at=utcnow() + timedelta(hours=1),
    )
    event = await publish(steps, key.client_id)

    ob, _, _ = await deliver_one(rt)

    [received] = receiver.received
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(ep.secret).verify(received.body, received.headers)["id"] == event.id
    assert Webhook(old).verify(received.body, received.headers)["id"] == event.id
    assert (await load(steps, Delivery, ob.delivery_id)).status is DeliveryStatus.succeeded


async def test_an_attempt_on_a_finished_delivery_changes_nothing(
    steps: Steps, rt: Runtime, receiver: Receiver
) -> None:
    """A lease that ran out and was claimed and recorded by another sender: the late
    answer is not written over it."""
    key = await steps.new_client()
    await new_endpoint(steps, key.client_id, receiver.url)
    await publish(steps, key.client_id)
    ob = await claim_one(rt)
    await set_columns(steps, Delivery, ob.delivery_id, status=DeliveryStatus.succeeded)

    await record(rt, ob, Outcome(status_code=500))

    delivery = await load(steps, Delivery, ob.delivery_id)
    assert (delivery.status, delivery.attempts, delivery.schedule_step) == (
        DeliveryStatus.succeeded,
        1,  # counted when it was leased
        0,
    )
    assert await attempts_of(steps, ob.delivery_id) == []
