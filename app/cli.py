"""`motion-gateway`: serve, simulator, migrate, keys."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Annotated, Any

import typer
import uvicorn

from app.settings import Settings

cli = typer.Typer(
    no_args_is_help=True, help="motion-gateway: a gateway for Kling 3.0 Motion Control"
)
keys = typer.Typer(no_args_is_help=True, help="Manage API keys")
cli.add_typer(keys, name="keys")

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
    settings = Settings(role=role)
    from app.main import create_app

    servers = [_server(create_app(settings), host, port)]
    if with_simulator:
        servers.append(_simulator_server(host, simulator_port))
    typer.echo(
        BANNER.format(
            host=host,
            port=port,
            simulator=f"http://{host}:{simulator_port}" if with_simulator else "(not started)",
        )
    )
    asyncio.run(_serve_all(servers))


async def _serve_all(servers: list[uvicorn.Server]) -> None:
    """Run every server in one loop; Ctrl-C (handled by uvicorn) stops them all."""
    tasks = [asyncio.create_task(s.serve()) for s in servers]
    done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    for server in servers:
        server.should_exit = True
    await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        task.result()


def _simulator_server(host: str, port: int) -> uvicorn.Server:
    from app.simulator.app import create_simulator_app
    from app.simulator.config import SimulatorConfig

    config = SimulatorConfig(public_base_url=f"http://{host}:{port}", allow_insecure_callbacks=True)
    return _server(create_simulator_app(config), host, port)


@cli.command()
def simulator(
    host: str = "127.0.0.1",
    port: int = 8001,
    wire: Annotated[
        str, typer.Option(help="evolink (the aggregator API) | kling (the official Kling API)")
    ] = "evolink",
    allow_insecure_callbacks: Annotated[
        bool, typer.Option(help="Accept http/loopback callback URLs (dev)")
    ] = True,
) -> None:
    """Run the upstream simulator on its own."""
    if wire not in ("evolink", "kling"):
        raise typer.BadParameter("--wire must be evolink or kling", param_hint="--wire")
    from app.simulator.app import create_simulator_app
    from app.simulator.config import SimulatorConfig

    config = SimulatorConfig(
        wire="kling" if wire == "kling" else "evolink",
        public_base_url=f"http://{host}:{port}",
        allow_insecure_callbacks=allow_insecure_callbacks,
    )
    asyncio.run(_server(create_simulator_app(config), host, port).serve())


@cli.command()
def migrate() -> None:
    """Apply every database migration."""
    from app.db.engine import resolve_database_url
    from app.db.migrate import upgrade_to_head

    url = resolve_database_url(Settings())
    asyncio.run(upgrade_to_head(url))
    typer.echo("database is at the latest migration")


@keys.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who the key is for")],
    admin: Annotated[bool, typer.Option(help="Grant the admin scope")] = False,
    budget_usd: Annotated[float | None, typer.Option(help="Monthly budget in USD")] = None,
) -> None:
    """Create a client and its API key; the key and webhook secret are shown only once."""
    issued = asyncio.run(_create_key(name, admin, budget_usd))
    typer.echo(f"client_id:      {issued[0]}")
    typer.echo(f"api_key:        {issued[1]}")
    typer.echo(f"webhook_secret: {issued[2]}")


async def _create_key(name: str, admin: bool, budget_usd: float | None) -> tuple[str, str, str]:
    from app.auth.service import create_client_with_key
    from app.db.engine import make_engine, make_session_factory, resolve_database_url, transaction
    from app.db.migrate import upgrade_to_head

    url = await asyncio.to_thread(resolve_database_url, Settings())
    await upgrade_to_head(url)
    engine = make_engine(url, pool_size=1)
    try:
        async with transaction(make_session_factory(engine)) as session:
            budget = Decimal(str(budget_usd)) if budget_usd is not None else None
            issued = await create_client_with_key(
                session, name=name, admin=admin, budget_usd=budget
            )
    finally:
        await engine.dispose()
    return issued.client_id, issued.api_key, issued.webhook_secret


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
