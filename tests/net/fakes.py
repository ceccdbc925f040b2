"""Test doubles for the net tests: a scripted resolver and a tiny keep-alive HTTP server."""

from __future__ import annotations

import asyncio
import json
import socket
import ssl
from dataclasses import dataclass, field

from app.net import IPAddress
from app.net.addresses import parse_ip

SERVER_NAME = "gateway.test"
"""The name the test certificate is issued for; it resolves only through ScriptedResolver."""


class ScriptedResolver:
    """Answers from a script: each host's answers are used in turn, the last one repeats."""

    def __init__(self, script: dict[str, list[list[str]]]) -> None:
        self._script = script
        self.calls: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[IPAddress]:
        self.calls.append((host, port))
        answers = self._script.get(host)
        if not answers:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} is not in the script")
        index = min(sum(1 for called, _ in self.calls if called == host), len(answers)) - 1
        return [parse_ip(text) for text in answers[index]]

    def calls_for(self, host: str) -> int:
        return sum(1 for called, _ in self.calls if called == host)


@dataclass
class LoopbackServer:
    """What the server saw: one entry per TCP connection and per request."""

    port: int
    sni_names: list[str | None] = field(default_factory=list)
    connections: list[tuple[str, int]] = field(default_factory=list)
    requests: list[dict[str, str]] = field(default_factory=list)


async def serve_connection(
    state: LoopbackServer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> None:
    """Keep-alive HTTP/1.1: bodiless requests, answered until the client hangs up."""
    local = writer.get_extra_info("sockname")
    state.connections.append((local[0], local[1]))
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            request = _parse_head(head)
            state.requests.append(request)
            writer.write(_response_for(request, state.port))
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
        pass
    finally:
        writer.close()


def _parse_head(head: bytes) -> dict[str, str]:
    request_line, *header_lines = head.decode("latin-1").strip().split("\r\n")
    method, path, _version = request_line.split(" ", 2)
    headers = dict(line.split(":", 1) for line in header_lines)
    return {"method": method, "path": path} | {
        name.strip().lower(): value.strip() for name, value in headers.items()
    }


def _response_for(request: dict[str, str], port: int) -> bytes:
    if request["path"] == "/redirect":
        location = f"http://127.0.0.1:{port}/secret"
        return f"HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n".encode()
    body = json.dumps({"path": request["path"], "host": request.get("host")}).encode()
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body
