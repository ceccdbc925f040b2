"""The real type comes from the content, never from the file name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from app.media.limits import MediaLimits
from app.media.probe import (
    ImageInfo,
    VideoInfo,
    aprobe_media,
    check_media,
    probe_image,
    probe_media,
)
from app.media.sniff import content_type_for, read_head, sniff_format
from tests.media.helpers import rejection
from tests.support.media import make_jpeg, make_mov, make_mp4, make_png


def test_a_png_named_mp4_is_probed_as_a_png(tmp_path: Path) -> None:
    path = make_png(tmp_path / "clip.mp4", 400, 300)

    info = probe_media(path)

    assert isinstance(info, ImageInfo)
    assert (info.format, info.content_type) == ("png", "image/png")
    assert probe_image(path) == info


def test_an_mp4_named_png_is_probed_as_a_video(tmp_path: Path) -> None:
    path = make_mp4(tmp_path / "photo.png", 340, 340, 3.0)

    info = probe_media(path)

    assert isinstance(info, VideoInfo)
    assert info.format == "mp4"


async def test_async_probe_media(tmp_path: Path) -> None:
    path = make_jpeg(tmp_path / "x.bin", 320, 320)

    assert await aprobe_media(path) == probe_media(path)


@pytest.mark.parametrize("name", ["notes.txt", "photo.jpg", "clip.mp4"])
def test_a_text_file_is_unsupported_whatever_its_name(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    path.write_text("just some text, no pixels here\n")

    error = rejection(lambda: probe_media(path))

    assert error.code == "media_format_unsupported"
    assert rejection(lambda: probe_image(path)).code == "image_format_unsupported"


def test_an_empty_file_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "empty.png"
    path.write_bytes(b"")

    assert rejection(lambda: probe_media(path)).code == "media_format_unsupported"


def test_check_media_dispatches_on_the_kind(tmp_path: Path) -> None:
    image = probe_media(make_png(tmp_path / "a.png", 299, 400))
    video = probe_media(make_mp4(tmp_path / "v.mp4", 340, 340, 10.5))

    assert rejection(lambda: check_media(image, MediaLimits())).code == "image_too_small"
    assert rejection(lambda: check_media(video, MediaLimits(), "image")).code == "video_too_long"
    check_media(video, MediaLimits())  # no orientation yet: the 30 s cap


@pytest.mark.parametrize(
    ("make", "fmt", "content_type"),
    [
        (lambda p: make_png(p, 300, 300), "png", "image/png"),
        (lambda p: make_jpeg(p, 300, 300), "jpeg", "image/jpeg"),
        (lambda p: make_mp4(p, 340, 340, 3.0), "mp4", "video/mp4"),
        (lambda p: make_mov(p, 340, 340, 3.0), "mov", "video/quicktime"),
    ],
)
def test_sniff_and_content_type(
    tmp_path: Path, make: Callable[[Path], Path], fmt: str, content_type: str
) -> None:
    path = make(tmp_path / "file")
    head = read_head(path)

    assert sniff_format(head) == fmt
    assert content_type_for(head) == content_type


@pytest.mark.parametrize(
    ("head", "fmt"),
    [
        (b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic", "heic"),
        (b"\x00\x00\x00\x18ftypM4A \x00\x00\x00\x00M4A isom", "m4a"),
        (b"\x00\x00\x00\x18ftypXAVC\x00\x00\x00\x00XAVCmp42", "mp4"),
        (b"\x00\x00\x00\x14ftypzzzz\x00\x00\x00\x00qt  ", "mov"),
        (b"\x00\x00\x00\x08wide\x00\x00\x00\x00mdat", "mov"),
        (b"\x00\x00\x00\x14ftypzzzz\x00\x00\x00\x00zzzz", None),
        (b"GIF89a", "gif"),
        (b"RIFF\x00\x00\x00\x00WEBPVP8 ", "webp"),
        (b"plain text", None),
        (b"", None),
    ],
)
def test_sniff_signatures(head: bytes, fmt: str | None) -> None:
    assert sniff_format(head) == fmt


def test_unknown_content_is_served_as_octet_stream() -> None:
    assert content_type_for(b"plain text") == "application/octet-stream"
