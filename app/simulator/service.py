"""The simulator's decisions: authentication, faults, create / query / result."""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from typing import Any

import httpx

from app.net.client import ssl_context_for
from app.simulator.callbacks import CallbackSender, check_callback_url
from app.simulator.config import SimulatorConfig
from app.simulator.errors import SimulatorError
from app.simulator.faults import Directives, FaultBook, RequestFault, parse_directives
from app.simulator.media import render_result_mp4
from app.simulator.tasks import Background, Lifecycle, SimTask, TaskStore, new_task_id
from app.simulator.wire import CreateBody, parse_create_body, render_task


def _fault_error(rule: RequestFault) -> SimulatorError:
    status = rule.status or 500
    headers: dict[str, str] = {}
    if rule.retry_after is not None:
        headers["Retry-After"] = str(math.ceil(rule.retry_after))
    message = rule.message or f"simulated fault: HTTP {status}"
    return SimulatorError(status, message, code=rule.code, headers=headers)


def _not_found(task_id: str) -> SimulatorError:
    return SimulatorError(404, f"task {task_id!r} not found", code="task_not_found")


class Simulator:
    """One simulated upstream: its tasks, its fault rules and its callback sender.

    Built without I/O; `startup()` (from the app's lifespan) renders the result video
    and opens the callback client, `shutdown()` cancels timers and deliveries.
    """

    def __init__(self, config: SimulatorConfig) -> None:
        self.config = config
        self.store = TaskStore()
        self.faults = FaultBook()
        self.background = Background()
        self.sender = CallbackSender(config, self.faults, self.background)
        self.lifecycle = Lifecycle(config, self.background, self.sender.schedule)
        self._result_mp4: bytes | None = None
        self._client: httpx.AsyncClient | None = None
        self._stopping = asyncio.Event()

    async def startup(self) -> None:
        self._stopping.clear()
        self._result_mp4 = await asyncio.to_thread(render_result_mp4)
        # Loading CA files is blocking I/O: build the TLS context off the event loop.
        verify = await asyncio.to_thread(ssl_context_for, self.config.callback_verify)
        self._client = httpx.AsyncClient(
            verify=verify,
            timeout=self.config.callback_timeout_s,
            follow_redirects=False,
            headers={"User-Agent": "motion-gateway-simulator/1"},
        )
        self.sender.bind(self._client)

    def begin_shutdown(self) -> None:
        """Release hanging (timeout-fault) responses so the server can stop promptly."""
        self._stopping.set()

    async def shutdown(self) -> None:
        self.begin_shutdown()
        await self.background.aclose()
        self.sender.bind(None)
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _hang(self, rule: RequestFault) -> None:
        hang_s = rule.hang_s if rule.hang_s is not None else self.config.fault_hang_s
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(hang_s):
                await self._stopping.wait()

    def authenticate(self, authorization: str | None) -> str:
        scheme, _, key = (authorization or "").partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise SimulatorError(401, "missing bearer API key", code="missing_api_key")
        accepted = self.config.accepted_api_keys
        if accepted and key not in accepted:
            raise SimulatorError(401, "invalid API key", code="invalid_api_key")
        return key

    async def create(
        self, api_key: str, raw_body: Any, idempotency_key: str | None, base_url: str
    ) -> dict[str, Any]:
        self.store.create_calls += 1
        rule = self.faults.take_request("create")
        if rule is not None and rule.status is not None and not rule.create_anyway:
            raise _fault_error(rule)
        body = parse_create_body(raw_body)
        directives = self._directives(body.prompt)
        if body.callback_url is not None:
            await check_callback_url(body.callback_url, self.config)
        task = self._existing(api_key, idempotency_key)
        if task is None:
            task = self._new_task(api_key, body, directives, idempotency_key, base_url)
        answer = render_task(task, self.config)
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
        body: CreateBody,
        directives: Directives,
        idempotency_key: str | None,
        base_url: str,
    ) -> SimTask:
        created = int(time.time())
        config = self.config
        task = SimTask(
            id=new_task_id(created),
            api_key=api_key,
            model=body.model,
            quality=body.quality,
            created=created,
            video_duration_s=directives.video_duration_s or config.video_duration_s,
            estimated_time_s=math.ceil(config.pending_time_s + config.processing_time_s),
            callback_url=body.callback_url,
            directives=directives,
            base_url=(config.public_base_url or base_url).rstrip("/"),
            idempotency_key=idempotency_key,
        )
        self.store.add(task)
        if not directives.early_callback:
            self.lifecycle.start(task)
        return task

    async def _finish_early(self, task: SimTask) -> None:
        # The race the gateway must survive: the callback lands before the create answer.
        self.lifecycle.finish_as_directed(task)
        bound_s = self.config.callback_timeout_s + task.directives.callback_delay_s + 1.0
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(bound_s):
                await task.first_callback_done.wait()

    async def _apply_late_fault(self, rule: RequestFault) -> None:
        """Faults that strike after the task exists: the ambiguous outcomes."""
        if rule.timeout:
            await self._hang(rule)
        else:
            raise _fault_error(rule)

    async def query(self, api_key: str, task_id: str) -> dict[str, Any]:
        rule = self.faults.take_request("query")
        if rule is not None and rule.status is not None:
            raise _fault_error(rule)
        task = self.store.get(task_id)
        if task is None or task.api_key != api_key:
            raise _not_found(task_id)
        if rule is not None:
            await self._hang(rule)
        return render_task(task, self.config)

    async def result(self, task_id: str) -> bytes:
        rule = self.faults.take_request("result")
        if rule is not None:
            await self._apply_late_fault(rule)
        task = self.store.get(task_id)
        if task is None or task.status != "completed" or task.finished_at is None:
            raise SimulatorError(404, "result not found", code="result_not_found")
        if time.monotonic() - task.finished_at >= self.config.result_ttl_s:
            raise SimulatorError(404, "result link has expired", code="result_expired")
        if self._result_mp4 is None:
            raise SimulatorError(503, "simulator is not started")
        return self._result_mp4

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
