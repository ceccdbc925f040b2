"""The simulator's core decisions: faults, create / query / result, whatever the wire."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from typing import Any

from app.simulator.callbacks import CallbackSender, check_callback_url
from app.simulator.config import SimulatorConfig
from app.simulator.errors import SimulatorError
from app.simulator.faults import Directives, FaultBook, RequestFault, parse_directives
from app.simulator.media import render_result_mp4
from app.simulator.tasks import Background, Lifecycle, SimTask, TaskStore, now_ms
from app.simulator.wire import CreateRequest, Wire


def _not_found(task_id: str) -> SimulatorError:
    return SimulatorError(404, f"task {task_id!r} not found", code="task_not_found")


class Simulator:
    """One simulated upstream: its wire, tasks, fault rules and callback sender.

    Built without I/O; `startup()` (from the app's lifespan) renders the result video
    and opens the callback client, `shutdown()` cancels timers and deliveries.
    """

    def __init__(self, config: SimulatorConfig, wire: Wire) -> None:
        self.config = config
        self.wire = wire
        self.store = TaskStore()
        self.faults = FaultBook()
        self.background = Background()
        self.sender = CallbackSender(config, wire, self.faults, self.background)
        self.lifecycle = Lifecycle(config, self.background, self.sender.status_changed)
        self._videos: dict[float, bytes] = {}
        self._stopping = asyncio.Event()

    async def startup(self) -> None:
        self._stopping.clear()
        await self._video(self.config.video_duration_s)
        await self.sender.open()

    def begin_shutdown(self) -> None:
        """Release hanging (timeout-fault) responses so the server can stop promptly."""
        self._stopping.set()

    async def shutdown(self) -> None:
        self.begin_shutdown()
        await self.background.aclose()
        await self.sender.aclose()

    async def _hang(self, rule: RequestFault) -> None:
        hang_s = rule.hang_s if rule.hang_s is not None else self.config.fault_hang_s
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(hang_s):
                await self._stopping.wait()

    def authenticate(self, authorization: str | None) -> str:
        return self.wire.authenticate(authorization, self.config)

    def render(self, task: SimTask) -> dict[str, Any]:
        return self.wire.render_task(task, self.config)

    async def create(
        self, api_key: str, raw_body: Any, base_url: str, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """The create answer, rendered before any early end (so it still says pending)."""
        self.store.create_calls += 1
        rule = self.faults.take_request("create")
        if rule is not None and rule.status is not None and not rule.create_anyway:
            raise self.wire.fault_error(rule)
        request = self.wire.parse_create(raw_body)
        directives = self._directives(request.prompt)
        if request.callback_url is not None:
            await check_callback_url(request.callback_url, self.config)
        self._check_external_id(api_key, request.external_task_id)
        task = self._existing(api_key, idempotency_key)
        if task is None:
            task = self._new_task(api_key, request, directives, idempotency_key, base_url)
        answer = self.wire.answer(self.render(task))
        if directives.early_callback and task.create_calls == 1:
            await self._finish_early(task)
        if rule is not None:
            await self._apply_late_fault(rule)
        return answer

    def _directives(self, prompt: str | None) -> Directives:
        try:
            return parse_directives(prompt)
        except ValueError as exc:
            raise SimulatorError(400, str(exc), code="invalid_parameter") from exc

    def _check_external_id(self, api_key: str, external_task_id: str | None) -> None:
        if external_task_id and self.store.find_by_external_id(api_key, external_task_id):
            # The answer names no task id: the upstream does not document one here.
            message = f"external_task_id {external_task_id!r} already exists"
            raise SimulatorError(400, message, code="invalid_parameter")

    def _existing(self, api_key: str, idempotency_key: str | None) -> SimTask | None:
        if not (self.config.honor_idempotency_key and idempotency_key):
            return None
        task = self.store.find_by_idempotency_key(api_key, idempotency_key)
        if task is not None:
            task.create_calls += 1
        return task

    def _new_task(
        self,
        api_key: str,
        request: CreateRequest,
        directives: Directives,
        idempotency_key: str | None,
        base_url: str,
    ) -> SimTask:
        config = self.config
        created_ms = now_ms()
        task = SimTask(
            id=self.wire.new_task_id(created_ms // 1000),
            api_key=api_key,
            model=request.model,
            quality=request.quality,
            created_at_ms=created_ms,
            updated_at_ms=created_ms,
            video_duration_s=directives.video_duration_s or config.video_duration_s,
            estimated_time_s=math.ceil(config.pending_time_s + config.processing_time_s),
            callback_url=request.callback_url,
            directives=directives,
            base_url=(config.public_base_url or base_url).rstrip("/"),
            # The result video's own id, in the wire's id form (Kling shows one).
            video_id=self.wire.new_task_id(created_ms // 1000),
            create_body=request.body,
            idempotency_key=idempotency_key,
            external_task_id=request.external_task_id,
        )
        self.store.add(task)
        self.sender.task_created(task)
        if not directives.early_callback:
            self.lifecycle.start(task)
        return task

    async def _finish_early(self, task: SimTask) -> None:
        """The race the gateway must survive: the end's callback lands before the create
        answer. Bounded by a submit callback plus the end's first attempt, each of which
        the receiver may stretch to its timeout."""
        self.lifecycle.finish_as_directed(task)
        bound_s = 2 * self.config.callback_timeout_s + task.directives.callback_delay_s + 1.0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(bound_s):
                await task.end_callback_tried.wait()

    async def _apply_late_fault(self, rule: RequestFault) -> None:
        """Faults that strike after the task exists: the ambiguous outcomes."""
        if rule.timeout:
            await self._hang(rule)
        else:
            raise self.wire.fault_error(rule)

    async def query(self, api_key: str, task_id: str) -> dict[str, Any]:
        rule = self.faults.take_request("query")
        if rule is not None and rule.status is not None:
            raise self.wire.fault_error(rule)
        # Kling's query takes an `external_task_id` in place of the task id.
        task = self.store.get(task_id) or self.store.find_by_external_id(api_key, task_id)
        if task is None or task.api_key != api_key:
            raise _not_found(task_id)
        if rule is not None:
            await self._hang(rule)
        return self.wire.answer(self.render(task))

    async def list_tasks(self, api_key: str) -> list[SimTask]:
        """The account's tasks, newest first; a `list` fault applies, else a `query` one."""
        rule = self.faults.take_request("list") or self.faults.take_request("query")
        if rule is not None:
            await self._apply_late_fault(rule)
        return [task for task in reversed(self.store.all()) if task.api_key == api_key]

    async def result(self, task_id: str) -> bytes:
        rule = self.faults.take_request("result")
        if rule is not None:
            await self._apply_late_fault(rule)
        task = self.store.get(task_id)
        if task is None or task.status != "completed" or task.finished_at is None:
            raise SimulatorError(404, "result not found", code="result_not_found")
        if time.monotonic() - task.finished_at >= self.config.result_ttl_s:
            raise SimulatorError(404, "result link has expired", code="result_expired")
        return await self._video(task.video_duration_s)

    async def _video(self, duration_s: float) -> bytes:
        """A clip as long as the task reports (encoded once per length, off the loop)."""
        video = self._videos.get(duration_s)
        if video is None:
            video = await asyncio.to_thread(render_result_mp4, duration_s)
            self._videos[duration_s] = video
        return video

    def task(self, task_id: str) -> SimTask:
        task = self.store.get(task_id)
        if task is None:
            raise _not_found(task_id)
        return task

    def unfinished_task(self, task_id: str) -> SimTask:
        task = self.task(task_id)
        if task.terminal:
            raise SimulatorError(409, f"task {task_id!r} is already {task.status}")
        return task
