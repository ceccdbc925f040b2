"""DNS for the policy: resolve off the event loop, then judge every answer."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from app.net.addresses import IPAddress, parse_ip
from app.net.errors import UrlRejected
from app.net.policy import ParsedTarget, UrlPolicy, check_url, vet_addresses

Resolver = Callable[[str, int], Awaitable[list[IPAddress]]]
"""(host, port) -> addresses. Raises OSError (e.g. socket.gaierror) when the name fails."""


@dataclass(frozen=True)
class VettedTarget:
    """A URL whose every address passed the policy; dial only these addresses."""

    scheme: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


async def system_resolver(host: str, port: int) -> list[IPAddress]:
    """getaddrinfo in the loop's executor, so a slow DNS server never blocks the loop."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[IPAddress] = []
    for family, _type, _proto, _canonname, sockaddr in infos:
        if family not in (socket.AF_INET, socket.AF_INET6):
            continue
        ip = parse_ip(str(sockaddr[0]))
        if ip not in addresses:
            addresses.append(ip)
    return addresses


async def lookup(target: ParsedTarget, resolver: Resolver) -> tuple[IPAddress, ...]:
    """The target's addresses: literal and localhost ones without DNS. Raises OSError."""
    fixed = target.fixed_addresses
    if fixed is not None:
        return fixed
    addresses = await resolver(target.host, target.port)
    if not addresses:
        raise socket.gaierror(socket.EAI_NONAME, f"{target.host} has no addresses")
    return tuple(addresses)


async def resolve_and_vet(
    url: str,
    policy: UrlPolicy,
    *,
    resolver: Resolver = system_resolver,
    timeout_s: float | None = None,
) -> VettedTarget:
    """check_url, then resolve and require every address to pass. Raises UrlRejected.

    For checking a URL before storing or using it. To dial it, use the safe client: it
    repeats this at connect time and connects to exactly the addresses it vetted.
    """
    target = check_url(url, policy)
    try:
        async with asyncio.timeout(timeout_s):
            addresses = await lookup(target, resolver)
    except OSError as exc:  # TimeoutError included: an answer that never comes is no answer
        raise UrlRejected("url_unresolvable", f"cannot resolve {target.host}: {exc}") from None
    vetted = vet_addresses(target, addresses, policy)
    return VettedTarget(scheme=target.scheme, host=target.host, port=target.port, addresses=vetted)
