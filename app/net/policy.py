"""The URL policy and its pure (no DNS) half: what a URL must look like to be dialled.

``check_url`` is necessary, not sufficient: a DNS name passes it and is judged on its
addresses by ``resolve_and_vet`` (or by the safe client at connect time).
"""

from __future__ import annotations

import ipaddress
import re
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

import httpx

from app.net.addresses import (
    IPAddress,
    forbidden_reason,
    in_networks,
    is_loopback,
    parse_ipv4_host,
)
from app.net.errors import UrlRejected
from app.validation import UnsafeUrlCharacters, parse_dialable

_DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"[a-z0-9_-]{1,63}")
_MAX_HOSTNAME_LENGTH = 253
# RFC 6761 reserves these names for loopback; they are never sent to DNS.
LOCALHOST_ADDRESSES: tuple[IPAddress, ...] = (IPv4Address("127.0.0.1"), IPv6Address("::1"))


@dataclass(frozen=True)
class UrlPolicy:
    """What the gateway may dial. The defaults are the production policy."""

    allow_http: bool = False
    """Plain http, and then only to loopback targets (dev)."""
    allow_loopback: bool = False
    """Loopback addresses pass (dev; the caller logs a warning)."""
    allowlist: tuple[IPv4Network | IPv6Network, ...] = ()
    """Operator allow-list: addresses inside these networks pass every deny class."""
    max_url_length: int = 2048

    @classmethod
    def for_environment(cls, environment: str, allowlist_cidrs: Sequence[str] = ()) -> UrlPolicy:
        """dev/test: http and loopback allowed; prod: strict. Bad CIDRs raise ValueError."""
        if isinstance(allowlist_cidrs, str):
            raise TypeError("allowlist_cidrs must be a sequence of CIDR strings, not one string")
        allowlist = tuple(_allowlist_network(cidr) for cidr in allowlist_cidrs)
        match environment.lower():
            case "dev" | "test":
                return cls(allow_http=True, allow_loopback=True, allowlist=allowlist)
            case "prod":
                return cls(allowlist=allowlist)
        raise ValueError(f"unknown environment {environment!r} (expected dev, test or prod)")


def _allowlist_network(cidr: str) -> IPv4Network | IPv6Network:
    # strict: "10.0.0.1/8" is more likely a typo than a wish, so fail at startup.
    try:
        return ipaddress.ip_network(cidr.strip(), strict=True)
    except ValueError as exc:
        raise ValueError(f"URL allow-list entry {cidr!r} is not a network: {exc}") from None


@dataclass(frozen=True)
class ParsedTarget:
    """A URL that passed the pure checks, with its host normalised."""

    scheme: str
    host: str
    """Lower-case ASCII (IDNA), no trailing dot; an IP literal in canonical form."""
    port: int
    ip: IPAddress | None = None
    """Set when the host is an IP literal, in whatever notation it was written."""

    @property
    def is_localhost(self) -> bool:
        return self.host == "localhost" or self.host.endswith(".localhost")

    @property
    def fixed_addresses(self) -> tuple[IPAddress, ...] | None:
        """The addresses known without DNS, or None when the host must be resolved."""
        if self.ip is not None:
            return (self.ip,)
        if self.is_localhost:
            return LOCALHOST_ADDRESSES
        return None


def check_url(url: str, policy: UrlPolicy) -> ParsedTarget:
    """Pure checks on ``url``; raises UrlRejected. Never touches DNS."""
    parsed = _parse(url, policy)
    if parsed.userinfo:
        raise UrlRejected("url_credentials_not_allowed", "URLs may not carry user:password@")
    return check_target(parsed.scheme, parsed.raw_host.decode("ascii"), parsed.port, policy)


def check_target(scheme: str, raw_host: str, port: int | None, policy: UrlPolicy) -> ParsedTarget:
    """The pure checks on an origin; the safe client runs them again at connect time."""
    _check_scheme(scheme, policy)
    host, ip = normalise_host(raw_host)
    target = ParsedTarget(scheme=scheme, host=host, port=_check_port(scheme, port), ip=ip)
    fixed = target.fixed_addresses
    if fixed is not None:
        vet_addresses(target, fixed, policy)
    return target


