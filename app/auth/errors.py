from __future__ import annotations

from app.errors import NotFound


class ClientNotFound(NotFound):
    code = "client_not_found"

    def __init__(self, client_id: str) -> None:
        super().__init__(f"no client {client_id}")
