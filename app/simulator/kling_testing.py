"""Helpers for talking to the simulator on the Kling wire from tests and scripts.

    async with running_simulator(fast_kling_config()) as sim:
        async with kling_client(sim) as http:
            await http.post("/v1/videos/motion-control", json=sample_kling_body())
        await admin_tasks(sim)

Like `testing`, nothing here imports pytest.
"""

from __future__ import annotations

from typing import Any

import httpx

from app.simulator.config import SimulatorConfig
from app.simulator.kling_auth import mint_kling_jwt
from app.simulator.testing import RunningSimulator


def fast_kling_config(**changes: Any) -> SimulatorConfig:
    """The Kling wire with short timers, loopback callbacks and a short `timeout` fault."""
    settings: dict[str, Any] = {
        "wire": "kling",
        "pending_time_s": 0.02,
        "processing_time_s": 0.1,
        "callback_timeout_s": 2.0,
        "allow_insecure_callbacks": True,
        "fault_hang_s": 5.0,
    }
    return SimulatorConfig.model_validate({**settings, **changes})


def sample_kling_body(**overrides: Any) -> dict[str, Any]:
    """A valid create body (UPSTREAM.md §B); keywords replace top-level fields, None drops one."""
    body: dict[str, Any] = {
        "model_name": "kling-v3",
        "image_url": "https://media.example.com/character.png",
        "video_url": "https://media.example.com/motion.mp4",
        "keep_original_sound": "yes",
        "character_orientation": "image",
        "mode": "std",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not None}


def kling_token(running: RunningSimulator, **claims: float) -> str:
    """A token the simulator accepts; `mint_kling_jwt` options (`now_s`, `ttl_s`...) apply."""
    config = running.config
    return mint_kling_jwt(config.kling_access_key, config.kling_secret_key, **claims)


def kling_client(running: RunningSimulator, token: str | None = None) -> httpx.AsyncClient:
    """A client for the simulator that sends a valid (or the given) bearer JWT."""
    bearer = token if token is not None else kling_token(running)
    return httpx.AsyncClient(
        base_url=running.base_url, headers={"Authorization": f"Bearer {bearer}"}, timeout=10.0
    )


async def install_faults(running: RunningSimulator, rules: dict[str, Any]) -> None:
    """`POST /_sim/faults`; raises on a refused rule."""
    async with httpx.AsyncClient(base_url=running.base_url) as admin:
        response = await admin.post("/_sim/faults", json=rules)
    response.raise_for_status()


async def admin_tasks(running: RunningSimulator) -> list[dict[str, Any]]:
    """`GET /_sim/tasks`: every task's summary, in creation order."""
    async with httpx.AsyncClient(base_url=running.base_url) as admin:
        response = await admin.get("/_sim/tasks")
    response.raise_for_status()
    tasks: list[dict[str, Any]] = response.json()["tasks"]
    return tasks
