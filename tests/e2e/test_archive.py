"""Results outlive the upstream link: the archiver end to end, on both storage backends.

Every test runs once with files under a local directory and once against a real S3
server on loopback (moto), through a real gateway, simulator and subscriber over HTTP.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from app.jobs.archival import archive_key
from app.metrics import REGISTRY
from app.simulator.media import render_result_mp4
from app.workers.janitor import purge_expired_media
from tests.conftest import Stack, StackFactory
from tests.support.flows import create_job, wait_for_status
from tests.support.media import make_png
from tests.support.payloads import job_body
from tests.support.receiver import Receiver, running_subscriber
from tests.support.results import running_result_host
from tests.support.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server
from tests.support.simulator import wait_until

FAST_ARCHIVE = {"archive_retry_base_s": 0.2, "archive_retry_max_s": 0.5}


async def subscribe(http: httpx.AsyncClient, url: str) -> None:
    response = await http.post("/v1/webhook-endpoints", json={"url": url})
    assert response.status_code == 201, response.text


def data_of(received: Receiver, index: int = 0) -> dict[str, Any]:
    payload = json.loads(received.received[index].body)
    assert payload["type"] == "job.succeeded"
    data: dict[str, Any] = payload["data"]
    return data


async def upstream_video(stack: Stack, duration_s: float = 5.0) -> bytes:
    """The bytes the simulator serves as every result of that length."""
    return await stack.simulator.simulator._video(duration_s)


async def test_the_archived_link_serves_the_video_after_the_upstream_link_died(
    make_stack: StackFactory, storage: dict[str, object]
) -> None:
    async with (
        make_stack(sim={"result_ttl_s": 3.0}, **storage, **FAST_ARCHIVE) as stack,
        running_subscriber() as sub,
    ):
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            await subscribe(http, sub.url)
            job_id = await create_job(http, job_body())
            await sub.wait_for(1)
            job = await wait_for_status(http, job_id)
            expected = await upstream_video(stack)

            async with httpx.AsyncClient(timeout=10) as anyone:

                async def upstream_gone() -> bool | None:
                    answer = await anyone.get(job["result"]["video_url"])
                    return True if answer.status_code == 404 else None

                await wait_until(upstream_gone, timeout_s=15, interval_s=0.2)
                archived_url = job["result"]["archived_url"]
                whole = await anyone.get(archived_url)
                part = await anyone.get(archived_url, headers={"Range": "bytes=100-1099"})
                tail = await anyone.get(archived_url, headers={"Range": "bytes=-10"})
    event = data_of(sub)
    assert event["id"] == job_id
    assert event["result"]["archive_status"] == "archived"
    assert event["result"]["archived_url"] == job["result"]["archived_url"]
    assert event["result"]["sha256"] == hashlib.sha256(expected).hexdigest()
    assert event["result"]["size_bytes"] == len(expected)
    assert event["result"]["duration_mismatch"] is False
    assert archived_url.startswith(stack.gateway.base_url + "/media/arc_")
    assert whole.status_code == 200
    assert hashlib.sha256(whole.content).hexdigest() == job["result"]["sha256"]
    assert whole.content == expected
    assert whole.headers["content-type"] == "video/mp4"
    assert (part.status_code, part.content) == (206, expected[100:1100])
    assert part.headers["content-range"] == f"bytes 100-1099/{len(expected)}"
    assert (tail.status_code, tail.content) == (206, expected[-10:])
    assert len(sub.received) == 1  # one terminal event, sent once, after the archive


async def test_a_link_dead_before_archival_fails_it_and_the_event_still_goes_out(
    make_stack: StackFactory, storage: dict[str, object]
) -> None:
    async with (
        make_stack(sim={"result_ttl_s": 0.0}, **storage, **FAST_ARCHIVE) as stack,
        running_subscriber() as sub,
    ):
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            await subscribe(http, sub.url)
            job_id = await create_job(http, job_body())
            await sub.wait_for(1)
            job = await wait_for_status(http, job_id)
    event = data_of(sub)
    assert job["status"] == event["status"] == "succeeded"
    assert event["result"]["archive_status"] == "failed"
    assert event["result"]["archive_error"] == "result_link_expired"
    assert event["result"]["archived_url"] is None
    assert event["result"]["video_url"] == job["result"]["video_url"]
    assert job["result"]["archive_status"] == "failed"


async def test_a_result_that_is_not_an_mp4_is_refused_before_it_is_stored(
    make_stack: StackFactory, storage: dict[str, object], tmp_path: Path
) -> None:
    page = tmp_path / "not-a-video.html"
    page.write_bytes(b"<html><body>" + b"x" * 100_000 + b"</body></html>")
    async with (
        running_result_host(page) as host,
        make_stack(sim={"public_base_url": host.base_url}, **storage, **FAST_ARCHIVE) as stack,
        running_subscriber() as sub,
    ):
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            await subscribe(http, sub.url)
            job_id = await create_job(http, job_body())
            await sub.wait_for(1)
            job = await wait_for_status(http, job_id)
        stored = [info async for info in stack.gateway.runtime.media.storage.list("arc_")]
    assert job["result"]["archive_status"] == "failed"
    assert job["result"]["archive_error"] == "result_not_mp4"
    assert data_of(sub)["result"]["archive_status"] == "failed"
    assert host.requests == 1  # a permanent refusal: not retried
    assert stored == []


async def test_a_transient_5xx_is_retried_then_archived(
    make_stack: StackFactory, storage: dict[str, object]
) -> None:
    async with (
        make_stack(**storage, **FAST_ARCHIVE) as stack,
        running_subscriber() as sub,
        httpx.AsyncClient(base_url=stack.simulator.base_url) as sim_admin,
    ):
        armed = await sim_admin.post("/_sim/faults", json={"result": {"status": 503, "count": 2}})
        assert armed.status_code < 300, armed.text
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            await subscribe(http, sub.url)
            job_id = await create_job(http, job_body())
            await sub.wait_for(1)
            job = await wait_for_status(http, job_id)
        left = (await sim_admin.get("/_sim/faults")).json()
        expected = await upstream_video(stack)
        async with httpx.AsyncClient() as anyone:
            archived = await anyone.get(job["result"]["archived_url"])
    assert left == {}  # both 503s were served to the archiver
    assert job["result"]["archive_status"] == "archived"
    assert job["result"]["archive_error"] is None
    assert data_of(sub)["result"]["archived_url"] == job["result"]["archived_url"]
    assert archived.content == expected


async def test_with_archival_off_the_event_goes_out_at_once(
    make_stack: StackFactory, storage: dict[str, object]
) -> None:
    async with (
        make_stack(**storage, archive_results=False) as stack,
        running_subscriber() as sub,
    ):
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            await subscribe(http, sub.url)
            job_id = await create_job(http, job_body())
            await sub.wait_for(1)
            job = await wait_for_status(http, job_id)
        stored = [info async for info in stack.gateway.runtime.media.storage.list("arc_")]
    event = data_of(sub)
    assert event["result"]["archive_status"] == job["result"]["archive_status"] == "off"
    assert event["result"]["archived_url"] is None
    assert event["result"]["video_url"]
    assert stored == []


async def test_uploads_are_stored_served_and_expire_on_the_backend(
    make_stack: StackFactory, storage: dict[str, object], tmp_path: Path
) -> None:
    png = make_png(tmp_path / "a.png", 400, 400).read_bytes()
    async with make_stack(**storage, upload_ttl_s=60, archive_retention_s=60) as stack:
        rt = stack.gateway.runtime
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            response = await http.post("/v1/uploads", files={"file": ("a.png", png, "image/png")})
            assert response.status_code == 201, response.text
            upload = response.json()
            job_id = await create_job(http, job_body())
            job = await wait_for_status(http, job_id)
            served = await http.get(upload["url"])
            [upload_object] = [info async for info in rt.media.storage.list(upload["id"])]
            assert await rt.media.storage.size(archive_key(job_id)) == job["result"]["size_bytes"]

            assert await purge_expired_media(rt) == (0, 0)  # nothing is due yet
            later = past_retention(job)
            assert await purge_expired_media(rt, now=later) == (1, 1)
            after = (await http.get(f"/v1/jobs/{job_id}")).json()
            gone = await http.get(upload["url"])
            remaining = [info async for info in rt.media.storage.list("")]
    assert (served.status_code, served.content) == (200, png)
    assert upload_object.size_bytes == len(png) == upload["size_bytes"]
    assert after["result"]["archived_url"] is None
    assert after["result"]["sha256"] == job["result"]["sha256"]
    assert gone.status_code == 404
    assert remaining == []


def past_retention(job: dict[str, Any]) -> datetime:
    """A moment past both retentions (60 s), without waiting for it."""
    return datetime.fromisoformat(job["completed_at"]) + timedelta(seconds=120)


async def test_a_video_shorter_than_reported_is_flagged(
    make_stack: StackFactory, storage: dict[str, object], tmp_path: Path
) -> None:
    clip = tmp_path / "five-seconds.mp4"
    clip.write_bytes(await asyncio.to_thread(render_result_mp4, 5.0))
    sample = ("mgw_archive_duration_mismatches_total", {"provider": "simulator"})
    before = REGISTRY.get_sample_value(*sample) or 0.0
    async with (
        running_result_host(clip) as host,
        make_stack(sim={"public_base_url": host.base_url}, **storage, **FAST_ARCHIVE) as stack,
    ):
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            job_id = await create_job(http, job_body(prompt="#sim:duration=8"))
            job = await wait_for_status(http, job_id)
    assert job["result"]["archive_status"] == "archived"
    assert job["result"]["duration_s"] == 8.0
    assert job["cost"]["billed_seconds"] == 8
    assert job["result"]["duration_mismatch"] is True
    assert (REGISTRY.get_sample_value(*sample) or 0.0) == before + 1


async def test_presigned_links_serve_straight_from_s3(
    make_stack: StackFactory, s3_server: S3Server
) -> None:
    storage = {
        "storage_backend": "s3",
        "s3_bucket": s3_server.create_bucket(),
        "s3_endpoint_url": s3_server.endpoint_url,
        "s3_region": REGION,
        "s3_access_key_id": ACCESS_KEY,
        "s3_secret_access_key": SECRET_KEY,
        "s3_presigned_links": True,
        "archive_retention_s": 3600.0,
    }
    async with make_stack(**storage, **FAST_ARCHIVE) as stack:
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            job = await wait_for_status(http, await create_job(http, job_body()))
        expected = await upstream_video(stack)
        async with httpx.AsyncClient() as anyone:
            whole = await anyone.get(job["result"]["archived_url"])
            part = await anyone.get(job["result"]["archived_url"], headers={"Range": "bytes=0-99"})
    assert job["result"]["archived_url"].startswith(s3_server.endpoint_url + "/")
    assert "X-Amz-Signature=" in job["result"]["archived_url"]
    assert whole.content == expected
    assert (part.status_code, part.content) == (206, expected[:100])
