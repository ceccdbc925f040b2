"""The prepare step (the claim) against real PostgreSQL: what it leases, what it pushes
back, and exactly which columns it writes. Nothing is sent here."""

from __future__ import annotations

import json
from datetime import timedelta

from app.clock import utcnow
from app.db.engine import transaction
from app.delivery import prepare
from app.delivery import repository as repo
from app.models import Delivery, WebhookEndpoint
from app.statuses import DeliveryStatus, EndpointStatus
from tests.delivery.factories import deliveries_of, load, new_endpoint, publish, set_columns
from tests.support.steps import Steps

URL = "http://127.0.0.1:9/hook"  # never dialled: prepare only reads and leases


async def test_a_due_delivery_is_leased_and_prepared(steps: Steps) -> None:
    key = await steps.new_client()
    ep = await new_endpoint(steps, key.client_id, URL, rate_limit_per_s=4.0)
    event = await publish(steps, key.client_id)
    before = utcnow()
    claim = await prepare.claim(steps.runtime, 10)
    after = utcnow()

    [ob] = claim.sends
    [delivery] = await deliveries_of(steps, event.id)
    assert (ob.delivery_id, ob.event_id, ob.endpoint_id) == (delivery.id, event.id, ep.id)
    assert (ob.url, ob.secrets, ob.attempt) == (URL, [ep.secret], 1)
    assert ob.event_created_at == event.created_at
    assert json.loads(ob.body) == event.payload
    assert " " not in ob.body  # compact: the bytes signed are the bytes sent
    assert claim.deferred_until is None
    lease = timedelta(seconds=steps.runtime.settings.webhook_timeout_s + 5)
    assert delivery.locked_until is not None
    assert before + lease <= delivery.locked_until <= after + lease
    assert (delivery.status, delivery.attempts, delivery.schedule_step) == (
        DeliveryStatus.pending,
        1,  # counted when leased: a send that dies unrecorded was an attempt too
        0,
    )
    endpoint = await load(steps, WebhookEndpoint, ep.id)
    assert endpoint.rate_tat is not None
    step = timedelta(seconds=0.25)
    assert before + step <= endpoint.rate_tat <= after + step


async def test_a_leased_delivery_is_not_claimed_again(steps: Steps) -> None:
    key = await steps.new_client()
    await new_endpoint(steps, key.client_id, URL)
    await publish(steps, key.client_id)

    first = await prepare.claim(steps.runtime, 10)
    second = await prepare.claim(steps.runtime, 10)

    assert len(first.sends) == 1
    assert second.sends == []


async def test_an_endpoint_gets_no_more_than_its_concurrency_cap(steps: Steps) -> None:
    key = await steps.new_client()
    await new_endpoint(steps, key.client_id, URL, max_concurrency=2)
    events = [await publish(steps, key.client_id) for _ in range(3)]

    first = await prepare.claim(steps.runtime, 10)
    second = await prepare.claim(steps.runtime, 10)

    assert [ob.event_id for ob in first.sends] == [e.id for e in events[:2]]
    assert second.sends == []
    [waiting] = await deliveries_of(steps, events[2].id)
    assert waiting.locked_until is None


async def test_a_probing_circuit_takes_one_send_at_a_time(steps: Steps) -> None:
    key = await steps.new_client()
    threshold = steps.runtime.settings.webhook_circuit_threshold
    past = utcnow() - timedelta(seconds=1)
    await new_endpoint(
        steps, key.client_id, URL, consecutive_failures=threshold, circuit_open_until=past
    )
    for _ in range(3):
        await publish(steps, key.client_id)

    claim = await prepare.claim(steps.runtime, 10)

    assert len(claim.sends) == 1


async def test_an_open_circuit_or_a_disabled_endpoint_is_skipped(steps: Steps) -> None:
    key = await steps.new_client()
    soon = utcnow() + timedelta(minutes=5)
    await new_endpoint(steps, key.client_id, URL, circuit_open_until=soon, consecutive_failures=9)
    await new_endpoint(steps, key.client_id, URL, status=EndpointStatus.disabled)
    event = await publish(steps, key.client_id)

    claim = await prepare.claim(steps.runtime, 10)

    assert claim.sends == []
    assert all(d.locked_until is None for d in await deliveries_of(steps, event.id))


async def test_over_the_rate_a_delivery_is_pushed_back_to_its_turn(steps: Steps) -> None:
    key = await steps.new_client()
    turn = utcnow() + timedelta(seconds=30)
    await new_endpoint(steps, key.client_id, URL, rate_tat=turn)
    event = await publish(steps, key.client_id)

    claim = await prepare.claim(steps.runtime, 10)

    assert claim.sends == []
    assert claim.deferred_until == turn
    [delivery] = await deliveries_of(steps, event.id)
    assert (delivery.next_attempt_at, delivery.locked_until) == (turn, None)


