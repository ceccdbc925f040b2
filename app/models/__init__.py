"""All ORM tables, imported here so Alembic and the tests see every one."""

from app.models.client import ApiKey, Client
from app.models.job import Job, JobEvent
from app.models.upload import Upload
from app.models.upstream_callback import UpstreamCallback
from app.models.webhook import Delivery, DeliveryAttempt, Event, WebhookEndpoint

__all__ = [
    "ApiKey",
    "Client",
    "Delivery",
    "DeliveryAttempt",
    "Event",
    "Job",
    "JobEvent",
    "Upload",
    "UpstreamCallback",
    "WebhookEndpoint",
]
