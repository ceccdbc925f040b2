"""What the ops routes report: readiness checks and the gauges sampled at scrape time."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from app.clock import utcnow
from app.db.engine import ping
from app.db.migrate import current_revision, head_revision
from app.delivery import repository as delivery_repo
from app.jobs import repository as job_repo
from app.metrics import DELIVERY_BACKLOG, DELIVERY_BACKLOG_AGE, JOBS_BY_STATUS, SUBMIT_UNKNOWN
from app.ops.schemas import Readiness

if TYPE_CHECKING:
    from app.runtime import Runtime  # annotations only: the runtime sits above the domains

log = logging.getLogger(__name__)


async def check_database(rt: Runtime) -> tuple[str, str]:
    """(database, migrations), each "ok" or what is wrong: an orchestrator must not route
    traffic to a replica whose schema is behind (or ahead of) its code."""
    try:
        await ping(rt.engine)
        current, head = await current_revision(rt.engine), head_revision()
    except Exception as exc:
        log.warning("readiness: database check failed: %s", exc)
        return f"unavailable: {type(exc).__name__}", "unknown"
    if current != head:
        return "ok", f"at {current}, code expects {head}"
    return "ok", "ok"


async def readiness(rt: Runtime) -> Readiness:
    database, migrations = await check_database(rt)
    return Readiness(
        ready=database == "ok" and migrations == "ok",
        database=database,
        migrations=migrations,
        callback_mode=rt.callback.mode,
        callback_mode_reason=rt.callback.reason,
        providers=rt.registry.describe(),
    )


async def sample_gauges(rt: Runtime) -> None:
    """Set the job and delivery gauges from the database, once per scrape. A database that
    does not answer leaves them as they were: a scrape must still succeed."""
    try:
        async with rt.session_factory() as session:
            for status, count in (await job_repo.count_by_status(session)).items():
                JOBS_BY_STATUS.labels(status=status).set(count)
            for kind, count in (await job_repo.count_submit_unknown(session)).items():
                SUBMIT_UNKNOWN.labels(kind=kind).set(count)
            DELIVERY_BACKLOG.clear()
            DELIVERY_BACKLOG_AGE.clear()
            for state, count, oldest_s in await delivery_repo.backlog(session, utcnow()):
                DELIVERY_BACKLOG.labels(endpoint_state=state).set(count)
                DELIVERY_BACKLOG_AGE.labels(endpoint_state=state).set(oldest_s)
    except Exception as exc:
        log.warning("metrics: job counts unavailable: %s", exc)
