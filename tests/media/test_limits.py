from __future__ import annotations

from fractions import Fraction

import pytest

from app.media.limits import MB, MediaLimits


def test_defaults_are_the_models_limits() -> None:
    limits = MediaLimits()

    assert limits.image_formats == {"jpeg", "png"}
    assert limits.image_max_bytes == 10 * MB == 10_000_000
    assert (limits.image_min_side_px, limits.image_max_side_px) == (300, 65536)
    assert limits.image_max_aspect_ratio == Fraction(5, 2)
    assert limits.video_formats == {"mp4", "mov"}
    assert limits.video_max_bytes == 100_000_000
    assert (limits.video_min_side_px, limits.video_max_side_px) == (340, 3850)
    assert limits.video_min_duration_s == 3.0
    assert limits.upload_max_bytes == 100_000_000


@pytest.mark.parametrize(("orientation", "max_s"), [("image", 10.0), ("video", 30.0), (None, 30.0)])
def test_video_max_duration_depends_on_orientation(orientation: str | None, max_s: float) -> None:
    assert MediaLimits().video_max_duration_s(orientation) == max_s


def test_unknown_orientation_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="orientation"):
        MediaLimits().video_max_duration_s("sideways")


def test_jpg_alias_and_case_are_normalised() -> None:
    limits = MediaLimits(image_formats=frozenset({"JPG"}), video_formats=frozenset({"MP4"}))

    assert limits.image_formats == {"jpeg"}
    assert limits.video_formats == {"mp4"}


def test_float_aspect_ratio_from_configuration_is_exact() -> None:
    limits = MediaLimits(image_max_aspect_ratio=2.4)  # type: ignore[arg-type]

    assert limits.image_max_aspect_ratio == Fraction(12, 5)


@pytest.mark.parametrize(
    "overrides",
    [
        {"image_formats": frozenset({"gif"})},
        {"video_formats": frozenset({"webm"})},
        {"image_min_side_px": 500, "image_max_side_px": 400},
        {"video_min_side_px": 0},
        {"image_max_bytes": 0},
        {"image_max_aspect_ratio": Fraction(1, 2)},
        {"video_min_duration_s": 40.0},
    ],
)
def test_inconsistent_limits_fail_fast(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError, match=r"."):
        MediaLimits(**overrides)  # type: ignore[arg-type]


def test_limits_are_immutable() -> None:
    limits = MediaLimits()
    with pytest.raises(AttributeError):
        limits.image_max_bytes = 1  # type: ignore[misc]
