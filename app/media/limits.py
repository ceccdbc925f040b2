"""The model's input limits (UPSTREAM.md §D), as one immutable value.

Sizes use decimal megabytes (10 MB = 10_000_000 bytes): the sources only say "MB", and
the decimal reading is the stricter one, so a file we accept is never refused upstream
for its size. Every field can be overridden, e.g. by settings or by tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

MB = 1_000_000

IMAGE_FORMATS: frozenset[str] = frozenset({"jpeg", "png"})
VIDEO_FORMATS: frozenset[str] = frozenset({"mp4", "mov"})
_FORMAT_ALIASES = {"jpg": "jpeg"}
ORIENTATIONS = ("image", "video")


def _normalize_formats(formats: frozenset[str], known: frozenset[str]) -> frozenset[str]:
    normalized = frozenset(_FORMAT_ALIASES.get(f.lower(), f.lower()) for f in formats)
    # The probes can only parse `known`; a limit naming anything else could never pass.
    unknown = normalized - known
    if unknown:
        raise ValueError(f"unsupported formats in limits: {sorted(unknown)}")
    return normalized


@dataclass(frozen=True, slots=True)
class MediaLimits:
    image_formats: frozenset[str] = IMAGE_FORMATS
    image_max_bytes: int = 10 * MB
    image_min_side_px: int = 300
    image_max_side_px: int = 65536
    # Long side over short side: 1:2.5 … 2.5:1. A Fraction keeps the boundary exact.
    image_max_aspect_ratio: Fraction = Fraction(5, 2)

    video_formats: frozenset[str] = VIDEO_FORMATS
    video_max_bytes: int = 100 * MB
    video_min_side_px: int = 340
    video_max_side_px: int = 3850
    video_min_duration_s: float = 3.0
    video_max_duration_image_s: float = 10.0
    video_max_duration_video_s: float = 30.0

    def __post_init__(self) -> None:
        # Frozen, so normalisation has to go through object.__setattr__.
        object.__setattr__(
            self, "image_formats", _normalize_formats(self.image_formats, IMAGE_FORMATS)
        )
        object.__setattr__(
            self, "video_formats", _normalize_formats(self.video_formats, VIDEO_FORMATS)
        )
        # Via str so a float from configuration (2.4) means exactly 12/5, not its binary
        # approximation, which would move the boundary.
        object.__setattr__(
            self, "image_max_aspect_ratio", Fraction(str(self.image_max_aspect_ratio))
        )
        self._validate()

    def _validate(self) -> None:
        if not 0 < self.image_min_side_px <= self.image_max_side_px:
            raise ValueError("image side limits must satisfy 0 < min <= max")
        if not 0 < self.video_min_side_px <= self.video_max_side_px:
            raise ValueError("video side limits must satisfy 0 < min <= max")
        if self.image_max_bytes <= 0 or self.video_max_bytes <= 0:
            raise ValueError("byte limits must be positive")
        if self.image_max_aspect_ratio < 1:
            raise ValueError("image_max_aspect_ratio is long/short and must be >= 1")
        longest = max(self.video_max_duration_image_s, self.video_max_duration_video_s)
        if not 0 <= self.video_min_duration_s <= longest:
            raise ValueError("video duration limits must satisfy 0 <= min <= max")

    @property
    def upload_max_bytes(self) -> int:
        """The streaming cap for an upload whose kind is not known until it is probed."""
        return max(self.image_max_bytes, self.video_max_bytes)

    def video_max_duration_s(self, orientation: str | None) -> float:
        """10 s when the character follows the image, 30 s when it follows the video.

        Without an orientation (an upload not yet tied to a job) the looser 30 s applies;
        the job is checked again once its orientation is known.
        """
        if orientation == "image":
            return self.video_max_duration_image_s
        if orientation is None or orientation == "video":
            return self.video_max_duration_video_s
        raise ValueError(f"unknown character orientation {orientation!r}")
