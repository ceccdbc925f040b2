"""A real S3 server on loopback (moto's standalone server), for the storage tests."""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
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
