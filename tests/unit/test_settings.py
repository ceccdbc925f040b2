from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from app.settings import Environment, Settings

ENV_EXAMPLE = Path(__file__).resolve().parents[2] / ".env.example"


def _documented() -> set[str]:
    names = re.findall(r"^([A-Z_][A-Z0-9_]*)=", ENV_EXAMPLE.read_text(), flags=re.M)
    return set(names)


def test_env_example_documents_every_setting() -> None:
    expected = {
        "DATABASE_URL"
        if name == "database_url"
        else "PUBLIC_BASE_URL"
        if name == "public_base_url"
        else f"MGW_{name.upper()}"
        for name in Settings.model_fields
    }
    assert expected == _documented()


def test_prod_refuses_placeholder_secret_and_missing_database(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)  # the suite may run with one set
    with pytest.raises(ValidationError, match="MGW_SECRET_KEY"):
        Settings(environment=Environment.prod, database_url="postgresql://x/y")
    with pytest.raises(ValidationError, match="DATABASE_URL"):
        Settings(environment=Environment.prod, secret_key="s" * 40, _env_file=None)
    ok = Settings(
        environment=Environment.prod, secret_key="s" * 40, database_url="postgresql://x/y"
    )
    assert not ok.is_dev_like


def test_env_example_parses(monkeypatch: pytest.MonkeyPatch) -> None:
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    assert settings.providers[0].name == "simulator"
    assert settings.webhook_retry_schedule_s[-1] == 36000


def test_a_lease_must_outlive_the_longest_call() -> None:
    with pytest.raises(ValidationError, match="MGW_WORKER_LEASE_S"):
        Settings(_env_file=None, worker_lease_s=30.0, provider_submit_timeout_s=30.0)
    with pytest.raises(ValidationError, match="MGW_WORKER_LEASE_S"):
        Settings(_env_file=None, worker_lease_s=20.0, webhook_timeout_s=25.0)


def test_shutdown_waits_at_least_as_long_as_a_submit_may_take() -> None:
    settings = Settings(_env_file=None, provider_submit_timeout_s=30.0)
    assert settings.effective_shutdown_grace_s >= 30.0
    with pytest.raises(ValidationError, match="MGW_SHUTDOWN_GRACE_S"):
        Settings(_env_file=None, shutdown_grace_s=2.0, provider_submit_timeout_s=30.0)
