"""Video probing and every video limit, each with a real file just within and just past it."""

from __future__ import annotations

from pathlib import Path

import av
import pytest

from app.media.limits import MediaLimits
from app.media.probe import VideoInfo, aprobe_video, check_video, probe_video
from tests.media.helpers import rejection
from tests.support.media import make_mov, make_mp4, make_png, make_video

LIMITS = MediaLimits()


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="module")
def minimal_mp4(videos: Path) -> Path:
    """Smallest legal sides, shortest legal duration."""
    return make_mp4(videos / "minimal.mp4", 340, 340, 3.0)


def check_code(info: VideoInfo, orientation: str | None, limits: MediaLimits = LIMITS) -> str:
    return rejection(lambda: check_video(info, limits, orientation)).code


def test_probe_reads_an_mp4(minimal_mp4: Path) -> None:
    info = probe_video(minimal_mp4)

    assert (info.format, info.content_type, info.kind) == ("mp4", "video/mp4", "video")
    assert (info.width, info.height) == (340, 340)
    assert info.duration_s == 3.0
    assert info.size_bytes == minimal_mp4.stat().st_size
    assert info.has_audio is False
    assert info.codec in {"h264", "mpeg4"}


def test_probe_reads_a_mov_with_audio(videos: Path) -> None:
    path = make_mov(videos / "clip.mov", 480, 360, 3.0, with_audio=True)

    info = probe_video(path)

    assert (info.format, info.content_type) == ("mov", "video/quicktime")
    assert (info.width, info.height, info.has_audio) == (480, 360, True)
    assert info.duration_s == 3.0  # the video track's length, not the audio's


def test_non_utf8_metadata_does_not_break_the_probe(videos: Path, minimal_mp4: Path) -> None:
    tagged = videos / "tagged.mp4"
    with av.open(str(minimal_mp4)) as source, av.open(str(tagged), "w", format="mp4") as target:
        target.metadata["title"] = "PLACEHOLDER"
        stream = target.add_stream_from_template(source.streams.video[0])
        for packet in source.demux(source.streams.video[0]):
            if packet.dts is not None:
                packet.stream = stream
                target.mux(packet)
    path = videos / "latin1_title.mp4"
    path.write_bytes(tagged.read_bytes().replace(b"PLACEHOLDER", b"Caf\xe9 \xff\xfe!!!!"))

    info = probe_video(path)

    assert (info.width, info.height, info.duration_s) == (340, 340, 3.0)


def test_display_rotation_swaps_the_reported_sides(videos: Path) -> None:
    path = make_video(videos / "portrait.mp4", 400, 340, 3.0, rotation_deg=90)

    info = probe_video(path)

    assert (info.width, info.height) == (340, 400)


async def test_async_probe_matches_the_blocking_one(minimal_mp4: Path) -> None:
    assert await aprobe_video(minimal_mp4) == probe_video(minimal_mp4)


@pytest.mark.parametrize("orientation", ["image", "video", None])
def test_the_smallest_shortest_legal_video_passes(
    minimal_mp4: Path, orientation: str | None
) -> None:
    check_video(probe_video(minimal_mp4), LIMITS, orientation)


@pytest.mark.parametrize(("width", "height"), [(339, 340), (340, 339)])
def test_a_side_under_340_px_is_too_small(videos: Path, width: int, height: int) -> None:
    info = probe_video(make_mp4(videos / f"small_{width}x{height}.mp4", width, height, 3.0))

    assert check_code(info, "video") == "video_too_small"


def test_a_side_over_3850_px_is_too_large(videos: Path) -> None:
    info = probe_video(make_mp4(videos / "wide.mp4", 3851, 340, 3.0, fps=3))

    error = rejection(lambda: check_video(info, LIMITS, "video"))
    assert (error.code, error.limit) == ("video_dimensions_too_large", 3850)


def test_3850_px_is_accepted(videos: Path) -> None:
    check_video(probe_video(make_mp4(videos / "edge.mp4", 3850, 340, 3.0, fps=3)), LIMITS, "video")


def test_under_3_s_is_too_short(videos: Path) -> None:
    info = probe_video(make_mp4(videos / "short.mp4", 340, 340, 2.9))

    assert info.duration_s == 2.9
    assert check_code(info, "video") == "video_too_short"


def test_orientation_image_allows_10_s(videos: Path) -> None:
    check_video(probe_video(make_mp4(videos / "ten.mp4", 340, 340, 10.0)), LIMITS, "image")


