"""Read the facts the model's limits are about, then check them.

The probes are blocking (file I/O, Pillow, FFmpeg): call them from a worker thread, or
use the `aprobe_*` wrappers from async code. A file whose content is not one of the
accepted formats is refused before any decoder sees it, whatever its name says, which
also keeps the decoders' attack surface to the four formats the model takes.
"""

from __future__ import annotations

import asyncio
import os
import struct
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Final, Literal

import av
import av.container
import av.video.frame
from PIL import ExifTags, ImageFile, JpegImagePlugin, PngImagePlugin

from app.media.errors import MediaRejected
from app.media.limits import IMAGE_FORMATS, VIDEO_FORMATS, MediaLimits
from app.media.sniff import CONTENT_TYPES, HEAD_BYTES, read_head, sniff_format


@dataclass(frozen=True, slots=True)
class ImageInfo:
    format: str  # "png" | "jpeg", from the content
    content_type: str
    width: int  # as displayed, i.e. after the EXIF orientation
    height: int
    size_bytes: int
    kind: Literal["image"] = "image"


@dataclass(frozen=True, slots=True)
class VideoInfo:
    format: str  # container: "mp4" | "mov", from the content
    content_type: str
    width: int  # as displayed, i.e. after the rotation in the display matrix
    height: int
    duration_s: float
    size_bytes: int
    has_audio: bool
    codec: str  # FFmpeg's name for the video codec, e.g. "h264"
    kind: Literal["video"] = "video"


MediaInfo = ImageInfo | VideoInfo

# Pillow and FFmpeg report a malformed file through many exception types.
_PILLOW_ERRORS: Final = (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error)
# Integrity decoding of a JPEG is bounded to this many bytes of pixels (see below).
_JPEG_VERIFY_MAX_BYTES: Final = 64 * 1024 * 1024
_EXIF_ORIENTATION_SWAPS_SIDES: Final = frozenset({5, 6, 7, 8})
# Enough for any real file's first keyframe; a file that needs more is not worth decoding.
_MAX_PACKETS_BEFORE_FIRST_FRAME: Final = 500
# Off by default in FFmpeg already; pinned because either would let a crafted file make
# the demuxer open other local files.
_MOV_DEMUXER_OPTIONS: Final = {"enable_drefs": "0", "use_absolute_path": "0"}


def probe_image(path: Path) -> ImageInfo:
    """Blocking: format, size and dimensions of a png or jpeg, from its content."""
    with path.open("rb") as fh:
        size_bytes = os.fstat(fh.fileno()).st_size
        fmt = sniff_format(fh.read(HEAD_BYTES))
        if fmt not in IMAGE_FORMATS:
            raise MediaRejected(
                "image_format_unsupported",
                f"the file is {_describe(fmt)}; images must be jpeg or png",
                limit=", ".join(sorted(IMAGE_FORMATS)),
            )
        fh.seek(0)
        try:
            width, height = _read_image(fh, fmt)
        except _PILLOW_ERRORS as exc:
            raise MediaRejected(
                "image_unreadable", f"the {fmt} file is damaged or truncated: {exc}"
            ) from exc
    return ImageInfo(fmt, CONTENT_TYPES[fmt], width, height, size_bytes)


def probe_video(path: Path) -> VideoInfo:
    """Blocking: container, dimensions, duration and tracks of an mp4 or mov."""
    with path.open("rb") as fh:
        size_bytes = os.fstat(fh.fileno()).st_size
        fmt = sniff_format(fh.read(HEAD_BYTES))
        if fmt not in VIDEO_FORMATS:
            raise MediaRejected(
                "video_format_unsupported",
                f"the file is {_describe(fmt)}; videos must be mp4 or mov",
                limit=", ".join(sorted(VIDEO_FORMATS)),
            )
        fh.seek(0)
        try:
            # A file object rather than a path: FFmpeg then never interprets the name
            # (no "protocol:" prefixes), and the demuxer is pinned to mov/mp4.
            # Tags are decoded leniently: cameras write non-UTF-8 titles, and PyAV's
            # default ("strict") would turn a good video into an unhandled error.
            with av.open(
                fh,
                "r",
                format="mov",
                options=dict(_MOV_DEMUXER_OPTIONS),
                metadata_errors="replace",
            ) as box:
                return _read_video(box, fmt, size_bytes)
        except av.FFmpegError as exc:
            # `strerror` only: str(exc) names the file, i.e. our storage layout.
            reason = exc.strerror or type(exc).__name__
            raise MediaRejected(
                "video_unreadable", f"the {fmt} file is damaged or truncated: {reason}"
            ) from exc


