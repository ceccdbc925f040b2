"""An httpx transport that vets every address at connect time and dials only those.

Why not rewrite the URL to the vetted IP (with ``sni_hostname``)? httpcore pools
connections by origin, so an IP-keyed pool would hand a connection whose certificate was
verified for host A to a request for host B that resolves to the same IP. Here the pool
stays keyed by (scheme, hostname, port): SNI, certificate checks and the Host header all
use the hostname, and only the socket's destination comes from our own resolution. Each
new connection resolves once, vets every answer and connects to exactly those answers,
so DNS rebinding between check and connect has no window to act in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import ssl
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator

import httpcore
import httpx

from app.net.addresses import IPAddress
from app.net.policy import UrlPolicy, check_target, check_url, vet_addresses
from app.net.resolver import Resolver, lookup

log = logging.getLogger(__name__)

# Most specific first: the first isinstance match wins (same mapping httpx applies).
_EXCEPTIONS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    """Callers see httpx's exception types, exactly as with httpx's own transport."""
    try:
        yield
    except Exception as exc:
        for core_type, httpx_type in _EXCEPTIONS:
            if isinstance(exc, core_type):
                raise httpx_type(str(exc)) from exc
        raise


class SafeTransport(httpx.AsyncBaseTransport):
    """Refuses URLs the policy forbids (UrlRejected) before any byte leaves the process."""

    def __init__(
        self,
        policy: UrlPolicy,
        *,
        ssl_context: ssl.SSLContext,
        resolver: Resolver,
        limits: httpx.Limits,
    ) -> None:
        self._policy = policy
        self._pool = _VettingPool(
            policy=policy, resolver=resolver, ssl_context=ssl_context, limits=limits
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # Pure checks per request (credentials, literals); DNS is vetted per connection.
        check_url(str(request.url), self._policy)
        if not isinstance(request.stream, AsyncIterable):
            raise TypeError("SafeTransport needs an async request body")
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            # A caller-chosen SNI would verify the certificate of a name we did not vet.
            extensions={k: v for k, v in request.extensions.items() if k != "sni_hostname"},
        )
        with _httpx_errors():
            core_response = await self._pool.handle_async_request(core_request)
        if not isinstance(core_response.stream, AsyncIterable):
            raise TypeError("httpcore returned a sync stream to an async transport")
        return httpx.Response(
            status_code=core_response.status,
            headers=core_response.headers,
            stream=_ResponseStream(core_response.stream),
            extensions=core_response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


class RecoveringTransport(httpx.AsyncBaseTransport):
    """A transport that cannot wedge: on a PoolTimeout it builds a fresh one and retries.

    A PoolTimeout means no connection slot came free in time, so not a byte of the request
    was sent and trying again is safe even for a POST. httpcore's pool has been seen to
    stay in that state for good once a peer vanished mid-request (every later request a
    PoolTimeout for 30+ minutes); here the wedged pool is retired, closed once whatever it
    still carries has had `retire_after_s` to finish, and the next request gets a new one.
    Only the first caller to meet the stale pool swaps it, so a burst makes one new pool.
    """

    def __init__(
        self, build: Callable[[], httpx.AsyncBaseTransport], *, retire_after_s: float
    ) -> None:
        self._build = build
        self._retire_after_s = retire_after_s
        self._current = build()
        self._retiring: set[asyncio.Task[None]] = set()
        self.resets = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        transport = self._current
        try:
            return await transport.handle_async_request(request)
        except httpx.PoolTimeout:
            if transport is self._current:
                self._reset()
            return await self._current.handle_async_request(request)

    def _reset(self) -> None:
        stale, self._current = self._current, self._build()
        self.resets += 1
        log.warning("HTTP connection pool timed out; replaced it with a fresh one")
        task = asyncio.ensure_future(self._retire(stale))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _retire(self, stale: httpx.AsyncBaseTransport) -> None:
        try:
            await asyncio.sleep(self._retire_after_s)
        finally:
            with contextlib.suppress(Exception):
                await stale.aclose()

    async def aclose(self) -> None:
        for task in set(self._retiring):
            task.cancel()
        await asyncio.gather(*self._retiring, return_exceptions=True)
        await self._current.aclose()


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        closer = getattr(self._stream, "aclose", None)
        if closer is not None:
            await closer()


class _VettingPool(httpcore.AsyncConnectionPool):
    """httpcore's pool, but every connection dials through a vetting backend."""

    def __init__(
        self,
        *,
        policy: UrlPolicy,
        resolver: Resolver,
        ssl_context: ssl.SSLContext,
        limits: httpx.Limits,
    ) -> None:
        super().__init__(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
        )
        self._vet_policy = policy
        self._vet_resolver = resolver
        self._vet_ssl_context = ssl_context
        self._vet_keepalive_s = limits.keepalive_expiry

    def create_connection(self, origin: httpcore.Origin) -> httpcore.AsyncConnectionInterface:
        backend = _VettingBackend(
            policy=self._vet_policy,
            resolver=self._vet_resolver,
            scheme=origin.scheme.decode("ascii"),
        )
        return httpcore.AsyncHTTPConnection(
            origin=origin,
            ssl_context=self._vet_ssl_context,
            keepalive_expiry=self._vet_keepalive_s,
            network_backend=backend,
        )


class _VettingBackend(httpcore.AsyncNetworkBackend):
    """Resolves the origin host itself, vets every answer, then dials those addresses."""

    def __init__(self, *, policy: UrlPolicy, resolver: Resolver, scheme: str) -> None:
        self._policy = policy
        self._resolver = resolver
        self._scheme = scheme
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109  httpcore's backend interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        deadline = None if timeout is None else time.monotonic() + timeout
        addresses = await self._vetted_addresses(host, port, timeout)
        last_error: Exception = httpcore.ConnectError(f"no address to connect to for {host}")
        for ip in addresses:
            try:
                return await self._inner.connect_tcp(
                    str(ip),
                    port,
                    timeout=_remaining_s(deadline),
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        raise last_error

    async def _vetted_addresses(
        self, host: str, port: int, timeout_s: float | None
    ) -> tuple[IPAddress, ...]:
        """Policy verdicts raise UrlRejected; DNS trouble is a ConnectError, as in httpx."""
        target = check_target(self._scheme, host, port, self._policy)
        try:
            async with asyncio.timeout(timeout_s):
                addresses = await lookup(target, self._resolver)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        return vet_addresses(target, addresses, self._policy)

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def _remaining_s(deadline: float | None) -> float | None:
    """What is left of the connect timeout, shared across all addresses tried."""
    if deadline is None:
        return None
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise httpcore.ConnectTimeout("connect timeout exhausted")
    return remaining
