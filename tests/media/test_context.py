"""The media context `build_runtime` puts on the Runtime: storage root and link signing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

from app.media.context import MediaContext, build_media_context, media_signing_secret
from app.media.signing import SignatureCheck, check_media_signature
from app.settings import Settings
from app.storage.local import LocalObjectStore
from tests.support.steps import Steps


def settings_for(tmp_path: Path, secret_key: str = "k" * 40) -> Settings:
    return Settings(
        environment="test",
        media_dir=tmp_path / "media",
        secret_key=secret_key,
        public_base_url="https://gw.example",
    )


def test_links_are_signed_with_a_key_derived_from_the_secret(tmp_path: Path) -> None:
    settings = settings_for(tmp_path)
    context = build_media_context(settings)
    expires_at = datetime.now(UTC) + timedelta(hours=1)

    url = urlsplit(context.signed_url("upl_1/a.png", expires_at))
    query = parse_qs(url.query)
    expires, sig = int(query["expires"][0]), query["sig"][0]

    assert (url.scheme, url.netloc, url.path) == ("https", "gw.example", "/media/upl_1/a.png")
    assert context.signing_secret == media_signing_secret(settings)
    assert context.signing_secret != settings.secret_bytes
    now = datetime.now(UTC)
    assert check_media_signature("upl_1/a.png", expires, sig, context.signing_secret, now) is (
        SignatureCheck.valid
    )
    assert check_media_signature("upl_1/a.png", expires, sig, settings.secret_bytes, now) is (
        SignatureCheck.invalid
    )


def test_another_secret_signs_differently(tmp_path: Path) -> None:
    one = media_signing_secret(settings_for(tmp_path, "a" * 40))
    other = media_signing_secret(settings_for(tmp_path, "b" * 40))

    assert one != other


def test_the_runtime_holds_the_media_context(steps: Steps) -> None:
    rt = steps.runtime

    assert isinstance(rt.media, MediaContext)
    assert isinstance(rt.media.storage, LocalObjectStore)
    assert rt.media.storage.root == rt.settings.media_root
    assert rt.media.public_base_url == rt.settings.public_base_url
    assert rt.media.signing_secret == media_signing_secret(rt.settings)