async def test_the_rate_admits_a_one_second_burst_then_defers(steps: Steps) -> None:
    """2/s: sends at +0, +0.5 s and +1 s of theoretical time fit the burst; two wait."""
    key = await steps.new_client()
    ep = await new_endpoint(steps, key.client_id, URL, rate_limit_per_s=2.0, max_concurrency=10)
    events = [await publish(steps, key.client_id) for _ in range(5)]

    claim = await prepare.claim(steps.runtime, 10)

    assert [ob.event_id for ob in claim.sends] == [e.id for e in events[:3]]
    endpoint = await load(steps, WebhookEndpoint, ep.id)
    assert endpoint.rate_tat is not None
    assert claim.deferred_until == endpoint.rate_tat
    for event in events[3:]:
        [deferred] = await deliveries_of(steps, event.id)
        assert (deferred.next_attempt_at, deferred.locked_until) == (endpoint.rate_tat, None)


async def test_a_backlogged_endpoint_does_not_fill_the_claim(steps: Steps) -> None:
    key = await steps.new_client()
    slow = await new_endpoint(steps, key.client_id, URL, max_concurrency=1)
    for _ in range(5):
        await publish(steps, key.client_id)
    fast = await new_endpoint(steps, key.client_id, URL)
    await publish(steps, key.client_id)

    claim = await prepare.claim(steps.runtime, 2)

    assert sorted(ob.endpoint_id or "" for ob in claim.sends) == sorted([slow.id, fast.id])


async def test_a_short_claim_window_serves_each_endpoint_before_anyones_second(
    steps: Steps,
) -> None:
    """The pool nearly full (slow sends hold its slots): the window is short, and older
    retries of failing endpoints must not fill it ahead of a healthy endpoint's new send."""
    key = await steps.new_client()
    old = utcnow() - timedelta(seconds=60)
    failing = [await new_endpoint(steps, key.client_id, URL) for _ in range(2)]
    for endpoint in failing:
        for _ in range(3):
            event = await publish(steps, key.client_id)
            for row in await deliveries_of(steps, event.id):
                if row.endpoint_id != endpoint.id:
                    await set_columns(steps, Delivery, row.id, status=DeliveryStatus.dead)
                else:
                    await set_columns(steps, Delivery, row.id, next_attempt_at=old)
    healthy = await new_endpoint(steps, key.client_id, URL)
    fresh = await publish(steps, key.client_id)
    for row in await deliveries_of(steps, fresh.id):
        if row.endpoint_id != healthy.id:
            await set_columns(steps, Delivery, row.id, status=DeliveryStatus.dead)

    claim = await prepare.claim(steps.runtime, 3)

    assert sorted(ob.endpoint_id or "" for ob in claim.sends) == sorted(
        [failing[0].id, failing[1].id, healthy.id]
    )


async def test_during_a_rotation_both_secrets_are_prepared(steps: Steps) -> None:
    key = await steps.new_client()
    rotating = await new_endpoint(
        steps,
        key.client_id,
        URL,
        previous_secret="whsec_old",
        previous_secret_expires_at=utcnow() + timedelta(hours=1),
    )
    rotated = await new_endpoint(
        steps,
        key.client_id,
        URL,
        previous_secret="whsec_older",
        previous_secret_expires_at=utcnow() - timedelta(seconds=1),
    )
    await publish(steps, key.client_id)

    claim = await prepare.claim(steps.runtime, 10)

    secrets = {ob.endpoint_id: ob.secrets for ob in claim.sends}
    assert secrets == {
        rotating.id: [rotating.secret, "whsec_old"],
        rotated.id: [rotated.secret],
    }


async def test_a_job_callback_is_signed_with_the_client_secret(steps: Steps) -> None:
    key = await steps.new_client()
    event = await publish(steps, key.client_id, extra_url="http://127.0.0.1:9/callback")

    claim = await prepare.claim(steps.runtime, 10)

    [ob] = claim.sends
    [delivery] = await deliveries_of(steps, event.id)
    assert (ob.delivery_id, ob.endpoint_id) == (delivery.id, None)
    assert (ob.url, ob.secrets) == ("http://127.0.0.1:9/callback", [key.webhook_secret])


async def test_room_is_the_cap_minus_what_is_in_flight(steps: Steps) -> None:
    """The one concurrency rule, read under the endpoints' locks: leases made by another
    claim (another replica) count against the cap, and a probing circuit's cap is 1."""
    key = await steps.new_client()
    threshold = steps.runtime.settings.webhook_circuit_threshold
    healthy = await new_endpoint(steps, key.client_id, URL, max_concurrency=3)
    probing = await new_endpoint(
        steps, key.client_id, URL, max_concurrency=3, consecutive_failures=threshold
    )
    idle = await new_endpoint(steps, key.client_id, URL, max_concurrency=3)
    await set_columns(steps, WebhookEndpoint, idle.id, event_types=["job.failed"])
    event = await publish(steps, key.client_id)
    now = utcnow()
    for delivery in await deliveries_of(steps, event.id):
        await set_columns(steps, Delivery, delivery.id, locked_until=now + timedelta(minutes=1))

    async with transaction(steps.runtime.session_factory) as session:
        ids = [healthy.id, probing.id, idle.id]
        await repo.lock_endpoints(session, ids)
        room = await repo.room_by_endpoint(session, ids, now=now, circuit_threshold=threshold)

    assert room == {healthy.id: 2, probing.id: 0, idle.id: 3}
