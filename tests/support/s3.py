"""A real S3 server on loopback (moto's standalone server), for the storage tests."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
ACCESS_KEY = "test-access-key"
SECRET_KEY = "test-secret-key"


@dataclass(frozen=True)
class S3Server:
    endpoint_url: str

    def create_bucket(self) -> str:
        name = f"mgw-{secrets.token_hex(4)}"
        # moto does not check signatures, so a plain PUT creates the bucket.
        httpx.put(f"{self.endpoint_url}/{name}").raise_for_status()
        return name


@contextlib.contextmanager
def running_s3() -> Iterator[S3Server]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield S3Server(f"http://{host}:{port}")
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3_server() -> Iterator[S3Server]:
    with running_s3() as server:
        yield server


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, object]:
    """Gateway settings for one storage backend: a local directory, or a fresh bucket on
    the module's S3 server. A test taking it runs once on each."""
    if request.param == "local":
        return {"storage_backend": "local", "media_dir": tmp_path / "media"}
    server: S3Server = request.getfixturevalue("s3_server")
    return {
        "storage_backend": "s3",
        "s3_bucket": server.create_bucket(),
        "s3_endpoint_url": server.endpoint_url,
        "s3_region": REGION,
        "s3_access_key_id": ACCESS_KEY,
        "s3_secret_access_key": SECRET_KEY,
        "s3_prefix": "gw",
    }
