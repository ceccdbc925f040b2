"""The send step against a real receiver over loopback: what goes on the wire, and what
each kind of answer becomes. No database: a send needs only its `Outbound`."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI, Response
from standardwebhooks.webhooks import Webhook

from app.auth.service import new_webhook_secret
from app.delivery.send import MAX_LOGGED_BODY_BYTES, USER_AGENT, Outbound, parse_retry_after_s, send
from app.net import IPAddress, UrlPolicy, make_safe_client
from app.net.addresses import parse_ip
from app.net.errors import PUBLIC_REASONS
from tests.support.gateway import free_port
from tests.support.receiver import Answer, running_subscriber
from tests.support.servers import start_server

BODY = json.dumps({"id": "evt_1", "type": "job.succeeded", "data": {}}, separators=(",", ":"))


def outbound(url: str, secrets: list[str], attempt: int = 1) -> Outbound:
    return Outbound(
        delivery_id="dlv_1",
        event_id="evt_1",
        event_created_at=datetime.now(UTC),
        endpoint_id="we_1",
        url=url,
        body=BODY,
        secrets=secrets,
        attempt=attempt,
    )


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """Like the gateway's webhook client in what matters here: it never follows redirects."""
    async with httpx.AsyncClient(timeout=5.0, follow_redirects=False) as http:
        yield http


async def test_a_send_posts_the_body_signed_with_the_event_id(client: httpx.AsyncClient) -> None:
    secret = new_webhook_secret()
    async with running_subscriber() as sub:
        outcome = await send(client, outbound(sub.url, [secret], attempt=3))
    [received] = sub.received
    assert received.body == BODY.encode()
    assert received.headers["webhook-id"] == "evt_1"
    assert received.headers["webhook-attempt"] == "3"
    assert received.headers["user-agent"] == USER_AGENT
    assert received.headers["content-type"] == "application/json"
    assert Webhook(secret).verify(received.body, received.headers)["id"] == "evt_1"
    assert (outcome.status_code, outcome.error, outcome.response_body) == (200, None, "ok")
    assert outcome.ok
    assert outcome.duration_ms >= 0


async def test_during_a_rotation_both_secrets_sign(client: httpx.AsyncClient) -> None:
    new, old = new_webhook_secret(), new_webhook_secret()
    async with running_subscriber() as sub:
        await send(client, outbound(sub.url, [new, old]))
    [received] = sub.received
    assert len(received.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(new).verify(received.body, received.headers)["id"] == "evt_1"
    assert Webhook(old).verify(received.body, received.headers)["id"] == "evt_1"


async def test_a_redirect_is_an_answer_not_followed(client: httpx.AsyncClient) -> None:
    async with running_subscriber() as target:
        redirect = Answer(302, headers={"Location": target.url})
        async with running_subscriber(default=redirect) as sub:
            outcome = await send(client, outbound(sub.url, [new_webhook_secret()]))
    assert outcome.status_code == 302
    assert not outcome.ok
    assert len(sub.received) == 1
    assert target.received == []


async def test_retry_after_in_seconds_is_read(client: httpx.AsyncClient) -> None:
    busy = Answer(429, headers={"Retry-After": "120"})
    async with running_subscriber(default=busy) as sub:
        outcome = await send(client, outbound(sub.url, [new_webhook_secret()]))
    assert (outcome.status_code, outcome.retry_after_s) == (429, 120.0)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [(None, None), ("7", 7.0), ("1.5", 1.5), ("-3", 0.0), ("Wed, 21 Oct 2015 07:28:00 GMT", None)],
)
def test_retry_after_values(header: str | None, seconds: float | None) -> None:
    assert parse_retry_after_s(header) == seconds


async def test_a_refused_connection_is_an_outcome(client: httpx.AsyncClient) -> None:
    outcome = await send(
        client, outbound(f"http://127.0.0.1:{free_port()}/hook", [new_webhook_secret()])
    )
    assert outcome.status_code is None
    assert outcome.error is not None
    assert outcome.error.startswith("ConnectError")
    assert not outcome.ok


async def test_a_receiver_slower_than_the_timeout_is_timed_out() -> None:
    async with (
        httpx.AsyncClient(timeout=0.2) as impatient,
        running_subscriber(default=Answer(200, delay_s=1.0)) as sub,
    ):
        outcome = await send(impatient, outbound(sub.url, [new_webhook_secret()]))
    assert (outcome.status_code, outcome.error) == (None, "timed out")


async def test_only_the_head_of_a_large_answer_is_kept(client: httpx.AsyncClient) -> None:
    app = FastAPI()

    @app.post("/hook")
    async def hook() -> Response:
        """Answer far more than the log keeps."""
        return Response(status_code=500, content=b"x" * (MAX_LOGGED_BODY_BYTES * 50))

    server = await start_server(app, "127.0.0.1", 0)
    try:
        ob = outbound(f"{server.base_url}/hook", [new_webhook_secret()])
        outcome = await send(client, ob)
    finally:
        await server.stop()
    assert outcome.status_code == 500
    assert outcome.response_body == "x" * MAX_LOGGED_BODY_BYTES


async def test_a_url_policy_refusal_logs_no_specifics_for_the_client(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The delivery log is the client's: it says what kind of refusal, never where a name
    pointed (a scanning oracle); the server log keeps the specifics."""

    async def internal(host: str, port: int) -> list[IPAddress]:
        return [parse_ip("10.1.2.3")]

    strict = make_safe_client(
        UrlPolicy.for_environment("prod"), timeout_s=1.0, user_agent="t", resolver=internal
    )
    async with strict:
        with caplog.at_level(logging.INFO, logger="app.delivery.send"):
            outcome = await send(
                strict, outbound("https://hooks.example.com/h", [new_webhook_secret()])
            )
    assert outcome.status_code is None
    assert outcome.error == f"refused by the URL policy: {PUBLIC_REASONS['url_private_address']}"
    assert "10.1.2.3" in caplog.text
