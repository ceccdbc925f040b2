"""Hostile input over real HTTP: every one is a 4xx problem+json with a `code`, nothing is
stored, and the gateway keeps answering /healthz while it is sent."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.guard import MAX_BODY_BYTES
from app.serving import MAX_HEADER_BYTES
from tests.conftest import StackFactory
from tests.support.gateway import Gateway
from tests.support.payloads import job_body

PROBLEM = "application/problem+json"
TABLES = (
    "jobs",
    "job_events",
    "webhook_endpoints",
    "upstream_callbacks",
    "uploads",
    "events",
    "deliveries",
)
CALLBACK = "/v1/upstream/simulator/callbacks/job_0000000000000000000000000a"


async def row_counts(gateway: Gateway) -> dict[str, int]:
    counts: dict[str, int] = {}
    async with gateway.runtime.session_factory() as session:
        for table in TABLES:
            query = text(f"SELECT count(*) FROM {table}")  # noqa: S608 - our own constants
            counts[table] = int((await session.execute(query)).scalar_one())
    return counts


def raw_json(body: dict[str, Any], **replace: str) -> bytes:
    """`body` as JSON with placeholders swapped for tokens json.dumps would never write."""
    encoded = json.dumps(body)
    for placeholder, token in replace.items():
        encoded = encoded.replace(f'"{placeholder}"', token)
    return encoded.encode()


# (name, method, path, params, body bytes, expected status, expected code, expected loc)
Case = tuple[str, str, str, dict[str, str], bytes | None, int, str, list[Any] | None]


def _job(**fields: Any) -> bytes:
    return json.dumps(job_body(**fields)).encode()


HOSTILE_URLS = [
    "https://0177.0.0.1/x.png",  # octal: httpx refuses it, libc would read 127.0.0.1
    "https://１２７.0.0.1/x.png",  # fullwidth digits
    "https://203.0.113.10/x.png\n",  # a trailing newline
    "https://127.000.000.001/x.png",
    "https://xn--/x.png",  # an IDNA error, which httpx does not wrap as InvalidURL
    " https://203.0.113.10/x.png",
]

CASES: list[Case] = [
    *[
        (f"image_url {url!r}", "POST", "/v1/jobs", {}, _job(image_url=url), 422,
         "invalid_image_url", ["body", "image_url"])
        for url in HOSTILE_URLS
    ],
    ("video_urls", "POST", "/v1/jobs", {},
     _job(video_url=None, video_urls=["https://0177.0.0.1/m.mp4"]), 422, "invalid_video_url",
     ["body", "video_urls"]),
    ("callback_url idna", "POST", "/v1/jobs", {}, _job(callback_url="https://xn--/hook"), 422,
     "callback_url_invalid", ["body", "callback_url"]),
    ("NUL in prompt", "POST", "/v1/jobs", {}, _job(prompt="a\x00b"), 422,
     "invalid_characters", ["body", "prompt"]),
    ("surrogate in prompt", "POST", "/v1/jobs", {}, b'{"prompt": "\\ud800", "quality": "720p"}',
     422, "invalid_characters", ["body", "prompt"]),
    ("NUL in image_upload_id", "POST", "/v1/jobs", {},
     _job(image_url=None, image_upload_id="upl_\x00"), 422, "invalid_characters",
     ["body", "image_upload_id"]),
    ("NUL in element_id", "POST", "/v1/jobs", {},
     _job(model_params={"character_orientation": "video", "element_list": [{"element_id": "\0"}]}),
     422, "invalid_characters", ["body", "model_params", "element_list", 0, "element_id"]),
    ("NUL in a metadata key", "POST", "/v1/jobs", {}, _job(metadata={"k\x00": 1}), 422,
     "invalid_characters", ["body", "metadata"]),
    ("NUL in a metadata value", "POST", "/v1/jobs", {}, _job(metadata={"k": ["ok", "\x00"]}), 422,
     "invalid_characters", ["body", "metadata", "k", 1]),
    *[
        (f"{token} in metadata", "POST", "/v1/jobs", {},
         raw_json(job_body(metadata={"x": "NUMBER"}), NUMBER=token), 422, "non_finite_number",
         ["body", "metadata", "x"])
        for token in ("NaN", "Infinity", "-Infinity", "1e999")
    ],
    ("NaN at the top", "POST", "/v1/jobs", {}, b'{"deadline_s": NaN}', 422, "non_finite_number",
     ["body", "deadline_s"]),
    ("not JSON", "POST", "/v1/jobs", {}, b'{"quality": ', 422, "invalid_json", ["body"]),
    ("a 5000-digit number", "POST", "/v1/jobs", {}, b'{"metadata": {"n": ' + b"9" * 5000 + b"}}",
     422, "invalid_json", ["body"]),
    ("nested too deeply", "POST", "/v1/jobs", {}, b"[" * 100_000 + b"]" * 100_000, 422,
     "invalid_json", ["body"]),
    ("NUL in a job id", "GET", "/v1/jobs/job_%00", {}, None, 404, "not_found", None),
    ("NUL in a cancelled id", "POST", "/v1/jobs/%00/cancel", {}, None, 404, "not_found", None),
    ("an id that cannot be one", "GET", "/v1/jobs/%C3%BF", {}, None, 404, "job_not_found", None),
    ("NUL in a cursor", "GET", "/v1/jobs", {"cursor": "\x00"}, None, 422, "invalid_characters",
     ["query", "cursor"]),
    ("garbage cursor", "GET", "/v1/jobs", {"cursor": "zzz"}, None, 422, "invalid_cursor",
     ["query", "cursor"]),
    ("NUL in an endpoint description", "POST", "/v1/webhook-endpoints", {},
     b'{"url": "http://127.0.0.1:9/h", "description": "\\u0000"}', 422, "invalid_characters",
     ["body", "description"]),
    ("idna endpoint url", "POST", "/v1/webhook-endpoints", {}, b'{"url": "https://xn--/h"}', 422,
     "webhook_url_not_allowed", ["body", "url"]),
    ("NUL in an endpoint id", "GET", "/v1/webhook-endpoints/we_%00", {}, None, 404, "not_found",
     None),
    ("NUL in a delivery id", "POST", "/v1/deliveries/%00/redeliver", {}, None, 404, "not_found",
     None),
    ("non-ASCII callback token", "POST", CALLBACK, {"token": "é" * 64}, b"{}", 401,
     "invalid_callback_token", None),
    ("NUL in a callback token", "POST", CALLBACK, {"token": "\x00"}, b"{}", 422,
     "invalid_characters", ["query", "token"]),
    ("NUL in a callback body", "POST", CALLBACK, {"token": "t"}, b'{"status": "\\u0000"}', 422,
     "invalid_characters", ["body", "status"]),
    ("a trailing slash", "GET", "/v1/jobs/", {}, None, 404, "not_found", None),
    ("NUL in a media key", "GET", "/media/a%00b", {"expires": "1", "sig": "x"}, None, 404,
     "not_found", None),
]  # fmt: skip


@pytest.fixture(scope="module")
async def client_key(module_gateway: Gateway) -> str:
    return (await module_gateway.new_client("hostile")).api_key


@contextlib.asynccontextmanager
async def http(gateway: Gateway, key: str) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=gateway.base_url, headers=headers, timeout=10) as c:
        yield c


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM, response.headers
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["status"] == status
    return body


@pytest.mark.parametrize("case", CASES, ids=[case[0] for case in CASES])
async def test_hostile_input_is_a_4xx_and_stores_nothing(
    module_gateway: Gateway, client_key: str, case: Case
) -> None:
    _, method, path, params, body, status, code, loc = case
    before = await row_counts(module_gateway)
    async with http(module_gateway, client_key) as client:
        response = await client.request(
            method,
            path,
            params=params,
            content=body,
            headers={"Content-Type": "application/json"} if body is not None else {},
        )
        health = await client.get("/healthz")
    problem = assert_problem(response, status, code)
    if loc is not None:
        assert problem["errors"][0]["loc"] == loc, problem
        assert problem["errors"][0]["msg"]
    assert "location" not in response.headers
    assert health.status_code == 200
    assert await row_counts(module_gateway) == before


async def test_a_declared_oversized_body_is_refused_before_it_is_read(
    module_gateway: Gateway,
) -> None:
    """50 MB announced, not a byte sent: the 413 comes anyway, so nothing waited for it."""
    host, port = module_gateway.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(
            f"POST {CALLBACK}?token=x HTTP/1.1\r\nHost: {host}\r\n"
            "Content-Type: application/json\r\nContent-Length: 50000000\r\n\r\n".encode()
        )
        await writer.drain()
        response = _parse_response(await reader.read())
    finally:
        writer.close()
    body = assert_problem(response, 413, "content_too_large")
    assert body["limit"] == MAX_BODY_BYTES
    assert response.headers["connection"] == "close"


def _parse_response(raw: bytes) -> httpx.Response:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = [(name, value) for name, _, value in (line.partition(": ") for line in lines)]
    return httpx.Response(int(status_line.split()[1]), headers=headers, content=body)


@pytest.mark.parametrize("path", [CALLBACK + "?token=x", "/v1/jobs", "/v1/webhook-endpoints"])
async def test_a_streamed_body_is_cut_at_the_limit(
    module_gateway: Gateway, client_key: str, path: str
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(3 * MAX_BODY_BYTES // 65536):
            yield b" " * 65536

    before = await row_counts(module_gateway)
    async with http(module_gateway, client_key) as client:
        response = await client.post(
            path, content=chunks(), headers={"Content-Type": "application/json"}
        )
        health = await client.get("/healthz")
    assert "content-length" not in response.request.headers  # chunked: counted, not declared
    assert_problem(response, 413, "content_too_large")
    assert health.status_code == 200
    assert await row_counts(module_gateway) == before


async def test_an_oversized_request_head_is_431(module_gateway: Gateway) -> None:
    host, port = module_gateway.base_url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\nX-Big: ".encode())
        with contextlib.suppress(ConnectionError):
            for _ in range(2 * MAX_HEADER_BYTES // 4096):
                writer.write(b"a" * 4096)
                await writer.drain()
        response = _parse_response(await reader.read())
    finally:
        writer.close()
    assert_problem(response, 431, "request_header_fields_too_large")
    async with httpx.AsyncClient(base_url=module_gateway.base_url) as client:
        assert (await client.get("/healthz", headers={"X-Fine": "a" * 8000})).status_code == 200


async def test_hostile_input_all_at_once_leaves_healthz_answering(
    module_gateway: Gateway, client_key: str
) -> None:
    async def hostile(case: Case) -> int:
        _, method, path, params, body, *_ = case
        async with http(module_gateway, client_key) as client:
            response = await client.request(
                method, path, params=params, content=body,
                headers={"Content-Type": "application/json"},
            )  # fmt: skip
            return response.status_code

    async def healthz() -> list[int]:
        async with httpx.AsyncClient(base_url=module_gateway.base_url) as client:
            return [(await client.get("/healthz")).status_code for _ in range(20)]

    statuses, health = await asyncio.gather(asyncio.gather(*(hostile(c) for c in CASES)), healthz())
    assert all(400 <= s < 500 for s in statuses), statuses
    assert health == [200] * 20


async def test_options_names_every_method_of_the_path(module_gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=module_gateway.base_url) as client:
        jobs = await client.options("/v1/jobs")
        endpoint = await client.request("PUT", "/v1/webhook-endpoints/we_x")
    assert_problem(jobs, 405, "method_not_allowed")
    assert jobs.headers["allow"] == "GET, POST"
    assert endpoint.headers["allow"] == "DELETE, GET, PATCH"


async def test_every_401_names_the_bearer_scheme(module_gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=module_gateway.base_url) as client:
        missing = await client.get("/v1/jobs")
        unknown = await client.get("/v1/jobs", headers={"Authorization": "Bearer mgw_nope"})
        callback = await client.post(CALLBACK, params={"token": "0" * 64}, json={})
    for response in (missing, unknown, callback):
        assert response.status_code == 401
        assert response.headers["www-authenticate"] == "Bearer"


@contextlib.contextmanager
def captured(logger: str, level: int = logging.INFO) -> Iterator[list[logging.LogRecord]]:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    handler = Keep(level)
    target = logging.getLogger(logger)
    previous = target.level
    target.addHandler(handler)
    target.setLevel(level)
    try:
        yield records
    finally:
        target.removeHandler(handler)
        target.setLevel(previous)


async def test_a_loopback_callback_url_is_allowed_with_a_warning(
    module_gateway: Gateway, client_key: str
) -> None:
    async with http(module_gateway, client_key) as client:
        with captured("app.jobs.service", logging.WARNING) as records:
            response = await client.post(
                "/v1/jobs", json=job_body(callback_url="http://127.0.0.1:9/hook")
            )
    assert response.status_code == 202, response.text
    assert any("loopback" in r.getMessage() for r in records), records


async def test_refusals_name_the_code_and_keep_the_specifics_in_the_log(
    module_gateway: Gateway, client_key: str
) -> None:
    async with http(module_gateway, client_key) as client:
        with captured("app") as records:
            job = await client.post("/v1/jobs", json=job_body(callback_url="https://10.1.2.3/h"))
            endpoint = await client.post(
                "/v1/webhook-endpoints", json={"url": "https://10.1.2.3/h"}
            )
    for response, code in (
        (job, "callback_url_not_allowed"),
        (endpoint, "webhook_url_not_allowed"),
    ):
        problem = assert_problem(response, 422, code)
        assert problem["reason_code"] == "url_private_address"
        assert "10.1.2.3" not in response.text
        assert "private" not in problem["detail"]
    logged = " ".join(r.getMessage() for r in records)
    assert "10.1.2.3 is a forbidden address" in logged


async def test_a_strict_media_check_does_not_say_how_the_fetch_failed(
    make_stack: StackFactory,
) -> None:
    closed = "https://127.0.0.1:9"  # nothing listens: the connection is refused
    async with make_stack(media_url_probe="strict") as stack:
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as client:
            response = await client.post(
                "/v1/jobs", json=job_body(image_url=f"{closed}/x.png", video_url=f"{closed}/m.mp4")
            )
    problem = assert_problem(response, 422, "media_unreachable")
    kind = problem["errors"][0]["loc"][1].removesuffix("_url")
    assert problem["detail"] == f"could not fetch the {kind} to check it"
