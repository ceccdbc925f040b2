"""Who is calling: what the request boundary learns from the API key, and services use."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    client_id: str
    is_admin: bool
    webhook_secret: str
