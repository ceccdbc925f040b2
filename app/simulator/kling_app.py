"""The simulator app on the official Kling wire (`SimulatorConfig(wire="kling")`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.simulator.config import SimulatorConfig
from app.simulator.errors import SimulatorError
from app.simulator.kling_admin import build_kling_admin_router
from app.simulator.kling_router import build_kling_router
from app.simulator.kling_service import KlingSimulator
from app.simulator.kling_wire import make_kling_handler


def create_kling_app(config: SimulatorConfig) -> FastAPI:
    """A fresh simulated Kling API; `app.state.simulator` is its `KlingSimulator`."""
    sim = KlingSimulator(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await sim.startup()
        try:
            yield
        finally:
            await sim.shutdown()

    app = FastAPI(title="motion-gateway upstream simulator (Kling wire format)", lifespan=lifespan)
    app.state.simulator = sim
    app.add_exception_handler(SimulatorError, make_kling_handler())
    app.include_router(build_kling_router(sim))
    app.include_router(build_kling_admin_router(sim))
    return app
