"""The command line refuses bad input with one clear line, never a traceback."""

from __future__ import annotations

import socket

import pytest
from typer.testing import CliRunner

from app.cli import cli

runner = CliRunner()


def _refused(args: list[str], env: dict[str, str] | None = None) -> str:
    result = runner.invoke(cli, args, env=env)
    output = result.output + (result.stderr if result.stderr_bytes is not None else "")
    assert result.exit_code == 2, output
    assert "Traceback" not in output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return output


def test_an_unknown_role_is_a_usage_error() -> None:
    assert "--role" in _refused(["serve", "--role", "boss"])


def test_malformed_provider_json_names_the_setting_and_the_parse_error() -> None:
    output = _refused(["serve"], env={"MGW_PROVIDERS": '[{"name":'})
    assert "providers" in output
    assert "Expecting value" in output


def test_an_invalid_provider_names_the_setting_and_the_rule() -> None:
    output = _refused(["serve"], env={"MGW_PROVIDERS": '[{"name": "x", "base_url": "http://x"}]'})
    assert "MGW_PROVIDERS[0]" in output
    assert "api_key is required" in output


def test_a_busy_port_is_refused_before_anything_starts() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        output = _refused(["serve", "--port", str(port)])
    assert f"port {port}" in output
    assert "is up" not in output


@pytest.mark.parametrize("budget", ["-5", "100000000", "abc", "NaN", "Infinity"])
def test_keys_create_refuses_a_budget_the_column_cannot_hold(budget: str) -> None:
    output = _refused(["keys", "create", "--name", "x", "--budget-usd", budget])
    assert "--budget-usd" in output


@pytest.mark.parametrize(
    "args", [["jobs", "adopt", "job_1"], ["jobs", "adopt", "job_1", "t", "--ruled-out"]]
)
def test_jobs_adopt_takes_exactly_one_of_a_task_or_ruled_out(args: list[str]) -> None:
    assert "exactly one of TASK_ID or --ruled-out" in _refused(args)
