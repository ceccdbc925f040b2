"""The simulator's own control API under `/_sim`, for tests and demos, on every wire."""

# No `from __future__ import annotations`: FastAPI reads the faults body model from the
# annotation, and the wire picks that model at runtime.

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict

from app.simulator.service import Simulator
from app.simulator.tasks import SimTask


class FailBody(BaseModel):
    """How `POST /_sim/tasks/{id}/fail` fails the task; `code: null` leaves out `error`."""

    model_config = ConfigDict(extra="forbid")

    code: str | None = "generation_failed"
    message: str | None = None


def _summary(sim: Simulator, task: SimTask) -> dict[str, Any]:
    return {
        "id": task.id,
        **sim.wire.summary(task, sim.config),
        "callback_url": task.callback_url,
        "create_calls": task.create_calls,
        "callback_attempts": len(task.callback_attempts),
        "callback_log": [vars(attempt) for attempt in task.callback_attempts],
        "callback_dropped": task.callback_dropped,
        "result_url": task.result_url,
    }


def build_admin_router(sim: Simulator) -> APIRouter:
    router = APIRouter(prefix="/_sim", tags=["simulator admin"])
    rules_model = sim.wire.fault_rules

    @router.get("/faults")
    async def get_faults() -> dict[str, Any]:
        """The global fault rules in force, with the matches each has left."""
        return sim.faults.describe()

    @router.post("/faults")
    async def set_faults(rules: rules_model) -> dict[str, Any]:  # type: ignore[valid-type]
        """Install fault rules; each scope given replaces that scope's rule."""
        sim.faults.install(rules)
        return sim.faults.describe()

    @router.delete("/faults")
    async def reset_faults() -> dict[str, Any]:
        """Remove every global fault rule."""
        sim.faults.reset()
        return sim.faults.describe()

    @router.get("/tasks")
    async def list_tasks() -> dict[str, Any]:
        """Every task with its create calls and callback attempts."""
        tasks = [_summary(sim, task) for task in sim.store.all()]
        return {"create_calls": sim.store.create_calls, "tasks": tasks}

    @router.get("/tasks/{task_id}")
    async def get_task(task_id: str) -> dict[str, Any]:
        """One task's summary, the create request it came from, and its wire body."""
        task = sim.task(task_id)
        return {**_summary(sim, task), "request": task.create_body, "body": sim.render(task)}

    @router.post("/tasks/{task_id}/complete")
    async def complete_task(task_id: str) -> dict[str, Any]:
        """Complete the task now (its callback follows as usual)."""
        task = sim.unfinished_task(task_id)
        sim.lifecycle.complete(task)
        return sim.render(task)

    @router.post("/tasks/{task_id}/fail")
    async def fail_task(task_id: str, body: FailBody | None = None) -> dict[str, Any]:
        """Fail the task now with the given error (default `generation_failed`)."""
        task = sim.unfinished_task(task_id)
        fail = body or FailBody()
        sim.lifecycle.fail(task, fail.code, fail.message)
        return sim.render(task)

    @router.post("/tasks/{task_id}/cancel")
    async def cancel_task(task_id: str) -> dict[str, Any]:
        """Cancel the task now (neither upstream has a public cancel; admins can)."""
        task = sim.unfinished_task(task_id)
        sim.lifecycle.cancel(task)
        return sim.render(task)

    return router
