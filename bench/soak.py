"""A steady stream of jobs under faults, then invariant checks: `python -m bench.soak`.

Each job draws a simulator fault for its own task (fail, dropped / duplicated /
out-of-order / late callbacks); every few seconds a global fault is armed (create 503
and 429 bursts, query 500s); the subscriber answers 500 to a share of deliveries. After
the stream the run waits for quiescence and checks:

1. every job is terminal, with the outcome its directive asked for;
2. no job was submitted upstream twice (the simulator records each task's
   `Idempotency-Key`, which the gateway sets to the job id);
3. every job's `GET /v1/jobs/{id}/events` has each transition once, versions 1..n, at
   most one terminal event, ending at the job's status and version;
4. every terminal job's event reached the subscriber and was accepted at least once,
   every copy with the same `webhook-id` and the right event type;
5. the API accepted every create.

Prints a summary; exits 1 when an invariant is violated, 2 when the run itself failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import machine
from bench.load import TERMINAL, BenchError, Launch, create_one, fetch_jobs, progress
from bench.media import running_media
from bench.receiver import Subscriber, running_subscriber
from bench.stack import Stack, running_stack, sim_config
from bench.stats import markdown_table, summarize
from tests.support.database import server_url

# (directive, weight); None is the happy path.
DIRECTIVES: list[tuple[str | None, int]] = [
    (None, 40),
    ("#sim:fail", 12),
    ("#sim:drop_callback", 12),
    ("#sim:dup_callback=3", 12),
    ("#sim:out_of_order", 12),
    ("#sim:delay_callback=1", 12),
]

# Armed one after the other, one every `--fault-every` seconds.
GLOBAL_FAULTS: list[tuple[str, dict[str, Any]]] = [
    ("create 503 x3", {"create": {"status": 503, "count": 3}}),
    ("create 429 x3 (Retry-After 1)", {"create": {"status": 429, "retry_after": 1, "count": 3}}),
    ("query 500 x5", {"query": {"status": 500, "count": 5}}),
]

# Short fuses so retries and circuits resolve within a few minutes (defaults: hours).
SOAK_OVERRIDES: dict[str, object] = {
    "webhook_retry_schedule_s": [0.0, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0],
    "webhook_circuit_open_s": 1.0,
    "webhook_circuit_open_max_s": 5.0,
    "submit_retry_base_s": 0.5,
    "submit_retry_max_s": 4.0,
    "circuit_open_s": 3.0,
}


@dataclass
class Soak:
    stack: Stack
    subscriber: Subscriber
    rng: random.Random
    directive_of: dict[str, str | None] = field(default_factory=dict)
    launches: list[Launch] = field(default_factory=list)
    api_errors: list[str] = field(default_factory=list)
    faults_armed: Counter[str] = field(default_factory=Counter)

    def pick(self) -> str | None:
        choices = [d for d, _ in DIRECTIVES]
        weights = [w for _, w in DIRECTIVES]
        return self.rng.choices(choices, weights)[0]

    async def one(self, http: httpx.AsyncClient) -> None:
        directive = self.pick()
        prompt = f"soak {directive}" if directive else "soak"
        try:
            launch = await create_one(http, self.stack.media.job_body(prompt))
        except (BenchError, httpx.HTTPError) as exc:
            self.api_errors.append(str(exc)[:200])
            return
        self.launches.append(launch)
        self.directive_of[launch.job_id] = directive

    async def stream(self, duration_s: float, rate_per_s: float) -> None:
        http = self.stack.http()
        loop = asyncio.get_running_loop()
        start = loop.time()
        count = int(duration_s * rate_per_s)
        async with asyncio.TaskGroup() as group:
            for i in range(count):
                await asyncio.sleep(max(0.0, start + i / rate_per_s - loop.time()))
                group.create_task(self.one(http))
                if i and i % max(1, int(rate_per_s * 30)) == 0:
                    progress(f"  {i} of {count} jobs created")

    async def faults(self, every_s: float, stop: asyncio.Event) -> None:
        index = 0
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), every_s)
            if stop.is_set():
                break
            name, rule = GLOBAL_FAULTS[index % len(GLOBAL_FAULTS)]
            await self.stack.sim_faults(rule)
            self.faults_armed[name] += 1
            index += 1

    async def quiesce(self, timeout_s: float) -> tuple[bool, float]:
        """Wait until every job is terminal and its event accepted by the subscriber."""
        http = self.stack.http()
        started = time.perf_counter()
        live = [launch.job_id for launch in self.launches]
        terminal: set[str] = set()
        deadline = started + timeout_s
        while time.perf_counter() < deadline:
            jobs = await fetch_jobs(http, live)
            terminal |= {j for j, (job, _) in jobs.items() if job["status"] in TERMINAL}
            live = [j for j in live if j not in terminal]
            if not live and terminal <= self.subscriber.delivered_jobs():
                return True, time.perf_counter() - started
            await asyncio.sleep(1.0)
        return False, time.perf_counter() - started


@dataclass
class Verdict:
    name: str
    violations: list[str]

    @property
    def ok(self) -> bool:
        return not self.violations


def expected_status(directive: str | None) -> str:
    return "failed" if directive == "#sim:fail" else "succeeded"


# A submit refused with 429/503 is requeued: `submitting → queued → submitting` may repeat.
RETRY_CYCLE = frozenset({("queued", "submitting"), ("submitting", "queued")})


def check_history(job: dict[str, Any], history: list[dict[str, Any]]) -> str | None:
    """Each transition once (the submit-retry cycle aside), a continuous chain from
    creation, versions 1..n, at most one terminal event, ending where the job is."""
    pairs = [(e["from_status"], e["to_status"]) for e in history]
    once = [p for p in pairs if p not in RETRY_CYCLE]
    versions = [e["version"] for e in history]
    if len(once) != len(set(once)):
        return f"a transition repeated: {pairs}"
    if [p[0] for p in pairs] != [None, *[p[1] for p in pairs[:-1]]]:
        return f"the chain breaks: {pairs}"
    if versions != list(range(1, len(history) + 1)):
        return f"versions {versions}"
    if sum(1 for p in pairs if p[1] in TERMINAL) > 1:
        return f"more than one terminal event: {pairs}"
    if history and (pairs[-1][1] != job["status"] or versions[-1] != job["version"]):
        return f"history ends at {pairs[-1][1]} v{versions[-1]}, job is {job['status']}"
    return None


def submit_retries(history: list[dict[str, Any]]) -> int:
    return sum(1 for e in history if (e["from_status"], e["to_status"]) == ("submitting", "queued"))


async def verdicts(soak: Soak) -> tuple[list[Verdict], dict[str, Any]]:
    http = soak.stack.http()
    ids = [launch.job_id for launch in soak.launches]
    jobs = await fetch_jobs(http, ids, with_events=True)
    tasks_per_job = Counter(
        t.idempotency_key or "?" for t in soak.stack.simulator.simulator.store.all()
    )
    arrivals: dict[str, list[Any]] = defaultdict(list)
    for arrival in soak.subscriber.arrivals:
        if arrival.job_id:
            arrivals[arrival.job_id].append(arrival)

    terminal, outcome, twice, history, delivery = [], [], [], [], []
    for job_id in ids:
        job, events = jobs[job_id]
        status, directive = job["status"], soak.directive_of[job_id]
        if status not in TERMINAL:
            terminal.append(f"{job_id} is {status}")
        elif status != expected_status(directive):
            outcome.append(f"{job_id} ({directive}) ended {status}")
        if tasks_per_job[job_id] > 1:
            twice.append(f"{job_id} has {tasks_per_job[job_id]} upstream tasks")
        if problem := check_history(job, events):
            history.append(f"{job_id}: {problem}")
        if status in TERMINAL:
            got = arrivals.get(job_id, [])
            ids_seen = {a.webhook_id for a in got}
            types = {a.event_type for a in got}
            if not any(200 <= a.answered < 300 for a in got):
                delivery.append(f"{job_id} ({status}): {len(got)} sends, none accepted")
            elif len(ids_seen) != 1:
                delivery.append(f"{job_id}: webhook-ids {sorted(ids_seen)}")
            elif types != {f"job.{status}"}:
                delivery.append(f"{job_id} is {status} but got {sorted(types)}")
    results = [
        Verdict("every job terminal", terminal),
        Verdict("outcome as directed", outcome),
        Verdict("no job submitted upstream twice", twice),
        Verdict("event history: each transition once, versions 1..n", history),
        Verdict("terminal event delivered, one webhook-id per job", delivery),
        Verdict("API accepted every create", soak.api_errors),
    ]
    facts = {
        "jobs": jobs,
        "tasks_per_job": tasks_per_job,
        "arrivals": arrivals,
    }
    return results, facts


def summary(
    soak: Soak,
    results: Sequence[Verdict],
    facts: dict[str, Any],
    *,
    minutes: float,
    rate: float,
    quiet: tuple[bool, float],
    database: str,
) -> str:
    jobs: dict[str, tuple[dict[str, Any], list[Any]]] = facts["jobs"]
    statuses = Counter(job["status"] for job, _ in jobs.values())
    directives = Counter(soak.directive_of.values())
    tasks_per_job: Counter[str] = facts["tasks_per_job"]
    sim = soak.stack.simulator.simulator
    arrivals = soak.subscriber.arrivals
    refused = sum(1 for a in arrivals if a.answered >= 500)
    redelivered = sum(1 for got in facts["arrivals"].values() if len(got) > 1)
    no_task = sum(1 for job_id in jobs if tasks_per_job[job_id] == 0)
    requeued = sum(1 for _, history in jobs.values() if submit_retries(history))
    accepted_at: dict[str, float] = {}
    for a in arrivals:
        if a.job_id and 200 <= a.answered < 300:
            accepted_at.setdefault(a.job_id, a.at)
    latencies = {
        directive or "(none)": [
            (accepted_at[launch.job_id] - launch.posted_at) * 1000
            for launch in soak.launches
            if launch.job_id in accepted_at and soak.directive_of[launch.job_id] == directive
        ]
        for directive, _ in DIRECTIVES
    }
    lines = [
        f"### Soak: {minutes:g} min at {rate:g} jobs/s, {database}",
        "",
        machine.stamp_markdown(database),
        f"- **jobs created**: {len(soak.launches)}; by directive: "
        + ", ".join(f"`{d or 'none'}` {n}" for d, n in directives.most_common()),
        "- **final status**: " + ", ".join(f"{s} {n}" for s, n in statuses.most_common()),
        f"- **upstream**: {sim.store.create_calls} create calls, {len(sim.store.all())} tasks "
        f"({no_task} jobs without a task); {requeued} jobs had their submit requeued after a "
        "refused create",
        "- **global faults armed**: "
        + (", ".join(f"{name} ×{n}" for name, n in soak.faults_armed.items()) or "none"),
        f"- **subscriber**: {len(arrivals)} sends received, {refused} answered 500 on purpose, "
        f"{redelivered} jobs delivered more than once",
        f"- **quiescence**: {'reached' if quiet[0] else 'NOT reached'} "
        f"{quiet[1]:.1f} s after the stream ended",
        "",
        "`POST` → first accepted delivery, by directive:",
        "",
        markdown_table(
            [summarize(f"`{name}`", values) for name, values in latencies.items() if values]
        ),
        "",
        "| invariant | result |",
        "|---|---|",
    ]
    for verdict in results:
        shown = "; ".join(verdict.violations[:3])
        more = f" (+{len(verdict.violations) - 3} more)" if len(verdict.violations) > 3 else ""
        lines.append(f"| {verdict.name} | {'ok' if verdict.ok else 'VIOLATED: ' + shown + more} |")
    problems = soak.stack.log_problems()
    lines += [
        "",
        f"- **gateway log**: {len(problems)} ERROR/Traceback lines ({soak.stack.log_path})",
    ]
    lines += [f"  - `{line[:160]}`" for line in problems[:5]]
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> int:
    minutes, rate = args.minutes, args.rate
    duration_s = minutes * 60
    server = await asyncio.to_thread(server_url)
    database = await machine.database_label(server)
    sim = sim_config(
        pending_time_s=0.2, processing_time_s=0.6, callback_retry_delays_s=(0.2, 0.5, 1.0)
    )
    budget_s = duration_s + args.quiesce + 120.0
    async with (
        asyncio.timeout(budget_s),
        running_media() as media,
        running_stack(
            server, sim, media, log_dir=args.log_dir, label="soak", overrides=SOAK_OVERRIDES
        ) as stack,
        running_subscriber(fail_fraction=args.fail_fraction, seed=args.seed) as subscriber,
    ):
        http = stack.http()
        created = await http.post("/v1/webhook-endpoints", json={"url": subscriber.url})
        if created.status_code != 201:
            raise BenchError(f"endpoint refused: {created.status_code} {created.text}")
        soak = Soak(stack, subscriber, random.Random(args.seed))
        progress(f"soak: {minutes:g} min at {rate:g} jobs/s, faults every {args.fault_every:g} s")
        stop = asyncio.Event()
        faults = asyncio.create_task(soak.faults(args.fault_every, stop))
        try:
            await soak.stream(duration_s, rate)
        finally:
            stop.set()
            await faults
            await stack.sim_faults(None)
        progress(f"stream done ({len(soak.launches)} jobs); waiting for quiescence")
        quiet = await soak.quiesce(args.quiesce)
        await asyncio.sleep(2.0)  # let late duplicate deliveries land before judging them
        progress("checking invariants")
        results, facts = await verdicts(soak)
        print(
            summary(
                soak, results, facts, minutes=minutes, rate=rate, quiet=quiet, database=database
            )
        )
    return 0 if all(v.ok for v in results) else 1


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__)
    parser.add_argument("--minutes", type=float, default=3.0, help="length of the job stream")
    parser.add_argument("--rate", type=float, default=2.0, help="jobs per second")
    parser.add_argument("--seed", type=int, default=1, help="random seed (faults, 500s)")
    parser.add_argument(
        "--fail-fraction", type=float, default=0.2, help="share of deliveries answered 500"
    )
    parser.add_argument("--fault-every", type=float, default=10.0, help="seconds between faults")
    parser.add_argument(
        "--quiesce", type=float, default=120.0, help="longest wait for quiescence, seconds"
    )
    parser.add_argument(
        "--log-dir", type=Path, default=Path(tempfile.gettempdir()) / "motion-gateway-bench"
    )
    args = parser.parse_args(argv)
    if not 0 < args.minutes <= 120 or not 0 < args.rate <= 50:
        parser.error("--minutes must be in (0, 120] and --rate in (0, 50]")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        return asyncio.run(run(args))
    except TimeoutError:
        print("soak: the run exceeded its time budget", file=sys.stderr)
        return 2
    except (BenchError, httpx.HTTPError) as exc:
        print(f"soak: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
