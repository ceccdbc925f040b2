"""A healthy endpoint's delivery latency alone and beside six failing endpoints.

`python -m bench.endpoint_isolation` (`make bench-isolation`): the gateway in its own
process on a fresh database, one client, and on 127.0.0.1 a healthy subscriber (instant
200) plus, for the second phase, six endpoints of the same client that fail: two answer
500, two accept and never answer (each send times out), two refuse the connection. Events
are published straight into the outbox (as the jobs domain does, at a steady rate), so
what is measured is the delivery pipeline alone: the event's `created_at` to its arrival
at the healthy subscriber. Bounded in count (`--events`) and time (`--budget`); loopback
only. Progress on stderr; a markdown section on stdout for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import httpx

from app.db.engine import make_engine, make_session_factory, transaction
from app.db.migrate import upgrade_to_head
from app.delivery import outbox
from bench import machine
from bench.load import progress
from bench.receiver import Subscriber, running_subscriber
from bench.stack import _gateway_process, bench_settings
from bench.stats import Summary, markdown_table, summarize
from tests.support.database import create_database, drop_database, server_url
from tests.support.gateway import free_port
from tests.support.process import issue_key

NO_PROVIDER = "http://127.0.0.1:9"  # no job is ever created: nothing calls a provider
TARGET_RATIO = 1.5
ENDPOINT_RATE_PER_S = 100.0


@dataclass
class Hanging:
    """Accepts, reads, never answers: every send to it runs into the gateway's timeout."""

    url: str = ""
    held: list[asyncio.StreamWriter] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.held.append(writer)
        with contextlib.suppress(Exception):
            while await reader.read(65536):
                pass


@contextlib.asynccontextmanager
async def hanging_peer() -> AsyncIterator[Hanging]:
    peer = Hanging()
    server = await asyncio.start_server(peer.handle, "127.0.0.1", 0)
    peer.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    try:
        yield peer
    finally:
        for writer in peer.held:
            writer.transport.abort()
        server.close()
        await server.wait_closed()


def refused_url() -> str:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"


class Run:
    def __init__(self, database_url: str, base_url: str, api_key: str, client_id: str) -> None:
        self.engine = make_engine(database_url, pool_size=2)
        self.sessions = make_session_factory(self.engine)
        self.client_id = client_id
        self.http = httpx.AsyncClient(
            base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=15.0
        )

    async def endpoint(self, url: str) -> str:
        # Above the publish rate, so the rate limit never paces what is measured.
        body = {"url": url, "rate_limit_per_s": ENDPOINT_RATE_PER_S}
        created = await self.http.post("/v1/webhook-endpoints", json=body)
        if created.status_code != 201:
            raise RuntimeError(f"endpoint refused: {created.status_code} {created.text}")
        return str(created.json()["id"])

    async def publish(self, events: int, rate_per_s: float, tag: str) -> dict[str, datetime]:
        """`events` events at a steady rate; their ids and creation times."""
        created: dict[str, datetime] = {}
        started = time.monotonic()
        for i in range(events):
            await asyncio.sleep(max(0.0, started + i / rate_per_s - time.monotonic()))
            async with transaction(self.sessions) as session:
                event = await outbox.publish(
                    session,
                    self.client_id,
                    "job.succeeded",
                    {"id": f"{tag}_{i}", "status": "succeeded"},
                )
            assert event is not None
            created[event.id] = event.created_at
        return created

    async def close(self) -> None:
        await self.http.aclose()
        await self.engine.dispose()


async def measure(
    run: Run, healthy: Subscriber, events: int, rate: float, tag: str, settle_s: float
) -> list[float]:
    created = await run.publish(events, rate, tag)
    await healthy.wait_for_jobs([f"{tag}_{i}" for i in range(events)], settle_s, accepted=True)
    latencies = []
    for arrival in healthy.arrivals:
        at = created.get(arrival.webhook_id)
        if at is not None and 200 <= arrival.answered < 300:
            latencies.append((arrival.at - at.timestamp()) * 1000)
    return latencies


