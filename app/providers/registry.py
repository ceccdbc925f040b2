"""The configured providers, their health, and price-ordered choice with failover."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from app.providers.base import Provider
from app.providers.health import CircuitBreaker, CircuitState, TokenBucket
from app.settings import ProviderConfig, Settings


@dataclass
class ProviderEntry:
    config: ProviderConfig
    adapter: Provider
    breaker: CircuitBreaker
    bucket: TokenBucket

    @property
    def name(self) -> str:
        return self.config.name


class ProviderRegistry:
    def __init__(self, entries: list[ProviderEntry]) -> None:
        self._entries = {e.name: e for e in entries}

    def get(self, name: str) -> ProviderEntry | None:
        return self._entries.get(name)

    def all(self) -> list[ProviderEntry]:
        return list(self._entries.values())

    def choose(self, quality: str, exclude: set[str]) -> ProviderEntry | None:
        """Cheapest enabled provider for this quality whose circuit lets a call through."""
        ordered = sorted(
            (e for e in self._entries.values() if e.config.enabled and e.name not in exclude),
            key=lambda e: (e.config.price_per_s(quality), e.name),
        )
        return next((e for e in ordered if e.breaker.allows()), None)

    def has_candidate(self, exclude: set[str]) -> bool:
        """Whether `choose` could find one; does not take a half-open probe slot."""
        return any(
            e.config.enabled
            and e.name not in exclude
            and e.breaker.state() is not CircuitState.open
            for e in self._entries.values()
        )

    def describe(self) -> dict[str, dict[str, Any]]:
        return {
            e.name: {
                "enabled": e.config.enabled,
                "circuit": e.breaker.state().value,
                "consecutive_failures": e.breaker.failures,
                "price_usd_per_s": {
                    # Prices keep their own precision (up to 6 places), as strings.
                    "720p": f"{e.config.price_720p_usd_per_s:f}",
                    "1080p": f"{e.config.price_1080p_usd_per_s:f}",
                },
                "billing_rounding": e.config.billing_rounding,
            }
            for e in self._entries.values()
        }


def build_adapter(
    config: ProviderConfig, settings: Settings, client: httpx.AsyncClient
) -> Provider:
    submit_s, query_s = settings.provider_submit_timeout_s, settings.provider_query_timeout_s
    if config.kind == "kling":
        from app.providers.kling import KlingProvider

        return KlingProvider(
            name=config.name,
            base_url=config.base_url,
            access_key=config.access_key,
            secret_key=config.secret_key,
            client=client,
            timeout_s=submit_s,
            query_timeout_s=query_s,
        )
    from app.providers.evolink import EvolinkProvider

    return EvolinkProvider(
        name=config.name,
        base_url=config.base_url,
        api_key=config.api_key,
        client=client,
        timeout_s=submit_s,
        query_timeout_s=query_s,
        honors_idempotency_key=config.honors_idempotency_key,
        task_list_lookup=config.task_list_lookup,
    )


def build_registry(settings: Settings, client: httpx.AsyncClient) -> ProviderRegistry:
    entries = [
        ProviderEntry(
            config=config,
            adapter=build_adapter(config, settings, client),
            breaker=CircuitBreaker(
                settings.circuit_failure_threshold,
                settings.circuit_open_s,
                # A probe is a submit: its outcome is known by the submit timeout at the latest.
                probe_timeout_s=settings.provider_submit_timeout_s + 5.0,
            ),
            bucket=TokenBucket(settings.upstream_query_rate_per_s, settings.upstream_query_burst),
        )
        for config in settings.providers
    ]
    return ProviderRegistry(entries)
