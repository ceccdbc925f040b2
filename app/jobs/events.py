"""What subscribers hear about a job: which statuses are events, what they carry, and
which of them also go to the job's own callback_url. Delivery only publishes them."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from app.delivery import outbox
from app.delivery.types import TERMINAL_EVENTS
from app.jobs.views import job_payload
from app.models import Job
from app.statuses import ArchiveStatus, JobStatus

EVENT_FOR_STATUS = {
    JobStatus.succeeded: "job.succeeded",
    JobStatus.failed: "job.failed",
    JobStatus.cancelled: "job.cancelled",
    JobStatus.expired: "job.expired",
    JobStatus.submitted: "job.submitted",
    JobStatus.processing: "job.processing",
}


async def publish_status(session: AsyncSession, job: Job, status: JobStatus) -> None:
    """Called inside the transaction that applied `status` to `job`.

    An outcome is always kept and also goes to the job's callback_url (the one place a
    caller without endpoints hears it); a progress event is kept only if an endpoint
    subscribed to it, and never goes to the callback_url.

    A success whose result is still being archived is not told yet: the archiver calls
    this again, in the transaction that records the archive's outcome, so subscribers get
    the link that lasts (`archival`).
    """
    event_type = EVENT_FOR_STATUS.get(status)
    if event_type is None:
        return
    if status is JobStatus.succeeded and job.archive_status is ArchiveStatus.pending:
        return
    outcome = event_type in TERMINAL_EVENTS
    await outbox.publish(
        session,
        job.client_id,
        event_type,
        job_payload(job),
        job_id=job.id,
        extra_url=job.callback_url if outcome else None,
        only_if_heard=not outcome,
    )
