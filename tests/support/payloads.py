"""Request bodies for tests; plain functions, no fixtures."""

from __future__ import annotations

from typing import Any


def job_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "image_url": "https://media.example.com/character.png",
        "video_url": "https://media.example.com/motion.mp4",
        "quality": "720p",
        "model_params": {"character_orientation": "image"},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}
