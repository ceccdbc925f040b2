"""The status vocabularies of the stored rows, and the sets the SQL filters on.

They sit at the bottom of the house: models use them as column types, the state machine
decides between them, repositories filter on the same sets, so a set is spelled once.
"""

from __future__ import annotations

import enum


class JobStatus(enum.StrEnum):
    queued = "queued"
    submitting = "submitting"
    submitted = "submitted"
    processing = "processing"
    succeeded = "succeeded"
    failed = "failed"
    cancelled = "cancelled"
    expired = "expired"


TERMINAL: frozenset[JobStatus] = frozenset(
    {JobStatus.succeeded, JobStatus.failed, JobStatus.cancelled, JobStatus.expired}
)
LIVE: frozenset[JobStatus] = frozenset(set(JobStatus) - TERMINAL)
# Live and already handed to a provider: what a poll, a callback or the janitor may touch.
AT_PROVIDER: frozenset[JobStatus] = frozenset({JobStatus.submitted, JobStatus.processing})
# Waiting for the submitter.
AWAITING_SUBMIT: frozenset[JobStatus] = frozenset({JobStatus.queued, JobStatus.submitting})


class ArchiveStatus(enum.StrEnum):
    """Where a succeeded job's own copy of its result stands."""

    pending = "pending"  # to be copied; the job.succeeded event waits for it
    archived = "archived"
    failed = "failed"  # definitively: archive_error says why
    off = "off"  # archival is turned off (MGW_ARCHIVE_RESULTS=false)


class DeliveryStatus(enum.StrEnum):
    pending = "pending"
    succeeded = "succeeded"
    failed = "failed"  # the last attempt failed; another is scheduled
    dead = "dead"  # the schedule is exhausted; only a redeliver sends it again


LIVE_DELIVERY: frozenset[DeliveryStatus] = frozenset(
    {DeliveryStatus.pending, DeliveryStatus.failed}
)


class EndpointStatus(enum.StrEnum):
    enabled = "enabled"
    disabled = "disabled"
