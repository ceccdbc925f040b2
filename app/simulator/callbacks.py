"""Callbacks: the upstream's refusal of callback URLs, and the sender.

The sender follows its wire's `CallbackPolicy`: which changes are called back, and how
many attempts each gets. A task's callbacks go out one at a time, in the order of the
changes they show.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from app.net.client import ssl_context_for
from app.simulator.config import SimulatorConfig
from app.simulator.errors import SimulatorError
from app.simulator.faults import FaultBook
from app.simulator.tasks import Background, CallbackAttempt, SimTask
from app.simulator.wire import Wire

MAX_CALLBACK_URL_CHARS = 2048
# No connection came free within the pool timeout: the pool is wedged (httpcore once
# failed every later callback so for 30+ min after a peer went away mid-request), or
# hanging receivers hold every connection. Either way a fresh client lets later sends flow.
_WEDGED = (httpx.PoolTimeout,)
_CLOSE_BOUND_S = 5.0
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


@dataclass
class _Chain:
    """One task's callbacks: dropped or delayed as a whole (the global callback rule is
    taken once per task), and the latest send, which the next one waits for."""

    drop: bool
    delay_s: float
    last: asyncio.Task[None] | None = None


class CallbackSender:
    """POSTs a task's body to its callback_url on the changes its wire calls back on.

    Owns its long-lived HTTP client: `open()` and `aclose()` from the simulator's
    lifespan, and a fresh one whenever the pool wedges.
    """

    def __init__(
        self, config: SimulatorConfig, wire: Wire, faults: FaultBook, background: Background
    ) -> None:
        self._config = config
        self._wire = wire
        self._policy = wire.callback_policy(config)
        self._faults = faults
        self._background = background
        self._chains: dict[str, _Chain] = {}
        self._verify: ssl.SSLContext | bool = True
        self._client: httpx.AsyncClient | None = None

    async def open(self) -> None:
        # Loading CA files is blocking I/O: build the TLS context off the event loop.
        self._verify = await asyncio.to_thread(ssl_context_for, self._config.callback_verify)
        self._client = self._new_client()

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def _new_client(self) -> httpx.AsyncClient:
        config = self._config
        return httpx.AsyncClient(
            verify=self._verify,
            timeout=httpx.Timeout(config.callback_timeout_s, pool=config.callback_pool_timeout_s),
            limits=httpx.Limits(max_connections=config.callback_max_connections),
            follow_redirects=False,
            headers={"User-Agent": "motion-gateway-simulator/1"},
        )

    def task_created(self, task: SimTask) -> None:
        if self._policy.on_submit:
            self._queue(task)

    def status_changed(self, task: SimTask) -> None:
        """The lifecycle's change hook; the caller never waits for the delivery."""
        if task.terminal or self._policy.on_every_change:
            self._queue(task)

    def _queue(self, task: SimTask) -> None:
        """Queue a callback showing the task as it is now, sent after the earlier ones."""
        if task.callback_url is None:
            task.end_callback_tried.set()
            return
        chain = self._chains.get(task.id) or self._new_chain(task)
        body = self._wire.render_task(task, self._config)
        send = self._send_after(task, chain, body, task.terminal, chain.last)
        chain.last = self._background.spawn(send)

    def _new_chain(self, task: SimTask) -> _Chain:
        rule = self._faults.take_callback()
        directives = task.directives
        drop = directives.drop_callback or (rule is not None and rule.drop)
        delay_s = directives.callback_delay_s + ((rule.delay_s or 0.0) if rule else 0.0)
        chain = self._chains[task.id] = _Chain(drop, delay_s)
        return chain

    async def _send_after(
        self,
        task: SimTask,
        chain: _Chain,
        body: dict[str, Any],
        terminal: bool,
        previous: asyncio.Task[None] | None,
    ) -> None:
        """Send one change's callback once the task's earlier ones are done."""
        if previous is not None:
            await asyncio.wait({previous})
        try:
            if chain.drop:
                task.callback_dropped = True
                return
            delay_s, chain.delay_s = chain.delay_s, 0.0  # only before the first
            if delay_s > 0:
                await asyncio.sleep(delay_s)
            for _ in range(task.directives.callback_copies if terminal else 1):
                await self._send(task, body, terminal)
            if terminal and task.directives.out_of_order:
                stale = self._wire.render_task(task, self._config, stale=True)
                await self._send(task, stale, terminal)
        finally:
            if terminal:  # nothing follows an end: the chain is done
                task.end_callback_tried.set()
                self._chains.pop(task.id, None)

    async def _send(self, task: SimTask, body: dict[str, Any], terminal: bool) -> None:
        """One callback: an attempt, and a retry after each policy delay until a 2xx."""
        delays_s = self._policy.retry_delays_s
        for attempt in range(len(delays_s) + 1):
            if attempt > 0:
                await asyncio.sleep(delays_s[attempt - 1])
            delivered = await self._attempt(task, body)
            if terminal:
                task.end_callback_tried.set()
            if delivered:
                return

    async def _attempt(self, task: SimTask, body: dict[str, Any]) -> bool:
        """POST once and log the attempt, but only once it has its outcome."""
        sent_at = time.time()
        status_code, error = await self._post(str(task.callback_url), body)
        shown = str(body[self._wire.status_field])
        task.callback_attempts.append(CallbackAttempt(sent_at, shown, status_code, error))
        return status_code is not None and 200 <= status_code < 300

    async def _post(self, url: str, body: dict[str, Any]) -> tuple[int | None, str | None]:
        client = self._client
        if client is None:
            return None, "simulator is shutting down"
        try:
            response = await client.post(url, json=body)
        except httpx.HTTPError as exc:
            if isinstance(exc, _WEDGED):
                self._replace(client)
            return None, f"{type(exc).__name__}: {exc}"
        return response.status_code, None

    def _replace(self, wedged: httpx.AsyncClient) -> None:
        """Swap in a fresh client, once however many sends saw the wedge."""
        if self._client is wedged:
            self._client = self._new_client()
            self._background.spawn(self._retire(wedged))

    async def _retire(self, client: httpx.AsyncClient) -> None:
        """Close a replaced client once its in-flight sends have had their timeout (or at
        shutdown); bounded, as a wedged pool's connections may never close cleanly."""
        try:
            await asyncio.sleep(self._config.callback_timeout_s)
        finally:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(_CLOSE_BOUND_S):
                    await client.aclose()
