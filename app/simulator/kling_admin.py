"""The simulator's control API under `/_sim` on the Kling wire: Kling bodies and faults."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from app.simulator.admin import FailBody
from app.simulator.kling_faults import KlingFaultRules
from app.simulator.kling_service import KlingSimulator
from app.simulator.kling_wire import KlingTask, kling_status, render_kling_task


def _summary(task: KlingTask) -> dict[str, Any]:
    return {
        "id": task.id,
        "status": kling_status(task),
        "external_task_id": task.external_task_id,
        "model_name": task.model,
        "mode": task.quality,
        "callback_url": task.callback_url,
        "create_calls": task.create_calls,
        "callback_attempts": len(task.callback_attempts),
        "callback_log": [vars(attempt) for attempt in task.callback_attempts],
        "callback_dropped": task.callback_dropped,
        "result_url": task.result_url,
    }


def build_kling_admin_router(sim: KlingSimulator) -> APIRouter:
    router = APIRouter(prefix="/_sim", tags=["simulator admin"])

    @router.get("/faults")
    async def get_faults() -> dict[str, Any]:
        """The global fault rules in force, with the matches each has left."""
        return sim.faults.describe()

    @router.post("/faults")
    async def set_faults(rules: KlingFaultRules) -> dict[str, Any]:
        """Install fault rules (Kling `code`s and HTTP 200 allowed); a scope replaces its rule."""
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
        tasks = [_summary(task) for task in sim.store.all() if isinstance(task, KlingTask)]
        return {"create_calls": sim.store.create_calls, "tasks": tasks}

    @router.get("/tasks/{task_id}")
    async def get_task(task_id: str) -> dict[str, Any]:
        """One task's summary and its wire body."""
        task = sim.kling_task(task_id)
        return {**_summary(task), "body": render_kling_task(task)}

    @router.post("/tasks/{task_id}/complete")
    async def complete_task(task_id: str) -> dict[str, Any]:
        """Succeed the task now (its callback follows as usual)."""
        task = sim.kling_task(task_id, unfinished=True)
        sim.lifecycle.complete(task)
        return render_kling_task(task)

    @router.post("/tasks/{task_id}/fail")
    async def fail_task(task_id: str, body: FailBody | None = None) -> dict[str, Any]:
        """Fail the task now; `message` becomes its `task_status_msg`."""
        task = sim.kling_task(task_id, unfinished=True)
        fail = body or FailBody()
        sim.lifecycle.fail(task, fail.code or "generation_failed", fail.message)
        return render_kling_task(task)

    @router.post("/tasks/{task_id}/cancel")
    async def cancel_task(task_id: str) -> dict[str, Any]:
        """Cancel the task now (Kling has no cancel: it then shows as `failed`)."""
        task = sim.kling_task(task_id, unfinished=True)
        sim.lifecycle.cancel(task)
        return render_kling_task(task)

    return router
