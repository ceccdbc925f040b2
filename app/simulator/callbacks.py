"""Callbacks: the upstream's refusal of callback URLs, and the sender with its retries."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.simulator.config import SimulatorConfig
from app.simulator.errors import SimulatorError
from app.simulator.faults import FaultBook
from app.simulator.tasks import Background, CallbackAttempt, SimTask
from app.simulator.wire import render_task

MAX_CALLBACK_URL_CHARS = 2048
_STALE_PROGRESS = 50
_IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _refuse(message: str) -> SimulatorError:
    return SimulatorError(400, message, code="invalid_callback_url")


def _is_public(address: _IpAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


async def _resolve(host: str, port: int, timeout_s: float) -> list[_IpAddress]:
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(timeout_s):
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError) as exc:
        raise _refuse(f"callback_url host {host!r} could not be resolved") from exc
    return [ipaddress.ip_address(info[4][0]) for info in infos]


async def check_callback_url(url: str, config: SimulatorConfig) -> None:
    """Refuse what the upstream refuses: non-HTTPS, over-long, or private/loopback hosts."""
    if len(url) > MAX_CALLBACK_URL_CHARS:
        raise _refuse(f"callback_url must be at most {MAX_CALLBACK_URL_CHARS} characters")
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise _refuse("callback_url must be an absolute https URL")
    if config.allow_insecure_callbacks:
        return
    if parts.scheme != "https":
        raise _refuse("callback_url must use https")
    try:
        addresses: list[_IpAddress] = [ipaddress.ip_address(parts.hostname)]
    except ValueError:
        addresses = await _resolve(parts.hostname, parts.port or 443, config.callback_dns_timeout_s)
    if not all(_is_public(address) for address in addresses):
        raise _refuse("callback_url must not point to a private or loopback address")


class CallbackSender:
    """POSTs a task's body to its callback_url when it ends, retrying like the upstream."""

    def __init__(self, config: SimulatorConfig, faults: FaultBook, background: Background) -> None:
        self._config = config
        self._faults = faults
        self._background = background
        self._client: httpx.AsyncClient | None = None

    def bind(self, client: httpx.AsyncClient | None) -> None:
        """Attach (or detach, with None) the client the lifespan owns."""
        self._client = client

    def schedule(self, task: SimTask) -> None:
        """The terminal hook: deliver in the background so the caller never waits."""
        self._background.spawn(self.deliver(task))

    async def deliver(self, task: SimTask) -> None:
        try:
            await self._deliver(task)
        finally:
            task.first_callback_done.set()

    async def _deliver(self, task: SimTask) -> None:
        if task.callback_url is None:
            return
        rule = self._faults.take_callback()
        if task.directives.drop_callback or (rule is not None and rule.drop):
            task.callback_dropped = True
            return
        delay_s = task.directives.callback_delay_s + ((rule.delay_s or 0.0) if rule else 0.0)
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        body = render_task(task, self._config)
        for _ in range(task.directives.callback_copies):
            await self._send_with_retries(task, task.callback_url, body)
        if task.directives.out_of_order:
            stale = render_task(
                task, self._config, as_status="processing", as_progress=_STALE_PROGRESS
            )
            await self._send_with_retries(task, task.callback_url, stale)

    async def _send_with_retries(self, task: SimTask, url: str, body: dict[str, Any]) -> None:
        delays_s = self._config.callback_retry_delays_s
        for attempt in range(len(delays_s) + 1):
            if attempt > 0:
                await asyncio.sleep(delays_s[attempt - 1])
            delivered = await self._attempt(task, url, body)
            task.first_callback_done.set()
            if delivered:
                return

    async def _attempt(self, task: SimTask, url: str, body: dict[str, Any]) -> bool:
        record = CallbackAttempt(sent_at=time.time(), body_status=str(body["status"]))
        task.callback_attempts.append(record)
        if self._client is None:
            record.error = "simulator is shutting down"
            return False
        try:
            response = await self._client.post(
                url, json=body, timeout=self._config.callback_timeout_s
            )
        except httpx.HTTPError as exc:
            record.error = f"{type(exc).__name__}: {exc}"
            return False
        record.status_code = response.status_code
        return response.is_success