def vet_addresses(
    target: ParsedTarget, addresses: Sequence[IPAddress], policy: UrlPolicy
) -> tuple[IPAddress, ...]:
    """Every address must pass; one bad answer refuses the whole host (rebinding sets)."""
    if not addresses:
        raise UrlRejected("url_unresolvable", f"{target.host} has no addresses")
    for ip in addresses:
        reason = _refusal(ip, policy)
        if reason is not None:
            where = (
                f"{target.host} is" if target.ip is not None else f"{target.host} resolves to {ip},"
            )
            raise UrlRejected("url_private_address", f"{where} a forbidden address ({reason})")
    if target.scheme == "http" and not all(is_loopback(ip) for ip in addresses):
        raise UrlRejected(
            "url_scheme_not_allowed", f"plain http is only allowed to loopback, not {target.host}"
        )
    return tuple(addresses)


def normalise_host(raw_host: str) -> tuple[str, IPAddress | None]:
    """Lower-case host without trailing dot, plus its address when it is an IP literal."""
    host = raw_host.lower()
    if ":" in host:
        return _ipv6_literal(host)
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise UrlRejected("url_invalid", "the URL has no host")
    if len(host) > _MAX_HOSTNAME_LENGTH or not all(
        _LABEL.fullmatch(label) for label in host.split(".")
    ):
        raise UrlRejected("url_invalid", f"{raw_host!r} is not a valid host name")
    try:
        ip = parse_ipv4_host(host)
    except ValueError as exc:
        raise UrlRejected("url_invalid", str(exc)) from None
    return (host, None) if ip is None else (str(ip), ip)


def _refusal(ip: IPAddress, policy: UrlPolicy) -> str | None:
    if in_networks(ip, policy.allowlist):
        return None
    if policy.allow_loopback and is_loopback(ip):
        return None
    return forbidden_reason(ip)


def _parse(url: str, policy: UrlPolicy) -> httpx.URL:
    """Parse with httpx's own parser, so the check and the dial can never disagree."""
    if not isinstance(url, str) or not url:
        raise UrlRejected("url_invalid", "the URL is empty")
    if len(url) > policy.max_url_length:
        raise UrlRejected("url_too_long", f"URL is longer than {policy.max_url_length} characters")
    try:
        return parse_dialable(url)
    except UnsafeUrlCharacters as exc:
        raise UrlRejected("url_invalid", f"URL {exc}") from None
    except ValueError as exc:
        _refuse_hostile_ipv4(url)
        raise UrlRejected("url_invalid", f"URL {exc}") from None


def _refuse_hostile_ipv4(url: str) -> None:
    """httpx rejects "0177.0.0.1" as malformed; report it for what it means to libc."""
    try:
        host = urllib.parse.urlsplit(url).hostname or ""
        ip = parse_ipv4_host(host.rstrip("."))
    except ValueError:
        return
    reason = None if ip is None else forbidden_reason(ip)
    if reason is not None:
        raise UrlRejected(
            "url_private_address", f"{host} means {ip}, a forbidden address ({reason})"
        )


def _check_scheme(scheme: str, policy: UrlPolicy) -> None:
    if scheme == "https" or (scheme == "http" and policy.allow_http):
        return
    allowed = "http or https" if policy.allow_http else "https"
    raise UrlRejected("url_scheme_not_allowed", f"scheme {scheme or '(none)'!r} is not {allowed}")


def _check_port(scheme: str, port: int | None) -> int:
    effective = _DEFAULT_PORTS[scheme] if port is None else port
    if not 1 <= effective <= 65535:
        raise UrlRejected("url_invalid", f"port {effective} is out of range")
    return effective


def _ipv6_literal(host: str) -> tuple[str, IPAddress]:
    if "%" in host:
        raise UrlRejected("url_host_not_allowed", "IPv6 zone identifiers are not allowed")
    try:
        ip = IPv6Address(host)
    except ValueError:
        raise UrlRejected("url_invalid", f"{host!r} is not a valid IPv6 address") from None
    return str(ip), ip
