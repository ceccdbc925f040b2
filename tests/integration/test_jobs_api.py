"""The job API over real HTTP on real PostgreSQL: validation, idempotency, scoping."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.support.gateway import Gateway
from tests.support.payloads import job_body

PROBLEM = "application/problem+json"

INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("unknown model", job_body(model="kling-v2"), "validation_error"),
    ("no image", job_body(image_url=None), "exactly_one_image"),
    ("two images", job_body(image_urls=["https://a.example/x.png"]), "exactly_one_image"),
    (
        "image list of two",
        job_body(image_url=None, image_urls=["https://a/1.png", "https://a/2.png"]),
        "exactly_one_image",
    ),
    ("image url and upload", job_body(image_upload_id="upl_x"), "exactly_one_image"),
    ("no video", job_body(video_url=None), "exactly_one_video"),
    ("two videos", job_body(video_urls=["https://a.example/x.mp4"]), "exactly_one_video"),
    ("ftp image", job_body(image_url="ftp://a.example/x.png"), "invalid_image_url"),
    ("non-url video", job_body(video_url="motion.mp4"), "invalid_video_url"),
    ("prompt too long", job_body(prompt="x" * 2501), "prompt_too_long"),
    ("no quality", job_body(quality=None), "validation_error"),
    ("bad quality", job_body(quality="4k"), "validation_error"),
    ("no model_params", job_body(model_params=None), "validation_error"),
    ("no orientation", job_body(model_params={"keep_sound": True}), "validation_error"),
    (
        "bad orientation",
        job_body(model_params={"character_orientation": "side"}),
        "validation_error",
    ),
    (
        "keep_sound not bool",
        job_body(model_params={"character_orientation": "image", "keep_sound": "maybe"}),
        "validation_error",
    ),
    (
        "two elements",
        job_body(
            model_params={
                "character_orientation": "video",
                "element_list": [{"element_id": "a"}, {"element_id": "b"}],
            }
        ),
        "too_many_elements",
    ),
    (
        "element with image orientation",
        job_body(
            model_params={"character_orientation": "image", "element_list": [{"element_id": "a"}]}
        ),
        "element_list_requires_video_orientation",
    ),
    (
        "watermark not object",
        job_body(model_params={"character_orientation": "image", "watermark_info": True}),
        "validation_error",
    ),
    (
        "callback too long",
        job_body(callback_url="https://cb.example.com/" + "a" * 2030),
        "callback_url_too_long",
    ),
    ("callback not url", job_body(callback_url="not a url"), "callback_url_invalid"),
    (
        "callback private",
        job_body(callback_url="https://10.1.2.3/hook"),
        "callback_url_not_allowed",
    ),
    (
        "callback http public",
        job_body(callback_url="http://203.0.113.7/hook"),
        "callback_url_not_allowed",
    ),
    (
        "callback metadata service",
        job_body(callback_url="https://169.254.169.254/latest"),
        "callback_url_not_allowed",
    ),
    ("metadata too large", job_body(metadata={"blob": "x" * 4100}), "metadata_too_large"),
    ("metadata not object", job_body(metadata=["a"]), "validation_error"),
    ("unknown field", job_body(qualty="720p"), "validation_error"),
]


@pytest.mark.parametrize(("case", "body", "code"), INVALID, ids=[c[0] for c in INVALID])
async def test_invalid_create_is_422_and_stores_nothing(
    module_gateway: Gateway, case: str, body: dict[str, Any], code: str
) -> None:
    key = await module_gateway.new_client(f"validation {case}")
    async with module_gateway.http(key) as http:
        response = await http.post("/v1/jobs", json=body, headers={"Idempotency-Key": case})
        assert response.status_code == 422, response.text
        assert response.headers["content-type"].startswith(PROBLEM)
        problem = response.json()
        assert problem["code"] == code
        assert problem["status"] == 422
        assert problem["errors"]
        listed = await http.get("/v1/jobs")
        assert listed.json() == {"data": [], "next_cursor": None}


async def test_create_returns_202_with_location_and_the_job(module_gateway: Gateway) -> None:
    key = await module_gateway.new_client()
    body = job_body(
        prompt="dance",
        quality="1080p",
        metadata={"order": 7},
        model_params={
            "character_orientation": "video",
            "keep_sound": False,
            "element_list": [{"element_id": "el_1"}],
            "watermark_info": {"enabled": True},
        },
    )
    async with module_gateway.http(key) as http:
        response = await http.post("/v1/jobs", json=body)
        assert response.status_code == 202, response.text
        job = response.json()
        assert response.headers["location"] == f"/v1/jobs/{job['id']}"
        assert job["id"].startswith("job_")
        assert job["status"] in ("queued", "submitting", "submitted")
        assert job["model"] == "kling-v3-motion-control"
        assert job["metadata"] == {"order": 7}
        assert job["model_params"]["element_list"] == [{"element_id": "el_1"}]
        assert job["cost"]["currency"] == "USD"
        # 30 s is the longest output for orientation video, at 1080p $0.1512/s
        assert job["cost"]["estimated"] == "4.5360"
        fetched = await http.get(f"/v1/jobs/{job['id']}")
        assert fetched.status_code == 200
        assert fetched.json()["id"] == job["id"]


async def test_image_urls_list_form_is_accepted(module_gateway: Gateway) -> None:
    key = await module_gateway.new_client()
    body = job_body(
        image_url=None,
        video_url=None,
        image_urls=["https://203.0.113.20/a.png"],
        video_urls=["https://203.0.113.20/b.mp4"],
    )
    async with module_gateway.http(key) as http:
        response = await http.post("/v1/jobs", json=body)
    assert response.status_code == 202
    assert response.json()["image_url"] == "https://203.0.113.20/a.png"


async def test_missing_or_unknown_key_is_401(module_gateway: Gateway) -> None:
    async with module_gateway.http() as http:
        missing = await http.get("/v1/jobs")
        unknown = await http.get("/v1/jobs", headers={"Authorization": "Bearer mgw_nope"})
    assert missing.status_code == unknown.status_code == 401
    assert missing.headers["content-type"].startswith(PROBLEM)


async def test_idempotent_create(module_gateway: Gateway) -> None:
    key = await module_gateway.new_client()
    async with module_gateway.http(key) as http:
        headers = {"Idempotency-Key": "order-42"}
        first = await http.post("/v1/jobs", json=job_body(), headers=headers)
        again = await http.post("/v1/jobs", json=job_body(), headers=headers)
        other = await http.post("/v1/jobs", json=job_body(prompt="different"), headers=headers)
        listed = await http.get("/v1/jobs")
    assert first.status_code == 202
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["location"] == first.headers["location"]
    assert other.status_code == 409
    assert other.json()["code"] == "idempotency_key_reused"
    assert len(listed.json()["data"]) == 1


async def test_concurrent_identical_creates_make_one_job(module_gateway: Gateway) -> None:
    key = await module_gateway.new_client()
    async with module_gateway.http(key) as http:
        headers = {"Idempotency-Key": "race"}
        responses = await asyncio.gather(
            *(http.post("/v1/jobs", json=job_body(), headers=headers) for _ in range(8))
        )
        listed = await http.get("/v1/jobs")
    assert sorted(r.status_code for r in responses) == [200] * 7 + [202]
    assert len({r.json()["id"] for r in responses}) == 1
    assert len(listed.json()["data"]) == 1


async def test_same_key_from_two_clients_makes_two_jobs(module_gateway: Gateway) -> None:
    a, b = await module_gateway.new_client("a"), await module_gateway.new_client("b")
    headers = {"Idempotency-Key": "shared"}
    async with module_gateway.http(a) as ha, module_gateway.http(b) as hb:
        ja = await ha.post("/v1/jobs", json=job_body(), headers=headers)
        jb = await hb.post("/v1/jobs", json=job_body(), headers=headers)
    assert ja.status_code == jb.status_code == 202
    assert ja.json()["id"] != jb.json()["id"]


async def test_idempotency_key_too_long_is_422(module_gateway: Gateway) -> None:
    key = await module_gateway.new_client()
    async with module_gateway.http(key) as http:
        response = await http.post(
            "/v1/jobs", json=job_body(), headers={"Idempotency-Key": "k" * 256}
        )
        listed = await http.get("/v1/jobs")
    assert response.status_code == 422
    assert listed.json()["data"] == []


async def test_clients_cannot_see_each_others_jobs(module_gateway: Gateway) -> None:
    owner, other = (
        await module_gateway.new_client("owner"),
        await module_gateway.new_client("other"),
    )
    async with module_gateway.http(owner) as ho, module_gateway.http(other) as hx:
        job_id = (await ho.post("/v1/jobs", json=job_body())).json()["id"]
        for response in (
            await hx.get(f"/v1/jobs/{job_id}"),
            await hx.get(f"/v1/jobs/{job_id}/events"),
            await hx.post(f"/v1/jobs/{job_id}/cancel"),
        ):
            assert response.status_code == 404
            assert response.json()["code"] == "job_not_found"
        assert (await hx.get("/v1/jobs")).json()["data"] == []
        assert (await ho.get(f"/v1/jobs/{job_id}")).json()["status"] != "cancelled"


async def test_list_paginates_newest_first_and_filters(module_gateway: Gateway) -> None:
    key = await module_gateway.new_client()
    async with module_gateway.http(key) as http:
        ids = [(await http.post("/v1/jobs", json=job_body())).json()["id"] for _ in range(5)]
        seen: list[str] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
            page = (await http.get("/v1/jobs", params=params)).json()
            seen += [j["id"] for j in page["data"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == list(reversed(ids))
        bad_limit = await http.get("/v1/jobs", params={"limit": 101})
        bad_cursor = await http.get("/v1/jobs", params={"cursor": "nonsense"})
        bad_status = await http.get("/v1/jobs", params={"status": "done"})
        filtered = await http.get("/v1/jobs", params={"status": "expired"})
    assert bad_limit.status_code == bad_cursor.status_code == bad_status.status_code == 422
    assert filtered.json()["data"] == []


async def test_unknown_job_is_404_problem(module_gateway: Gateway) -> None:
    key = await module_gateway.new_client()
    async with module_gateway.http(key) as http:
        response = await http.get("/v1/jobs/job_doesnotexist")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_ops_endpoints(module_gateway: Gateway) -> None:
    async with httpx.AsyncClient(base_url=module_gateway.base_url) as http:
        assert (await http.get("/healthz")).status_code == 200
        ready = await http.get("/readyz")
        metrics = await http.get("/metrics")
        docs = await http.get("/docs")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["database"] == "ok"
    assert body["migrations"] == "ok"
    assert body["callback_mode"] == "webhook"
    assert "simulator" in body["providers"]
    assert "mgw_jobs" in metrics.text
    assert docs.status_code == 200
