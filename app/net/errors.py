"""The one error the net package raises for a policy verdict."""

from __future__ import annotations

from typing import Literal

RejectionCode = Literal[
    "url_invalid",
    "url_scheme_not_allowed",
    "url_too_long",
    "url_credentials_not_allowed",
    "url_host_not_allowed",
    "url_private_address",
    "url_unresolvable",
]


class UrlRejected(Exception):
    """The URL may not be dialled under the current policy.

    Deliberately not an ``httpx.HTTPError``: callers that retry network errors must not
    retry a policy refusal, so the two have to be caught separately.
    """

    def __init__(self, code: RejectionCode, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code: RejectionCode = code
        self.reason = reason