def probe_media(path: Path) -> MediaInfo:
    """Blocking: probe an upload whose kind (image or video) is only known by content."""
    fmt = sniff_format(read_head(path))
    if fmt in IMAGE_FORMATS:
        return probe_image(path)
    if fmt in VIDEO_FORMATS:
        return probe_video(path)
    accepted = sorted(IMAGE_FORMATS | VIDEO_FORMATS)
    raise MediaRejected(
        "media_format_unsupported",
        f"the file is {_describe(fmt)}; accepted formats are {', '.join(accepted)}",
        limit=", ".join(accepted),
    )


async def aprobe_image(path: Path) -> ImageInfo:
    return await asyncio.to_thread(probe_image, path)


async def aprobe_video(path: Path) -> VideoInfo:
    return await asyncio.to_thread(probe_video, path)


async def aprobe_media(path: Path) -> MediaInfo:
    return await asyncio.to_thread(probe_media, path)


def _describe(fmt: str | None) -> str:
    return fmt or "of an unrecognised type"


def _read_image(fh: BinaryIO, fmt: str) -> tuple[int, int]:
    # The plugin class is used directly, on a format already sniffed: `Image.open` would
    # apply Pillow's global decompression-bomb limit (~179 Mpx), which refuses legal
    # images (the model takes up to 65536 px a side). Pixels are never fully decoded
    # here, so that limit protects nothing; `_verify` bounds what it decodes itself.
    image: ImageFile.ImageFile = (
        PngImagePlugin.PngImageFile(fh) if fmt == "png" else JpegImagePlugin.JpegImageFile(fh)
    )
    with image:
        width, height = image.size
        swap = fmt == "jpeg" and _exif_orientation(image) in _EXIF_ORIENTATION_SWAPS_SIDES
        _verify(image, fmt)
    return (height, width) if swap else (width, height)


def _exif_orientation(image: ImageFile.ImageFile) -> int | None:
    value = image.getexif().get(ExifTags.Base.Orientation)
    return value if isinstance(value, int) else None


