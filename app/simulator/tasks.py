"""The in-memory task store and each task's lifecycle.

pending --(pending_time_s)--> processing --(processing_time_s)--> completed | failed.
Admin calls may end a task early. Every change (to processing, and every end) is
stamped and handed to the change hook, the callback sender, which asks the wire's
policy whether that change is worth a callback.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any, Literal

from app.simulator.config import SimulatorConfig
from app.simulator.faults import FAILURE_MESSAGES, Directives

TaskState = Literal["pending", "processing", "completed", "failed", "cancelled"]
TERMINAL_STATES: frozenset[str] = frozenset({"completed", "failed", "cancelled"})


def now_ms() -> int:
    return int(time.time() * 1000)


@dataclass(frozen=True)
class CallbackAttempt:
    """One finished HTTP attempt to deliver a callback, kept for `GET /_sim/tasks`.

    Built only once the attempt has its outcome, so a reader never sees one half-written.
    """

    sent_at: float
    body_status: str
    status_code: int | None = None
    error: str | None = None


@dataclass
class SimTask:
    """One task, in the core's words; each wire renders it in its own shape."""

    id: str
    api_key: str
    model: str
    quality: str
    created_at_ms: int
    updated_at_ms: int
    video_duration_s: float
    estimated_time_s: int
    callback_url: str | None
    directives: Directives
    base_url: str
    video_id: str
    create_body: dict[str, Any]
    idempotency_key: str | None = None
    external_task_id: str | None = None
    status: TaskState = "pending"
    processing_since: float | None = None
    frozen_progress: int = 0
    finished_at: float | None = None
    result_url: str | None = None
    error: dict[str, str] | None = None
    create_calls: int = 1
    callback_attempts: list[CallbackAttempt] = field(default_factory=list)
    callback_dropped: bool = False
    # Set once the terminal callback's first attempt has an outcome (or none will be made).
    end_callback_tried: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_STATES

    def progress(self, processing_time_s: float) -> int:
        """0 while pending, growing 1..99 while processing, 100 once completed."""
        if self.status == "completed":
            return 100
        if self.status != "processing" or self.processing_since is None:
            return self.frozen_progress
        if processing_time_s <= 0:
            return 99
        elapsed_s = time.monotonic() - self.processing_since
        return min(99, 1 + int(98 * elapsed_s / processing_time_s))


class TaskStore:
    """Every task ever created by this process, by id."""

    def __init__(self) -> None:
        self._tasks: dict[str, SimTask] = {}
        # Client-chosen names of a task, each unique per account.
        self._by_idempotency_key: dict[tuple[str, str], SimTask] = {}
        self._by_external_id: dict[tuple[str, str], SimTask] = {}
        self.create_calls = 0

    def add(self, task: SimTask) -> None:
        self._tasks[task.id] = task
        if task.idempotency_key is not None:
            self._by_idempotency_key.setdefault((task.api_key, task.idempotency_key), task)
        if task.external_task_id is not None:
            self._by_external_id[(task.api_key, task.external_task_id)] = task

    def get(self, task_id: str) -> SimTask | None:
        return self._tasks.get(task_id)

    def all(self) -> list[SimTask]:
        return list(self._tasks.values())

    def find_by_idempotency_key(self, api_key: str, key: str) -> SimTask | None:
        return self._by_idempotency_key.get((api_key, key))

    def find_by_external_id(self, api_key: str, external_task_id: str) -> SimTask | None:
        return self._by_external_id.get((api_key, external_task_id))


class Background:
    """Tracks fire-and-forget coroutines so shutdown can cancel and await them."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def aclose(self) -> None:
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Lifecycle:
    """Moves tasks through their states on timers, or at once when told to."""

    def __init__(
        self,
        config: SimulatorConfig,
        background: Background,
        on_change: Callable[[SimTask], None],
    ) -> None:
        self._config = config
        self._background = background
        self._on_change = on_change
        self._runners: dict[str, asyncio.Task[Any]] = {}

    def start(self, task: SimTask) -> None:
        runner = self._background.spawn(self._run(task))
        self._runners[task.id] = runner
        runner.add_done_callback(lambda _: self._runners.pop(task.id, None))

    async def _run(self, task: SimTask) -> None:
        await asyncio.sleep(self._config.pending_time_s)
        task.status = "processing"
        task.processing_since = time.monotonic()
        self._changed(task)
        if task.directives.stuck:
            return
        await asyncio.sleep(self._config.processing_time_s)
        self.finish_as_directed(task)

    def finish_as_directed(self, task: SimTask) -> None:
        directives = task.directives
        if directives.fail_without_error:
            self.fail(task, None)
        elif directives.fail_code is not None:
            self.fail(task, directives.fail_code)
        else:
            self.complete(task)

    def complete(self, task: SimTask) -> None:
        task.result_url = f"{task.base_url}/results/{task.id}.mp4"
        self._finish(task, "completed")

    def fail(self, task: SimTask, code: str | None, message: str | None = None) -> None:
        """Fail the task; a None code leaves out the `error` object (some sources do)."""
        if code is not None:
            text = message or FAILURE_MESSAGES.get(code, f"Simulated failure: {code}")
            task.error = {"code": code, "message": text}
        self._finish(task, "failed")

    def cancel(self, task: SimTask) -> None:
        self._finish(task, "cancelled")

    def _finish(self, task: SimTask, status: TaskState) -> None:
        if task.terminal:
            return
        runner = self._runners.pop(task.id, None)
        if runner is not None and runner is not asyncio.current_task():
            runner.cancel()
        task.frozen_progress = task.progress(self._config.processing_time_s)
        task.status = status
        task.finished_at = time.monotonic()
        self._changed(task)

    def _changed(self, task: SimTask) -> None:
        task.updated_at_ms = max(now_ms(), task.created_at_ms)
        self._on_change(task)
