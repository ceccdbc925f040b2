"""The one error the simulator raises; each wire renders it in its own upstream's shape."""

from __future__ import annotations


class SimulatorError(Exception):
    """An upstream refusal: an HTTP status, a message and, optionally, a code.

    The core names its codes in the aggregator's words ("task_not_found"); a wire with
    numeric codes passes them as text ("1102") and maps the names it does not know by
    `status`. That keeps the core free of any one wire's code table.
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.headers = headers or {}