def _verify(image: ImageFile.ImageFile, fmt: str) -> None:
    """Catch truncated or corrupt files, which the header alone does not reveal."""
    if fmt == "png":
        # Walks every chunk and checks its CRC, without inflating the pixel data.
        image.verify()
        return
    width, height = image.size
    # libjpeg's DCT scaling decodes every byte of entropy-coded data but only writes
    # 1/8 x 1/8 of the pixels; as "L" that bounds the buffer to 64 MiB even for a
    # 65535 x 65535 image (a CMYK file keeps 4 bands, hence the explicit budget).
    image.draft("L", (max(1, width // 8), max(1, height // 8)))
    scaled_w, scaled_h = image.size
    if scaled_w * scaled_h * len(image.getbands()) <= _JPEG_VERIFY_MAX_BYTES:
        image.load()


def _read_video(box: av.container.InputContainer, fmt: str, size_bytes: int) -> VideoInfo:
    if not box.streams.video:
        raise MediaRejected("video_unreadable", f"the {fmt} file has no video track")
    stream = box.streams.video[0]
    frame = _first_frame(box, stream, fmt)
    width, height = frame.width, frame.height
    if frame.rotation % 180:
        width, height = height, width
    return VideoInfo(
        format=fmt,
        content_type=CONTENT_TYPES[fmt],
        width=width,
        height=height,
        duration_s=_duration_s(box, stream, fmt),
        size_bytes=size_bytes,
        has_audio=bool(box.streams.audio),
        codec=stream.codec_context.name,
    )


def _first_frame(
    box: av.container.InputContainer, stream: av.VideoStream, fmt: str
) -> av.video.frame.VideoFrame:
    # Decoding one frame proves the track is playable (codec known, data present) for
    # the cost of a single picture; the metadata alone would not.
    for index, packet in enumerate(box.demux(stream)):
        for frame in packet.decode():
            return frame
        if index >= _MAX_PACKETS_BEFORE_FIRST_FRAME:
            break
    raise MediaRejected("video_unreadable", f"no picture in the {fmt} file could be decoded")


def _duration_s(box: av.container.InputContainer, stream: av.VideoStream, fmt: str) -> float:
    # The video track's own length is what the model animates (and bills); the
    # container's may be longer because of an audio track.
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
    elif box.duration is not None:
        seconds = box.duration / av.time_base
    else:
        raise MediaRejected("video_unreadable", f"the {fmt} file does not state its duration")
    # Millisecond precision: timescale arithmetic must not turn 3.0 s into 2.9999 s.
    return round(seconds, 3)


def check_image(info: ImageInfo, limits: MediaLimits) -> None:
    """Raise `MediaRejected` naming the first of the model's image limits `info` breaks."""
    if info.format not in limits.image_formats:
        allowed = ", ".join(sorted(limits.image_formats))
        raise MediaRejected(
            "image_format_unsupported",
            f"the image is {info.format}; accepted: {allowed}",
            limit=allowed,
        )
    if info.size_bytes > limits.image_max_bytes:
        raise MediaRejected(
            "image_too_large",
            f"the image is {info.size_bytes} bytes; the limit is {limits.image_max_bytes}",
            limit=limits.image_max_bytes,
        )
    _check_image_dimensions(info.width, info.height, limits)


def _check_image_dimensions(width: int, height: int, limits: MediaLimits) -> None:
    long_side, short_side = max(width, height), min(width, height)
    size = f"{width}x{height} px"
    if long_side > limits.image_max_side_px:
        raise MediaRejected(
            "image_dimensions_too_large",
            f"the image is {size}; each side must be at most {limits.image_max_side_px} px",
            limit=limits.image_max_side_px,
        )
    if short_side < limits.image_min_side_px:
        raise MediaRejected(
            "image_too_small",
            f"the image is {size}; each side must be at least {limits.image_min_side_px} px",
            limit=limits.image_min_side_px,
        )
    # Exact rational comparison: 750x300 is exactly 2.5:1 and must pass.
    if Fraction(long_side, short_side) > limits.image_max_aspect_ratio:
        ratio = float(limits.image_max_aspect_ratio)
        raise MediaRejected(
            "image_aspect_ratio_out_of_range",
            f"the image is {size}; the aspect ratio must be between 1:{ratio:g} and {ratio:g}:1",
            limit=ratio,
        )


def check_video(info: VideoInfo, limits: MediaLimits, orientation: str | None) -> None:
    """Raise `MediaRejected` naming the first of the model's video limits `info` breaks.

    `orientation` is the job's `character_orientation`; None (an upload not yet tied to
    a job) applies the looser 30 s cap.
    """
    max_duration_s = limits.video_max_duration_s(orientation)
    if info.format not in limits.video_formats:
        allowed = ", ".join(sorted(limits.video_formats))
        raise MediaRejected(
            "video_format_unsupported",
            f"the video is {info.format}; accepted: {allowed}",
            limit=allowed,
        )
    if info.size_bytes > limits.video_max_bytes:
        raise MediaRejected(
            "video_too_large",
            f"the video is {info.size_bytes} bytes; the limit is {limits.video_max_bytes}",
            limit=limits.video_max_bytes,
        )
    _check_video_dimensions(info.width, info.height, limits)
    _check_video_duration(info.duration_s, limits, orientation, max_duration_s)


def _check_video_dimensions(width: int, height: int, limits: MediaLimits) -> None:
    size = f"{width}x{height} px"
    if max(width, height) > limits.video_max_side_px:
        raise MediaRejected(
            "video_dimensions_too_large",
            f"the video is {size}; each side must be at most {limits.video_max_side_px} px",
            limit=limits.video_max_side_px,
        )
    if min(width, height) < limits.video_min_side_px:
        raise MediaRejected(
            "video_too_small",
            f"the video is {size}; each side must be at least {limits.video_min_side_px} px",
            limit=limits.video_min_side_px,
        )


def _check_video_duration(
    duration_s: float, limits: MediaLimits, orientation: str | None, max_duration_s: float
) -> None:
    if duration_s < limits.video_min_duration_s:
        raise MediaRejected(
            "video_too_short",
            f"the video lasts {duration_s:g} s; the minimum is {limits.video_min_duration_s:g} s",
            limit=limits.video_min_duration_s,
        )
    if duration_s > max_duration_s:
        context = f"character_orientation {orientation!r}" if orientation else "an upload"
        raise MediaRejected(
            "video_too_long",
            f"the video lasts {duration_s:g} s; with {context} the maximum is {max_duration_s:g} s",
            limit=max_duration_s,
        )


def check_media(info: MediaInfo, limits: MediaLimits, orientation: str | None = None) -> None:
    """`check_image` or `check_video`, whichever `info` is."""
    if isinstance(info, ImageInfo):
        check_image(info, limits)
    else:
        check_video(info, limits, orientation)
