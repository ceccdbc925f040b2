from __future__ import annotations

from app.errors import NotFound, Unprocessable


class EndpointNotFound(NotFound):
    code = "webhook_endpoint_not_found"

    def __init__(self, endpoint_id: str) -> None:
        super().__init__(f"no webhook endpoint {endpoint_id}")


class DeliveryNotFound(NotFound):
    code = "delivery_not_found"

    def __init__(self, delivery_id: str) -> None:
        super().__init__(f"no delivery {delivery_id}")


class EndpointUrlRejected(Unprocessable):
    code = "webhook_url_not_allowed"
