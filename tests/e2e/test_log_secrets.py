"""Nothing the process holds ever reaches its log, whatever fails and in both log formats.

The gateway runs as `motion-gateway serve` (the deployment path: uvicorn's own loggers,
the access log), against a database role with a password. The test makes it log every
kind of line it can — access lines with `?token=` and `sig=`, a validation error, an
unhandled error in a request and in the workers (a table renamed under them) — then
scans the whole output for every secret of the run.
"""

from __future__ import annotations

import json
import secrets
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import asyncpg
import httpx
import pytest

from app.db.engine import asyncpg_dsn
from app.inbound.tokens import callback_token
from app.settings import ProviderConfig
from tests.conftest import fast_simulator_config
from tests.support.database import server_url, with_database
from tests.support.gateway import free_port, gateway_settings
from tests.support.media import make_png
from tests.support.payloads import job_body
from tests.support.process import GatewayProcess, issue_key
from tests.support.simulator import running_simulator, wait_until

pytestmark = pytest.mark.slow


async def _role_and_database(server: str) -> tuple[str, str, str]:
    """A login role with a password owning a fresh database: (url, role, password)."""
    suffix = secrets.token_hex(4)
    role, password = f"mgw_scan_{suffix}", f"pw{secrets.token_hex(12)}"
    conn = await asyncpg.connect(asyncpg_dsn(server))
    try:
        await conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        await conn.execute(f'CREATE DATABASE "{role}" OWNER {role}')
    finally:
        await conn.close()
    parts = urlsplit(with_database(server, role))
    netloc = f"{role}:{password}@{parts.hostname}:{parts.port or 5432}"
    return parts._replace(netloc=netloc).geturl(), role, password


async def _drop(server: str, role: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(server))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{role}" WITH (FORCE)')
        await conn.execute(f"DROP ROLE IF EXISTS {role}")
    finally:
        await conn.close()


async def _as_superuser(server: str, database: str, sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(with_database(server, database)))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _exercise(
    http: httpx.AsyncClient, gateway: GatewayProcess, server: str, role: str
) -> dict[str, Any]:
    """Every kind of line; returns the secrets the requests revealed and what they answered."""
    seen: dict[str, Any] = {}
    endpoint = await http.post("/v1/webhook-endpoints", json={"url": "http://127.0.0.1:9/h"})
    assert endpoint.status_code == 201, endpoint.text
    seen["endpoint_secret"] = endpoint.json()["secret"]
    job = await http.post("/v1/jobs", json=job_body())
    assert job.status_code == 202, job.text
    job_id = job.json()["id"]
    token = callback_token(gateway.settings.secret_bytes, "simulator", job_id)
    seen["callback_token"] = token
    callback = await http.post(
        f"/v1/upstream/simulator/callbacks/{job_id}?token={token}", content=b"{not json"
    )
    assert callback.status_code in (204, 422), callback.text
    png = make_png(Path(tempfile.mkdtemp()) / "face.png", 400, 600)
    upload = await http.post("/v1/uploads", files={"file": ("face.png", png.read_bytes())})
    assert upload.status_code == 201, upload.text
    media_url = upload.json()["url"]
    seen["media_sig"] = parse_qs(urlsplit(media_url).query)["sig"][0]
    assert (await http.get(media_url)).status_code == 200
    invalid = await http.post("/v1/jobs", json={"quality": "999p", "prompt": seen["media_sig"]})
    assert invalid.status_code == 422
    await _as_superuser(server, role, "ALTER TABLE jobs RENAME TO jobs_hidden")
    try:
        seen["crash"] = await http.post(
            "/v1/jobs", json=job_body(), headers={"X-Request-ID": "scan-crash-1"}
        )
        seen["crash_get"] = await http.get(f"/v1/jobs/{job_id}")
        await wait_until(lambda: _logged(gateway, "worker submitter step failed"), timeout_s=10)
    finally:
        await _as_superuser(server, role, "ALTER TABLE jobs_hidden RENAME TO jobs")
    return seen


async def _logged(gateway: GatewayProcess, text: str) -> bool:
    return text in Path(gateway.log.name).read_text(errors="replace")


@pytest.mark.parametrize("log_json", [False, True], ids=["console-log", "json-log"])
async def test_no_secret_reaches_the_log(log_json: bool) -> None:
    server = server_url()
    database_url, role, password = await _role_and_database(server)
    secret_key = f"scan-secret-{secrets.token_hex(16)}"
    provider_key = f"sim-api-{secrets.token_hex(12)}"
    kling_secret = f"kling-sk-{secrets.token_hex(12)}"
    try:
        async with running_simulator(fast_simulator_config(processing_time_s=30.0)) as sim:
            port = free_port()
            settings = gateway_settings(
                database_url,
                sim.base_url,
                public_base_url=f"http://127.0.0.1:{port}",
                secret_key=secret_key,
                log_level="INFO",
                log_json=log_json,
                providers=[
                    ProviderConfig(name="simulator", base_url=sim.base_url, api_key=provider_key),
                    ProviderConfig(
                        name="kling",
                        kind="kling",
                        base_url="https://203.0.113.9",
                        access_key="ak-scan",
                        secret_key=kling_secret,
                        enabled=False,
                    ),
                ],
            )
            gateway = GatewayProcess(settings, port)
            try:
                await gateway.start(timeout_s=90.0)  # a fresh database: migrations run first
                key = await issue_key(database_url, name="scan")
                headers = {"Authorization": f"Bearer {key.api_key}"}
                async with httpx.AsyncClient(
                    base_url=gateway.base_url, headers=headers, timeout=10.0
                ) as http:
                    seen = await _exercise(http, gateway, server, role)
            finally:
                gateway.stop()
    finally:
        await _drop(server, role)
    logged = Path(gateway.log.name).read_text(errors="replace")
    held = {
        "MGW_SECRET_KEY": secret_key,
        "provider api_key": provider_key,
        "provider secret_key": kling_secret,
        "database password": password,
        "API key": key.api_key,
        "client webhook secret": key.webhook_secret,
        "endpoint webhook secret": seen["endpoint_secret"],
        "callback token": seen["callback_token"],
        "media signature": seen["media_sig"],
    }
    found = {name: logged.count(value) for name, value in held.items() if value in logged}
    lines = logged.splitlines()
    print(  # noqa: T201 - the scan's numbers, shown with -s
        f"{len(held)} secrets checked over {len(lines)} lines ({len(logged)} chars): "
        f"{sum(found.values())} found"
    )
    assert found == {}, found

    crash: httpx.Response = seen["crash"]
    assert crash.status_code == 500
    assert crash.headers["content-type"].startswith("application/problem+json")
    assert crash.json()["code"] == "internal_error"
    assert crash.json()["request_id"] == "scan-crash-1" == crash.headers["x-request-id"]
    assert seen["crash_get"].status_code == 500
    assert "?token=[REDACTED]" in logged  # the access log
    assert "sig=[REDACTED]" in logged
    assert "<traceback object" not in logged
    if log_json:
        records = [json.loads(line) for line in lines if line.startswith("{")]
        crashes = [r for r in records if r.get("request_id") == "scan-crash-1" and "exception" in r]
        assert crashes, "the request's error line carries its request id"
        frames = crashes[0]["exception"][0]["frames"]
        assert frames
        assert {"filename", "lineno", "name"} <= set(frames[-1])
        stacks = [e for r in records for e in r.get("exception", [])]
        assert not any("locals" in frame for e in stacks for frame in e["frames"])
    else:
        assert "Traceback (most recent call last)" in logged
        assert "request_id=scan-crash-1" in logged
