"""SIGKILL the gateway in the middle of an archive copy; after a restart the result is
archived exactly once, byte for byte, and its job.succeeded event exists once."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from app.db.engine import asyncpg_dsn
from app.jobs.archival import archive_key
from app.media.context import build_object_store
from tests.conftest import fast_simulator_config
from tests.support.gateway import free_port, gateway_settings
from tests.support.payloads import job_body
from tests.support.process import GatewayProcess, issue_key
from tests.support.results import padded_mp4, running_result_host
from tests.support.simulator import running_simulator

pytestmark = pytest.mark.slow

RESULT_BYTES = 24 * 1024 * 1024
KILL_AFTER_BYTES = 6 * 1024 * 1024


async def _succeeded_events(database_url: str, job_id: str) -> int:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        count: int = await conn.fetchval(
            "SELECT count(*) FROM events WHERE job_id = $1 AND type = 'job.succeeded'", job_id
        )
    finally:
        await conn.close()
    return count


async def _wait_archive_settled(http: httpx.AsyncClient, job_id: str) -> dict[str, Any]:
    async with asyncio.timeout(60):
        while True:
            job: dict[str, Any] = (await http.get(f"/v1/jobs/{job_id}")).json()
            result = job.get("result") or {}
            if result.get("archive_status") not in (None, "pending"):
                return job
            await asyncio.sleep(0.2)


async def test_sigkill_mid_copy_leaves_exactly_one_correct_archive(
    database_url: str, storage: dict[str, object], tmp_path: Path
) -> None:
    source = tmp_path / "result.mp4"
    await asyncio.to_thread(padded_mp4(5.0, RESULT_BYTES), source)
    expected_sha = hashlib.sha256(source.read_bytes()).hexdigest()
    async with running_result_host(source, delay_per_chunk_s=0.02) as host:
        host.progress_mark = KILL_AFTER_BYTES
        sim_config = fast_simulator_config(public_base_url=host.base_url)
        async with running_simulator(sim_config) as sim:
            port = free_port()
            settings = gateway_settings(
                database_url,
                sim.base_url,
                public_base_url=f"http://127.0.0.1:{port}",
                archive_lease_s=12.0,
                archive_retry_base_s=0.2,
                **storage,
            )
            key = await issue_key(database_url)
            gateway = GatewayProcess(settings, port)
            await gateway.start()
            try:
                headers = {"Authorization": f"Bearer {key.api_key}"}
                async with httpx.AsyncClient(base_url=gateway.base_url, headers=headers) as http:
                    created = await http.post("/v1/jobs", json=job_body())
                    assert created.status_code == 202, created.text
                    job_id = created.json()["id"]
                    async with asyncio.timeout(30):
                        await host.progressed.wait()  # the copy is under way
                    during = (await http.get(f"/v1/jobs/{job_id}")).json()
                    gateway.kill()
                    await gateway.start()
                    job = await _wait_archive_settled(http, job_id)
            finally:
                gateway.stop()
    store = build_object_store(settings)
    objects = [info async for info in store.list("arc_")]
    stored = b"".join([c async for c in store.iter_range(archive_key(job_id), 0, RESULT_BYTES)])
    assert during["result"]["archive_status"] == "pending"
    assert job["result"]["archive_status"] == "archived", job
    assert host.requests >= 2  # the killed copy, then the one after the restart
    assert [info.key for info in objects] == [archive_key(job_id)]
    assert objects[0].size_bytes == RESULT_BYTES == job["result"]["size_bytes"]
    assert hashlib.sha256(stored).hexdigest() == expected_sha == job["result"]["sha256"]
    assert job["result"]["duration_mismatch"] is False  # the padded clip still probes as 5 s
    assert await _succeeded_events(database_url, job_id) == 1
