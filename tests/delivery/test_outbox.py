"""publish: an event and its deliveries written in the caller's transaction."""

from __future__ import annotations

from app.db.engine import transaction
from app.delivery import outbox
from app.statuses import DeliveryStatus, EndpointStatus
from tests.delivery.factories import DATA, deliveries_of, events_of, new_endpoint, publish
from tests.support.steps import Steps

URL = "http://127.0.0.1:9/hook"


async def test_an_event_goes_to_each_subscribed_endpoint_and_the_extra_url(steps: Steps) -> None:
    key = await steps.new_client()
    subscribed = await new_endpoint(steps, key.client_id, URL)
    await new_endpoint(steps, key.client_id, URL, event_types=["job.failed"])
    await new_endpoint(steps, key.client_id, URL, status=EndpointStatus.disabled)

    event = await publish(steps, key.client_id, extra_url="http://127.0.0.1:9/callback")

    assert event.payload == {
        "id": event.id,
        "type": "job.succeeded",
        "created_at": event.created_at.isoformat().replace("+00:00", "Z"),
        "data": DATA,
    }
    deliveries = await deliveries_of(steps, event.id)
    assert sorted((d.endpoint_id or "", d.target_url or "") for d in deliveries) == sorted(
        [(subscribed.id, ""), ("", "http://127.0.0.1:9/callback")]
    )
    for d in deliveries:
        assert (d.status, d.attempts, d.schedule_step) == (DeliveryStatus.pending, 0, 0)
        assert d.next_attempt_at == event.created_at


async def test_an_event_nobody_hears_is_still_kept_by_default(steps: Steps) -> None:
    key = await steps.new_client()

    event = await publish(steps, key.client_id)

    assert [e.id for e in await events_of(steps, key.client_id, "job.succeeded")] == [event.id]
    assert await deliveries_of(steps, event.id) == []


async def test_only_if_heard_an_event_nobody_hears_is_not_stored(steps: Steps) -> None:
    key = await steps.new_client()
    await new_endpoint(steps, key.client_id, URL, event_types=["job.failed"])

    async with transaction(steps.runtime.session_factory) as session:
        event = await outbox.publish(
            session, key.client_id, "job.processing", DATA, only_if_heard=True
        )

    assert event is None
    assert await events_of(steps, key.client_id, "job.processing") == []


async def test_endpoint_disabled_reaches_the_other_endpoints_whatever_their_filter(
    steps: Steps,
) -> None:
    key = await steps.new_client()
    disabled = await new_endpoint(steps, key.client_id, URL)
    other = await new_endpoint(steps, key.client_id, URL, event_types=["job.failed"])

    async with transaction(steps.runtime.session_factory) as session:
        event = await outbox.publish_endpoint_disabled(session, disabled)

    assert [d.endpoint_id for d in await deliveries_of(steps, event.id)] == [other.id]
