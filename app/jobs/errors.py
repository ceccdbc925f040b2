from __future__ import annotations

from app.errors import Conflict, NotFound, Unprocessable


class JobNotFound(NotFound):
    code = "job_not_found"

    def __init__(self, job_id: str) -> None:
        super().__init__(f"no job {job_id}")


class IdempotencyConflict(Conflict):
    code = "idempotency_key_reused"

    def __init__(self) -> None:
        super().__init__("this Idempotency-Key was used with a different request body")


class NotCancellable(Conflict):
    code = "not_cancellable"


class InvalidCursor(Unprocessable):
    code = "invalid_cursor"


class CallbackUrlRejected(Unprocessable):
    code = "callback_url_not_allowed"
