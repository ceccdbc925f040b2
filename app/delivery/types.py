"""Event type names, shared by the outbox and the SQL that routes events to endpoints."""

TERMINAL_EVENTS = ("job.succeeded", "job.failed", "job.cancelled", "job.expired")
ENDPOINT_DISABLED = "endpoint.disabled"
# Sent to every endpoint of the client, whatever its filter: they are about the subscription.
OPERATIONAL_EVENTS = (ENDPOINT_DISABLED,)
