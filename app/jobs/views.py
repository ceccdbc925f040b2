"""A job as the API and every webhook show it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from app.jobs.schemas import JobCost, JobError, JobOut, JobResult, ProviderRef, UpstreamCharge
from app.models import Job
from app.money import ZERO


def to_out(job: Job) -> JobOut:
    return JobOut(
        id=job.id,
        status=job.status,
        progress=job.progress,
        model=job.model,
        quality=job.quality,
        prompt=job.prompt,
        model_params=job.model_params,
        image_url=job.image_url,
        video_url=job.video_url,
        callback_url=job.callback_url,
        metadata=job.metadata_,
        provider=ProviderRef(name=job.provider_name, task_id=job.provider_task_id)
        if job.provider_name
        else None,
        result=_result(job),
        error=JobError(code=job.error_code, message=job.error_message or job.error_code)
        if job.error_code
        else None,
        cost=JobCost(
            estimated=job.cost_estimated_usd,
            billed=job.cost_billed_usd if job.cost_billed_usd is not None else ZERO,
            billed_seconds=job.billed_seconds,
            at_risk=at_risk_usd(job),
            upstream=UpstreamCharge(
                amount=f"{job.upstream_charge:f}",
                unit=job.upstream_charge_unit or "units",
                drift=job.upstream_charge_drift,
            )
            if job.upstream_charge is not None
            else None,
        ),
        version=job.version,
        created_at=job.created_at,
        updated_at=job.updated_at,
        completed_at=job.completed_at,
    )


def at_risk_usd(job: Job) -> Decimal:
    """What an upstream may have charged for a create whose outcome we do not know."""
    if job.submit_unknown and job.cost_billed_usd is None:
        return job.cost_estimated_usd
    return ZERO


def _result(job: Job) -> JobResult | None:
    if job.result_video_url is None and job.archived_url is None and job.archive_status is None:
        return None
    return JobResult(
        video_url=job.result_video_url,
        expires_at=job.result_expires_at,
        archived_url=job.archived_url,
        archive_status=job.archive_status,
        archive_error=job.archive_error,
        sha256=job.sha256,
        size_bytes=job.size_bytes,
        duration_s=job.result_duration_s,
        duration_mismatch=job.duration_mismatch,
    )


def job_payload(job: Job) -> dict[str, Any]:
    return to_out(job).model_dump(mode="json")
