"""Check our own callback URL the way the upstream will before handing it out."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from app.ids import placeholder_id
from app.inbound.tokens import callback_url
from app.net import UrlPolicy, UrlRejected, resolve_and_vet
from app.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class CallbackMode:
    """Whether upstreams can reach our callback URL; decided by checking it as they would."""

    mode: str = "poll-only"  # "webhook" | "poll-only"
    reason: str = "not checked yet"


async def check_callback_mode(settings: Settings) -> CallbackMode:
    # The upstream knows nothing of our allow-list: judge with the bare environment policy.
    policy = UrlPolicy.for_environment(settings.environment.value)
    url = callback_url(
        settings.public_base_url, settings.secret_bytes, "probe", placeholder_id("job")
    )
    try:
        await resolve_and_vet(url, policy)
    except UrlRejected as exc:
        log.warning(
            "callback URL %s is not reachable for upstreams (%s): poll-only",
            url.split("?", 1)[0],  # never the token
            exc.reason,
        )
        return CallbackMode("poll-only", exc.reason)
    return CallbackMode("webhook", "ok")