async def main_async(events: int, rate: float, warmup_s: float, log_dir: Path) -> str:
    server = await asyncio.to_thread(server_url)
    database = await machine.database_label(server)
    database_url = await create_database(server)
    try:
        await upgrade_to_head(database_url)
        port = free_port()
        settings = bench_settings(database_url, NO_PROVIDER, port)
        await asyncio.to_thread(log_dir.mkdir, parents=True, exist_ok=True)
        log_path = log_dir / "gateway-isolation.log"
        async with (
            _gateway_process(settings, port, log_path) as base_url,
            running_subscriber() as healthy,
            running_subscriber(fail_fraction=1.0) as err_a,
            running_subscriber(fail_fraction=1.0) as err_b,
            hanging_peer() as hang_a,
            hanging_peer() as hang_b,
        ):
            key = await issue_key(database_url, "bench-isolation")
            run = Run(database_url, base_url, key.api_key, key.client_id)
            try:
                await run.endpoint(healthy.url)
                progress(f"isolation: {events} events at {rate:g}/s, healthy endpoint alone")
                alone = await measure(run, healthy, events, rate, "alone", 30.0)
                failing = [err_a.url, err_b.url, hang_a.url, hang_b.url]
                failing += [refused_url(), refused_url()]
                for url in failing:
                    await run.endpoint(url)
                if warmup_s > 0:
                    progress(f"isolation: six failing endpoints added; {warmup_s:g} s of failures")
                    await run.publish(int(warmup_s * rate), rate, "warmup")
                progress(f"isolation: {events} events at {rate:g}/s beside six failing endpoints")
                beside = await measure(run, healthy, events, rate, "beside", 30.0)
                failed_sends = len(err_a.arrivals) + len(err_b.arrivals)
                hung = len(hang_a.held) + len(hang_b.held)
            finally:
                await run.close()
    finally:
        await drop_database(server, database_url)
    rows = [
        summarize("healthy endpoint alone: event → delivery", alone, expected=events),
        summarize(
            "healthy endpoint beside 2×500, 2×timeout, 2×refused: event → delivery",
            beside,
            expected=events,
        ),
    ]
    return render(rows, database, settings.webhook_timeout_s, failed_sends, hung, events, rate)


def render(
    rows: Sequence[Summary],
    database: str,
    timeout_s: float,
    failed_sends: int,
    hung: int,
    events: int,
    rate: float,
) -> str:
    ratio = rows[1].p99_ms / rows[0].p99_ms if rows[0].p99_ms else float("nan")
    verdict = "met" if ratio <= TARGET_RATIO else "NOT met"
    return "\n".join(
        [
            "### Endpoint isolation (`make bench-isolation`)",
            "",
            machine.stamp_markdown(database),
            "",
            markdown_table(rows),
            "",
            f"{events} events at {rate:g}/s per phase, published into the outbox; the gateway in "
            f"its own process with default delivery settings (`webhook_timeout_s` = "
            f"{timeout_s:g} s); every endpoint `rate_limit_per_s` = {ENDPOINT_RATE_PER_S:g}. "
            f"The 500 endpoints received {failed_sends} sends, the hanging "
            f"ones {hung} connections. p99 beside failures / p99 alone = {ratio:.2f} "
            f"(target ≤ {TARGET_RATIO}: {verdict}).",
        ]
    )


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.endpoint_isolation", description=__doc__)
    parser.add_argument("--events", type=int, default=150, help="events per phase (default 150)")
    parser.add_argument("--rate", type=float, default=5.0, help="events per second (default 5)")
    parser.add_argument(
        "--warmup", type=float, default=0.0, help="s of failures before measuring (default 0)"
    )
    parser.add_argument("--budget", type=float, default=180.0, help="overall limit in seconds")
    parser.add_argument(
        "--log-dir", type=Path, default=Path(tempfile.gettempdir()) / "motion-gateway-bench"
    )
    parser.add_argument("--output", type=Path, default=None, help="also write the markdown here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if not 1 <= args.events <= 5000 or args.rate <= 0:
        raise SystemExit("--events must be 1..5000 and --rate positive")

    async def bounded() -> str:
        async with asyncio.timeout(args.budget):
            return await main_async(args.events, args.rate, args.warmup, args.log_dir)

    try:
        text = asyncio.run(bounded())
    except TimeoutError:
        print(f"bench: gave up after its budget of {args.budget:.0f} s", file=sys.stderr)
        return 2
    print(text)
    if args.output is not None:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
