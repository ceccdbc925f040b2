"""Render the served OpenAPI schema as YAML (`make openapi` writes openapi.yaml)."""

from __future__ import annotations

import sys

import yaml

from app.main import create_app
from app.settings import Settings


def render() -> str:
    # Building the app touches nothing: connections are made in the lifespan only.
    schema = create_app(Settings(environment="test")).openapi()
    return yaml.safe_dump(schema, sort_keys=False, allow_unicode=True, width=100)


if __name__ == "__main__":
    sys.stdout.write(render())
