"""The simulator's decisions on the Kling wire (UPSTREAM.md §B).

Reuses the aggregator simulator's task store, lifecycle timers, fault book, result
video and callback client; changes what §B changes: JWT auth, the create body, unique
`external_task_id`s, the task object, and callbacks on every status change, each sent
once (no documented retry), in order.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from app.simulator.callbacks import CallbackSender, check_callback_url
from app.simulator.config import SimulatorConfig
from app.simulator.faults import CallbackFault, Directives, FaultBook, RequestFault
from app.simulator.kling_auth import verify_kling_jwt
from app.simulator.kling_faults import kling_fault_error
from app.simulator.kling_wire import (
    KlingCreateBody,
    KlingTask,
    envelope,
    kling_error,
    new_kling_task_id,
    parse_kling_create_body,
    render_kling_task,
)
from app.simulator.service import Simulator
from app.simulator.tasks import Background, CallbackAttempt, Lifecycle, SimTask

_TERMINAL: frozenset[str] = frozenset({"succeed", "failed"})


def now_ms() -> int:
    return int(time.time() * 1000)


class KlingLifecycle(Lifecycle):
    """The shared lifecycle, also reporting submitted → processing (Kling calls back on it)."""

    def __init__(
        self,
        config: SimulatorConfig,
        background: Background,
        on_change: Callable[[SimTask], None],
    ) -> None:
        super().__init__(config, background, on_change)
        self._on_change = on_change

    async def _run(self, task: SimTask) -> None:
        await asyncio.sleep(self._config.pending_time_s)
        task.status = "processing"
        task.processing_since = time.monotonic()
        self._on_change(task)
        if task.directives.stuck:
            return
        await asyncio.sleep(self._config.processing_time_s)
        self.finish_as_directed(task)


@dataclass
class _Chain:
    """One task's callbacks: its global fault (taken once per task) and the last send."""

    rule: CallbackFault | None
    started: bool = False
    last: asyncio.Task[None] | None = None


class KlingCallbackSender(CallbackSender):
    """POSTs the bare task object on each status change: one attempt each, in order."""

    def __init__(self, config: SimulatorConfig, faults: FaultBook, background: Background) -> None:
        super().__init__(config, faults, background)
        self._chains: dict[str, _Chain] = {}

    def schedule(self, task: SimTask) -> None:
        """Queue a callback showing the task as it is now (sent after the earlier ones)."""
        if not isinstance(task, KlingTask) or task.callback_url is None:
            task.first_callback_done.set()
            return
        chain = self._chains.get(task.id)
        if chain is None:
            chain = self._chains[task.id] = _Chain(self._faults.take_callback())
        body = render_kling_task(task)
        chain.last = self._background.spawn(self._send_after(task, chain, body, chain.last))

    async def sent(self, task: SimTask, timeout_s: float) -> None:
        """Wait (bounded) until every callback queued so far for `task` is done."""
        chain = self._chains.get(task.id)
        if chain is not None and chain.last is not None:
            await asyncio.wait({chain.last}, timeout=timeout_s)

    async def _send_after(
        self,
        task: KlingTask,
        chain: _Chain,
        body: dict[str, Any],
        previous: asyncio.Task[None] | None,
    ) -> None:
        if previous is not None:
            await asyncio.wait({previous})
        try:
            await self._send_change(task, chain, body)
        finally:
            task.first_callback_done.set()

    async def _send_change(self, task: KlingTask, chain: _Chain, body: dict[str, Any]) -> None:
        url = task.callback_url
        directives = task.directives
        if url is None or directives.drop_callback or (chain.rule is not None and chain.rule.drop):
            task.callback_dropped = True
            return
        if not chain.started:
            chain.started = True
            rule_delay_s = (chain.rule.delay_s or 0.0) if chain.rule is not None else 0.0
            delay_s = directives.callback_delay_s + rule_delay_s
            if delay_s > 0:
                await asyncio.sleep(delay_s)
        terminal = body["task_status"] in _TERMINAL
        for _ in range(directives.callback_copies if terminal else 1):
            await self._post_once(task, url, body)
        if terminal and directives.out_of_order:
            await self._post_once(task, url, render_kling_task(task, as_status="processing"))

    async def _post_once(self, task: SimTask, url: str, body: dict[str, Any]) -> None:
        record = CallbackAttempt(sent_at=time.time(), body_status=str(body["task_status"]))
        task.callback_attempts.append(record)
        if self._client is None:
            record.error = "simulator is shutting down"
            return
        try:
            response = await self._client.post(
                url, json=body, timeout=self._config.callback_timeout_s
            )
        except httpx.HTTPError as exc:  # only recorded: Kling documents no retry
            record.error = f"{type(exc).__name__}: {exc}"
            return
        record.status_code = response.status_code


