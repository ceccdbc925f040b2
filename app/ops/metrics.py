"""Prometheus metrics; label sets are bounded (no ids in labels)."""

from __future__ import annotations

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
