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


# What a client may be told: the code's meaning, never what a name resolved to, which
# address it is or how a connection went (a scanning oracle); `reason` goes to the log.
PUBLIC_REASONS: dict[RejectionCode, str] = {
    "url_invalid": "the URL is not valid",
    "url_scheme_not_allowed": "the URL's scheme is not allowed here",
    "url_too_long": "the URL is too long",
    "url_credentials_not_allowed": "URLs may not carry user:password@",
    "url_host_not_allowed": "the URL's host is not allowed",
    "url_private_address": "the URL's host is not an allowed destination",
    "url_unresolvable": "the URL's host cannot be used",
}


class UrlRejected(Exception):
    """The URL may not be dialled under the current policy.

    Deliberately not an ``httpx.HTTPError``: callers that retry network errors must not
    retry a policy refusal, so the two have to be caught separately. ``reason`` is for
    the server log; an answer to a client says ``public_reason``.
    """

    def __init__(self, code: RejectionCode, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code: RejectionCode = code
        self.reason = reason

    @property
    def public_reason(self) -> str:
        return PUBLIC_REASONS[self.code]
