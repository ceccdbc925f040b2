"""`motion-gateway`: serve, simulator, migrate, keys, jobs adopt."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, NoReturn, get_args

import typer
import uvicorn
from pydantic import ValidationError
from pydantic_settings import SettingsError

from app.money import MAX_BUDGET_USD, MIN_BUDGET_USD, PLACES
from app.settings import Role, Settings

cli = typer.Typer(
    no_args_is_help=True, help="motion-gateway: a gateway for Kling 3.0 Motion Control"
)
keys = typer.Typer(no_args_is_help=True, help="Manage API keys")
cli.add_typer(keys, name="keys")
jobs = typer.Typer(no_args_is_help=True, help="Operate on jobs")
cli.add_typer(jobs, name="jobs")

ROLES = get_args(Role)

BANNER = """
motion-gateway is up.
  API docs:     http://{host}:{port}/docs
  Readiness:    http://{host}:{port}/readyz
  Simulator:    {simulator}
  Get a key:    .venv/bin/motion-gateway keys create --name me
Press Ctrl-C to stop.
"""


def _server(app: Any, host: str, port: int, *, factory: bool = False) -> uvicorn.Server:
    from app.serving import server_config  # request heads capped at 64 KiB → 431

    config = server_config(
        app, host=host, port=port, factory=factory, log_config=None, lifespan="on"
    )
    return uvicorn.Server(config)


@cli.command()
def serve(
    role: Annotated[str, typer.Option(help="api | worker | all")] = "all",
    host: str = "127.0.0.1",
    port: int = 8000,
    with_simulator: Annotated[
        bool, typer.Option(help="Also run the simulator provider on --simulator-port")
    ] = False,
    simulator_port: int = 8001,
) -> None:
    """Run the gateway (API and/or workers)."""
    if role not in ROLES:
        raise typer.BadParameter(f"must be one of {', '.join(ROLES)}", param_hint="--role")
    settings = _settings(role=role)
    ports = [port, simulator_port] if with_simulator else [port]
    for busy in (p for p in ports if not _port_free(host, p)):
        _fail(f"port {busy} on {host} is already in use")
    from app.logging import configure_logging, held_secrets
    from app.main import create_app

    # Before uvicorn's first line: every line of the process goes through one chain.
    configure_logging(settings.log_level, json=settings.log_json, secrets=held_secrets(settings))

    servers = [_server(create_app(settings), host, port)]
    if with_simulator:
        servers.append(_simulator_server(host, simulator_port))
    banner = BANNER.format(
        host=host,
        port=port,
        simulator=f"http://{host}:{simulator_port}" if with_simulator else "(not started)",
    )
    _exit_cleanly_on_sigterm()
    if not asyncio.run(_serve_all(servers, banner)):
        _fail("the service did not start (see the log above)")


def _fail(message: str, code: int = 2) -> NoReturn:
    """One clear line on stderr, never a traceback."""
    typer.echo(f"motion-gateway: {message}", err=True)
    raise typer.Exit(code)


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        _fail("invalid settings: " + "; ".join(_describe(e) for e in exc.errors()))
    except SettingsError as exc:  # a value that is not even JSON; the cause says where
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        _fail(f"invalid settings: {exc}{cause}")


def _describe(error: Any) -> str:
    field = str(error["loc"][0]) if error.get("loc") else ""
    name = {"database_url": "DATABASE_URL", "public_base_url": "PUBLIC_BASE_URL"}.get(
        field, f"MGW_{field.upper()}" if field else "settings"
    )
    where = ".".join(str(part) for part in error["loc"][1:])
    return f"{name}{'[' + where + ']' if where else ''}: {error['msg']}"


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def _exit_cleanly_on_sigterm() -> None:
    """Uvicorn shuts down gracefully on SIGTERM, then re-raises it; the default action would
    kill the process without running `atexit`, leaving the embedded PostgreSQL behind."""

    def terminate(signum: int, _frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, terminate)


async def _serve_all(servers: list[uvicorn.Server], banner: str) -> bool:
    """Run every server in one loop; the banner once all of them are ready; Ctrl-C or
    SIGTERM (handled by uvicorn) stops them all. False when one failed to start."""
    tasks = [asyncio.create_task(_serve(s)) for s in servers]
    announce = asyncio.create_task(_announce_when_started(servers, banner))
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    announce.cancel()
    for server in servers:
        server.should_exit = True
    await asyncio.gather(*tasks, return_exceptions=True)
    return all(server.started for server in servers)


async def _serve(server: uvicorn.Server) -> None:
    # Uvicorn calls sys.exit(1) when it cannot start (a bind error, a failed lifespan).
    with contextlib.suppress(SystemExit):
        await server.serve()


async def _announce_when_started(servers: list[uvicorn.Server], banner: str) -> None:
    while not all(server.started for server in servers):  # noqa: ASYNC110 - uvicorn has no event
        await asyncio.sleep(0.05)
    typer.echo(banner)


def _simulator_server(host: str, port: int) -> uvicorn.Server:
    from app.simulator.app import create_simulator_app
    from app.simulator.config import SimulatorConfig

    dev = {"public_base_url": f"http://{host}:{port}", "allow_insecure_callbacks": True}
    return _server(create_simulator_app(SimulatorConfig.from_env(dev)), host, port)


@cli.command()
def simulator(
    host: str = "127.0.0.1",
    port: int = 8001,
    wire: Annotated[
        str | None,
        typer.Option(
            help="evolink (the aggregator API, the default) | kling (the official Kling API)"
        ),
    ] = None,
    allow_insecure_callbacks: Annotated[
        bool | None, typer.Option(help="Accept http/loopback callback URLs (dev; the default)")
    ] = None,
) -> None:
    """Run the upstream simulator on its own; every knob also reads `MGW_SIM_<FIELD>`."""
    if wire not in (None, "evolink", "kling"):
        raise typer.BadParameter("--wire must be evolink or kling", param_hint="--wire")
    from app.simulator.app import create_simulator_app
    from app.simulator.config import SimulatorConfig

    dev = {"public_base_url": f"http://{host}:{port}", "allow_insecure_callbacks": True}
    flags = {"wire": wire, "allow_insecure_callbacks": allow_insecure_callbacks}
    config = SimulatorConfig.from_env(dev, **{k: v for k, v in flags.items() if v is not None})
    asyncio.run(_server(create_simulator_app(config), host, port).serve())


@cli.command()
def migrate() -> None:
    """Apply every database migration."""
    from app.db.engine import resolve_database_url
    from app.db.migrate import upgrade_to_head

    url = resolve_database_url(_settings())
    asyncio.run(upgrade_to_head(url))
    typer.echo("database is at the latest migration")


@keys.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who the key is for")],
    admin: Annotated[bool, typer.Option(help="Grant the admin scope")] = False,
    budget_usd: Annotated[str | None, typer.Option(help="Monthly budget in USD")] = None,
) -> None:
    """Create a client and its API key; the key and webhook secret are shown only once."""
    budget = _budget(budget_usd) if budget_usd is not None else None
    _settings()  # a malformed setting is one clear line before any work
    issued = asyncio.run(_create_key(name, admin, budget))
    typer.echo(f"client_id:      {issued[0]}")
    typer.echo(f"api_key:        {issued[1]}")
    typer.echo(f"webhook_secret: {issued[2]}")


def _budget(raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        _fail(f"--budget-usd must be a number of dollars, not {raw!r}")
    if not value.is_finite() or not MIN_BUDGET_USD <= value <= MAX_BUDGET_USD:
        _fail(f"--budget-usd must be between {MIN_BUDGET_USD} and {MAX_BUDGET_USD}")
    return value.quantize(PLACES)


async def _create_key(name: str, admin: bool, budget: Decimal | None) -> tuple[str, str, str]:
    from app.auth.service import create_client_with_key
    from app.db.engine import make_engine, make_session_factory, resolve_database_url, transaction
    from app.db.migrate import upgrade_to_head

    url = await asyncio.to_thread(resolve_database_url, Settings())
    await upgrade_to_head(url)
    engine = make_engine(url, pool_size=1)
    try:
        async with transaction(make_session_factory(engine)) as session:
            issued = await create_client_with_key(
                session, name=name, admin=admin, budget_usd=budget
            )
    finally:
        await engine.dispose()
    return issued.client_id, issued.api_key, issued.webhook_secret


@jobs.command("adopt")
def jobs_adopt(
    job_id: Annotated[str, typer.Argument(help="The job whose submit outcome is unknown")],
    task_id: Annotated[
        str | None, typer.Argument(help="The upstream task found for it (checked first)")
    ] = None,
    ruled_out: Annotated[
        bool, typer.Option("--ruled-out", help="The provider made no task: fail the job")
    ] = False,
    reason: Annotated[str | None, typer.Option(help="Why it was ruled out")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the job as JSON")] = False,
) -> None:
    """Settle a job whose submit outcome is unknown, as POST /v1/admin/jobs/{id}/adopt."""
    if (task_id is None) == (not ruled_out):
        _fail("give exactly one of TASK_ID or --ruled-out")
    settings = _settings()
    job = asyncio.run(_adopt(settings, job_id, task_id, reason))
    if as_json:
        typer.echo(json.dumps(job, indent=2))
        return
    provider = job.get("provider") or {}
    typer.echo(f"{job['id']}  {job['status']}  task={provider.get('task_id')}")
    typer.echo(f"cost: billed {job['cost']['billed']}  at_risk {job['cost']['at_risk']} USD")


async def _adopt(
    settings: Settings, job_id: str, task_id: str | None, reason: str | None
) -> dict[str, Any]:
    from app.errors import DomainError
    from app.jobs import unknown
    from app.jobs.views import to_out
    from app.main import build_runtime

    rt = await build_runtime(settings)
    try:
        if task_id is not None:
            job = await unknown.operator_adopt(rt, job_id, task_id)
        else:
            job = await unknown.rule_out(rt, job_id, reason)
        out: dict[str, Any] = to_out(job).model_dump(mode="json")
        return out
    except DomainError as exc:
        _fail(f"{exc.code}: {exc.detail}", 1)
    finally:
        for client in (rt.upstream_client, rt.webhook_client, rt.media_client):
            await client.aclose()
        await rt.engine.dispose()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
