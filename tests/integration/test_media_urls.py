"""Media given by URL is fetched over loopback and checked before a job is accepted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI, Response

from tests.conftest import StackFactory
from tests.support.gateway import Gateway, free_port, gateway_settings, running_gateway
from tests.support.media import make_mp4, make_png
from tests.support.payloads import job_body
from tests.support.servers import start_server
from tests.support.simulator import RunningSimulator, wait_until

HANGING: list[float] = []  # one entry per request the hanging host has accepted


@pytest.fixture(scope="module")
async def module_gateway(
    database_url: str, module_simulator: RunningSimulator
) -> AsyncIterator[Gateway]:
    """The suite's gateways do not probe (their payloads' media cannot be fetched);
    this module's does, in the default mode."""
    settings = gateway_settings(
        database_url,
        module_simulator.base_url,
        public_base_url=f"http://127.0.0.1:{free_port()}",
        media_url_probe="best_effort",
        media_probe_timeout_s=1.5,
        role="api",  # no workers: every connection checked out belongs to a request
    )
    async with running_gateway(settings) as gw:
        yield gw


@pytest.fixture(scope="module")
async def media_site(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[str]:
    """A plain web server holding a few files, as a client's CDN would."""
    folder = tmp_path_factory.mktemp("site")
    make_png(folder / "ok.png", 400, 600)
    make_png(folder / "tiny.png", 120, 120)
    make_mp4(folder / "ok.mp4", 340, 340, 4.0, fps=5)
    make_mp4(folder / "long.mp4", 340, 340, 12.0, fps=5)
    (folder / "page.png").write_text("<html>not an image</html>")
    app = FastAPI()

    @app.get("/busy.png")
    async def busy() -> Response:
        """A host that is up but overloaded: a transient answer."""
        return Response(status_code=503)

    @app.get("/hang.png")
    async def hang() -> Response:
        """A host that accepts and never answers (within any probe budget)."""
        HANGING.append(asyncio.get_running_loop().time())
        await asyncio.sleep(3600)
        return Response(status_code=204)

    @app.get("/{name}")
    async def serve(name: str) -> Response:
        """One file, or 404."""
        path = folder / Path(name).name
        if not path.exists():
            return Response(status_code=404)
        return Response(path.read_bytes(), media_type="application/octet-stream")

    server = await start_server(app)
    yield server.base_url
    await server.stop()


CASES = [
    ("tiny.png", "ok.mp4", "image", 422, "image_too_small"),
    ("page.png", "ok.mp4", "image", 422, "image_format_unsupported"),
    ("ok.png", "long.mp4", "image", 422, "video_too_long"),
    ("ok.png", "long.mp4", "video", 202, None),
    ("ok.png", "ok.mp4", "image", 202, None),
    # Definite answers are a 422 in every mode: the provider would refuse them too.
    ("missing.png", "ok.mp4", "image", 422, "media_url_refused"),
    ("https://169.254.169.254/latest/meta-data", "ok.mp4", "image", 422, "media_url_refused"),
    # A transient one is left to the provider in best effort.
    ("busy.png", "ok.mp4", "image", 202, None),
]


@pytest.mark.parametrize(("image", "video", "orientation", "status", "code"), CASES)
async def test_url_media_is_checked_against_the_model_limits(
    module_gateway: Gateway,
    media_site: str,
    image: str,
    video: str,
    orientation: str,
    status: int,
    code: str | None,
) -> None:
    key = await module_gateway.new_client()
    body = job_body(
        image_url=image if "://" in image else f"{media_site}/{image}",
        video_url=f"{media_site}/{video}",
        model_params={"character_orientation": orientation},
    )
    async with module_gateway.http(key) as http:
        response = await http.post("/v1/jobs", json=body)
        listed = (await http.get("/v1/jobs")).json()["data"]
    assert response.status_code == status, response.text
    if code is not None:
        assert response.json()["code"] == code
        assert listed == []
    elif video == "ok.mp4" and image == "ok.png":
        # estimated from the probed 4 s, not the 10 s the orientation allows
        assert response.json()["cost"]["estimated"] == "0.4536"  # 4 s × $0.1134


async def test_strict_mode_refuses_what_it_cannot_fetch(
    make_stack: StackFactory, media_site: str
) -> None:
    async with make_stack(role="api", media_url_probe="strict") as stack:
        key = await stack.gateway.new_client()
        async with stack.gateway.http(key) as http:
            body = job_body(image_url=f"{media_site}/busy.png", video_url=f"{media_site}/ok.mp4")
            response = await http.post("/v1/jobs", json=body)
    assert response.status_code == 422
    assert response.json()["code"] == "media_unreachable"  # transient, but strict


async def test_a_media_host_that_never_answers_holds_no_database_connection(
    module_gateway: Gateway, media_site: str
) -> None:
    """Creates stalled on a probe (more of them than the pool has connections) hold none,
    so every other request is served meanwhile; each stalled create costs its probe budget
    and then goes ahead (best effort: a timeout is transient)."""
    key = await module_gateway.new_client()
    pool = module_gateway.runtime.engine.sync_engine.pool
    body = job_body(image_url=f"{media_site}/hang.png", video_url=f"{media_site}/ok.mp4")
    async with module_gateway.http(key) as http:
        HANGING.clear()
        stalled = [asyncio.create_task(http.post("/v1/jobs", json=body)) for _ in range(25)]
        await wait_until(_all_hanging, timeout_s=30.0)  # every create is inside its probe
        held = pool.checkedout()  # type: ignore[attr-defined]
        meanwhile = await http.get("/v1/jobs")
        answers = await asyncio.gather(*stalled)

    assert held == 0
    assert meanwhile.status_code == 200
    assert [a.status_code for a in answers] == [202] * 25


async def _all_hanging() -> bool:
    return len(HANGING) >= 25
