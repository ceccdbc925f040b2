"""The result video a completed task links to: a small, real, playable MP4, as long as
the task says (UPSTREAM.md §A: output length = reference video length)."""

from __future__ import annotations

import io

import av
from av.video.stream import VideoStream
from PIL import Image, ImageDraw

WIDTH_PX = 128
HEIGHT_PX = 128
FRAME_RATE = 12
_BOX_PX = 32


def _frame(index: int) -> Image.Image:
    # A box sweeping across a shifting background, so a decoder sees real motion.
    image = Image.new("RGB", (WIDTH_PX, HEIGHT_PX), (20, (index * 9) % 256, 120))
    x = (index * 4) % (WIDTH_PX - _BOX_PX)
    ImageDraw.Draw(image).rectangle((x, 48, x + _BOX_PX, 48 + _BOX_PX), fill=(250, 200, 30))
    return image


def _pick_codec() -> str:
    # PyAV wheels normally bundle libx264; mpeg4 is the always-there fallback.
    return "libx264" if "libx264" in av.codecs_available else "mpeg4"


def render_result_mp4(duration_s: float) -> bytes:
    """Encode a clip of `duration_s` (to the frame). Blocking: use asyncio.to_thread."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format="mp4") as container:
        stream = container.add_stream(_pick_codec(), rate=FRAME_RATE)
        if not isinstance(stream, VideoStream):
            raise TypeError(f"expected a video stream, got {type(stream).__name__}")
        stream.width = WIDTH_PX
        stream.height = HEIGHT_PX
        stream.pix_fmt = "yuv420p"
        for index in range(max(1, round(FRAME_RATE * duration_s))):
            # PyAV's stubs leave from_image unannotated.
            frame = av.VideoFrame.from_image(_frame(index))  # type: ignore[no-untyped-call]
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return buffer.getvalue()
