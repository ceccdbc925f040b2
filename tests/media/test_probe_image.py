"""Image probing and every image limit, each with a real file just within and just past it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from app.media.limits import MediaLimits
from app.media.probe import aprobe_image, check_image, probe_image
from tests.media.helpers import rejection
from tests.support.media import make_jpeg, make_png

LIMITS = MediaLimits()


def accepted(path: Path, limits: MediaLimits = LIMITS) -> None:
    check_image(probe_image(path), limits)


def rejected_code(path: Path, limits: MediaLimits = LIMITS) -> str:
    return rejection(lambda: check_image(probe_image(path), limits)).code


@pytest.mark.parametrize(("maker", "fmt"), [(make_png, "png"), (make_jpeg, "jpeg")])
def test_probe_reads_format_size_and_dimensions(
    tmp_path: Path, maker: Callable[[Path, int, int], Path], fmt: str
) -> None:
    path = maker(tmp_path / "picture", 640, 480)

    info = probe_image(path)

    assert (info.format, info.content_type) == (fmt, f"image/{fmt}")
    assert (info.width, info.height) == (640, 480)
    assert info.size_bytes == path.stat().st_size
    assert info.kind == "image"


async def test_async_probe_matches_the_blocking_one(tmp_path: Path) -> None:
    path = make_jpeg(tmp_path / "a.jpg", 400, 300)

    assert await aprobe_image(path) == probe_image(path)


@pytest.mark.parametrize(("width", "height"), [(299, 300), (300, 299)])
def test_a_side_under_300_px_is_too_small(tmp_path: Path, width: int, height: int) -> None:
    path = make_png(tmp_path / "s.png", width, height)

    error = rejection(lambda: check_image(probe_image(path), LIMITS))

    assert error.code == "image_too_small"
    assert error.limit == 300


def test_300_px_sides_are_accepted(tmp_path: Path) -> None:
    accepted(make_png(tmp_path / "a.png", 300, 300))
    accepted(make_jpeg(tmp_path / "a.jpg", 300, 300))


def test_a_side_over_65536_px_is_too_large(tmp_path: Path) -> None:
    # 26215 keeps the aspect ratio legal, so only the side limit can trip.
    path = make_png(tmp_path / "huge.png", 65537, 26215)

    assert rejected_code(path) == "image_dimensions_too_large"


def test_65536_px_is_accepted_despite_pillows_bomb_limit(tmp_path: Path) -> None:
    # 1.7 Gpx: `Image.open` would refuse this as a decompression bomb; the probe reads
    # the header only and must report the true size.
    path = make_png(tmp_path / "huge.png", 65536, 26215)

    info = probe_image(path)

    assert (info.width, info.height) == (65536, 26215)
    accepted(path)
    assert Image.MAX_IMAGE_PIXELS is not None  # the global guard is left alone


@pytest.mark.parametrize(("width", "height"), [(750, 300), (300, 750)])
def test_exactly_2_5_to_1_is_accepted(tmp_path: Path, width: int, height: int) -> None:
    accepted(make_png(tmp_path / "a.png", width, height))


@pytest.mark.parametrize(("width", "height"), [(751, 300), (300, 751)])
def test_beyond_2_5_to_1_is_rejected(tmp_path: Path, width: int, height: int) -> None:
    path = make_png(tmp_path / "a.png", width, height)

    error = rejection(lambda: check_image(probe_image(path), LIMITS))

    assert error.code == "image_aspect_ratio_out_of_range"
    assert error.limit == 2.5


def test_byte_limit_just_within_and_just_past(tmp_path: Path) -> None:
    path = make_jpeg(tmp_path / "a.jpg", 400, 400)
    size = path.stat().st_size

    accepted(path, MediaLimits(image_max_bytes=size))
    error = rejection(lambda: check_image(probe_image(path), MediaLimits(image_max_bytes=size - 1)))
    assert error.code == "image_too_large"
    assert error.limit == size - 1


def test_a_format_outside_the_limits_is_unsupported(tmp_path: Path) -> None:
    path = make_jpeg(tmp_path / "a.jpg", 400, 400)

    assert rejected_code(path, MediaLimits(image_formats=frozenset({"png"}))) == (
        "image_format_unsupported"
    )


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "BMP", "TIFF"])
def test_other_image_formats_are_unsupported(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / "picture.png"  # the name lies; the content decides
    Image.new("RGB", (400, 400), (10, 20, 30)).save(path, format=fmt)

    error = rejection(lambda: probe_image(path))

    assert error.code == "image_format_unsupported"
    assert fmt.lower() in error.detail


def test_jpeg_exif_rotation_reports_the_displayed_size(tmp_path: Path) -> None:
    path = tmp_path / "portrait.jpg"
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    Image.new("RGB", (800, 320), (1, 2, 3)).save(path, format="JPEG", exif=exif)

    info = probe_image(path)

    assert (info.width, info.height) == (320, 800)


def _truncated(source: Path, keep_fraction: float, target: Path) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * keep_fraction)])
    return target


def test_truncated_jpeg_is_unreadable(tmp_path: Path) -> None:
    path = _truncated(make_jpeg(tmp_path / "a.jpg", 600, 400), 0.6, tmp_path / "cut.jpg")

    assert rejection(lambda: probe_image(path)).code == "image_unreadable"


def test_truncated_png_is_unreadable(tmp_path: Path) -> None:
    path = _truncated(make_png(tmp_path / "a.png", 600, 400), 0.8, tmp_path / "cut.png")

    assert rejection(lambda: probe_image(path)).code == "image_unreadable"


def test_png_with_only_a_signature_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "header.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")

    assert rejection(lambda: probe_image(path)).code == "image_unreadable"


def test_png_with_a_corrupted_chunk_is_unreadable(tmp_path: Path) -> None:
    data = bytearray(make_png(tmp_path / "a.png", 600, 400).read_bytes())
    idat = data.index(b"IDAT")
    data[idat + 10] ^= 0xFF  # the CRC no longer matches
    path = tmp_path / "corrupt.png"
    path.write_bytes(bytes(data))

    assert rejection(lambda: probe_image(path)).code == "image_unreadable"
