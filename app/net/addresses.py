"""Which IP addresses the gateway may dial, and how hosts that look like IPv4 are read.

``ipaddress.is_global`` is only the last line: on Python 3.11 it still calls several
special-purpose ranges global (192.0.0.9, 64:ff9b:1::/48, 2002::/16, ::a.b.c.d), so every
range we refuse is listed here with the reason an operator will read in the error.
"""

from __future__ import annotations

import ipaddress
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

IPAddress = IPv4Address | IPv6Address

_V4_BROADCAST = IPv4Address("255.255.255.255")

_V4_RULES: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(cidr), reason)
    for cidr, reason in (
        ("0.0.0.0/8", "'this network' 0.0.0.0/8 (incl. the unspecified address)"),
        ("10.0.0.0/8", "private network 10.0.0.0/8"),
        ("100.64.0.0/10", "carrier-grade NAT 100.64.0.0/10"),
        ("127.0.0.0/8", "loopback 127.0.0.0/8"),
        ("169.254.0.0/16", "link-local 169.254.0.0/16 (cloud metadata lives here)"),
        ("172.16.0.0/12", "private network 172.16.0.0/12"),
        ("192.0.0.0/24", "IETF protocol assignments 192.0.0.0/24"),
        ("192.0.2.0/24", "documentation range 192.0.2.0/24"),
        ("192.88.99.0/24", "6to4 relay anycast 192.88.99.0/24"),
        ("192.168.0.0/16", "private network 192.168.0.0/16"),
        ("198.18.0.0/15", "benchmarking 198.18.0.0/15"),
        ("198.51.100.0/24", "documentation range 198.51.100.0/24"),
        ("203.0.113.0/24", "documentation range 203.0.113.0/24"),
        ("224.0.0.0/4", "multicast 224.0.0.0/4"),
        ("240.0.0.0/4", "reserved 240.0.0.0/4"),
    )
)

# Checked after the embedded-IPv4 forms, so ::/96 here only catches IPv4-compatible ones.
_V6_RULES: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(cidr), reason)
    for cidr, reason in (
        ("::/96", "IPv4-compatible IPv6 ::/96 (deprecated)"),
        ("64:ff9b:1::/48", "local-use NAT64 64:ff9b:1::/48"),
        ("100::/64", "discard-only 100::/64"),
        ("2001::/32", "Teredo tunnelling 2001::/32"),
        ("2001::/23", "IETF protocol assignments 2001::/23"),
        ("2001:db8::/32", "documentation range 2001:db8::/32"),
        ("3fff::/20", "documentation range 3fff::/20"),
        ("5f00::/16", "SRv6 SIDs 5f00::/16"),
        ("fc00::/7", "unique local fc00::/7"),
        ("fe80::/10", "link-local fe80::/10"),
        ("fec0::/10", "site-local fec0::/10 (deprecated)"),
        ("ff00::/8", "multicast ff00::/8"),
    )
)

_V6_GLOBAL_UNICAST = IPv6Network("2000::/3")
_V6_MAPPED = IPv6Network("::ffff:0:0/96")
_V6_NAT64 = IPv6Network("64:ff9b::/96")

_RADIX_DIGITS = {
    8: frozenset("01234567"),
    10: frozenset("0123456789"),
    16: frozenset("0123456789abcdef"),
}


def forbidden_reason(ip: IPAddress) -> str | None:
    """Why the gateway must not dial ``ip``, or None when it is a public address."""
    if isinstance(ip, IPv4Address):
        return _v4_reason(ip)
    return _v6_reason(ip)


def is_loopback(ip: IPAddress) -> bool:
    """Loopback, including ::ffff:127.x.y.z, which reaches the same sockets."""
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_loopback
    return ip.is_loopback


def in_networks(ip: IPAddress, networks: tuple[IPv4Network | IPv6Network, ...]) -> bool:
    """Membership that also matches ::ffff:a.b.c.d against IPv4 networks."""
    candidates: list[IPAddress] = [ip]
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        candidates.append(ip.ipv4_mapped)
    return any(c in net for c in candidates for net in networks)


def _v4_reason(ip: IPv4Address) -> str | None:
    if ip == _V4_BROADCAST:
        return "limited broadcast 255.255.255.255"
    for network, reason in _V4_RULES:
        if ip in network:
            return reason
    if not ip.is_global:
        return "not globally routable"
    return None


def _v6_reason(ip: IPv6Address) -> str | None:
    if ip.scope_id:
        return "scoped IPv6 address (zone id)"
    if ip.is_unspecified:
        return "unspecified address ::"
    if ip.is_loopback:
        return "loopback ::1"
    embedded = _embedded_v4(ip)
    if embedded is not None:
        label, v4 = embedded
        inner = _v4_reason(v4)
        return None if inner is None else f"{label} of {v4}: {inner}"
    for network, reason in _V6_RULES:
        if ip in network:
            return reason
    if ip not in _V6_GLOBAL_UNICAST or not ip.is_global:
        return "not globally routable"
    return None


def _embedded_v4(ip: IPv6Address) -> tuple[str, IPv4Address] | None:
    """The IPv4 destination an IPv6 address really reaches, for the forms that carry one."""
    if ip in _V6_MAPPED:
        return "IPv4-mapped address", IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _V6_NAT64:
        return "NAT64 address", IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.sixtofour is not None:
        return "6to4 address", ip.sixtofour
    return None


def parse_ipv4_host(host: str) -> IPv4Address | None:
    """Read a host the way browsers (WHATWG URL) and libc ``inet_aton`` do.

    Returns None for a domain name. Raises ValueError for a host whose last label is
    numeric but which is no valid address ("1.2.3.4.5", "foo.123"): a resolver could
    still turn such a name into an address, so it is refused rather than looked up.
    ``host`` is lower-case with no trailing dot.
    """
    parts = host.split(".")
    if not _ends_in_number(parts[-1]):
        return None
    if len(parts) > 4:
        raise ValueError(f"{host!r} has more than four numeric parts")
    try:
        numbers = [_ipv4_number(part) for part in parts]
    except ValueError:
        raise ValueError(f"{host!r} ends in a number but is not an IPv4 address") from None
    if any(n > 255 for n in numbers[:-1]) or numbers[-1] >= 256 ** (5 - len(numbers)):
        raise ValueError(f"{host!r} is an out-of-range IPv4 address")
    value = numbers[-1]
    for index, number in enumerate(numbers[:-1]):
        value += number << (8 * (3 - index))
    return IPv4Address(value)


def _ends_in_number(part: str) -> bool:
    """WHATWG's test for "this host is meant as an IPv4 address" ("09" counts, and fails)."""
    if part.isascii() and part.isdigit():
        return True
    try:
        _ipv4_number(part)
    except ValueError:
        return False
    return True


def _ipv4_number(part: str) -> int:
    """One dotted part: 0x-prefixed hex, 0-prefixed octal, else decimal ("0x" alone is 0)."""
    if not part:
        raise ValueError("empty IPv4 part")
    digits, radix = part, 10
    if part[:2].lower() == "0x":
        digits, radix = part[2:], 16
    elif len(part) > 1 and part[0] == "0":
        digits, radix = part[1:], 8
    if not digits:
        return 0
    # int() alone would also accept "_", "+" and whitespace, which no resolver does.
    if not set(digits.lower()) <= _RADIX_DIGITS[radix]:
        raise ValueError(f"{part!r} is not a base-{radix} number")
    return int(digits, radix)


def parse_ip(text: str) -> IPAddress:
    """An address as getaddrinfo prints it (IPv6 may carry a %zone)."""
    return ipaddress.ip_address(text)
