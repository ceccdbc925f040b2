"""Configuration of the upstream simulator (UPSTREAM.md §A, or §B with `wire="kling"`).

Every knob also comes from the environment as `MGW_SIM_<FIELD>` (API.md), under
`motion-gateway simulator` and `serve --with-simulator` alike; a tuple or set knob takes
JSON (`[1, 2]`) or a comma list (`1,2`). Arguments given in code win over the environment.
"""

from __future__ import annotations

import json
import ssl
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class SimulatorConfig(BaseSettings):
    """Every knob of the simulator; the defaults mimic the real upstream."""

    model_config = SettingsConfigDict(
        env_prefix="MGW_SIM_",
        frozen=True,
        arbitrary_types_allowed=True,
        use_attribute_docstrings=True,
    )

    @classmethod
    def from_env(cls, defaults: dict[str, Any], **overrides: Any) -> SimulatorConfig:
        """`MGW_SIM_*` over a command's own `defaults`; `overrides` (its flags) over both."""
        from_env = cls().model_dump(exclude_unset=True)
        return cls.model_validate({**defaults, **from_env, **overrides})

    @field_validator("accepted_api_keys", "callback_retry_delays_s", mode="before")
    @classmethod
    def _list_from_env(cls, value: Any) -> Any:
        if not isinstance(value, str):
            return value
        if value.strip().startswith("["):
            return json.loads(value)
        return [part.strip() for part in value.split(",") if part.strip()]

    @field_validator("callback_verify", mode="before")
    @classmethod
    def _verify_from_env(cls, value: Any) -> Any:
        # From the environment every value is text: "false" means no check, not a path.
        flags = {"true": True, "1": True, "false": False, "0": False}
        return flags.get(value.strip().lower(), value) if isinstance(value, str) else value

    wire: Literal["evolink", "kling"] = "evolink"
    """The wire format served: the aggregator's (§A) or the official Kling API's (§B)."""

    public_base_url: str | None = None
    """Base of the result links; None means the base URL the create request came in on."""

    accepted_api_keys: Annotated[frozenset[str], NoDecode] = frozenset()
    """Bearer keys accepted; empty accepts any non-empty key."""

    pending_time_s: float = Field(default=1.0, ge=0)
    """How long a new task stays `pending` before it starts processing."""

    processing_time_s: float = Field(default=8.0, ge=0)
    """How long a task stays `processing` before it completes or fails."""

    video_duration_s: float = Field(default=5.0, gt=0)
    """Output length reported in `task_info.video_duration` (`#sim:duration=` overrides)."""

    result_ttl_s: float = Field(default=86400.0, ge=0)
    """Lifetime of a result link after completion; later fetches answer 404."""

    callback_timeout_s: float = Field(default=10.0, gt=0)
    """Time the callback receiver has to answer one attempt."""

    callback_pool_timeout_s: float = Field(default=5.0, gt=0)
    """Bound on waiting for a free connection of the callback client; past it the client
    is rebuilt, so a wedged connection pool cannot block later callbacks."""

    callback_max_connections: int = Field(default=100, ge=1)
    """Connections the callback client may hold open at once."""

    callback_retry_delays_s: Annotated[tuple[float, ...], NoDecode] = (1.0, 2.0, 4.0)
    """Waits before each retry of a failed callback (one retry per entry)."""

    callback_verify: ssl.SSLContext | str | bool = True
    """TLS check of callback receivers (httpx `verify`): CA bundle path, SSLContext or bool."""

    allow_insecure_callbacks: bool = False
    """Dev only: accept http:// callback URLs and private or loopback callback hosts."""

    callback_dns_timeout_s: float = Field(default=5.0, gt=0)
    """Bound on resolving a callback host when checking that it is public."""

    honor_idempotency_key: bool = False
    """Return the existing task for a repeated `Idempotency-Key` (undocumented upstream)."""

    error_code_style: Literal["string", "int"] = "string"
    """`error.code` as a string (primary docs) or as the integer HTTP status (a mirror)."""

    fault_hang_s: float = Field(default=60.0, ge=0)
    """How long a `timeout` fault holds the response (longer than any sane client timeout)."""

    user_group: str = "default"
    """Value of `usage.user_group` in task bodies."""

    kling_access_key: str = "sim-kling-access-key"
    """Kling wire: the access key a JWT must name as `iss`."""

    # A well-known test value of a fake upstream, not a credential.
    kling_secret_key: str = "sim-kling-secret-key-0123456789abcdef"  # noqa: S105
    """Kling wire: the HS256 key a JWT must be signed with (32+ bytes, as PyJWT advises)."""

    kling_callback_on_submit: bool = True
    """Kling wire: also call back when a task is created (`submitted`), not only on later
    changes; the docs say "on every status change" without saying whether creation is one."""
