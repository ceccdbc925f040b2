"""Latency and throughput of the gateway on this machine: `python -m bench.run [--quick]`.

Every phase runs against a fresh database on DATABASE_URL's server (or the embedded
PostgreSQL), a loopback simulator and the gateway in its own process. Progress goes to
stderr; stdout gets a markdown section ready to paste into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import httpx

from app.simulator.config import SimulatorConfig
from bench import machine
from bench.load import (
    BenchError,
    Launch,
    Trace,
    create_one,
    gaps_ms,
    launch_concurrent,
    launch_sequential,
    launch_steady,
    progress,
    trace,
)
from bench.media import Media, running_media
from bench.receiver import Subscriber, running_subscriber
from bench.stack import BENCH_OVERRIDES, Stack, running_stack, sim_config
from bench.stats import Summary, markdown_table, summarize
from tests.support.database import server_url

SIM_PENDING_S = 0.1
SIM_PROCESSING_S = 0.3
SLOW_ENDPOINT_DELAY_S = 30.0
SLOW_OK_DELAY_S = 5.0
BACKLOG_PROBES = 6
BACKLOG_PROBE_EVERY_S = 3.0


@dataclass(frozen=True)
class Plan:
    name: str
    jobs: int
    """N: requests per create-latency run, jobs per end-to-end run."""
    rate_per_s: float
    """Arrival rate of the steady end-to-end runs."""
    concurrency: int
    poller_jobs: int
    isolation_jobs: int
    isolation_rate_per_s: float
    backlog_jobs: int
    """Backlog built at a slow-but-healthy endpoint before the sparse probe (0: skip)."""
    budget_s: float
    """Hard cap on the whole run."""
    settle_s: float
    """Longest wait for the last deliveries of one phase."""


DEFAULT = Plan(
    name="default",
    jobs=200,
    rate_per_s=5.0,
    concurrency=16,
    poller_jobs=20,
    isolation_jobs=60,
    isolation_rate_per_s=3.0,
    backlog_jobs=150,
    budget_s=420.0,
    settle_s=45.0,
)
QUICK = Plan(
    name="--quick",
    jobs=20,
    rate_per_s=10.0,
    concurrency=16,
    poller_jobs=6,
    isolation_jobs=15,
    isolation_rate_per_s=5.0,
    backlog_jobs=0,
    budget_s=90.0,
    settle_s=20.0,
)


@dataclass
class Section:
    title: str
    rows: list[Summary]
    notes: list[str]


class Bench:
    def __init__(
        self, plan: Plan, server: str, media: Media, *, in_process: bool, log_dir: Path
    ) -> None:
        self.plan = plan
        self.media = media
        self.server = server
        self.in_process = in_process
        self.log_dir = log_dir
        self.problems: list[str] = []

    def _collect_log(self, stack: Stack) -> None:
        lines = stack.log_problems()
        if lines:
            self.problems.append(f"{len(lines)} error lines in {stack.log_path}: {lines[0][:200]}")

    # ---- create latency ------------------------------------------------------------------

    async def create_latency(self) -> Section:
        rows: list[Summary] = []
        notes: list[str] = []
        for probe in ("best_effort", "off"):
            more_rows, note = await self._create_latency(probe)
            rows += more_rows
            notes.append(note)
        media = self.media
        notes.append(
            f"`best_effort` (the default) fetches and probes both inputs on every create: "
            f"here a {media.image_bytes / 1024:.0f} KiB PNG and a "
            f"{media.video_bytes / 1024:.0f} KiB MP4 from a loopback server."
        )
        return Section("Create latency (API only)", rows, notes)

    async def _create_latency(self, probe: str) -> tuple[list[Summary], str]:
        plan = self.plan
        # Tasks that stay pending for an hour: nothing completes, nothing is delivered.
        sim = sim_config(pending_time_s=3600.0, processing_time_s=3600.0)
        async with self._stack(sim, f"create-{probe}", media_url_probe=probe) as stack:
            http, bodies = stack.http(), stack.bodies()
            await launch_sequential(http, 5, bodies)  # warm-up: connections, caches
            progress(f"create latency (probe {probe}): {plan.jobs} sequential")
            seq, seq_s = await launch_sequential(http, plan.jobs, bodies)
            progress(f"create latency (probe {probe}): {plan.jobs} at {plan.concurrency}")
            conc, conc_s = await launch_concurrent(http, plan.jobs, plan.concurrency, bodies)
            submits = await stack.metric("mgw_upstream_calls_total", op="submit", outcome="ok")
        rows = [
            summarize(
                f"create, sequential, `media_url_probe={probe}`",
                [launch.api_ms for launch in seq],
                throughput_per_s=len(seq) / seq_s,
            ),
            summarize(
                f"create, concurrency {plan.concurrency}, `media_url_probe={probe}`",
                [launch.api_ms for launch in conc],
                throughput_per_s=len(conc) / conc_s,
            ),
        ]
        note = (
            f"`media_url_probe={probe}`: meanwhile the submitter forwarded {submits:.0f} of "
            f"{2 * plan.jobs + 5} jobs upstream (simulator tasks stay pending: no callbacks, "
            "no deliveries)."
        )
        return rows, note

    @contextlib.asynccontextmanager
    async def _stack(
        self, sim: SimulatorConfig, label: str, **overrides: object
    ) -> AsyncIterator[Stack]:
        async with running_stack(
            self.server,
            sim,
            self.media,
            in_process=self.in_process,
            log_dir=self.log_dir,
            label=label,
            overrides=overrides,
        ) as stack:
            try:
                yield stack
            finally:
                self._collect_log(stack)

    # ---- flows through the simulator ------------------------------------------------------

    async def _settle(
        self, subscriber: Subscriber, launches: Sequence[Launch], timeout_s: float
    ) -> None:
        ok = await subscriber.wait_for_jobs([launch.job_id for launch in launches], timeout_s)
        if not ok:
            seen = subscriber.first_arrivals()
            missing = sum(1 for launch in launches if launch.job_id not in seen)
            progress(f"  timed out after {timeout_s:.0f} s; {missing} jobs without a delivery")

    async def _traces(
        self, stack: Stack, subscriber: Subscriber, launches: Sequence[Launch]
    ) -> list[Trace]:
        arrivals = {job_id: a.at for job_id, a in subscriber.first_arrivals().items()}
        return await trace(stack.http(), stack.simulator, launches, arrivals)

    @staticmethod
    def _flow_rows(label: str, traces: Sequence[Trace], throughput: float | None) -> list[Summary]:
        n = len(traces)
        return [
            summarize(
                f"{label}: `POST` → terminal event at subscriber",
                gaps_ms(traces, "posted", "arrival"),
                expected=n,
                throughput_per_s=throughput,
            ),
            summarize(
                f"{label}: `POST` → submitted upstream",
                gaps_ms(traces, "posted", "submitted_at"),
                expected=n,
            ),
            summarize(
                f"{label}: callback sent → job terminal",
                gaps_ms(traces, "callback_sent_at", "completed_at"),
                expected=n,
            ),
            summarize(
                f"{label}: job terminal → delivery arrives",
                gaps_ms(traces, "completed_at", "arrival"),
                expected=n,
            ),
        ]

    async def _fetches(self, stack: Stack) -> float:
        return await stack.metric("mgw_upstream_calls_total", op="fetch")

    async def flows(self) -> list[Section]:
        plan = self.plan
        sim = sim_config(pending_time_s=SIM_PENDING_S, processing_time_s=SIM_PROCESSING_S)
        sections: list[Section] = []
        async with self._stack(sim, "flow") as stack, running_subscriber() as fast:
            http = stack.http()
            created = await http.post("/v1/webhook-endpoints", json={"url": fast.url})
            if created.status_code != 201:
                raise BenchError(f"endpoint refused: {created.status_code} {created.text}")
            warm = [await create_one(http, stack.media.job_body()) for _ in range(3)]
            await self._settle(fast, warm, plan.settle_s)

            sections.append(await self._steady(stack, fast))
            sections.append(await self._burst(stack, fast))
            sections.append(await self._poller(stack, fast))
            sections.append(await self._isolation(stack, fast))
        return sections

    async def _steady(self, stack: Stack, fast: Subscriber) -> Section:
        plan = self.plan
        progress(f"end-to-end: {plan.jobs} jobs at {plan.rate_per_s:g}/s")
        before = await self._fetches(stack)
        launches = await launch_steady(stack.http(), plan.jobs, plan.rate_per_s, stack.bodies())
        await self._settle(fast, launches, plan.settle_s)
        fetches = await self._fetches(stack) - before
        traces = await self._traces(stack, fast, launches)
        label = f"steady {plan.rate_per_s:g} jobs/s"
        notes = [
            f"Simulated work per job: pending {SIM_PENDING_S} s + processing "
            f"{SIM_PROCESSING_S} s = {SIM_PENDING_S + SIM_PROCESSING_S:.1f} s of the end-to-end "
            "time; the rest is the gateway (submit, callback, confirming poll, outbox, send).",
            f"Upstream status fetches: {fetches / max(1, len(launches)):.2f} per job "
            "(the one confirming poll after each callback).",
        ]
        return Section(
            f"End-to-end, steady {plan.rate_per_s:g} jobs/s",
            self._flow_rows(label, traces, None),
            notes,
        )

    async def _burst(self, stack: Stack, fast: Subscriber) -> Section:
        plan = self.plan
        progress(f"end-to-end burst: {plan.jobs} jobs at concurrency {plan.concurrency}")
        before = await self._fetches(stack)
        started = time.time()
        launches, create_s = await launch_concurrent(
            stack.http(), plan.jobs, plan.concurrency, stack.bodies()
        )
        await self._settle(fast, launches, plan.settle_s + plan.jobs / 5)
        fetches = await self._fetches(stack) - before
        traces = await self._traces(stack, fast, launches)
        last = max((t.arrival for t in traces if t.arrival is not None), default=time.time())
        throughput = len([t for t in traces if t.arrival]) / max(1e-3, last - started)
        label = f"burst of {plan.jobs}"
        s = stack.settings
        notes = [
            f"All {plan.jobs} jobs were created in {create_s:.1f} s ({plan.concurrency} "
            f"requests in flight); throughput = jobs delivered / (last delivery − first "
            f"`POST`) = {throughput:.1f} jobs/s.",
            f"Upstream status fetches: {fetches / max(1, len(launches)):.2f} per job.",
            "Two deliberate limits shape a burst: every callback costs one confirming status "
            f"fetch, rationed by `upstream_query_rate_per_s` = {s.upstream_query_rate_per_s:g} "
            f"(burst {s.upstream_query_burst}); and one endpoint takes at most "
            f"`webhook_endpoint_rate_per_s` = {s.webhook_endpoint_rate_per_s:g} deliveries/s "
            "(a delivery held back by it waits for the next wake-up or sweep).",
        ]
        return Section(
            f"End-to-end, burst of {plan.jobs}", self._flow_rows(label, traces, throughput), notes
        )

    async def _poller(self, stack: Stack, fast: Subscriber) -> Section:
        plan = self.plan
        n = plan.poller_jobs
        progress(f"poller: {n} jobs with #sim:drop_callback at {plan.rate_per_s:g}/s")
        before = await self._fetches(stack)
        launches = await launch_steady(
            stack.http(), n, plan.rate_per_s, stack.bodies("#sim:drop_callback")
        )
        await self._settle(fast, launches, plan.settle_s)
        fetches = await self._fetches(stack) - before
        traces = await self._traces(stack, fast, launches)
        s = stack.settings
        rows = [
            summarize(
                "callbacks dropped: `POST` → terminal event at subscriber",
                gaps_ms(traces, "posted", "arrival"),
                expected=n,
            ),
            summarize(
                "callbacks dropped: `POST` → job terminal",
                gaps_ms(traces, "posted", "completed_at"),
                expected=n,
            ),
        ]
        estimate = int(SIM_PENDING_S + SIM_PROCESSING_S + 0.999)
        notes = [
            "Every callback dropped by the simulator (`#sim:drop_callback`): the job ends "
            "only through the fallback poller.",
            f"The first poll is due at submit + the provider's estimate ({estimate} s) + "
            f"`poll_overdue_grace_s` ({s.poll_overdue_grace_s:g} s here, default 60 s), so "
            f"the expected floor is about {estimate + s.poll_overdue_grace_s:g} s; then "
            f"backoff from `poll_backoff_base_s` ({s.poll_backoff_base_s:g} s). A poll that "
            "falls due is found by the next timed sweep (`worker_sweep_interval_s` = "
            f"{s.worker_sweep_interval_s:g} s), since nothing wakes the poller at its due time.",
            f"Upstream status fetches: {fetches / max(1, n):.2f} per job.",
        ]
        return Section("Fallback poller (callbacks dropped)", rows, notes)

    async def _isolation(self, stack: Stack, fast: Subscriber) -> Section:
        plan = self.plan
        m, rate = plan.isolation_jobs, plan.isolation_rate_per_s
        progress(f"isolation baseline: {m} jobs at {rate:g}/s, fast endpoint only")
        base = await launch_steady(stack.http(), m, rate, stack.bodies())
        await self._settle(fast, base, plan.settle_s)
        base_traces = await self._traces(stack, fast, base)
        rows = [
            summarize(
                "fast endpoint alone: job terminal → delivery",
                gaps_ms(base_traces, "completed_at", "arrival"),
                expected=m,
            )
        ]
        s = stack.settings
        notes = [
            f"{m} jobs at {rate:g}/s per run, each event delivered to every endpoint. The "
            f"gateway gives up on a send after `webhook_timeout_s` = {s.webhook_timeout_s:g} s; "
            f"`webhook_endpoint_concurrency` = {s.webhook_endpoint_concurrency} sends in flight "
            f"per endpoint, `dispatcher_concurrency` = {s.dispatcher_concurrency} overall.",
        ]
        for delay_s, label in (
            (SLOW_ENDPOINT_DELAY_S, f"beside one that hangs {SLOW_ENDPOINT_DELAY_S:g} s"),
            (SLOW_OK_DELAY_S, f"beside one that answers 200 after {SLOW_OK_DELAY_S:g} s"),
        ):
            more_rows, note = await self._beside_slow(stack, fast, delay_s, label)
            rows += more_rows
            notes.append(note)
        if plan.backlog_jobs:
            row, note = await self._beside_backlog(stack, fast)
            rows.append(row)
            notes.append(note)
        return Section("Isolation: a slow endpoint beside a fast one", rows, notes)

    async def _beside_backlog(self, stack: Stack, fast: Subscriber) -> tuple[Summary, str]:
        """A healthy but slow endpoint never trips its circuit, so its backlog stays due;
        then a sparse trickle of jobs shows what the fast endpoint waits once the backlog
        is larger than the dispatcher's claim window."""
        plan = self.plan
        http = stack.http()
        async with running_subscriber(delay_s=SLOW_OK_DELAY_S) as slow:
            created = await http.post("/v1/webhook-endpoints", json={"url": slow.url})
            if created.status_code != 201:
                raise BenchError(f"endpoint refused: {created.status_code} {created.text}")
            endpoint_id = created.json()["id"]
            progress(f"isolation: backlog of {plan.backlog_jobs} at a 5 s endpoint, then a trickle")
            burst, _ = await launch_concurrent(
                http, plan.backlog_jobs, plan.concurrency, stack.bodies()
            )
            await self._settle(fast, burst, plan.settle_s + plan.backlog_jobs / 5)
            backlog = await undelivered(http, endpoint_id)
            probes = []
            for _ in range(BACKLOG_PROBES):
                probes.append(await create_one(http, stack.media.job_body()))
                await asyncio.sleep(BACKLOG_PROBE_EVERY_S)
            await self._settle(fast, probes, plan.settle_s)
            traces = await self._traces(stack, fast, probes)
            await http.delete(f"/v1/webhook-endpoints/{endpoint_id}")
        row = summarize(
            f"fast endpoint, 1 job every {BACKLOG_PROBE_EVERY_S:g} s, beside a "
            f"{SLOW_OK_DELAY_S:g} s endpoint holding {backlog} undelivered: job terminal → "
            "delivery",
            gaps_ms(traces, "completed_at", "arrival"),
            expected=len(probes),
        )
        note = (
            f"Backlog run: {plan.backlog_jobs} jobs at once with both endpoints registered "
            f"(the fast one received them all), then {BACKLOG_PROBES} jobs "
            f"{BACKLOG_PROBE_EVERY_S:g} s apart while the slow endpoint, answering 200 after "
            f"{SLOW_OK_DELAY_S:g} s, still had {backlog} deliveries due."
        )
        return row, note

    async def _beside_slow(
        self, stack: Stack, fast: Subscriber, delay_s: float, label: str
    ) -> tuple[list[Summary], str]:
        plan = self.plan
        m, rate = plan.isolation_jobs, plan.isolation_rate_per_s
        http = stack.http()
        async with running_subscriber(delay_s=delay_s) as slow:
            created = await http.post("/v1/webhook-endpoints", json={"url": slow.url})
            if created.status_code != 201:
                raise BenchError(f"endpoint refused: {created.status_code} {created.text}")
            endpoint_id = created.json()["id"]
            progress(f"isolation: {m} jobs at {rate:g}/s, fast endpoint {label}")
            loaded = await launch_steady(http, m, rate, stack.bodies())
            await self._settle(fast, loaded, plan.settle_s)
            traces = await self._traces(stack, fast, loaded)
            endpoint = (await http.get(f"/v1/webhook-endpoints/{endpoint_id}")).json()
            pending = await undelivered(http, endpoint_id)
            # Out of the way of the next run (a deleted endpoint's deliveries are not claimed).
            await http.delete(f"/v1/webhook-endpoints/{endpoint_id}")
        rows = [
            summarize(
                f"fast endpoint {label}: job terminal → delivery",
                gaps_ms(traces, "completed_at", "arrival"),
                expected=m,
            ),
            summarize(
                "… same run: `POST` → event at the fast endpoint",
                gaps_ms(traces, "posted", "arrival"),
                expected=m,
            ),
        ]
        circuit = endpoint.get("circuit_open_until")
        note = (
            f"Slow endpoint {label.removeprefix('beside one that ')}: it received "
            f"{len(slow.arrivals)} sends during the run and still had "
            f"{pending} undelivered (pending or awaiting a retry) "
            "at its end; "
            f"consecutive_failures = {endpoint.get('consecutive_failures')}, circuit "
            f"{'open until ' + str(circuit) if circuit else 'closed'}."
        )
        return rows, note


