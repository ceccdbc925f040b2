"""Standard Webhooks signatures, made by the reference library rather than by hand."""

from __future__ import annotations

from datetime import datetime

from standardwebhooks.webhooks import Webhook


def signature_header(secrets: list[str], msg_id: str, timestamp: datetime, body: str) -> str:
    """`v1,<sig>` per secret, space-separated: during a rotation both secrets sign."""
    return " ".join(Webhook(secret).sign(msg_id, timestamp, body) for secret in secrets)


def standard_headers(
    secrets: list[str], msg_id: str, timestamp: datetime, body: str
) -> dict[str, str]:
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp.timestamp())),
        "webhook-signature": signature_header(secrets, msg_id, timestamp, body),
    }
