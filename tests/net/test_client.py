"""The safe client over real loopback TLS: it dials vetted IPs, under the real hostname."""

from __future__ import annotations

import asyncio
import ssl
from pathlib import Path

import httpx
import pytest
import trustme

from app.net import IPAddress, Resolver, UrlPolicy, UrlRejected, make_safe_client

from .fakes import SERVER_NAME, LoopbackServer, ScriptedResolver

# Strict prod policy; the operator allow-lists exactly the test server's address.
PROD_WITH_LOOPBACK_ALLOWED = UrlPolicy.for_environment("prod", ["127.0.0.1/32"])
PROD = UrlPolicy.for_environment("prod")


def safe_client(
    policy: UrlPolicy, resolver: Resolver, verify: ssl.SSLContext | str | bool
) -> httpx.AsyncClient:
    return make_safe_client(
        policy, timeout_s=5.0, verify=verify, user_agent="motion-gateway-test", resolver=resolver
    )


def url(server: LoopbackServer, path: str = "/hook", host: str = SERVER_NAME) -> str:
    return f"https://{host}:{server.port}{path}"


async def test_connects_to_the_vetted_ip_under_the_hostname(
    tls_server: LoopbackServer, client_tls: ssl.SSLContext
) -> None:
    dns = ScriptedResolver({SERVER_NAME: [["127.0.0.1"]]})
    async with safe_client(PROD_WITH_LOOPBACK_ALLOWED, dns, client_tls) as client:
        response = await client.get(url(tls_server))
        peer = response.extensions["network_stream"].get_extra_info("server_addr")

    assert response.status_code == 200
    # gateway.test exists only in the scripted resolver: reaching the server at all
    # proves the socket went to the address we resolved and vetted.
    assert peer == ("127.0.0.1", tls_server.port)
    assert tls_server.connections == [("127.0.0.1", tls_server.port)]
    assert dns.calls == [(SERVER_NAME, tls_server.port)]
    # ...while Host, SNI and the certificate check all used the hostname.
    assert response.json() == {"path": "/hook", "host": f"{SERVER_NAME}:{tls_server.port}"}
    assert tls_server.sni_names == [SERVER_NAME]
    assert tls_server.requests[0]["user-agent"] == "motion-gateway-test"


async def test_dev_policy_reaches_a_loopback_name(
    tls_server: LoopbackServer, client_tls: ssl.SSLContext
) -> None:
    dns = ScriptedResolver({SERVER_NAME: [["127.0.0.1"]]})
    async with safe_client(UrlPolicy.for_environment("dev"), dns, client_tls) as client:
        response = await client.get(url(tls_server))
    assert response.status_code == 200


async def test_connections_are_pooled_per_host_and_resolved_once(
    tls_server: LoopbackServer, client_tls: ssl.SSLContext
) -> None:
    dns = ScriptedResolver({SERVER_NAME: [["127.0.0.1"]]})
    async with safe_client(PROD_WITH_LOOPBACK_ALLOWED, dns, client_tls) as client:
        for path in ("/a", "/b", "/c"):
            assert (await client.get(url(tls_server, path))).status_code == 200
    assert len(tls_server.connections) == 1
    assert dns.calls_for(SERVER_NAME) == 1
    assert [r["path"] for r in tls_server.requests] == ["/a", "/b", "/c"]


async def test_the_certificate_is_checked_against_the_hostname_not_the_ip(
    tls_server: LoopbackServer, client_tls: ssl.SSLContext
) -> None:
    dns = ScriptedResolver({"impostor.test": [["127.0.0.1"]]})
    async with safe_client(PROD_WITH_LOOPBACK_ALLOWED, dns, client_tls) as client:
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await client.get(url(tls_server, host="impostor.test"))
    assert tls_server.sni_names == ["impostor.test"]
    assert tls_server.requests == []


