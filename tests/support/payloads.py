"""Request bodies for tests; plain functions, no fixtures."""

from __future__ import annotations

from typing import Any


def job_body(**overrides: Any) -> dict[str, Any]:
    """A valid create body. Its media URLs are in a documentation range (RFC 5737): the
    gateway's media check refuses to dial them at once, so no test waits on DNS."""
    body: dict[str, Any] = {
        "image_url": "https://203.0.113.10/character.png",
        "video_url": "https://203.0.113.10/motion.mp4",
        "quality": "720p",
        "model_params": {"character_orientation": "image"},
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}
