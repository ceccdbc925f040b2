"""SSRF-safe URL policy and HTTP client: everything the gateway dials goes through here.

- ``check_url``: pure checks (scheme, length, credentials, host form, IP literals).
- ``resolve_and_vet``: ``check_url`` plus DNS, every answer judged.
- ``make_safe_client``: an ``httpx.AsyncClient`` that vets at connect time and dials
  only the vetted addresses, never follows redirects, raises ``UrlRejected`` on refusal.
"""

from app.net.addresses import IPAddress, forbidden_reason
from app.net.client import make_safe_client, make_upstream_client
from app.net.errors import RejectionCode, UrlRejected
from app.net.policy import ParsedTarget, UrlPolicy, check_url
from app.net.resolver import Resolver, VettedTarget, resolve_and_vet, system_resolver

__all__ = [
    "IPAddress",
    "ParsedTarget",
    "RejectionCode",
    "Resolver",
    "UrlPolicy",
    "UrlRejected",
    "VettedTarget",
    "check_url",
    "forbidden_reason",
    "make_safe_client",
    "make_upstream_client",
    "resolve_and_vet",
    "system_resolver",
]