async def test_a_caller_cannot_choose_the_sni_name(
    tls_server: LoopbackServer, client_tls: ssl.SSLContext
) -> None:
    dns = ScriptedResolver({SERVER_NAME: [["127.0.0.1"]]})
    async with safe_client(PROD_WITH_LOOPBACK_ALLOWED, dns, client_tls) as client:
        response = await client.get(url(tls_server), extensions={"sni_hostname": "evil.test"})
    assert response.status_code == 200
    assert tls_server.sni_names == [SERVER_NAME]


async def test_a_name_resolving_to_loopback_is_refused_in_prod(
    tls_server: LoopbackServer, client_tls: ssl.SSLContext
) -> None:
    dns = ScriptedResolver({SERVER_NAME: [["127.0.0.1"]]})
    async with safe_client(PROD, dns, client_tls) as client:
        with pytest.raises(UrlRejected) as caught:
            await client.get(url(tls_server))
    assert caught.value.code == "url_private_address"
    assert tls_server.connections == []


@pytest.mark.parametrize("answer", [["10.0.0.1"], ["127.0.0.1", "10.0.0.1"]])
async def test_a_resolver_returning_a_private_ip_is_refused_before_connecting(
    tls_server: LoopbackServer, client_tls: ssl.SSLContext, answer: list[str]
) -> None:
    # The allowed address comes first in the mixed answer: every address is vetted,
    # not just the one that would be dialled.
    dns = ScriptedResolver({SERVER_NAME: [answer]})
    async with safe_client(PROD_WITH_LOOPBACK_ALLOWED, dns, client_tls) as client:
        with pytest.raises(UrlRejected, match=r"10\.0\.0\.1"):
            await client.get(url(tls_server))
    assert tls_server.connections == []


async def test_dns_rebinding_cannot_move_a_vetted_connection(
    tls_server: LoopbackServer, client_tls: ssl.SSLContext
) -> None:
    # First answer is allowed, every later one points at the private network.
    dns = ScriptedResolver({SERVER_NAME: [["127.0.0.1"], ["10.0.0.1"]]})
    async with safe_client(PROD_WITH_LOOPBACK_ALLOWED, dns, client_tls) as client:
        first = await client.get(url(tls_server, "/first"))
        again = await client.get(url(tls_server, "/again"))
    assert (first.status_code, again.status_code) == (200, 200)
    assert dns.calls_for(SERVER_NAME) == 1  # resolved once; the connection used that answer
    assert tls_server.connections == [("127.0.0.1", tls_server.port)]

    async with safe_client(PROD_WITH_LOOPBACK_ALLOWED, dns, client_tls) as client:
        with pytest.raises(UrlRejected, match=r"10\.0\.0\.1"):
            await client.get(url(tls_server, "/rebound"))
    assert dns.calls_for(SERVER_NAME) == 2
    assert len(tls_server.connections) == 1


async def test_redirects_are_returned_not_followed(
    tls_server: LoopbackServer, client_tls: ssl.SSLContext
) -> None:
    dns = ScriptedResolver({SERVER_NAME: [["127.0.0.1"]]})
    async with safe_client(PROD_WITH_LOOPBACK_ALLOWED, dns, client_tls) as client:
        response = await client.get(url(tls_server, "/redirect"))
    assert response.status_code == 302
    assert response.headers["location"] == f"http://127.0.0.1:{tls_server.port}/secret"
    assert [r["path"] for r in tls_server.requests] == ["/redirect"]


async def test_a_redirect_followed_on_request_is_still_vetted(
    tls_server: LoopbackServer, client_tls: ssl.SSLContext
) -> None:
    dns = ScriptedResolver({SERVER_NAME: [["127.0.0.1"]]})
    async with safe_client(PROD_WITH_LOOPBACK_ALLOWED, dns, client_tls) as client:
        with pytest.raises(UrlRejected) as caught:
            await client.get(url(tls_server, "/redirect"), follow_redirects=True)
    assert caught.value.code == "url_scheme_not_allowed"
    assert [r["path"] for r in tls_server.requests] == ["/redirect"]


