"""`make fuzz`: schemathesis, every check on, against a live gateway on loopback.

A fresh database (DATABASE_URL's server, else the embedded one), the simulator, and the
gateway as `motion-gateway serve` runs it (its own process). Two runs share the time
budget: the whole API with a client key, then the admin routes with an admin key.

    make fuzz                      # FUZZ_SECONDS=180 in all
    FUZZ_SECONDS=600 make fuzz
    FUZZ_SEED=7 make fuzz          # repeat a run

Exit status 0 when neither run found a failure; the summary names what each found.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from app.auth.service import create_client_with_key
from app.db.engine import make_engine, make_session_factory, transaction
from bench.media import running_media
from bench.stack import running_stack, sim_config
from tests.support.database import server_url

DEFAULT_SECONDS = 180


@dataclass
class FuzzRun:
    label: str
    returncode: int
    report: dict[str, object]

    def summary(self) -> str:
        keys = ("operations", "cases", "server_errors", "failures", "examples")
        counts = {k: self.report.get(k) for k in keys}
        return f"{self.label}: exit {self.returncode}, {counts}"


def schemathesis_bin() -> str:
    found = Path(sys.executable).with_name("schemathesis")
    return str(found) if found.exists() else shutil.which("schemathesis") or "schemathesis"


async def run_schemathesis(
    base_url: str,
    api_key: str,
    *,
    label: str,
    extra: list[str],
    quiet: bool = False,
) -> FuzzRun:
    """One `schemathesis run` against `base_url`'s served schema; its JSON report read back."""
    folder = Path(tempfile.mkdtemp(prefix=f"mgw-fuzz-{label}-"))
    ndjson = folder / "events.ndjson"
    args = [
        f"{base_url}/openapi.json",
        "--url",
        base_url,
        "--header",
        f"Authorization: Bearer {api_key}",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(ndjson),
        "--workers",
        "1",
        *extra,
    ]
    proc = await asyncio.create_subprocess_exec(
        schemathesis_bin(),
        "run",
        *args,
        stdout=asyncio.subprocess.PIPE if quiet else None,
        stderr=asyncio.subprocess.STDOUT if quiet else None,
        env={**os.environ, "SCHEMATHESIS_HOOKS": "", "NO_COLOR": "1"},
    )
    output, _ = await proc.communicate()
    report = _read_report(ndjson)
    if quiet and proc.returncode:
        report["output"] = (output or b"").decode(errors="replace")[-20000:]
    if not os.environ.get("FUZZ_KEEP_REPORTS"):
        shutil.rmtree(folder, ignore_errors=True)
    return FuzzRun(label, proc.returncode or 0, report)


def _read_report(path: Path) -> dict[str, object]:
    """From the ndjson events schemathesis writes: operations tested, cases run, server
    errors (5xx answers), and failures by check, each with one example."""
    operations: set[str] = set()
    cases = server_errors = 0
    failures: dict[str, int] = {}
    examples: dict[str, str] = {}
    if not path.exists():
        return {"operations": 0, "cases": 0, "server_errors": 0, "failures": {"no report": 1}}
    for line in path.read_text().splitlines():
        finished = json.loads(line).get("ScenarioFinished")
        if not finished:
            continue
        recorder = finished.get("recorder") or {}
        if recorder.get("cases"):
            operations.add(recorder.get("label", "?"))
        cases += len(recorder.get("cases") or {})
        for interaction in (recorder.get("interactions") or {}).values():
            response = interaction.get("response") or {}
            server_errors += int(response.get("status_code", 0) >= 500)
        for case_id, checks in (recorder.get("checks") or {}).items():
            for check in checks:
                if str(check.get("status", "")).lower() != "failure":
                    continue
                name = check.get("name", "?")
                failures[name] = failures.get(name, 0) + 1
                request = ((recorder.get("interactions") or {}).get(case_id) or {}).get("request")
                status = (
                    ((recorder.get("interactions") or {}).get(case_id) or {}).get("response") or {}
                ).get("status_code")
                if request and name not in examples:
                    examples[name] = f"{request.get('method')} {request.get('uri')} -> {status}"
    return {
        "operations": len(operations),
        "cases": cases,
        "server_errors": server_errors,
        "failures": failures,
        "examples": examples,
    }


async def _admin_key(database_url: str) -> str:
    engine = make_engine(database_url, pool_size=1)
    try:
        async with transaction(make_session_factory(engine)) as session:
            return (await create_client_with_key(session, name="fuzz-admin", admin=True)).api_key
    finally:
        await engine.dispose()


async def main() -> int:
    seconds = int(os.environ.get("FUZZ_SECONDS", DEFAULT_SECONDS))
    seed = os.environ.get("FUZZ_SEED")
    common = ["--checks", "all", "--max-time"]
    seeded = ["--seed", seed] if seed else []
    async with (
        running_media() as media,
        running_stack(server_url(), sim_config(), media, label="fuzz") as stack,
    ):
        admin = await _admin_key(stack.settings.database_url or "")
        runs = [
            await run_schemathesis(
                stack.base_url,
                stack.key.api_key,
                label="client key, every route",
                extra=[*common, str(max(1, seconds * 2 // 3)), *seeded],
            ),
            await run_schemathesis(
                stack.base_url,
                admin,
                label="admin key, admin routes",
                extra=[
                    *common,
                    str(max(1, seconds // 3)),
                    "--include-path-regex",
                    "^/v1/admin/",
                    *seeded,
                ],
            ),
        ]
        problems = stack.log_problems()
    print("\n== fuzz summary ==")
    for run in runs:
        print(run.summary())
    print(f"gateway log: {len(problems)} ERROR/Traceback lines")
    for line in problems[:20]:
        print("  ", line)
    return 0 if all(r.returncode == 0 for r in runs) and not problems else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
