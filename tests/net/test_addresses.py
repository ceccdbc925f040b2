"""forbidden_reason and the libc/WHATWG reading of IPv4-looking hosts."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Network, ip_address

import pytest

from app.net import forbidden_reason
from app.net.addresses import in_networks, is_loopback, parse_ipv4_host

FORBIDDEN = [
    ("0.0.0.0", "this network"),  # noqa: S104  an address under test, not a bind
    ("0.1.2.3", "this network"),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("10.0.0.1", "private"),
    ("172.16.0.1", "private"),
    ("172.31.255.255", "private"),
    ("192.168.1.1", "private"),
    ("169.254.169.254", "link-local"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("192.0.0.9", "IETF"),  # Python 3.11's is_global calls this one global
    ("192.0.2.1", "documentation"),
    ("198.51.100.7", "documentation"),
    ("203.0.113.9", "documentation"),
    ("192.88.99.1", "6to4 relay"),
    ("198.18.0.1", "benchmarking"),
    ("198.19.255.1", "benchmarking"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "broadcast"),
    ("::", "unspecified"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "IPv4-mapped address of 127.0.0.1"),
    ("::ffff:a9fe:a9fe", "IPv4-mapped address of 169.254.169.254"),
    ("::127.0.0.1", "IPv4-compatible"),
    ("::8.8.8.8", "IPv4-compatible"),  # deprecated form, refused whatever it embeds
    ("64:ff9b::7f00:1", "NAT64 address of 127.0.0.1"),
    ("64:ff9b::a00:1", "NAT64 address of 10.0.0.1"),
    ("64:ff9b:1::8.8.8.8", "local-use NAT64"),
    ("2002:7f00:1::", "6to4 address of 127.0.0.1"),
    ("2002:c0a8:101::1", "6to4 address of 192.168.1.1"),
    ("2001::1", "Teredo"),
    ("2001:2::1", "IETF"),
    ("2001:db8::1", "documentation"),
    ("3fff::1", "documentation"),
    ("100::1", "discard-only"),
    ("5f00::1", "SRv6"),
    ("fd00::1", "unique local"),
    ("fc00::1", "unique local"),
    ("fe80::1", "link-local"),
    ("fe80::1%eth0", "scoped"),
    ("fec0::1", "site-local"),
    ("ff02::1", "multicast"),
    ("4000::1", "not globally routable"),  # outside 2000::/3, unallocated
]

PUBLIC = [
    "8.8.8.8",
    "93.184.216.34",
    "1.1.1.1",
    "2606:4700:4700::1111",
    "2a00:1450:4001:80b::200e",
    "::ffff:8.8.8.8",
    "64:ff9b::808:808",
    "2002:808:808::1",
]


@pytest.mark.parametrize(("address", "fragment"), FORBIDDEN)
def test_forbidden_addresses_say_why(address: str, fragment: str) -> None:
    reason = forbidden_reason(ip_address(address))
    assert reason is not None
    assert fragment in reason


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert forbidden_reason(ip_address(address)) is None


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0x7F000001", "127.0.0.1"),
        ("017700000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("127.0.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f.0x0.0.01", "127.0.0.1"),
        ("0", "0.0.0.0"),  # noqa: S104  an address under test, not a bind
        ("0x", "0.0.0.0"),  # noqa: S104
        ("169.254.43518", "169.254.169.254"),
        ("134744072", "8.8.8.8"),
        ("8.8.8.8", "8.8.8.8"),
    ],
)
def test_ipv4_hosts_are_read_like_libc(host: str, expected: str) -> None:
    assert parse_ipv4_host(host) == IPv4Address(expected)


@pytest.mark.parametrize("host", ["example.com", "0x7f.example", "1e5", "a.b", "127.0.0.1x"])
def test_domain_names_are_not_ipv4(host: str) -> None:
    assert parse_ipv4_host(host) is None


@pytest.mark.parametrize(
    "host", ["1.2.3.4.5", "foo.123", "256.0.0.1", "1.2.3.256", "4294967296", "09", "0x1g.1"]
)
def test_numeric_looking_hosts_that_are_no_address_are_errors(host: str) -> None:
    with pytest.raises(ValueError, match=r"IPv4|numeric"):
        parse_ipv4_host(host)


def test_mapped_loopback_is_loopback_and_matches_v4_networks() -> None:
    mapped = ip_address("::ffff:127.0.0.1")
    assert is_loopback(mapped)
    assert not is_loopback(ip_address("64:ff9b::7f00:1"))
    assert in_networks(ip_address("::ffff:10.1.2.3"), (IPv4Network("10.0.0.0/8"),))
    assert not in_networks(ip_address("10.1.2.3"), (IPv6Network("fd00::/8"),))