async def undelivered(http: httpx.AsyncClient, endpoint_id: str) -> int:
    """The endpoint's deliveries still pending or awaiting a retry (`failed`)."""
    total = 0
    for status in ("pending", "failed"):
        cursor: str | None = None
        for _ in range(50):  # bounded: 5,000 rows
            params: dict[str, str | int] = {"status": status, "limit": 100}
            if cursor:
                params["cursor"] = cursor
            page = (
                await http.get(f"/v1/webhook-endpoints/{endpoint_id}/deliveries", params=params)
            ).json()
            total += len(page.get("data", []))
            cursor = page.get("next_cursor")
            if not cursor:
                break
    return total


def render(plan: Plan, database: str, sections: Sequence[Section], problems: list[str]) -> str:
    overrides = ", ".join(f"`{k}` = {v}" for k, v in BENCH_OVERRIDES.items())
    parts = [
        f"### Run: {database}, `{plan_name(plan)}`",
        "",
        machine.stamp_markdown(database),
        f"- **gateway settings**: defaults except {overrides}",
        f"- **simulator**: pending {SIM_PENDING_S} s, processing {SIM_PROCESSING_S} s "
        "(create latency: tasks stay pending)",
        "",
    ]
    for section in sections:
        parts += [f"#### {section.title}", "", markdown_table(section.rows), ""]
        parts += [f"- {note}" for note in section.notes]
        parts.append("")
    if problems:
        parts += ["#### Gateway log", ""]
        parts += [f"- {p}" for p in problems]
        parts.append("")
    return "\n".join(parts)


