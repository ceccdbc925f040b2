"""All ORM tables, imported here so Alembic and the tests see every one."""

from app.models.client import ApiKey, Client
from app.models.job import Job, JobEvent
from app.models.upstream_callback import UpstreamCallback

__all__ = ["ApiKey", "Client", "Job", "JobEvent", "UpstreamCallback"]