@pytest.mark.parametrize(
    ("target", "code"),
    [
        ("https://169.254.169.254/latest/meta-data/", "url_private_address"),
        ("https://2130706433/", "url_private_address"),
        ("https://[::ffff:127.0.0.1]/", "url_private_address"),
        ("https://localhost/", "url_private_address"),
        ("http://example.com/", "url_scheme_not_allowed"),
        ("https://user:pw@example.com/", "url_credentials_not_allowed"),
    ],
)
async def test_refused_urls_raise_url_rejected_without_dns(target: str, code: str) -> None:
    dns = ScriptedResolver({})
    async with safe_client(PROD, dns, True) as client:
        with pytest.raises(UrlRejected) as caught:
            await client.get(target)
    assert caught.value.code == code
    assert dns.calls == []


async def test_dns_failure_is_a_network_error_not_a_policy_refusal() -> None:
    async with safe_client(PROD, ScriptedResolver({}), True) as client:
        with pytest.raises(httpx.ConnectError, match="cannot resolve"):
            await client.get("https://nowhere.example.com/")
    assert not issubclass(UrlRejected, httpx.HTTPError)


async def test_a_ca_bundle_path_is_accepted_as_verify(
    tls_server: LoopbackServer, ca: trustme.CA, tmp_path: Path
) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    dns = ScriptedResolver({SERVER_NAME: [["127.0.0.1"]]})
    async with safe_client(PROD_WITH_LOOPBACK_ALLOWED, dns, str(bundle)) as client:
        assert (await client.get(url(tls_server))).status_code == 200


async def test_the_system_trust_store_refuses_the_test_ca(tls_server: LoopbackServer) -> None:
    dns = ScriptedResolver({SERVER_NAME: [["127.0.0.1"]]})
    async with safe_client(PROD_WITH_LOOPBACK_ALLOWED, dns, True) as client:
        with pytest.raises(httpx.ConnectError):
            await client.get(url(tls_server))


async def test_dev_plain_http_reaches_loopback_only(http_server: LoopbackServer) -> None:
    dns = ScriptedResolver({"devbox.test": [["127.0.0.1"]], "public.test": [["93.184.216.34"]]})
    dev = UrlPolicy.for_environment("dev")
    async with safe_client(dev, dns, True) as client:
        literal = await client.get(f"http://127.0.0.1:{http_server.port}/x")
        named = await client.get(f"http://devbox.test:{http_server.port}/y")
        with pytest.raises(UrlRejected) as caught:
            await client.get(f"http://public.test:{http_server.port}/z")
    assert (literal.status_code, named.status_code) == (200, 200)
    assert caught.value.code == "url_scheme_not_allowed"
    assert [r["path"] for r in http_server.requests] == ["/x", "/y"]

    async with safe_client(PROD, dns, True) as client:
        with pytest.raises(UrlRejected, match="url_scheme_not_allowed"):
            await client.get(f"http://127.0.0.1:{http_server.port}/x")


async def test_falls_back_to_the_next_vetted_address(
    tls_server: LoopbackServer, client_tls: ssl.SSLContext
) -> None:
    # Nothing listens on [::1]:port (or there is no IPv6 at all): the dial moves on.
    policy = UrlPolicy.for_environment("prod", ["127.0.0.1/32", "::1/128"])
    dns = ScriptedResolver({SERVER_NAME: [["::1", "127.0.0.1"]]})
    async with safe_client(policy, dns, client_tls) as client:
        response = await client.get(url(tls_server))
    assert response.status_code == 200
    assert tls_server.connections == [("127.0.0.1", tls_server.port)]


async def test_a_hanging_resolver_is_a_connect_timeout() -> None:
    async def never(host: str, port: int) -> list[IPAddress]:
        await asyncio.Event().wait()
        return []

    client = make_safe_client(PROD, timeout_s=0.05, user_agent="test", resolver=never)
    async with client:
        with pytest.raises(httpx.ConnectTimeout, match="resolving"):
            await client.get("https://slow.example.com/")
