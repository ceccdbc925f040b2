"""check_url: the pure half of the policy, in prod, dev and with an allow-list."""

from __future__ import annotations

from ipaddress import IPv4Address, IPv4Network, IPv6Network

import pytest

from app.net import UrlPolicy, UrlRejected, check_url

PROD = UrlPolicy.for_environment("prod")
DEV = UrlPolicy.for_environment("dev")

HOSTILE = [
    # IPv4 in the notations libc and browsers accept
    ("http://2130706433/", "url_scheme_not_allowed"),
    ("https://2130706433/", "url_private_address"),
    ("https://0x7f000001/", "url_private_address"),
    ("https://0177.0.0.1/", "url_private_address"),
    ("https://127.1/", "url_private_address"),
    ("https://0x7f.1/", "url_private_address"),
    ("https://127.0.0.1./", "url_private_address"),
    ("https://0/", "url_private_address"),
    ("https://0.0.0.0/", "url_private_address"),
    ("https://169.254.43518/", "url_private_address"),
    # the deny classes
    ("https://169.254.169.254/latest/meta-data/", "url_private_address"),
    ("https://100.64.0.1/", "url_private_address"),
    ("https://10.0.0.1/", "url_private_address"),
    ("https://172.16.0.1/", "url_private_address"),
    ("https://192.168.1.1/", "url_private_address"),
    ("https://192.0.0.9/", "url_private_address"),
    ("https://198.18.0.1/", "url_private_address"),
    ("https://224.0.0.1/", "url_private_address"),
    ("https://240.0.0.1/", "url_private_address"),
    ("https://255.255.255.255/", "url_private_address"),
    # IPv6 literals, and IPv4 hidden inside them
    ("https://[::]/", "url_private_address"),
    ("https://[::1]/", "url_private_address"),
    ("https://[::ffff:127.0.0.1]/", "url_private_address"),
    ("https://[::ffff:7f00:1]/", "url_private_address"),
    ("https://[::127.0.0.1]/", "url_private_address"),
    ("https://[64:ff9b::7f00:1]/", "url_private_address"),
    ("https://[64:ff9b:1::a00:1]/", "url_private_address"),
    ("https://[2002:7f00:1::]/", "url_private_address"),
    ("https://[2001::1]/", "url_private_address"),
    ("https://[fd00::1]/", "url_private_address"),
    ("https://[fe80::1]/", "url_private_address"),
    ("https://[fe80::1%25eth0]/", "url_host_not_allowed"),
    ("https://[ff02::1]/", "url_private_address"),
    # loopback names (RFC 6761), never sent to DNS
    ("https://localhost/", "url_private_address"),
    ("https://localhost:8443/x", "url_private_address"),
    ("https://foo.localhost/", "url_private_address"),
    ("https://LOCALHOST./", "url_private_address"),
    # credentials, schemes, length
    ("https://user:pass@example.com/", "url_credentials_not_allowed"),
    ("https://user@example.com/", "url_credentials_not_allowed"),
    ("https://127.0.0.1:443@example.com/", "url_credentials_not_allowed"),
    ("http://example.com/hook", "url_scheme_not_allowed"),
    ("ftp://example.com/file", "url_scheme_not_allowed"),
    ("file:///etc/passwd", "url_scheme_not_allowed"),
    ("gopher://example.com:70/_GET", "url_scheme_not_allowed"),
    ("dict://example.com:11211/", "url_scheme_not_allowed"),
    ("//example.com/x", "url_scheme_not_allowed"),
    ("https://example.com/" + "a" * 2100, "url_too_long"),
    # malformed or ambiguous
    ("", "url_invalid"),
    ("https://", "url_invalid"),
    ("https:///path", "url_invalid"),
    ("https://example.com:0/", "url_invalid"),
    ("https://example.com:99999/", "url_invalid"),
    ("https://exa mple.com/", "url_invalid"),
    ("https://example.com\\@127.0.0.1/", "url_invalid"),
    ("https://example.com\t/", "url_invalid"),
    ("https://\uff11\uff12\uff17.\uff10.\uff10.\uff11/", "url_invalid"),  # fullwidth digits
    ("https://127%2E0%2E0%2E1/", "url_invalid"),
    ("https://1.2.3.4.5/", "url_invalid"),
    ("https://foo.123/", "url_invalid"),
    ("https://example..com/", "url_invalid"),
]


