"""Wire shapes of the ops routes: health, readiness, the provider list."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    ready: bool
    database: str
    migrations: str
    callback_mode: str
    callback_mode_reason: str
    providers: dict[str, dict[str, Any]]


class ProviderList(BaseModel):
    data: list[dict[str, Any]]
