"""The one way the gateway builds an HTTP client that dials untrusted URLs."""

from __future__ import annotations

import os
import ssl

import httpx

from app.net.policy import UrlPolicy
from app.net.resolver import Resolver, system_resolver
from app.net.transport import SafeTransport

DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)


def make_safe_client(
    policy: UrlPolicy,
    *,
    timeout_s: float,
    verify: ssl.SSLContext | str | bool = True,
    user_agent: str,
    resolver: Resolver = system_resolver,
    limits: httpx.Limits = DEFAULT_LIMITS,
) -> httpx.AsyncClient:
    """An AsyncClient that only ever connects to addresses the policy vetted.

    Policy refusals raise ``UrlRejected`` from the request call; network trouble (DNS
    included) raises the usual ``httpx.TransportError``s. Redirects are returned, not
    followed: a 3xx is the caller's failure to handle. Build it in the lifespan and close
    it on shutdown; ``resolver`` exists so tests can point names at loopback servers.
    """
    transport = SafeTransport(
        policy, ssl_context=ssl_context_for(verify), resolver=resolver, limits=limits
    )
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(timeout_s),
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
