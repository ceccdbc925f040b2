"""resolve_and_vet: every resolved address is judged; literals never reach DNS."""

from __future__ import annotations

import asyncio
from ipaddress import IPv4Address, ip_address
from pathlib import Path

import pytest

from app.net import IPAddress, UrlPolicy, UrlRejected, resolve_and_vet, system_resolver

from .fakes import ScriptedResolver

PROD = UrlPolicy.for_environment("prod")
DEV = UrlPolicy.for_environment("dev")


async def test_public_answers_are_returned_for_dialling() -> None:
    dns = ScriptedResolver({"hooks.example.com": [["93.184.216.34", "2606:2800:220:1::1"]]})
    vetted = await resolve_and_vet("https://hooks.example.com:8443/x", PROD, resolver=dns)
    assert vetted.scheme == "https"
    assert vetted.host == "hooks.example.com"
    assert vetted.port == 8443
    assert vetted.addresses == (ip_address("93.184.216.34"), ip_address("2606:2800:220:1::1"))
    assert dns.calls == [("hooks.example.com", 8443)]


@pytest.mark.parametrize(
    "answer",
    [
        ["127.0.0.1"],
        ["10.0.0.7"],
        ["169.254.169.254"],
        ["::1"],
        ["::ffff:127.0.0.1"],
        ["fe80::1%eth0"],
        ["93.184.216.34", "127.0.0.1"],  # one bad answer among good ones refuses the host
        ["2606:2800:220:1::1", "fd00::1"],
    ],
)
async def test_a_name_resolving_to_a_forbidden_address_is_refused(answer: list[str]) -> None:
    dns = ScriptedResolver({"rebind.example.com": [answer]})
    with pytest.raises(UrlRejected) as caught:
        await resolve_and_vet("https://rebind.example.com/", PROD, resolver=dns)
    assert caught.value.code == "url_private_address"
    assert "rebind.example.com resolves to" in caught.value.reason


async def test_literals_and_localhost_never_reach_the_resolver() -> None:
    dns = ScriptedResolver({})
    vetted = await resolve_and_vet("https://8.8.8.8/", PROD, resolver=dns)
    assert vetted.addresses == (IPv4Address("8.8.8.8"),)
    local = await resolve_and_vet("http://app.localhost:8000/", DEV, resolver=dns)
    assert local.addresses == (ip_address("127.0.0.1"), ip_address("::1"))
    assert dns.calls == []


@pytest.mark.parametrize("script", [{}, {"gone.example.com": [[]]}])
async def test_names_that_do_not_resolve_are_unresolvable(
    script: dict[str, list[list[str]]],
) -> None:
    with pytest.raises(UrlRejected) as caught:
        await resolve_and_vet("https://gone.example.com/", PROD, resolver=ScriptedResolver(script))
    assert caught.value.code == "url_unresolvable"


async def test_a_resolver_that_hangs_is_unresolvable_after_the_timeout() -> None:
    async def never(host: str, port: int) -> list[IPAddress]:
        await asyncio.Event().wait()
        return []

    with pytest.raises(UrlRejected) as caught:
        await resolve_and_vet("https://slow.example.com/", PROD, resolver=never, timeout_s=0.05)
    assert caught.value.code == "url_unresolvable"


async def test_dev_http_only_reaches_loopback() -> None:
    dns = ScriptedResolver(
        {
            "example.com": [["93.184.216.34"]],
            "devbox.test": [["127.0.0.1"]],
            "lan.test": [["10.0.0.1"]],
        }
    )
    with pytest.raises(UrlRejected) as caught:
        await resolve_and_vet("http://example.com/", DEV, resolver=dns)
    assert caught.value.code == "url_scheme_not_allowed"
    vetted = await resolve_and_vet("http://devbox.test:8000/", DEV, resolver=dns)
    assert vetted.addresses == (IPv4Address("127.0.0.1"),)
    with pytest.raises(UrlRejected, match="url_private_address"):
        await resolve_and_vet("http://lan.test/", DEV, resolver=dns)


async def test_allowlist_admits_resolved_private_addresses() -> None:
    policy = UrlPolicy.for_environment("prod", ["10.0.0.0/8"])
    dns = ScriptedResolver(
        {"internal.test": [["10.1.2.3"]], "mixed.test": [["10.1.2.3", "192.168.0.1"]]}
    )
    vetted = await resolve_and_vet("https://internal.test/", policy, resolver=dns)
    assert vetted.addresses == (IPv4Address("10.1.2.3"),)
    with pytest.raises(UrlRejected, match=r"192\.168\.0\.1"):
        await resolve_and_vet("https://mixed.test/", policy, resolver=dns)


async def test_system_resolver_answers_localhost_from_the_hosts_file() -> None:
    addresses = await system_resolver("localhost", 443)
    assert addresses
    assert all(ip.is_loopback for ip in addresses)


async def test_a_real_dns_name_for_loopback_is_refused_in_prod() -> None:
    alias = _loopback_alias_from_hosts_file()
    if alias is None:
        pytest.skip("no non-localhost loopback name in /etc/hosts")
    with pytest.raises(UrlRejected) as caught:
        await resolve_and_vet(f"https://{alias}/", PROD)
    assert caught.value.code == "url_private_address"
    assert (await resolve_and_vet(f"http://{alias}:8000/", DEV)).port == 8000


def _loopback_alias_from_hosts_file() -> str | None:
    """A name like "ip6-localhost" or the container's own name, resolved by real libc."""
    try:
        lines = Path("/etc/hosts").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if len(fields) < 2 or not _is_loopback_text(fields[0]):
            continue
        aliases = [name for name in fields[1:] if not name.rstrip(".").endswith("localhost")]
        if aliases:
            return aliases[0]
    return None


def _is_loopback_text(text: str) -> bool:
    try:
        return ip_address(text).is_loopback
    except ValueError:
        return False
