"""Subscriber endpoints, their delivery logs, redelivery, and the client's own secret."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status
from pydantic import AfterValidator

from app.auth.dependencies import CurrentPrincipal
from app.db.session import DbSession
from app.delivery import service
from app.delivery.schemas import (
    BulkRedeliver,
    BulkRedeliverResult,
    DeliveryList,
    DeliveryOut,
    EndpointCreate,
    EndpointCreated,
    EndpointList,
    EndpointOut,
    EndpointUpdate,
    RedeliverAccepted,
    SecretOut,
)
from app.errors import problem_responses
from app.runtime import RuntimeDep
from app.statuses import DeliveryStatus
from app.validation import cursor_check, cursor_query

router = APIRouter(tags=["webhooks"], responses=problem_responses(401, 422))
Limit = Annotated[int, Query(ge=1, le=100)]
EndpointCursor = Annotated[
    str | None, Query(**cursor_query("we")), AfterValidator(cursor_check("we"))
]
DeliveryCursor = Annotated[
    str | None, Query(**cursor_query("dlv")), AfterValidator(cursor_check("dlv"))
]


@router.post(
    "/v1/webhook-endpoints", status_code=status.HTTP_201_CREATED, response_model=EndpointCreated
)
async def create_endpoint(
    body: EndpointCreate, session: DbSession, rt: RuntimeDep, principal: CurrentPrincipal
) -> EndpointCreated:
    """Register a subscriber URL; the answer carries its signing secret."""
    endpoint = await service.create_endpoint(session, rt, principal, body)
    return EndpointCreated(**service.endpoint_out(endpoint).model_dump(), secret=endpoint.secret)


@router.get("/v1/webhook-endpoints", response_model=EndpointList)
async def list_endpoints(
    session: DbSession,
    principal: CurrentPrincipal,
    limit: Limit = 20,
    cursor: EndpointCursor = None,
) -> EndpointList:
    """List the caller's endpoints, newest first."""
    return await service.list_endpoints(session, principal, limit, cursor)


@router.get(
    "/v1/webhook-endpoints/{endpoint_id}",
    response_model=EndpointOut,
    responses=problem_responses(404),
)
async def get_endpoint(
    endpoint_id: str, session: DbSession, principal: CurrentPrincipal
) -> EndpointOut:
    """One endpoint, with its health."""
    return service.endpoint_out(await service.get_endpoint(session, principal, endpoint_id))


@router.patch(
    "/v1/webhook-endpoints/{endpoint_id}",
    response_model=EndpointOut,
    responses=problem_responses(404),
)
async def update_endpoint(
    endpoint_id: str,
    body: EndpointUpdate,
    session: DbSession,
    rt: RuntimeDep,
    principal: CurrentPrincipal,
) -> EndpointOut:
    """Change the URL, filter, description, limits, or enable/disable it."""
    endpoint = await service.update_endpoint(session, rt, principal, endpoint_id, body)
    return service.endpoint_out(endpoint)


@router.delete(
    "/v1/webhook-endpoints/{endpoint_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(404),
)
async def delete_endpoint(
    endpoint_id: str, session: DbSession, principal: CurrentPrincipal
) -> Response:
    """Stop delivering to this endpoint; its delivery log is kept for the retention period."""
    await service.delete_endpoint(session, principal, endpoint_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/v1/webhook-endpoints/{endpoint_id}/rotate-secret",
    response_model=SecretOut,
    responses=problem_responses(404),
)
async def rotate_secret(
    endpoint_id: str, session: DbSession, rt: RuntimeDep, principal: CurrentPrincipal
) -> SecretOut:
    """A new secret; the previous one keeps signing beside it for 24 h."""
    return SecretOut(secret=await service.rotate_secret(session, rt, principal, endpoint_id))


@router.get(
    "/v1/webhook-endpoints/{endpoint_id}/deliveries",
    response_model=DeliveryList,
    responses=problem_responses(404),
)
async def list_deliveries(
    endpoint_id: str,
    session: DbSession,
    principal: CurrentPrincipal,
    status_: Annotated[DeliveryStatus | None, Query(alias="status")] = None,
    limit: Limit = 20,
    cursor: DeliveryCursor = None,
) -> DeliveryList:
    """Deliveries to this endpoint with every attempt: status codes, errors, response bodies."""
    return await service.list_deliveries(session, principal, endpoint_id, status_, limit, cursor)


@router.post(
    "/v1/webhook-endpoints/{endpoint_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=BulkRedeliverResult,
    responses=problem_responses(404),
)
async def bulk_redeliver(
    endpoint_id: str, body: BulkRedeliver, session: DbSession, principal: CurrentPrincipal
) -> BulkRedeliverResult:
    """Redeliver everything that failed or was missed since `since`; safe to repeat."""
    return await service.bulk_redeliver(session, principal, endpoint_id, body.since)


@router.get(
    "/v1/deliveries/{delivery_id}", response_model=DeliveryOut, responses=problem_responses(404)
)
async def get_delivery(
    delivery_id: str, session: DbSession, principal: CurrentPrincipal
) -> DeliveryOut:
    """One delivery with its attempt log (endpoint or per-job callback_url)."""
    return await service.get_delivery(session, principal, delivery_id)


@router.post(
    "/v1/deliveries/{delivery_id}/redeliver",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=RedeliverAccepted,
    responses=problem_responses(404),
)
async def redeliver(
    delivery_id: str, session: DbSession, principal: CurrentPrincipal
) -> RedeliverAccepted:
    """Send this delivery again now, with the same event and webhook-id.

    Now even while its endpoint's circuit is open: the circuit goes half-open and this
    delivery is its probe (a success closes it, a failure re-opens it for longer). It waits
    only for a send already in flight (its own, or another probe of the same endpoint)."""
    delivery = await service.redeliver(session, principal, delivery_id)
    return RedeliverAccepted(
        id=delivery.id, status=delivery.status, next_attempt_at=delivery.next_attempt_at
    )


@router.get("/v1/webhook-secret", response_model=SecretOut)
async def webhook_secret(principal: CurrentPrincipal) -> SecretOut:
    """The client's own secret, which signs deliveries to a job's `callback_url`."""
    return SecretOut(secret=principal.webhook_secret)