def plan_name(plan: Plan) -> str:
    return f"{plan.name}, N={plan.jobs}"


async def main_async(plan: Plan, *, in_process: bool, log_dir: Path) -> str:
    server = await asyncio.to_thread(server_url)
    database = await machine.database_label(server)
    started = time.perf_counter()
    async with asyncio.timeout(plan.budget_s), running_media() as media:
        bench = Bench(plan, server, media, in_process=in_process, log_dir=log_dir)
        sections = [await bench.create_latency(), *await bench.flows()]
    progress(f"done in {time.perf_counter() - started:.0f} s")
    return render(plan, database, sections, bench.problems)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run", description=__doc__)
    parser.add_argument("--jobs", type=int, default=None, help="N (default 200, quick 20)")
    parser.add_argument("--quick", action="store_true", help="a smaller run, under a minute")
    parser.add_argument(
        "--in-process", action="store_true", help="run the gateway in this event loop"
    )
    parser.add_argument(
        "--log-dir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "motion-gateway-bench",
        help="gateway logs",
    )
    parser.add_argument("--output", type=Path, default=None, help="also write the markdown here")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    plan = QUICK if args.quick else DEFAULT
    if args.jobs is not None:
        if args.jobs < 1:
            raise SystemExit("--jobs must be at least 1")
        # About half a second of run time per extra job (create, steady and burst runs).
        extra_s = max(0, args.jobs - plan.jobs) * 0.5
        plan = replace(plan, jobs=args.jobs, budget_s=plan.budget_s + extra_s)
    try:
        text = asyncio.run(main_async(plan, in_process=args.in_process, log_dir=args.log_dir))
    except TimeoutError:
        print(f"bench: gave up after its budget of {plan.budget_s:.0f} s", file=sys.stderr)
        return 2
    except (BenchError, httpx.HTTPError) as exc:
        print(f"bench: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(text)
    if args.output is not None:
        args.output.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