@pytest.mark.parametrize(("url", "code"), HOSTILE)
def test_prod_refuses_hostile_urls(url: str, code: str) -> None:
    with pytest.raises(UrlRejected) as caught:
        check_url(url, PROD)
    assert caught.value.code == code
    assert caught.value.reason


def test_the_table_is_big_enough() -> None:
    assert len(HOSTILE) >= 30


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("https://93.184.216.34/x", "93.184.216.34", 443),
        ("https://8.8.8.8/", "8.8.8.8", 443),
        ("https://[2606:4700:4700::1111]:8443/", "2606:4700:4700::1111", 8443),
        ("https://example.com/hook?x=1#frag", "example.com", 443),
        ("HTTPS://Example.COM./x", "example.com", 443),
        ("https://bücher.de/", "xn--bcher-kva.de", 443),
        ("https://hooks_1.example.com:8443/", "hooks_1.example.com", 8443),
    ],
)
def test_prod_accepts_public_targets(url: str, host: str, port: int) -> None:
    target = check_url(url, PROD)
    assert (target.scheme, target.host, target.port) == ("https", host, port)


def test_non_canonical_public_ipv4_is_judged_as_that_ip() -> None:
    target = check_url("https://134744072/", PROD)
    assert target.ip == IPv4Address("8.8.8.8")
    assert target.host == "8.8.8.8"


def test_dns_names_are_left_to_resolution() -> None:
    target = check_url("https://hooks.example.com/", PROD)
    assert target.ip is None
    assert target.fixed_addresses is None


def test_max_url_length_is_inclusive() -> None:
    url = "https://example.com/"
    url += "a" * (2048 - len(url))
    assert check_url(url, PROD).host == "example.com"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:1234/x",
        "http://localhost:8000/",
        "http://app.localhost/",
        "http://[::1]:8000/",
        "https://127.0.0.1:8443/",
    ],
)
def test_dev_accepts_loopback_over_http(url: str) -> None:
    assert check_url(url, DEV).port in {1234, 8000, 80, 8443}


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://10.0.0.1/", "url_private_address"),
        ("https://10.0.0.1/", "url_private_address"),
        ("http://169.254.169.254/", "url_private_address"),
        ("http://8.8.8.8/", "url_scheme_not_allowed"),
        ("http://0.0.0.0:8000/", "url_private_address"),
        ("ftp://127.0.0.1/", "url_scheme_not_allowed"),
    ],
)
def test_dev_still_refuses_private_and_public_http(url: str, code: str) -> None:
    with pytest.raises(UrlRejected) as caught:
        check_url(url, DEV)
    assert caught.value.code == code


def test_allowlisted_private_address_passes() -> None:
    policy = UrlPolicy.for_environment("prod", ["10.0.0.0/8"])
    assert check_url("https://10.1.2.3/", policy).ip == IPv4Address("10.1.2.3")
    assert check_url("https://[::ffff:10.1.2.3]/", policy).host == "::ffff:a01:203"
    with pytest.raises(UrlRejected, match="url_private_address"):
        check_url("https://192.168.1.1/", policy)
    with pytest.raises(UrlRejected, match="url_scheme_not_allowed"):
        check_url("http://10.1.2.3/", policy)


def test_for_environment() -> None:
    assert UrlPolicy.for_environment("prod") == UrlPolicy()
    assert UrlPolicy.for_environment("test") == UrlPolicy(allow_http=True, allow_loopback=True)
    policy = UrlPolicy.for_environment("PROD", ["10.0.0.0/8", " fd00::/8 "])
    assert policy.allowlist == (IPv4Network("10.0.0.0/8"), IPv6Network("fd00::/8"))


@pytest.mark.parametrize(
    ("environment", "cidrs"),
    [("staging", []), ("prod", ["10.0.0.1/8"]), ("prod", ["not-a-cidr"])],
)
def test_for_environment_fails_fast(environment: str, cidrs: list[str]) -> None:
    with pytest.raises(ValueError, match=r"unknown environment|allow-list entry"):
        UrlPolicy.for_environment(environment, cidrs)


def test_for_environment_refuses_a_bare_string_allowlist() -> None:
    with pytest.raises(TypeError):
        UrlPolicy.for_environment("prod", "10.0.0.0/8")
