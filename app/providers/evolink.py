"""Adapter for the aggregator API (UPSTREAM.md §A, EvoLink-style).

Create: `POST /v1/videos/generations`; query: `GET /v1/tasks/{id}`; the callback body
is the query body. Failures are translated per base.py: a create is retried only when
the request provably never reached the upstream, since a task that did get created is
billed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

import httpx

from app.providers.base import (
    AmbiguousError,
    CancelNotSupported,
    FoundTask,
    Mechanism,
    PermanentError,
    ProviderError,
    RetryableError,
    SubmitRequest,
    TaskSnapshot,
    TaskStatus,
)
from app.providers.common import (
    create_transport_error,
    fetch_transport_error,
    optional_decimal,
    optional_float,
    retry_after_s,
)

MODEL = "kling-v3-motion-control"

_STATUSES: dict[str, TaskStatus] = {
    "pending": TaskStatus.pending,
    "processing": TaskStatus.processing,
    "completed": TaskStatus.succeeded,
    "failed": TaskStatus.failed,
    "cancelled": TaskStatus.cancelled,
    "canceled": TaskStatus.cancelled,
}
# A create refused with these never produced a task: safe to retry or fail over.
_CREATE_RETRYABLE = frozenset({429, 502, 503})
# A create refused with these will be refused again, anywhere, with the same input.
_CREATE_PERMANENT = frozenset({400, 401, 402, 403, 404, 413})
# Used when the error body names no code (or only the integer status, as a mirror does).
_DEFAULT_CODES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "insufficient_quota_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "internal_server_error",
    502: "upstream_error",
    503: "service_unavailable_error",
    504: "gateway_timeout",
}
_NOT_SNAKE = re.compile(r"[^a-z0-9]+")
# The task list is read once per look, newest first; a task older than this page is left
# to the other mechanisms and to the operator.
LIST_LIMIT = 100
# Clock skew allowed between our `submit_sent_at` and the upstream's `created`.
LIST_SKEW_S = 300.0


class EvolinkProvider:
    """`Provider` for the aggregator wire format, over a shared `httpx.AsyncClient`."""

    def __init__(
        self,
        name: str,
        base_url: str,
        api_key: str,
        client: httpx.AsyncClient,
        timeout_s: float = 30.0,
        query_timeout_s: float | None = None,
        *,
        honors_idempotency_key: bool = False,
        task_list_lookup: bool = True,
    ) -> None:
        """`timeout_s` bounds a create; `query_timeout_s` (default: the same) a fetch.
        `honors_idempotency_key`: the upstream answers a repeated `Idempotency-Key` with
        the task it made (undocumented; set only where confirmed): `find_task` may then
        replay the create. `task_list_lookup`: `find_task` may read `GET /v1/tasks`."""
        self.name = name
        mechanisms = []
        if honors_idempotency_key:
            mechanisms.append(Mechanism.idempotent_replay)
        if task_list_lookup:
            mechanisms.append(Mechanism.task_list)
        self.reconcile_mechanisms: tuple[Mechanism, ...] = tuple(mechanisms)
        self._base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._client = client
        self._timeout_s = timeout_s
        self._query_timeout_s = query_timeout_s if query_timeout_s is not None else timeout_s

    async def submit(self, request: SubmitRequest) -> TaskSnapshot:
        return await self._create(request, idempotency_key=request.job_id)

    async def _create(self, request: SubmitRequest, *, idempotency_key: str) -> TaskSnapshot:
        try:
            response = await self._client.post(
                f"{self._base_url}/v1/videos/generations",
                json=build_create_body(request),
                headers=self._headers(idempotency_key=idempotency_key),
                timeout=self._timeout_s,
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise create_transport_error(exc) from exc
        if not response.is_success:
            raise _create_status_error(response)
        try:
            return parse_task(response.json())
        except ValueError as exc:
            # The upstream said yes, so a task may exist even though we cannot read its id.
            raise AmbiguousError("bad_response", f"unreadable create answer: {exc}") from exc

    async def fetch(self, task_id: str) -> TaskSnapshot:
        try:
            response = await self._client.get(
                f"{self._base_url}/v1/tasks/{quote(task_id, safe='')}",
                headers=self._headers(),
                timeout=self._query_timeout_s,
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise fetch_transport_error(exc) from exc
        if not response.is_success:
            raise _fetch_status_error(response)
        try:
            return parse_task(response.json())
        except ValueError as exc:
            raise RetryableError("bad_response", f"unreadable task answer: {exc}") from exc

    async def cancel(self, task_id: str) -> TaskSnapshot:
        raise CancelNotSupported()

    async def find_task(
        self, request: SubmitRequest, *, submitted_at: datetime, idempotency_key: str
    ) -> FoundTask | None:
        """The replay first (it names the task outright), then the task list. A failed
        replay is not final while the list can still answer; when nothing could be asked
        the first error is raised, so the caller looks again later."""
        failure: ProviderError | None = None
        if Mechanism.idempotent_replay in self.reconcile_mechanisms:
            try:
                snapshot = await self._create(request, idempotency_key=idempotency_key)
                return FoundTask(snapshot, Mechanism.idempotent_replay)
            except ProviderError as exc:
                # 4xx: it refuses the input now; 5xx/timeouts: it could not say. Either
                # way the replay made at most the one task the key names.
                failure = exc
        if Mechanism.task_list in self.reconcile_mechanisms:
            try:
                listed = await self.list_tasks()
            except ProviderError as exc:
                raise (failure or exc) from exc
            found = match_listed(
                listed, request, submitted_at=submitted_at, timeout_s=self._timeout_s
            )
            return None if found is None else FoundTask(found, Mechanism.task_list)
        if failure is not None and not isinstance(failure, PermanentError):
            raise failure
        return None

    async def list_tasks(self) -> list[Mapping[str, Any]]:
        """The account's newest tasks (`GET /v1/tasks`, secondary sources), raw."""
        try:
            response = await self._client.get(
                f"{self._base_url}/v1/tasks",
                params={"limit": LIST_LIMIT},
                headers=self._headers(),
                timeout=self._query_timeout_s,
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise fetch_transport_error(exc) from exc
        if not response.is_success:
            error = _fetch_status_error(response)
            if isinstance(error, PermanentError):  # no list here: nothing to find with it
                raise RetryableError(error.code, error.message, status_code=error.status_code)
            raise error
        try:
            body = response.json()
        except ValueError as exc:
            raise RetryableError("bad_response", f"unreadable task list: {exc}") from exc
        data = body.get("data") if isinstance(body, Mapping) else body
        if not isinstance(data, list):
            raise RetryableError("bad_response", "the task list has no data array")
        return [item for item in data if isinstance(item, Mapping)]

    def parse_callback(self, body: bytes) -> TaskSnapshot:
        try:
            return parse_task(json.loads(body))
        except ValueError as exc:
            raise PermanentError("bad_callback_payload", str(exc)) from exc

    def _headers(self, idempotency_key: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}
        if idempotency_key is not None:
            # Undocumented upstream (one secondary client sends it); harmless if ignored.
            headers["Idempotency-Key"] = idempotency_key
        return headers


def build_create_body(request: SubmitRequest) -> dict[str, Any]:
    """The create body of UPSTREAM.md §A; optional fields are left out when unset."""
    params: dict[str, Any] = {
        "character_orientation": request.character_orientation,
        "keep_sound": request.keep_sound,
    }
    if request.element_ids:
        params["element_list"] = [{"element_id": element} for element in request.element_ids]
    if request.watermark_enabled is not None:
        params["watermark_info"] = {"enabled": request.watermark_enabled}
    body: dict[str, Any] = {
        "model": MODEL,
        "image_urls": [request.image_url],
        "video_urls": [request.video_url],
        "quality": request.quality,
        "model_params": params,
    }
    if request.prompt is not None:
        body["prompt"] = request.prompt
    if request.callback_url is not None:
        body["callback_url"] = request.callback_url
    return body


# --- reconciliation ------------------------------------------------------------------


def _listed_text(item: Mapping[str, Any], key: str) -> str | None:
    value = item.get(key)
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value if isinstance(value, str) else None


def _names_our_job(item: Mapping[str, Any], request: SubmitRequest) -> bool | None:
    """True/False when the listed task shows its request (callback URL or inputs), None
    when it shows nothing to judge by."""
    callback = _listed_text(item, "callback_url")
    if request.callback_url is not None and callback is not None:
        # Our callback URL carries our job id (and a token only we can make).
        return callback == request.callback_url
    shown = {key: _listed_text(item, key) for key in ("image_urls", "video_urls", "prompt")}
    if shown["image_urls"] is None or shown["video_urls"] is None:
        return None
    return (
        shown["image_urls"] == request.image_url
        and shown["video_urls"] == request.video_url
        and shown["prompt"] == request.prompt
        and item.get("quality") in (None, request.quality)
    )


def match_listed(
    listed: Sequence[Mapping[str, Any]],
    request: SubmitRequest,
    *,
    submitted_at: datetime,
    timeout_s: float,
) -> TaskSnapshot | None:
    """The one listed task our create made, or None. Conservative: a task counts only if it
    was created between our send (less the skew) and the end of our create's timeout (plus
    the skew), is of our model, and its shown request is ours; anything but exactly one such
    task (none, several, or tasks that show no request) adopts nothing."""
    low = submitted_at.timestamp() - LIST_SKEW_S
    high = submitted_at.timestamp() + timeout_s + LIST_SKEW_S
    matches: list[Mapping[str, Any]] = []
    for item in listed:
        created = optional_float(item.get("created"))
        if created is None or not low <= created <= high:
            continue
        if item.get("model") not in (None, MODEL):
            continue
        if _names_our_job(item, request):
            matches.append(item)
    if len(matches) != 1:
        return None
    try:
        return parse_task(matches[0])
    except ValueError:
        return None


# --- parsing -------------------------------------------------------------------------


def parse_task(data: Any) -> TaskSnapshot:
    """Read a task body (create, query or callback); ValueError when it is not one."""
    if not isinstance(data, Mapping):
        raise ValueError("task body is not a JSON object")
    task_id = data.get("id")
    if not isinstance(task_id, str) or not task_id:
        raise ValueError("task body has no id")
    status = _STATUSES.get(str(data.get("status", "")).lower())
    if status is None:
        raise ValueError(f"unknown task status {data.get('status')!r}")
    raw_info = data.get("task_info")
    info: Mapping[str, Any] = raw_info if isinstance(raw_info, Mapping) else {}
    code, message = _task_error(data.get("error"))
    raw_usage = data.get("usage")
    usage: Mapping[str, Any] = raw_usage if isinstance(raw_usage, Mapping) else {}
    credits = optional_decimal(usage.get("credits_reserved"))
    return TaskSnapshot(
        task_id=task_id,
        status=status,
        progress=_progress(data.get("progress"), status),
        result_urls=_result_urls(data.get("results")),
        video_duration_s=optional_float(info.get("video_duration")),
        estimated_time_s=_optional_int(info.get("estimated_time")),
        error_code=code,
        error_message=message,
        upstream_charge=credits,
        upstream_charge_unit="credits" if credits is not None else None,
        raw=dict(data),
    )


def _optional_int(value: Any) -> int | None:
    number = optional_float(value)
    return None if number is None else math.ceil(number)


def _progress(value: Any, status: TaskStatus) -> int:
    if status is TaskStatus.succeeded:
        return 100
    number = optional_float(value)
    return 0 if number is None else max(0, min(100, int(number)))


def _result_urls(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    urls = [item.get("url") if isinstance(item, Mapping) else item for item in value]
    return tuple(url for url in urls if isinstance(url, str) and url)


def _code_text(code: Any) -> str | None:
    """`code` is a string in the primary docs and an integer in a mirror."""
    if isinstance(code, bool) or code is None:
        return None
    if isinstance(code, int):
        return str(code)
    text = _NOT_SNAKE.sub("_", str(code).strip().lower()).strip("_")
    return text or None


def _task_error(error: Any) -> tuple[str | None, str | None]:
    if isinstance(error, Mapping):
        message = error.get("message")
        return _code_text(error.get("code")), str(message) if message is not None else None
    if isinstance(error, str) and error:
        return None, error
    return None, None


# --- error translation ---------------------------------------------------------------


def _error_fields(response: httpx.Response) -> tuple[str, str]:
    """The stable code and message of an error answer, whichever form it takes."""
    fallback_code = _DEFAULT_CODES.get(response.status_code, f"http_{response.status_code}")
    try:
        error = response.json().get("error")
    except (ValueError, AttributeError):
        error = None
    if not isinstance(error, Mapping):
        return fallback_code, response.text[:200] or response.reason_phrase
    code = error.get("code")
    # An integer code only repeats the status; the `type` is then the better name.
    named = None if isinstance(code, int) else _code_text(code)
    code_text = named or _code_text(error.get("type")) or fallback_code
    return code_text, str(error.get("message") or response.reason_phrase)


def _create_status_error(response: httpx.Response) -> ProviderError:
    status = response.status_code
    code, message = _error_fields(response)
    if status in _CREATE_RETRYABLE:
        return RetryableError(
            code, message, status_code=status, retry_after_s=retry_after_s(response)
        )
    if status in _CREATE_PERMANENT:
        return PermanentError(code, message, status_code=status)
    # 500, 504 and anything unexpected: the upstream may have created the task.
    return AmbiguousError(code, message, status_code=status)


def _fetch_status_error(response: httpx.Response) -> ProviderError:
    status = response.status_code
    code, message = _error_fields(response)
    if status == 429 or status >= 500:
        return RetryableError(
            code, message, status_code=status, retry_after_s=retry_after_s(response)
        )
    if status == 404:
        return PermanentError("task_not_found", message, status_code=status)
    return PermanentError(code, message, status_code=status)