def test_orientation_image_refuses_10_1_s(videos: Path) -> None:
    info = probe_video(make_mp4(videos / "ten_plus.mp4", 340, 340, 10.1))

    error = rejection(lambda: check_video(info, LIMITS, "image"))
    assert (error.code, error.limit) == ("video_too_long", 10.0)
    check_video(info, LIMITS, "video")  # the same clip is fine when following the video


@pytest.fixture(scope="module")
def thirty_s_pair(videos: Path) -> tuple[VideoInfo, VideoInfo]:
    """A clip at the 30 s cap and one half a second past it (2 fps keeps them cheap)."""
    at_cap = probe_video(make_mp4(videos / "thirty.mp4", 340, 340, 30.0, fps=2))
    past_cap = probe_video(make_mp4(videos / "thirty_plus.mp4", 340, 340, 30.5, fps=2))
    return at_cap, past_cap


@pytest.mark.parametrize("orientation", ["video", None])
def test_30_s_is_the_cap_for_orientation_video_or_none(
    thirty_s_pair: tuple[VideoInfo, VideoInfo], orientation: str | None
) -> None:
    at_cap, past_cap = thirty_s_pair

    check_video(at_cap, LIMITS, orientation)
    error = rejection(lambda: check_video(past_cap, LIMITS, orientation))
    assert (error.code, error.limit) == ("video_too_long", 30.0)


def test_byte_limit_just_within_and_just_past(minimal_mp4: Path) -> None:
    info = probe_video(minimal_mp4)

    check_video(info, MediaLimits(video_max_bytes=info.size_bytes), "video")
    error = rejection(
        lambda: check_video(info, MediaLimits(video_max_bytes=info.size_bytes - 1), "video")
    )
    assert (error.code, error.limit) == ("video_too_large", info.size_bytes - 1)


def test_a_container_outside_the_limits_is_unsupported(videos: Path) -> None:
    info = probe_video(make_mov(videos / "narrow.mov", 340, 340, 3.0))

    limits = MediaLimits(video_formats=frozenset({"mp4"}))
    assert check_code(info, "video", limits) == "video_format_unsupported"


@pytest.mark.parametrize(
    ("container", "codec"), [("matroska", None), ("avi", "mpeg4"), ("3gp", "mpeg4")]
)
def test_other_containers_are_unsupported_whatever_the_name(
    videos: Path, container: str, codec: str | None
) -> None:
    path = make_video(videos / f"{container}.mp4", 340, 340, 3.0, container=container, codec=codec)

    assert rejection(lambda: probe_video(path)).code == "video_format_unsupported"


def test_a_png_named_mp4_is_not_a_video(videos: Path) -> None:
    path = make_png(videos / "still.mp4", 400, 400)

    assert rejection(lambda: probe_video(path)).code == "video_format_unsupported"


def test_a_text_file_is_not_a_video(videos: Path) -> None:
    path = videos / "notes.mov"
    path.write_text("definitely not a movie\n" * 50)

    assert rejection(lambda: probe_video(path)).code == "video_format_unsupported"


def test_a_truncated_mp4_is_unreadable(videos: Path, minimal_mp4: Path) -> None:
    path = videos / "cut.mp4"
    data = minimal_mp4.read_bytes()
    path.write_bytes(data[: len(data) // 2])

    error = rejection(lambda: probe_video(path))
    assert error.code == "video_unreadable"
    assert str(videos) not in error.detail  # no server paths in a client-facing message


def test_an_mp4_header_followed_by_garbage_is_unreadable(videos: Path, minimal_mp4: Path) -> None:
    path = videos / "garbage.mp4"
    path.write_bytes(minimal_mp4.read_bytes()[:32] + bytes(range(256)) * 40)

    assert rejection(lambda: probe_video(path)).code == "video_unreadable"


def test_an_mp4_without_a_video_track_is_unreadable(videos: Path) -> None:
    path = videos / "audio_only.mp4"
    with av.open(str(path), "w", format="mp4") as box:
        audio = box.add_stream("aac", rate=16_000, layout="mono")
        frame = av.AudioFrame(format="fltp", layout="mono", samples=1024)
        for plane in frame.planes:
            plane.update(bytes(plane.buffer_size))
        frame.sample_rate, frame.pts = 16_000, 0
        box.mux(audio.encode(frame))
        box.mux(audio.encode(None))

    error = rejection(lambda: probe_video(path))
    assert error.code == "video_unreadable"
    assert "no video track" in error.detail
