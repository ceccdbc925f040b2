"""Callback tokens: the upstream does not sign, so the URL carries our own HMAC."""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import quote


def callback_token(secret: bytes, provider: str, job_id: str) -> str:
    return hmac.new(
        secret, f"upstream-callback:{provider}:{job_id}".encode(), hashlib.sha256
    ).hexdigest()


def token_is_valid(secret: bytes, provider: str, job_id: str, token: str) -> bool:
    # Bytes, not str: compare_digest refuses non-ASCII str, and the token is anyone's input.
    expected = callback_token(secret, provider, job_id).encode()
    return hmac.compare_digest(expected, token.encode("utf-8", errors="surrogateescape"))


def callback_url(public_base_url: str, secret: bytes, provider: str, job_id: str) -> str:
    token = callback_token(secret, provider, job_id)
    base = public_base_url.rstrip("/")
    return f"{base}/v1/upstream/{quote(provider)}/callbacks/{quote(job_id)}?token={token}"
