"""Real media files for tests and local tooling (blocking; small and fast by design).

Videos are H.264 through libx264 when the bundled FFmpeg has it (4:2:0 for even sizes,
4:4:4 for odd ones, which 4:2:0 cannot encode), otherwise MPEG-4 Part 2, which every
FFmpeg build can encode. Frame counts are exact, so `duration_s = frames / fps`.
"""

from __future__ import annotations

import struct
import zlib
from fractions import Fraction
from pathlib import Path
from typing import Final

import av
import av.codec
import av.container
from PIL import Image

# Above this many pixels Pillow would need hundreds of MB; such PNGs are streamed as
# 1-bit rows instead (only the dimension tests need them).
_PILLOW_MAX_PIXELS: Final = 20_000_000
_PNG_ROWS_PER_BATCH: Final = 64
_AUDIO_RATE_HZ: Final = 16_000
_AUDIO_FRAME_SAMPLES: Final = 1024


def make_png(path: Path, width: int, height: int) -> Path:
    """A real PNG of the given size (any size up to PNG's own 2^31 - 1 limit)."""
    if width * height > _PILLOW_MAX_PIXELS:
        _write_blank_png(path, width, height)
    else:
        _pattern(width, height).save(path, format="PNG")
    return path


def make_jpeg(path: Path, width: int, height: int, *, quality: int = 85) -> Path:
    """A real baseline JPEG (JPEG cannot exceed 65535 px a side)."""
    _pattern(width, height).save(path, format="JPEG", quality=quality)
    return path


def make_mp4(
    path: Path,
    width: int,
    height: int,
    duration_s: float,
    fps: int = 10,
    with_audio: bool = False,
) -> Path:
    return make_video(path, width, height, duration_s, fps, with_audio, container="mp4")


def make_mov(
    path: Path,
    width: int,
    height: int,
    duration_s: float,
    fps: int = 10,
    with_audio: bool = False,
) -> Path:
    return make_video(path, width, height, duration_s, fps, with_audio, container="mov")


def make_video(
    path: Path,
    width: int,
    height: int,
    duration_s: float,
    fps: int = 10,
    with_audio: bool = False,
    *,
    container: str = "mp4",
    codec: str | None = None,
    rotation_deg: int = 0,
) -> Path:
    """A real video in any container FFmpeg can mux (mp4, mov, matroska, avi, 3gp…).

    `width` x `height` is the coded size; `rotation_deg` adds a display rotation, as
    phones do for portrait clips.
    """
    frames = round(duration_s * fps)
    with av.open(str(path), "w", format=container) as box:
        video = _add_video_stream(box, width, height, fps, codec)
        if rotation_deg:
            video.set_display_rotation(rotation_deg)
        audio = _add_audio_stream(box) if with_audio else None
        for index in range(frames):
            rgba = _pattern(width, height, index).convert("RGBA").tobytes()
            picture = av.VideoFrame.from_bytes(rgba, width, height, format="rgba")
            box.mux(video.encode(picture))
        box.mux(video.encode(None))
        if audio is not None:
            _encode_silence(box, audio, Fraction(frames, fps))
    return path


def _pattern(width: int, height: int, index: int = 0) -> Image.Image:
    # A frame that changes over time, so encoders produce a real (non-static) stream.
    image = Image.new("RGB", (width, height), (40, 90, 160))
    band = max(1, width // 8)
    offset = (index * band // 2) % max(1, width)
    image.paste((230, 200, 40), (offset, 0, min(width, offset + band), height))
    return image


def _video_codec(requested: str | None) -> str:
    if requested:
        return requested
    return "libx264" if "libx264" in av.codec.codecs_available else "mpeg4"


def _add_video_stream(
    box: av.container.OutputContainer, width: int, height: int, fps: int, codec: str | None
) -> av.VideoStream:
    name = _video_codec(codec)
    stream = box.add_stream(name, rate=fps)
    if not isinstance(stream, av.VideoStream):
        raise ValueError(f"{name} is not a video codec")
    stream.width, stream.height = width, height
    odd = width % 2 or height % 2
    stream.pix_fmt = "yuv444p" if odd and name == "libx264" else "yuv420p"
    if name == "libx264":
        stream.options = {"preset": "ultrafast"}
    return stream


def _add_audio_stream(box: av.container.OutputContainer) -> av.AudioStream:
    return box.add_stream("aac", rate=_AUDIO_RATE_HZ, layout="mono")


def _encode_silence(
    box: av.container.OutputContainer, audio: av.AudioStream, duration: Fraction
) -> None:
    total = int(duration * _AUDIO_RATE_HZ)
    pts = 0
    while pts < total:
        samples = min(_AUDIO_FRAME_SAMPLES, total - pts)
        frame = av.AudioFrame(format="fltp", layout="mono", samples=samples)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate = _AUDIO_RATE_HZ
        frame.pts = pts
        pts += samples
        box.mux(audio.encode(frame))
    box.mux(audio.encode(None))


def _write_blank_png(path: Path, width: int, height: int) -> None:
    """A valid 1-bit grayscale PNG, streamed so memory stays small for huge sizes."""
    row = b"\x00" + bytes((width + 7) // 8)  # filter byte "none", then black pixels
    compressor = zlib.compressobj(1)
    chunks = [compressor.compress(row * _PNG_ROWS_PER_BATCH)
              for _ in range(height // _PNG_ROWS_PER_BATCH)]  # fmt: skip
    chunks.append(compressor.compress(row * (height % _PNG_ROWS_PER_BATCH)))
    chunks.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    with path.open("wb") as fh:
        fh.write(b"\x89PNG\r\n\x1a\n")
        fh.write(_png_chunk(b"IHDR", header))
        fh.write(_png_chunk(b"IDAT", b"".join(chunks)))
        fh.write(_png_chunk(b"IEND", b""))


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
