"""Identify a file's real type from its first bytes, never from its name.

Only the formats the model takes (png, jpeg, mp4, mov) are ever handed to a decoder;
the other signatures are recognised just to give a precise "unsupported" message.
"""

from __future__ import annotations

import struct
from pathlib import Path

HEAD_BYTES = 512

CONTENT_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "mp4": "video/mp4",
    "mov": "video/quicktime",
}
OCTET_STREAM = "application/octet-stream"

_SIMPLE_SIGNATURES: tuple[tuple[int, bytes, str], ...] = (
    (0, b"\x89PNG\r\n\x1a\n", "png"),
    (0, b"\xff\xd8\xff", "jpeg"),
    (0, b"GIF87a", "gif"),
    (0, b"GIF89a", "gif"),
    (0, b"II*\x00", "tiff"),
    (0, b"MM\x00*", "tiff"),
    (0, b"BM", "bmp"),
    (0, b"\x1a\x45\xdf\xa3", "matroska"),
    (0, b"%PDF-", "pdf"),
)
_RIFF_KINDS = {b"WEBP": "webp", b"AVI ": "avi", b"WAVE": "wav"}

# Files written by old QuickTime versions start with one of these atoms, not `ftyp`.
_LEGACY_QUICKTIME_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})
_MP4_BRANDS = frozenset(
    {b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"dash",
     b"M4V ", b"M4VH", b"M4VP", b"mmp4", b"MSNV", b"XAVC", b"f4v "}
)  # fmt: skip
# Still-image and audio-only members of the ISO family, which the mov demuxer would
# otherwise happily open as a "video".
_OTHER_ISO_BRANDS = {
    b"heic": "heic", b"heix": "heic", b"hevc": "heic", b"heim": "heic", b"heis": "heic",
    b"mif1": "heif", b"msf1": "heif", b"avif": "avif", b"avis": "avif",
    b"M4A ": "m4a", b"M4B ": "m4a", b"M4P ": "m4a", b"crx ": "cr3",
}  # fmt: skip


def read_head(path: Path, size: int = HEAD_BYTES) -> bytes:
    """Blocking: the first `size` bytes of `path`."""
    with path.open("rb") as fh:
        return fh.read(size)


def sniff_format(head: bytes) -> str | None:
    """The format named by `head` (png, jpeg, mp4, mov, gif, …), or None if unknown."""
    for offset, magic, name in _SIMPLE_SIGNATURES:
        if head.startswith(magic, offset):
            return name
    if head.startswith(b"RIFF") and head[8:12] in _RIFF_KINDS:
        return _RIFF_KINDS[head[8:12]]
    if _is_mpeg_ts(head):
        return "mpegts"
    return _sniff_iso_bmff(head)


def content_type_for(head: bytes) -> str:
    """The Content-Type to serve a stored file with, from its first bytes."""
    fmt = sniff_format(head)
    return CONTENT_TYPES.get(fmt or "", OCTET_STREAM)


def _is_mpeg_ts(head: bytes) -> bool:
    return len(head) > 376 and head[0] == head[188] == head[376] == 0x47


def _sniff_iso_bmff(head: bytes) -> str | None:
    if len(head) < 12:
        return None
    box_type = head[4:8]
    if box_type in _LEGACY_QUICKTIME_ATOMS:
        return "mov"
    if box_type != b"ftyp":
        return None
    major = head[8:12]
    compatible = _compatible_brands(head)
    if major == b"qt  ":
        return "mov"
    if major in _OTHER_ISO_BRANDS:
        return _OTHER_ISO_BRANDS[major]
    if major.startswith((b"3gp", b"3g2")):
        return "3gp"
    if major in _MP4_BRANDS or compatible & _MP4_BRANDS:
        return "mp4"
    return "mov" if b"qt  " in compatible else None


def _compatible_brands(head: bytes) -> frozenset[bytes]:
    (box_size,) = struct.unpack(">I", head[:4])
    # ftyp = size, "ftyp", major brand, minor version, then 4-byte compatible brands.
    end = min(box_size, len(head))
    return frozenset(head[i : i + 4] for i in range(16, end - 3, 4))
