"""Real c2pa-python signing and reading against Guardian's own trust anchors."""

from __future__ import annotations

from pathlib import Path

import pytest

from guardian.app import Guardian, init_keys, open_guardian
from guardian.audio import Audio, OutputFormat, encode_bytes, flip_wav_sample, speechlike
from guardian.config import Settings
from guardian.provenance import (
    ASSERTION_LABEL,
    TRAINED_ALGORITHMIC_MEDIA,
    GuardianAssertion,
    ManifestState,
    build_manifest,
    embed,
    read,
)


def _signed(g: Guardian, fmt: OutputFormat) -> tuple[bytes, str]:
    init_keys(g)
    audio = Audio(speechlike(2.0, seed=5)[:, None], 16000)
    data = encode_bytes(audio, fmt)
    assertion = GuardianAssertion(
        label_id="lbl_test",
        created_at="2026-01-01T00:00:00Z",
        software="guardian/test",
        purpose="testing",
    )
    manifest = build_manifest(assertion, title=f"t.{fmt.value}", mime=fmt.container.mime)
    with g.reading() as s:
        signed = embed(
            data, mime=fmt.container.mime, manifest=manifest, signer=g.keys.manifest_signer(s)
        )
        return signed, g.keys.trust_anchors_pem(s)


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_embedded_manifest_is_trusted(g: Guardian, fmt: OutputFormat) -> None:
    signed, anchors = _signed(g, fmt)
    reading = read(signed, mime=fmt.container.mime, trust_anchors_pem=anchors)
    assert reading.state is ManifestState.TRUSTED, reading.failures
    assert reading.guardian is not None and reading.guardian["label_id"] == "lbl_test"
    assert reading.digital_source_type == TRAINED_ALGORITHMIC_MEDIA
    assert reading.manifest_id and reading.manifest_id.startswith("urn:c2pa:")


def test_other_anchors_make_it_untrusted(g: Guardian, tmp_path: Path) -> None:
    signed, _ = _signed(g, OutputFormat.WAV)
    other = open_guardian(Settings(home=tmp_path / "other", database_url=None, master_key=None))
    init_keys(other)
    with other.reading() as s:
        reading = read(signed, mime="audio/wav", trust_anchors_pem=other.keys.trust_anchors_pem(s))
    assert reading.state is ManifestState.UNTRUSTED
    assert reading.guardian is not None  # the claim is readable, just not trusted


def test_flipped_sample_breaks_the_hash_binding(g: Guardian) -> None:
    signed, anchors = _signed(g, OutputFormat.WAV)
    reading = read(
        flip_wav_sample(signed, position=0.9), mime="audio/wav", trust_anchors_pem=anchors
    )
    assert reading.state is ManifestState.INVALID
    assert any("dataHash.mismatch" in f for f in reading.failures)


def test_unsigned_audio_has_no_manifest(g: Guardian) -> None:
    data = encode_bytes(Audio(speechlike(1.0)[:, None], 16000), OutputFormat.WAV)
    assert read(data, mime="audio/wav", trust_anchors_pem="").state is ManifestState.ABSENT


def test_assertion_round_trip() -> None:
    a = GuardianAssertion(
        label_id="l", created_at="t", software="s", voice_id="v", extra={"epsilon": 8.0}
    )
    assert GuardianAssertion.from_dict(a.to_dict()) == a
    with pytest.raises(ValueError, match="label_id"):
        GuardianAssertion.from_dict({"created_at": "t", "software": "s"})
    assert ASSERTION_LABEL.startswith("org.guardian")
