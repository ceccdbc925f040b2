"""Wire shapes of the media API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel


class UploadOut(BaseModel):
    id: str
    kind: Literal["image", "video"]
    content_type: str
    size_bytes: int
    width: int
    height: int
    duration_s: float | None
    url: str
    expires_at: datetime
