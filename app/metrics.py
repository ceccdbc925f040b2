"""Prometheus metrics; label sets are bounded (no ids in labels)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

JOB_TRANSITIONS = Counter(
    "mgw_job_transitions_total",
    "Applied job status changes",
    ["to_status", "source"],
    registry=REGISTRY,
)
UPSTREAM_CALLS = Counter(
    "mgw_upstream_calls_total",
    "Calls to upstream providers",
    ["provider", "op", "outcome"],
    registry=REGISTRY,
)
UPSTREAM_LATENCY = Histogram(
    "mgw_upstream_call_seconds", "Upstream call latency", ["provider", "op"], registry=REGISTRY
)
CALLBACKS_RECEIVED = Counter(
    "mgw_upstream_callbacks_total",
    "Upstream callbacks received",
    ["provider", "outcome"],
    registry=REGISTRY,
)
JOBS_BY_STATUS = Gauge(
    "mgw_jobs", "Jobs by status (sampled at scrape)", ["status"], registry=REGISTRY
)
DELIVERY_ATTEMPTS = Counter(
    "mgw_webhook_delivery_attempts_total",
    "Webhook delivery attempts by outcome",
    ["outcome"],
    registry=REGISTRY,
)
DELIVERY_LATENCY = Histogram(
    "mgw_webhook_event_to_delivery_seconds",
    "From event creation to successful delivery",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 1800, 7200, 86400),
    registry=REGISTRY,
)
DELIVERY_BACKLOG = Gauge(
    "mgw_webhook_backlog",
    "Undelivered deliveries by endpoint state",
    ["endpoint_state"],
    registry=REGISTRY,
)
DELIVERY_BACKLOG_AGE = Gauge(
    "mgw_webhook_backlog_oldest_seconds",
    "Age of the oldest undelivered delivery",
    ["endpoint_state"],
    registry=REGISTRY,
)

ARCHIVES = Counter(
    "mgw_archives_total",
    "Result archive attempts by outcome (archived, retried, failed, off)",
    ["outcome"],
    registry=REGISTRY,
)
ARCHIVED_BYTES = Counter(
    "mgw_archived_bytes_total", "Bytes of results copied into storage", registry=REGISTRY
)
ARCHIVE_DURATION_MISMATCHES = Counter(
    "mgw_archive_duration_mismatches_total",
    "Archived results whose probed length differs from what the provider reported or billed",
    ["provider"],
    registry=REGISTRY,
)
MEDIA_PURGED = Counter(
    "mgw_media_purged_total",
    "Stored objects deleted by retention",
    ["kind"],
    registry=REGISTRY,
)


@contextmanager
def upstream_call(provider: str, op: str) -> Iterator[None]:
    """Count and time one upstream call; the outcome is "ok" or the exception's class name
    (a small fixed set: the adapters raise only the ProviderError family)."""
    started = time.monotonic()
    outcome = "ok"
    try:
        yield
    except Exception as exc:
        outcome = type(exc).__name__
        raise
    finally:
        UPSTREAM_LATENCY.labels(provider=provider, op=op).observe(time.monotonic() - started)
        UPSTREAM_CALLS.labels(provider=provider, op=op, outcome=outcome).inc()


SUBMIT_UNKNOWN = Gauge(
    "mgw_submit_unknown_jobs",
    "Jobs whose submit outcome is unknown (sampled at scrape): `unresolved` = no task "
    "found yet; `at_risk` = every job whose estimate counts in `at_risk_usd`",
    ["kind"],
    registry=REGISTRY,
)
SUBMIT_LOOKUPS = Counter(
    "mgw_submit_lookups_total",
    "Looks for the task of a create whose answer was lost, by outcome (a mechanism that "
    "found it, not_found, error, window_closed, adopted_by_operator, ruled_out)",
    ["provider", "outcome"],
    registry=REGISTRY,
)
UPSTREAM_CHARGE_DRIFT = Counter(
    "mgw_upstream_charge_drift_total",
    "Settled jobs whose upstream-reported charge disagrees with our settlement",
    ["provider"],
    registry=REGISTRY,
)
