from __future__ import annotations

from pathlib import Path

import yaml

from app.openapi import render

COMMITTED = Path(__file__).resolve().parents[2] / "openapi.yaml"


def test_committed_openapi_matches_the_app() -> None:
    """Run `make openapi` when this fails: the committed contract drifted from the code."""
    assert yaml.safe_load(COMMITTED.read_text()) == yaml.safe_load(render())


def test_contract_paths_are_served() -> None:
    paths = yaml.safe_load(render())["paths"]
    for path in (
        "/v1/jobs",
        "/v1/jobs/{job_id}",
        "/v1/jobs/{job_id}/cancel",
        "/v1/jobs/{job_id}/events",
        "/v1/upstream/{provider}/callbacks/{job_id}",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths
