"""The service as an operator runs it: a real OS process, its signals, its files, its user."""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.db.embedded import HANDLES_FILE
from app.db.engine import asyncpg_dsn
from tests.conftest import fast_simulator_config
from tests.support.gateway import free_port, gateway_settings
from tests.support.media import make_png
from tests.support.payloads import job_body
from tests.support.process import GatewayProcess, issue_key
from tests.support.simulator import (
    RunningSimulator,
    admin_tasks,
    install_faults,
    running_simulator,
    wait_until,
)
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow

OTHER_UID = 10001  # the container's user, who owns its read-only /app here


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "pg" / "postmaster.pid").read_text().splitlines()[0])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def _gone(pid: int, timeout_s: float = 20.0) -> bool:
    async with asyncio.timeout(timeout_s):
        while _alive(pid):
            await asyncio.sleep(0.1)
    return True


@pytest.fixture
def data_dir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mgw-embedded-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _embedded_gateway(data_dir: Path, simulator_url: str) -> GatewayProcess:
    port = free_port()
    settings = gateway_settings(
        "unused", simulator_url, public_base_url=f"http://127.0.0.1:{port}", data_dir=data_dir
    )
    # No DATABASE_URL: the zero-configuration path that `make run` takes.
    return GatewayProcess(settings, port, env={"DATABASE_URL": None})


async def test_sigterm_stops_the_embedded_server_even_after_a_sigkilled_run(
    data_dir: Path, simulator_url: str
) -> None:
    first = _embedded_gateway(data_dir, simulator_url)
    await first.start(timeout_s=120)
    postmaster = _postmaster_pid(data_dir)
    first.kill()
    # A killed process cannot release its handle: the server rightly keeps running.
    assert _alive(postmaster)
    assert str(first.proc.pid if first.proc else "") in (data_dir / "pg" / HANDLES_FILE).read_text()

    second = _embedded_gateway(data_dir, simulator_url)
    await second.start(timeout_s=120)
    assert _postmaster_pid(data_dir) == postmaster  # reused, not started twice
    code = second.terminate(timeout_s=60)

    assert code in (0, 143), second.output()[-2000:]
    assert await _gone(postmaster)
    assert "Traceback" not in second.output()


@pytest.fixture
def simulator_url() -> str:
    # These processes never submit: a base URL is all the settings need.
    return "http://127.0.0.1:9"


# Root without any capability: uid 0 still reads the interpreter under /root, but can no
# longer write where only another user may, which is the container's situation.
UNPRIVILEGED = ["setpriv", "--bounding-set", "-all", "--inh-caps", "-all", "--"]


@pytest.fixture
def read_only_cwd() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="mgw-ro-"))
    os.chown(path, OTHER_UID, OTHER_UID)
    path.chmod(0o555)  # another user's and read-only, like /app in the image
    yield path
    shutil.rmtree(path, ignore_errors=True)


async def test_uploads_work_unprivileged_in_a_read_only_working_directory(
    database_url: str, read_only_cwd: Path, tmp_path: Path, simulator_url: str
) -> None:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv (util-linux) to drop every capability")
    port = free_port()
    # Over loopback TCP: the embedded server's socket directory (make test, CI) is its own
    # user's, which a process without capabilities may not enter.
    proxy = TcpProxy.for_url(database_url, free_port())
    await proxy.start()
    settings = gateway_settings(
        proxy.url_through(database_url),
        simulator_url,
        public_base_url=f"http://127.0.0.1:{port}",
        media_dir=None,
    )
    # A temporary directory of this test's own (TMPDIR for the child), so that another
    # suite running at the same time cannot add files to the one this test counts.
    fallback = tmp_path / "tmp" / f"motion-gateway-{os.geteuid()}"
    fallback.parent.mkdir()
    key = await issue_key(database_url, name="unprivileged")
    gateway = GatewayProcess(
        settings,
        port,
        cwd=read_only_cwd,
        wrapper=UNPRIVILEGED,
        # No writable home either: the per-user temporary directory is what is left.
        env={
            "HOME": str(read_only_cwd / "home"),
            "XDG_DATA_HOME": None,
            "MGW_MEDIA_DIR": None,
            "TMPDIR": str(fallback.parent),
        },
    )
    await gateway.start()
    try:
        image = make_png(tmp_path / "character.png", 640, 640)
        headers = {"Authorization": f"Bearer {key.api_key}"}
        async with httpx.AsyncClient(base_url=gateway.base_url, headers=headers) as http:
            with image.open("rb") as f:
                response = await http.post(
                    "/v1/uploads", files={"file": ("character.png", f, "image/png")}
                )
    finally:
        gateway.stop()
        await proxy.stop()

    assert response.status_code == 201, response.text
    stored = [p for p in fallback.rglob("*") if p.is_file()]
    assert len(stored) == 1, stored
    assert not any(read_only_cwd.iterdir())


async def test_sigterm_during_a_paid_submit_lets_it_finish_and_record(database_url: str) -> None:
    """A deploy must not turn an in-flight create into an unknown outcome: shutdown waits
    for the provider's answer (grace ≥ the submit timeout), records it, then exits."""
    async with running_simulator(fast_simulator_config(processing_time_s=30.0)) as sim:
        port = free_port()
        settings = gateway_settings(
            database_url,
            sim.base_url,
            public_base_url=f"http://127.0.0.1:{port}",
            provider_submit_timeout_s=8.0,
        )
        key = await issue_key(database_url, name="sigterm")
        # The create is slow but answers: the task exists at once, its answer takes 3 s.
        await install_faults(sim, {"create": {"timeout": True, "hang_s": 3.0, "count": 1}})
        gateway = GatewayProcess(settings, port)
        await gateway.start()
        try:
            headers = {"Authorization": f"Bearer {key.api_key}"}
            async with httpx.AsyncClient(base_url=gateway.base_url, headers=headers) as http:
                created = await http.post("/v1/jobs", json=job_body())
            assert created.status_code == 202, created.text
            await wait_until(lambda: _has_tasks(sim), timeout_s=20.0)  # the create is in flight
            # In a thread: the simulator answering the held create runs on this loop.
            code = await asyncio.to_thread(gateway.terminate, 60)
        finally:
            gateway.stop()
        tasks = await admin_tasks(sim)

    job = await _job_row(database_url, created.json()["id"])
    assert code in (0, 143), gateway.output()[-2000:]
    assert (job["status"], job["submit_unknown"]) == ("submitted", False), gateway.output()[-3000:]
    assert job["provider_task_id"] == tasks[0]["id"]
    assert len(tasks) == 1


async def _has_tasks(sim: RunningSimulator) -> bool:
    return bool(await admin_tasks(sim))


async def _job_row(database_url: str, job_id: str) -> dict[str, object]:
    conn = await asyncpg.connect(asyncpg_dsn(database_url))
    try:
        row = await conn.fetchrow(
            "SELECT status, submit_unknown, provider_task_id FROM jobs WHERE id = $1", job_id
        )
    finally:
        await conn.close()
    assert row is not None
    return dict(row)
