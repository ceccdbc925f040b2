"""Archiving a 100 MB result streams it: the gateway process's resident memory grows by
far less than the file (measured on the OS process, peak included)."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import fast_simulator_config
from tests.support.gateway import free_port, gateway_settings
from tests.support.payloads import job_body
from tests.support.process import GatewayProcess, issue_key
from tests.support.results import padded_mp4, running_result_host
from tests.support.simulator import running_simulator

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
BIG_BYTES = 100 * MIB
WARM_UP_BYTES = 2 * MIB
RSS_BUDGET_BYTES = 50 * MIB


def _status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


def _reset_peak(pid: int) -> bool:
    """Linux: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


async def _archive(http: httpx.AsyncClient) -> dict[str, Any]:
    created = await http.post("/v1/jobs", json=job_body())
    assert created.status_code == 202, created.text
    job_id = created.json()["id"]
    async with asyncio.timeout(120):
        while True:
            job: dict[str, Any] = (await http.get(f"/v1/jobs/{job_id}")).json()
            if (job.get("result") or {}).get("archive_status") not in (None, "pending"):
                return job
            await asyncio.sleep(0.2)


async def test_a_100_mb_archive_grows_rss_by_less_than_50_mb(
    database_url: str, storage: dict[str, object], tmp_path: Path
) -> None:
    small, big = tmp_path / "small.mp4", tmp_path / "big.mp4"
    await asyncio.to_thread(padded_mp4(5.0, WARM_UP_BYTES), small)
    await asyncio.to_thread(padded_mp4(5.0, BIG_BYTES), big)
    big_sha = await asyncio.to_thread(lambda: hashlib.sha256(big.read_bytes()).hexdigest())
    async with (
        running_result_host(small) as host,
        running_simulator(fast_simulator_config(public_base_url=host.base_url)) as sim,
    ):
        port = free_port()
        settings = gateway_settings(
            database_url, sim.base_url, public_base_url=f"http://127.0.0.1:{port}", **storage
        )
        key = await issue_key(database_url)
        gateway = GatewayProcess(settings, port)
        await gateway.start()
        try:
            assert gateway.proc is not None
            pid = gateway.proc.pid
            headers = {"Authorization": f"Bearer {key.api_key}"}
            async with httpx.AsyncClient(base_url=gateway.base_url, headers=headers) as http:
                warm = await _archive(http)  # loads what an archive needs (PyAV, obstore)
                before_kib = _status_kib(pid, "VmRSS")
                peak_reset = _reset_peak(pid)
                host.path = big
                job = await _archive(http)
                after_kib = _status_kib(pid, "VmRSS")
                peak_kib = _status_kib(pid, "VmHWM")
        finally:
            gateway.stop()
    growth_kib = (peak_kib if peak_reset else after_kib) - before_kib
    print(  # noqa: T201 - the number docs/benchmarks.md quotes (`pytest -s`)
        f"\n[{settings.storage_backend}] RSS before {before_kib / 1024:.1f} MiB, "
        f"after {after_kib / 1024:.1f} MiB, peak {peak_kib / 1024:.1f} MiB "
        f"(peak reset: {peak_reset}); growth {growth_kib / 1024:.1f} MiB "
        f"for a {BIG_BYTES // MIB} MiB result"
    )
    assert warm["result"]["archive_status"] == "archived", warm
    assert job["result"]["archive_status"] == "archived", job
    assert job["result"]["size_bytes"] == BIG_BYTES
    assert job["result"]["sha256"] == big_sha
    assert growth_kib * 1024 < RSS_BUDGET_BYTES
