"""The simulator app factory: one core, and the wire `SimulatorConfig.wire` names."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse

from app.simulator.admin import build_admin_router
from app.simulator.config import SimulatorConfig
from app.simulator.errors import SimulatorError
from app.simulator.service import Simulator
from app.simulator.wire import Wire
from app.simulator.wires import evolink, kling

# Every wire the simulator speaks, by `SimulatorConfig.wire`.
WIRES: dict[str, Wire] = {wire.name: wire for wire in (evolink.WIRE, kling.WIRE)}


def _error_handler(sim: Simulator) -> Callable[[Request, Exception], Awaitable[JSONResponse]]:
    async def handle(_: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, SimulatorError):  # registered for this class only
            raise exc
        body = sim.wire.error_body(exc, sim.config)
        return JSONResponse(body, status_code=exc.status, headers=exc.headers)

    return handle


def create_simulator_app(config: SimulatorConfig | None = None) -> FastAPI:
    """A fresh simulated upstream; `app.state.simulator` is its `Simulator` handle."""
    config = config or SimulatorConfig()
    sim = Simulator(config, WIRES[config.wire])

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await sim.startup()
        try:
            yield
        finally:
            await sim.shutdown()

    app = FastAPI(title=f"motion-gateway upstream simulator ({sim.wire.title})", lifespan=lifespan)
    app.state.simulator = sim
    app.add_exception_handler(SimulatorError, _error_handler(sim))
    app.include_router(sim.wire.routes(sim))
    app.include_router(build_admin_router(sim))

    @app.api_route("/results/{task_id}.mp4", methods=["GET", "HEAD"])
    async def get_result(task_id: str) -> Response:
        """The result video, on every wire; the link expires `result_ttl_s` after completion."""
        return Response(content=await sim.result(task_id), media_type="video/mp4")

    return app
