"""The one way the gateway builds an HTTP client that dials untrusted URLs."""

from __future__ import annotations

import os
import ssl

import httpx

from app.net.policy import UrlPolicy
from app.net.resolver import Resolver, system_resolver
from app.net.transport import RecoveringTransport, SafeTransport

# Bounded: a burst or a crowd of hanging peers cannot open sockets without end.
DEFAULT_LIMITS = httpx.Limits(
    max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0
)
# How long a request waits for a connection slot before the pool counts as wedged.
DEFAULT_POOL_TIMEOUT_S = 5.0


def make_safe_client(
    policy: UrlPolicy,
    *,
    timeout_s: float,
    verify: ssl.SSLContext | str | bool = True,
    user_agent: str,
    resolver: Resolver = system_resolver,
    limits: httpx.Limits = DEFAULT_LIMITS,
    pool_timeout_s: float = DEFAULT_POOL_TIMEOUT_S,
) -> httpx.AsyncClient:
    """An AsyncClient that only ever connects to addresses the policy vetted.

    Policy refusals raise ``UrlRejected`` from the request call; network trouble (DNS
    included) raises the usual ``httpx.TransportError``s. Redirects are returned, not
    followed: a 3xx is the caller's failure to handle. Build it in the lifespan and close
    it on shutdown; ``resolver`` exists so tests can point names at loopback servers.
    The pool is bounded (``limits``), waits at most ``pool_timeout_s`` for a slot, and is
    rebuilt if it ever wedges (``RecoveringTransport``).
    """
    context = ssl_context_for(verify)
    transport = RecoveringTransport(
        lambda: SafeTransport(policy, ssl_context=context, resolver=resolver, limits=limits),
        retire_after_s=timeout_s * 4 + 5.0,  # past any read of a stream still using it
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout_s, pool=pool_timeout_s),
        follow_redirects=False,
        # No proxies from the environment (they would dial for us, unvetted), no .netrc.
        trust_env=False,
        headers={"User-Agent": user_agent},
    )


def ssl_context_for(verify: ssl.SSLContext | str | bool) -> ssl.SSLContext:
    """True: certifi's CAs; a str: a CA bundle file or directory; False: no checks."""
    if isinstance(verify, ssl.SSLContext):
        return verify
    if isinstance(verify, str):
        if os.path.isdir(verify):
            return ssl.create_default_context(capath=verify)
        return ssl.create_default_context(cafile=verify)
    return httpx.create_ssl_context(verify=verify, trust_env=False)


def make_upstream_client(
    *,
    timeout_s: float,
    connect_s: float,
    user_agent: str,
    limits: httpx.Limits = DEFAULT_LIMITS,
    pool_timeout_s: float = DEFAULT_POOL_TIMEOUT_S,
) -> httpx.AsyncClient:
    """The client for the configured providers (trusted URLs, so no vetting): bounded,
    an explicit pool timeout, and rebuilt if its pool ever wedges, like the safe client."""
    transport = RecoveringTransport(
        lambda: httpx.AsyncHTTPTransport(limits=limits), retire_after_s=timeout_s * 4 + 5.0
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout_s, connect=connect_s, pool=pool_timeout_s),
        follow_redirects=False,
        headers={"User-Agent": user_agent},
    )
