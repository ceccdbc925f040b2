"""Copy succeeded jobs' results into storage before the upstream links die.

Claimed through the jobs domain (SKIP LOCKED, a lease, an attempt number that fences the
record), each copy runs as its own task under a `Pool`, with no database connection held
while the bytes stream; the outcome is recorded, and the job's terminal event published,
in one short transaction afterwards.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from app.clock import utcnow
from app.jobs import archival
from app.jobs.archival import LINK_EXPIRED, ArchiveItem
from app.media.archive import CopyFailed, copy_result
from app.runtime import Runtime
from app.workers.loop import Pool

log = logging.getLogger(__name__)

# The copy is cut off this long before its lease ends, so two never overlap.
LEASE_MARGIN_S: Final = 5.0


async def step(rt: Runtime, pool: Pool) -> int:
    if not pool.free:
        return 0
    items = await archival.claim(rt, pool.free)
    for item in items:
        pool.spawn(archive_one(rt, item, pool), f"archive of {item.job_id}")
    return len(items)


async def archive_one(rt: Runtime, item: ArchiveItem, pool: Pool | None = None) -> None:
    if item.url is None:
        await archival.record_failure(rt, item, "no_result_link", retryable=False)
        return
    if item.link_expires_at is not None and utcnow() >= item.link_expires_at:
        await archival.record_failure(rt, item, LINK_EXPIRED, retryable=False)
        return
    key = archival.archive_key(item.job_id)
    settings = rt.settings
    try:
        async with asyncio.timeout(settings.archive_lease_s - LEASE_MARGIN_S):
            copied = await copy_result(
                rt.media_client,
                rt.media.storage,
                item.url,
                key,
                max_bytes=settings.archive_max_bytes,
                read_timeout_s=settings.archive_read_timeout_s,
            )
    except CopyFailed as exc:
        log.info("archive of %s failed: %s", item.job_id, exc)
        _, retry_at = await archival.record_failure(rt, item, exc.reason, retryable=exc.retryable)
        if retry_at is not None and pool is not None:
            pool.wake_after((retry_at - utcnow()).total_seconds())
        return
    except TimeoutError:
        await archival.record_failure(rt, item, "result_copy_timeout", retryable=True)
        return
    except Exception:
        # The store failed (a full disk, S3 unreachable): retried like a network error.
        log.exception("archive of %s could not be stored", item.job_id)
        await archival.record_failure(rt, item, "archive_store_error", retryable=True)
        return
    except asyncio.CancelledError:
        # Shutdown: make it due again at once rather than after its lease.
        await asyncio.shield(archival.release(rt, item))
        raise
    await archival.record_archived(
        rt,
        item,
        key=key,
        sha256=copied.stored.sha256,
        size_bytes=copied.stored.size_bytes,
        probed_s=copied.duration_s,
    )
