from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from app.media.errors import InvalidMediaKey
from app.media.signing import (
    SignatureCheck,
    check_media_signature,
    media_signature,
    sign_media_url,
    verify_media_signature,
)

SECRET = b"s3cret"
KEY = "upl_0123/clip.mp4"
NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
EXPIRES = int((NOW + timedelta(hours=1)).timestamp())


def test_url_shape() -> None:
    url = sign_media_url("https://gw.example.com/", KEY, SECRET, NOW + timedelta(hours=1))

    parts = urlsplit(url)
    query = parse_qs(parts.query)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == (
        "https://gw.example.com/media/upl_0123/clip.mp4"
    )
    assert query["expires"] == [str(EXPIRES)]
    assert len(query["sig"][0]) == 64
    assert verify_media_signature(KEY, EXPIRES, query["sig"][0], SECRET, NOW)


def test_valid_signature() -> None:
    sig = media_signature(KEY, EXPIRES, SECRET)

    assert check_media_signature(KEY, EXPIRES, sig, SECRET, NOW) is SignatureCheck.valid


@pytest.mark.parametrize(
    ("key", "expires", "secret"),
    [
        ("upl_0123/other.mp4", EXPIRES, SECRET),
        (KEY, EXPIRES + 1, SECRET),
        (KEY, EXPIRES, b"another secret"),
    ],
)
def test_any_tampering_invalidates(key: str, expires: int, secret: bytes) -> None:
    sig = media_signature(KEY, EXPIRES, SECRET)

    assert check_media_signature(key, expires, sig, secret, NOW) is SignatureCheck.invalid
    assert not verify_media_signature(key, expires, sig, secret, NOW)


@pytest.mark.parametrize("sig", ["", "00" * 32, "zz", "é" * 64, "A" * 10_000])
def test_garbage_signatures_are_invalid_not_errors(sig: str) -> None:
    assert check_media_signature(KEY, EXPIRES, sig, SECRET, NOW) is SignatureCheck.invalid


def test_key_and_expiry_cannot_be_shifted_into_each_other() -> None:
    # With plain concatenation, "…/b1" + "700" and "…/b" + "1700" would sign alike.
    sig = media_signature("upl_a/b1", 700, SECRET)

    assert not verify_media_signature("upl_a/b", 1700, sig, SECRET, datetime.fromtimestamp(0, UTC))


def test_expired_links() -> None:
    sig = media_signature(KEY, EXPIRES, SECRET)
    at_expiry = datetime.fromtimestamp(EXPIRES, UTC)

    assert check_media_signature(KEY, EXPIRES, sig, SECRET, at_expiry) is SignatureCheck.expired
    assert not verify_media_signature(KEY, EXPIRES, sig, SECRET, at_expiry)
    assert verify_media_signature(KEY, EXPIRES, sig, SECRET, at_expiry - timedelta(seconds=1))


def test_a_forged_expired_link_reports_invalid_not_expired() -> None:
    past = datetime.fromtimestamp(EXPIRES + 10, UTC)

    assert check_media_signature(KEY, EXPIRES, "00" * 32, SECRET, past) is SignatureCheck.invalid


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        sign_media_url("https://gw", KEY, SECRET, datetime(2030, 1, 1))
    with pytest.raises(ValueError, match="timezone"):
        verify_media_signature(KEY, EXPIRES, "x", SECRET, datetime(2030, 1, 1))


def test_an_empty_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="secret"):
        media_signature(KEY, EXPIRES, b"")


def test_invalid_keys_are_never_signed() -> None:
    with pytest.raises(InvalidMediaKey):
        sign_media_url("https://gw", "../etc/passwd", SECRET, NOW)