class KlingSimulator(Simulator):
    """A `Simulator` speaking §B; the Kling router calls `kling_create`/`kling_query`."""

    def __init__(self, config: SimulatorConfig) -> None:
        super().__init__(config)
        self._kling_sender = KlingCallbackSender(config, self.faults, self.background)
        self.sender = self._kling_sender
        self.lifecycle = KlingLifecycle(config, self.background, self.status_changed)
        self._external_ids: dict[tuple[str, str], str] = {}

    def authenticate(self, authorization: str | None) -> str:
        config = self.config
        return verify_kling_jwt(authorization, config.kling_access_key, config.kling_secret_key)

    def status_changed(self, task: SimTask) -> None:
        """Every status change: stamp `updated_at` and queue a callback."""
        if isinstance(task, KlingTask):
            task.updated_at_ms = max(now_ms(), task.created_at_ms)
        self.sender.schedule(task)

    async def kling_create(self, access_key: str, raw_body: Any, base_url: str) -> dict[str, Any]:
        self.store.create_calls += 1
        rule = self.faults.take_request("create")
        if rule is not None and rule.status is not None and not rule.create_anyway:
            raise kling_fault_error(rule)
        body = parse_kling_create_body(raw_body)
        directives = self._directives(body.prompt)
        if body.callback_url is not None:
            await check_callback_url(body.callback_url, self.config)
        self._claim_external_id(access_key, body.external_task_id)
        task = self._new_kling_task(access_key, body, directives, base_url)
        answer = envelope(render_kling_task(task))
        if directives.early_callback:
            await self._finish_early_kling(task)
        if rule is not None:
            await self._late_kling_fault(rule)
        return answer

    async def kling_query(self, access_key: str, task_id: str) -> dict[str, Any]:
        rule = self.faults.take_request("query")
        if rule is not None and rule.status is not None:
            raise kling_fault_error(rule)
        task = self.store.get(task_id)
        if not isinstance(task, KlingTask) or task.api_key != access_key:
            raise kling_error(1202, f"task {task_id!r} not found")
        if rule is not None:
            await self._hang(rule)
        return envelope(render_kling_task(task))

    def kling_task(self, task_id: str, *, unfinished: bool = False) -> KlingTask:
        """The task for the admin API; with `unfinished`, a 409 once it has ended."""
        task = self.unfinished_task(task_id) if unfinished else self.task(task_id)
        if not isinstance(task, KlingTask):
            raise kling_error(1202, f"task {task_id!r} not found")
        return task

    def _claim_external_id(self, access_key: str, external_task_id: str | None) -> None:
        if external_task_id is None:
            return
        existing = self._external_ids.get((access_key, external_task_id))
        if existing is not None:
            # The answer names no task id: the upstream does not document one here.
            raise kling_error(1201, f"external_task_id {external_task_id!r} already exists")

    def _new_kling_task(
        self, access_key: str, body: KlingCreateBody, directives: Directives, base_url: str
    ) -> KlingTask:
        config = self.config
        created_ms = now_ms()
        task = KlingTask(
            id=new_kling_task_id(),
            api_key=access_key,
            model=body.model_name,
            quality=body.mode,
            created=created_ms // 1000,
            video_duration_s=directives.video_duration_s or config.video_duration_s,
            estimated_time_s=math.ceil(config.pending_time_s + config.processing_time_s),
            callback_url=body.callback_url,
            directives=directives,
            base_url=(config.public_base_url or base_url).rstrip("/"),
            external_task_id=body.external_task_id,
            video_id=new_kling_task_id(),
            created_at_ms=created_ms,
            updated_at_ms=created_ms,
        )
        self.store.add(task)
        if body.external_task_id is not None:
            self._external_ids[(access_key, body.external_task_id)] = task.id
        if config.kling_callback_on_submit:
            self.status_changed(task)
        if not directives.early_callback:
            self.lifecycle.start(task)
        return task

    async def _finish_early_kling(self, task: KlingTask) -> None:
        # The race the gateway must survive: callbacks land before the create answer.
        self.lifecycle.finish_as_directed(task)
        bound_s = self.config.callback_timeout_s * 3 + task.directives.callback_delay_s + 1.0
        await self._kling_sender.sent(task, bound_s)

    async def _late_kling_fault(self, rule: RequestFault) -> None:
        """Faults that strike after the task exists: the ambiguous outcomes."""
        if rule.timeout:
            await self._hang(rule)
        else:
            raise kling_fault_error(rule)
