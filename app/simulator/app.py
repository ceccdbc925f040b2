"""The simulator app factory and a programmatic runner for the CLI."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI

from app.simulator.admin import build_admin_router
from app.simulator.config import SimulatorConfig
from app.simulator.errors import SimulatorError, make_handler
from app.simulator.kling_app import create_kling_app
from app.simulator.router import build_router
from app.simulator.service import Simulator

# In-flight requests (a hanging `timeout` fault) get this long after Ctrl+C.
_GRACEFUL_SHUTDOWN_S = 2


def create_simulator_app(config: SimulatorConfig | None = None) -> FastAPI:
    """A fresh simulated upstream; `app.state.simulator` is its `Simulator` handle."""
    config = config or SimulatorConfig()
    if config.wire == "kling":
        return create_kling_app(config)
    sim = Simulator(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await sim.startup()
        try:
            yield
        finally:
            await sim.shutdown()

    app = FastAPI(
        title="motion-gateway upstream simulator (aggregator wire format)",
        lifespan=lifespan,
    )
    app.state.simulator = sim
    app.add_exception_handler(SimulatorError, make_handler(sim.config.error_code_style))
    app.include_router(build_router(sim))
    app.include_router(build_admin_router(sim))
    return app


def run_simulator(
    host: str = "127.0.0.1", port: int = 8001, config: SimulatorConfig | None = None
) -> None:
    """Serve the simulator until interrupted (what `motion-gateway simulator` runs)."""
    app = create_simulator_app(config)
    uvicorn.run(app, host=host, port=port, timeout_graceful_shutdown=_GRACEFUL_SHUTDOWN_S)
