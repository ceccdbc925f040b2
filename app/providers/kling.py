"""Adapter for the official Kling API (UPSTREAM.md §B).

Create: `POST /v1/videos/motion-control`; query: `GET /v1/videos/motion-control/{id}`;
callbacks carry the bare task object on every status change. Each request carries a
short-lived HS256 JWT. Every answer is wrapped `{code, message, request_id, data}` and a
non-zero `code` is a refusal even with HTTP 200, so both are checked. Failures are
translated per base.py: a create is retried only when it provably never took effect.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
import jwt

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

MODEL_NAME = "kling-v3"
TOKEN_TTL_S = 1800
TOKEN_NOT_BEFORE_S = 5
# A cached token is replaced this long before it expires, so none expires in flight.
_TOKEN_REFRESH_MARGIN_S = 300
_MODES = {"720p": "std", "1080p": "pro"}
_STATUSES: dict[str, TaskStatus] = {
    "submitted": TaskStatus.pending,
    "processing": TaskStatus.processing,
    "succeed": TaskStatus.succeeded,
    "failed": TaskStatus.failed,
}

# Stable names for the codes of §B's error table.
CODE_NAMES: dict[int, str] = {
    1000: "authentication_failed",
    1001: "authorization_missing",
    1002: "authorization_invalid",
    1003: "token_not_yet_valid",
    1004: "token_expired",
    1100: "account_exception",
    1101: "account_in_arrears",
    1102: "balance_exhausted",
    1103: "no_access",
    1200: "invalid_request",
    1201: "invalid_parameter",
    1202: "not_found",
    1203: "resource_not_found",
    1300: "platform_policy",
    1301: "content_policy",
    1302: "rate_limited",
    1303: "concurrency_limited",
    1304: "ip_not_allowed",
    5000: "internal_error",
    5001: "service_unavailable",
    5002: "backlog_timeout",
}
# The HTTP status §B pairs with each code: what an error means when it came with HTTP 200.
_CODE_STATUSES: dict[int, int] = {
    **dict.fromkeys((1000, 1001, 1002, 1003, 1004), 401),
    **dict.fromkeys((1100, 1101, 1102, 1302, 1303, 1304), 429),
    1103: 403,
    **dict.fromkeys((1200, 1201, 1300, 1301), 400),
    **dict.fromkeys((1202, 1203), 404),
    5000: 500,
    5001: 503,
    5002: 504,
}
_AUTH_CODES = frozenset({1000, 1001, 1002, 1003, 1004})
# Refusals about our account, not the job. They are reported with status_code 402 (or
# 403 for the IP policy), the statuses the submitter counts as provider-side: the job
# then fails over to another provider instead of failing, and the breaker records it.
_ACCOUNT_CODES = frozenset({1100, 1101, 1102})
_CREATE_RETRYABLE_CODES = frozenset({1302, 1303, 5001})
_NOT_FOUND_CODES = frozenset({1202, 1203})
_DUPLICATE_HINTS = ("already", "exist", "duplicate", "repeat", "unique", "conflict")


class KlingProvider:
    """`Provider` for the official Kling wire format, over a shared `httpx.AsyncClient`."""

    def __init__(
        self,
        name: str,
        base_url: str,
        access_key: str,
        secret_key: str,
        client: httpx.AsyncClient,
        timeout_s: float = 30.0,
        query_timeout_s: float | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`timeout_s` bounds a create; `query_timeout_s` (default: the same) a fetch."""
        self.name = name
        self._base_url = base_url.rstrip("/")
        self._access_key = access_key
        self._secret_key = secret_key
        self._client = client
        self._timeout_s = timeout_s
        self._query_timeout_s = query_timeout_s if query_timeout_s is not None else timeout_s
        self._clock = clock
        self._token: str | None = None
        self._token_refresh_at = 0.0
        # Every create carries `external_task_id` = our job id, and §B queries by it.
        self.reconcile_mechanisms: tuple[Mechanism, ...] = (Mechanism.external_id,)

    async def submit(self, request: SubmitRequest) -> TaskSnapshot:
        body = build_create_body(request)
        try:
            response = await self._client.post(
                f"{self._base_url}/v1/videos/motion-control",
                json=body,
                headers=self._headers(),
                timeout=self._timeout_s,
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise create_transport_error(exc) from exc
        data = _unwrap(response, _create_error)
        try:
            return parse_task(data)
        except ValueError as exc:
            # They said yes, so a task may exist even though we cannot read its id.
            raise AmbiguousError("bad_response", f"unreadable create answer: {exc}") from exc

    async def fetch(self, task_id: str) -> TaskSnapshot:
        try:
            response = await self._client.get(
                f"{self._base_url}/v1/videos/motion-control/{quote(task_id, safe='')}",
                headers=self._headers(),
                timeout=self._query_timeout_s,
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise fetch_transport_error(exc) from exc
        data = _unwrap(response, _fetch_error)
        try:
            return parse_task(data)
        except ValueError as exc:
            raise RetryableError("bad_response", f"unreadable task answer: {exc}") from exc

    async def cancel(self, task_id: str) -> TaskSnapshot:
        raise CancelNotSupported()

    async def find_task(
        self, request: SubmitRequest, *, submitted_at: datetime, idempotency_key: str
    ) -> FoundTask | None:
        """The task whose `external_task_id` is our job id (§B's query takes either id);
        None when Kling has none. The answer is checked to name our id back."""
        try:
            snapshot = await self.fetch(request.job_id)
        except PermanentError as exc:
            if exc.code == "task_not_found":
                return None
            raise RetryableError(exc.code, exc.message, status_code=exc.status_code) from exc
        info = snapshot.raw.get("task_info")
        named = info.get("external_task_id") if isinstance(info, Mapping) else None
        if named not in (None, request.job_id):
            return None  # another task answered: never adopt it
        return FoundTask(snapshot, Mechanism.external_id)

    def parse_callback(self, body: bytes) -> TaskSnapshot:
        """The bare task object Kling posts; a wrapped one is accepted too."""
        try:
            data: Any = json.loads(body)
            if isinstance(data, Mapping) and isinstance(data.get("data"), Mapping):
                if _code(data) not in (0, None):
                    raise ValueError(f"wrapped callback with code {data.get('code')!r}")
                data = data["data"]
            return parse_task(data)
        except ValueError as exc:
            raise PermanentError("bad_callback_payload", str(exc)) from exc

    def token(self) -> str:
        """The JWT for the next request, minted anew shortly before the last one expires."""
        now = self._clock()
        if self._token is None or now >= self._token_refresh_at:
            claims = {
                "iss": self._access_key,
                "exp": int(now) + TOKEN_TTL_S,
                "nbf": int(now) - TOKEN_NOT_BEFORE_S,
            }
            self._token = jwt.encode(claims, self._secret_key, algorithm="HS256")
            self._token_refresh_at = now + TOKEN_TTL_S - _TOKEN_REFRESH_MARGIN_S
        return self._token

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token()}", "Accept": "application/json"}


def build_create_body(request: SubmitRequest) -> dict[str, Any]:
    """The create body of UPSTREAM.md §B; optional fields are left out when unset."""
    mode = _MODES.get(request.quality)
    if mode is None:
        message = f"quality {request.quality!r} is not 720p or 1080p"
        raise PermanentError("unsupported_quality", message, status_code=400)
    body: dict[str, Any] = {
        # Always sent: leaving it out selects an older model.
        "model_name": MODEL_NAME,
        "image_url": request.image_url,
        "video_url": request.video_url,
        "keep_original_sound": "yes" if request.keep_sound else "no",
        "character_orientation": request.character_orientation,
        "mode": mode,
        # Unique per account: a create whose answer was lost cannot run twice.
        "external_task_id": request.job_id,
    }
    if request.prompt is not None:
        body["prompt"] = request.prompt
    if request.element_ids:
        body["element_list"] = [{"element_id": element} for element in request.element_ids]
    if request.watermark_enabled is not None:
        body["watermark_info"] = {"enabled": request.watermark_enabled}
    if request.callback_url is not None:
        body["callback_url"] = request.callback_url
    return body


# --- parsing -------------------------------------------------------------------------


def parse_task(data: Any) -> TaskSnapshot:
    """Read a task object (create/query `data`, or a callback); ValueError if it is not one."""
    if not isinstance(data, Mapping):
        raise ValueError("task body is not a JSON object")
    task_id = data.get("task_id")
    if isinstance(task_id, int) and not isinstance(task_id, bool):
        task_id = str(task_id)
    if not isinstance(task_id, str) or not task_id:
        raise ValueError("task body has no task_id")
    status = _STATUSES.get(str(data.get("task_status", "")).lower())
    if status is None:
        raise ValueError(f"unknown task status {data.get('task_status')!r}")
    videos = _videos(data.get("task_result"))
    message = data.get("task_status_msg")
    failed = status is TaskStatus.failed
    deducted = _deduction(data)
    return TaskSnapshot(
        task_id=task_id,
        status=status,
        progress=100 if status is TaskStatus.succeeded else 0,
        result_urls=tuple(url for video in videos if isinstance(url := video.get("url"), str)),
        video_duration_s=optional_float(videos[0].get("duration")) if videos else None,
        # Kling names no failure code; its `task_status_msg` is free text.
        error_code="generation_failed" if failed else None,
        error_message=str(message) if failed and message else None,
        upstream_charge=deducted,
        upstream_charge_unit="units" if deducted is not None else None,
        raw=dict(data),
    )


def _deduction(data: Mapping[str, Any]) -> Decimal | None:
    """Kling's deducted units (`final_unit_deduction`), in `task_result` or beside it."""
    result = data.get("task_result")
    for holder in (result if isinstance(result, Mapping) else {}, data):
        amount = optional_decimal(holder.get("final_unit_deduction"))
        if amount is not None:
            return amount
    return None


def _videos(result: Any) -> list[Mapping[str, Any]]:
    videos = result.get("videos") if isinstance(result, Mapping) else None
    if not isinstance(videos, list):
        return []
    return [video for video in videos if isinstance(video, Mapping) and video.get("url")]


def _code(body: Mapping[str, Any]) -> int | None:
    """The envelope's `code` as an integer, None when absent or unreadable."""
    code = body.get("code")
    if isinstance(code, bool):
        return None
    if isinstance(code, int):
        return code
    if isinstance(code, str) and code.strip().lstrip("-").isdigit():
        return int(code)
    return None


# --- error translation ---------------------------------------------------------------


class _Refusal:
    """An error answer: the HTTP status, the Kling code (if any) and their meaning."""

    def __init__(self, response: httpx.Response, body: Any) -> None:
        envelope: Mapping[str, Any] = body if isinstance(body, Mapping) else {}
        self.response = response
        # A code of 0 on an error status says nothing: the status decides.
        self.code = _code(envelope) or None
        http_status = response.status_code
        if response.is_success:
            # HTTP 200 with a non-zero code: take the status §B pairs with the code.
            http_status = _CODE_STATUSES.get(self.code or 0, 500)  # unknown: assume the worst
        self.status = http_status
        message = envelope.get("message")
        self.message = str(message) if message else response.text[:200] or response.reason_phrase
        fallback = f"http_{http_status}" if self.code is None else f"kling_{self.code}"
        self.name = CODE_NAMES.get(self.code or 0, fallback)

    def retryable(self) -> RetryableError:
        return RetryableError(
            self.name,
            self.message,
            status_code=self.status,
            retry_after_s=retry_after_s(self.response),
        )


def _unwrap(response: httpx.Response, refuse: Callable[[_Refusal], ProviderError]) -> Any:
    """The `data` of a successful answer; the translated error of any other."""
    try:
        body: Any = response.json()
    except ValueError:
        body = None
    if response.is_success:
        if not isinstance(body, Mapping):
            return body  # not an envelope: `parse_task` refuses it, per operation
        code = _code(body)
        if code is None or code == 0:
            return body.get("data", body)
    raise refuse(_Refusal(response, body))


def _is_duplicate_external_id(refusal: _Refusal) -> bool:
    text = refusal.message.lower()
    return "external_task_id" in text and any(hint in text for hint in _DUPLICATE_HINTS)


def _create_error(refusal: _Refusal) -> ProviderError:
    code, status = refusal.code, refusal.status
    if code in _CREATE_RETRYABLE_CODES:
        return refusal.retryable()
    if code in _ACCOUNT_CODES:
        return PermanentError(refusal.name, refusal.message, status_code=402)
    if code == 1304:  # their IP allow-list refuses us: about the account, not the job
        return PermanentError(refusal.name, refusal.message, status_code=403)
    if code in _AUTH_CODES:
        return PermanentError(refusal.name, refusal.message, status_code=401)
    if code in (1200, 1201) and _is_duplicate_external_id(refusal):
        # An earlier create with this job id reached them: the task exists, id unknown.
        return AmbiguousError("duplicate_external_task_id", refusal.message, status_code=status)
    if code in (5000, 5002):  # internal error, backlog timeout: it may have been created
        return AmbiguousError(refusal.name, refusal.message, status_code=status)
    # Other codes, and answers without one, by their HTTP status, as on the aggregator.
    if status in (429, 502, 503):
        return refusal.retryable()
    if status in (400, 401, 402, 403, 404, 413):
        return PermanentError(refusal.name, refusal.message, status_code=status)
    return AmbiguousError(refusal.name, refusal.message, status_code=status)


def _fetch_error(refusal: _Refusal) -> ProviderError:
    if refusal.code in _NOT_FOUND_CODES or refusal.status == 404:
        return PermanentError("task_not_found", refusal.message, status_code=404)
    if refusal.status == 429 or refusal.status >= 500:
        return refusal.retryable()
    return PermanentError(refusal.name, refusal.message, status_code=refusal.status)
