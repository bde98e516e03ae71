"""Label then verify, end to end, with real c2pa, SQLite, key files and ffmpeg."""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from concurrent.futures import Future
from pathlib import Path

import numpy as np
import pytest
from sqlmodel import func, select

from guardian.app import (
    Guardian,
    LabelRequest,
    Verdict,
    init_keys,
    label_file,
    look_ahead,
    open_guardian,
    revoke_key,
    rotate_key,
    verify_audit,
    verify_bytes,
    verify_file,
)
from guardian.audio import (
    Audio,
    OutputFormat,
    decode_bytes,
    encode_bytes,
    flip_wav_sample,
    resample,
)
from guardian.config import Settings
from guardian.errors import (
    AudioTooLongError,
    ExitCode,
    UnreadableAudioError,
    UsageError,
    WatermarkModelError,
)
from guardian.store import AuditEntry, Label
from guardian.watermark import Detector, preload_detector
from tests.conftest import write_clip


def _label(g: Guardian, src: Path, out: Path, **kw: object) -> Path:
    label_file(g, LabelRequest(source=src, output=out, **kw))  # type: ignore[arg-type]
    return out


def _counts(g: Guardian) -> tuple[int, int]:
    with g.reading() as s:
        labels = s.exec(select(func.count()).select_from(Label)).one()
        audits = s.exec(select(func.count()).select_from(AuditEntry)).one()
    return int(labels), int(audits)


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_label_then_verify_is_verified(
    g: Guardian, clip: Path, tmp_path: Path, fmt: OutputFormat
) -> None:
    out = _label(g, clip, tmp_path / f"out.{fmt.value}", purpose="test")
    result = verify_file(g, out)
    assert result.verdict is Verdict.VERIFIED, result.reasons
    assert result.exit_code is ExitCode.OK
    assert result.manifest.present and result.manifest.valid and result.manifest.trusted
    assert result.purpose == "test" and result.label_id and result.label_id.startswith("lbl_")


def test_stereo_and_44k_input(g: Guardian, tmp_path: Path) -> None:
    src = write_clip(tmp_path / "st.flac", rate=44100, fmt=OutputFormat.FLAC)
    data = decode_bytes(src.read_bytes())
    stereo = Audio(np.repeat(data.samples, 2, axis=1), data.sample_rate)
    (tmp_path / "st.wav").write_bytes(encode_bytes(stereo, OutputFormat.WAV))
    out = _label(g, tmp_path / "st.wav", tmp_path / "st.out.wav")
    assert verify_file(g, out).verdict is Verdict.VERIFIED


def test_reencoded_clip_is_traced(g: Guardian, clip: Path, tmp_path: Path) -> None:
    out = _label(g, clip, tmp_path / "out.wav")
    mp3 = decode_bytes(encode_bytes(decode_bytes(out.read_bytes()), "mp3", bitrate_kbps=128))
    up = Audio(np.clip(resample(mp3.samples, mp3.sample_rate, 44100), -1, 1), 44100)
    stripped = encode_bytes(up, OutputFormat.WAV)
    result = verify_bytes(g, stripped)
    assert result.verdict is Verdict.TRACED, result.reasons
    assert result.match == "fingerprint"
    assert not result.manifest.present


def test_stripped_lossless_copy_is_traced_by_content_hash(
    g: Guardian, clip: Path, tmp_path: Path
) -> None:
    out = _label(g, clip, tmp_path / "out.wav")
    copy = encode_bytes(decode_bytes(out.read_bytes()), OutputFormat.FLAC)  # no manifest
    result = verify_bytes(g, copy)
    assert result.verdict is Verdict.TRACED and result.match == "content_hash"


@pytest.mark.parametrize("position", [0.0, 0.25, 0.5, 0.999])
def test_one_flipped_sample_is_tampered(
    g: Guardian, clip: Path, tmp_path: Path, position: float
) -> None:
    out = _label(g, clip, tmp_path / "out.wav")
    result = verify_bytes(g, flip_wav_sample(out.read_bytes(), position=position))
    assert result.verdict is Verdict.TAMPERED
    assert result.exit_code is ExitCode.TAMPERED


def test_unrelated_clip_is_not_found(g: Guardian, clip: Path, tmp_path: Path) -> None:
    _label(g, clip, tmp_path / "out.wav")
    other = write_clip(tmp_path / "other.wav", seed=77)
    result = verify_file(g, other)
    assert result.verdict is Verdict.NOT_FOUND and result.exit_code is ExitCode.NOT_FOUND


def test_rotation_keeps_old_clips_verifiable(g: Guardian, clip: Path, tmp_path: Path) -> None:
    old = _label(g, clip, tmp_path / "old.wav")
    rotate_key(g)
    new = _label(g, clip, tmp_path / "new.wav")
    assert verify_file(g, old).verdict is Verdict.VERIFIED
    assert verify_file(g, new).verdict is Verdict.VERIFIED
    assert verify_file(g, old).signer_kid != verify_file(g, new).signer_kid


def test_revocation_fails_clips_signed_after_it(g: Guardian, clip: Path, tmp_path: Path) -> None:
    before = _label(g, clip, tmp_path / "before.wav")
    kid = verify_file(g, before).signer_kid
    assert kid is not None
    # A clip signed with the key after revocation (e.g. by someone holding the
    # stolen key) has no registry record from before the revocation.
    with g.reading() as s:
        signer = g.keys.manifest_signer(s)
    revoke_key(g, kid, reason="key compromise")
    from guardian.provenance import GuardianAssertion, build_manifest, embed

    data = encode_bytes(decode_bytes(clip.read_bytes()), OutputFormat.WAV)
    forged = embed(
        data,
        mime="audio/wav",
        signer=signer,
        manifest=build_manifest(
            GuardianAssertion(label_id="lbl_x", created_at="2020-01-01T00:00:00Z", software="x"),
            title="x.wav",
            mime="audio/wav",
        ),
    )
    after = verify_bytes(g, forged)
    assert after.verdict is Verdict.TAMPERED and "revoked" in after.reasons[0]
    kept = verify_file(g, before)
    assert kept.verdict is Verdict.VERIFIED
    assert any("before key" in r for r in kept.reasons)


def test_manifest_from_another_guardian_is_a_forgery(
    g: Guardian, clip: Path, tmp_path: Path
) -> None:
    other = open_guardian(Settings(home=tmp_path / "rogue", database_url=None, master_key=None))
    forged = _label(other, clip, tmp_path / "forged.wav")
    init_keys(g)
    result = verify_file(g, forged)
    assert result.verdict is Verdict.TAMPERED and "forged" in result.reasons[0]


@pytest.mark.parametrize(
    ("content", "error"),
    [
        (b"", UnreadableAudioError),
        (b"just some text, not audio" * 20, UnreadableAudioError),
        ("truncated", UnreadableAudioError),
        ("long", AudioTooLongError),
    ],
)
def test_bad_input_writes_nothing(
    g: Guardian, clip: Path, tmp_path: Path, content: object, error: type[Exception]
) -> None:
    init_keys(g)
    before = _counts(g)
    src = tmp_path / "bad.wav"
    if content == "truncated":
        data = clip.read_bytes()
        src.write_bytes(data[: len(data) // 3])
    elif content == "long":
        write_clip(src, seconds=3.0)
        g.settings.max_audio_seconds = 2.0
    else:
        assert isinstance(content, bytes)
        src.write_bytes(content)
    out = tmp_path / "out.wav"
    with pytest.raises(error):
        label_file(g, LabelRequest(source=src, output=out))
    assert not out.exists()
    assert _counts(g) == before
    assert not list(tmp_path.glob(".out.wav*"))


def test_bad_output_paths_are_usage_errors(g: Guardian, clip: Path, tmp_path: Path) -> None:
    for out, why in [
        (tmp_path / "x.ogg", "unsupported output format"),
        (tmp_path / "missing" / "x.wav", "does not exist"),
        (clip, "overwrite the input"),
    ]:
        with pytest.raises(UsageError, match=why):
            label_file(g, LabelRequest(source=clip, output=out))


def test_every_label_is_audited(g: Guardian, clip: Path, tmp_path: Path) -> None:
    _label(g, clip, tmp_path / "a.wav")
    _label(g, clip, tmp_path / "b.flac")
    report = verify_audit(g)
    # keys.init, then for each label its policy decision and the label itself
    assert report and report.entries == 5


def test_stolen_revoked_key_cannot_reuse_a_registered_manifest_id(
    g: Guardian, clip: Path, tmp_path: Path
) -> None:
    """Manifest ids are public: a thief signs new audio under an old clip's id."""
    from guardian.provenance import GuardianAssertion, build_manifest, embed

    genuine = _label(g, clip, tmp_path / "genuine.wav", purpose="test")
    first = verify_file(g, genuine)
    assert first.verdict is Verdict.VERIFIED and first.manifest.id is not None
    with g.reading() as s:
        stolen = g.keys.manifest_signer(s)
    revoke_key(g, stolen.kid, reason="key compromise")

    other = write_clip(tmp_path / "other.wav", seed=9)
    manifest = build_manifest(
        GuardianAssertion(label_id="lbl_x", created_at="2020-01-01T00:00:00Z", software="x"),
        title="x.wav",
        mime="audio/wav",
    )
    manifest["label"] = first.manifest.id  # the id of the clip already in the registry
    forged = embed(other.read_bytes(), mime="audio/wav", signer=stolen, manifest=manifest)
    result = verify_bytes(g, forged)
    assert result.manifest.id == first.manifest.id, "the attack reuses the id"
    assert result.verdict is Verdict.TAMPERED, result.reasons
    assert result.exit_code is ExitCode.TAMPERED
    assert verify_file(g, genuine).verdict is Verdict.VERIFIED


@pytest.mark.slow
def test_an_expired_signing_certificate_does_not_turn_old_clips_into_tampered(
    settings: Settings, clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Leaves live 825 days and manifests carry no timestamp: after expiry C2PA reports
    `signingCredential.expired`. A clip the registry recorded inside the validity must
    still verify; anything else signed by the expired leaf must not."""
    from guardian.keys import _x509

    monkeypatch.setattr(_x509, "LEAF_VALIDITY", dt.timedelta(seconds=4))
    g = open_guardian(settings)
    init_keys(g)
    out = _label(g, clip, tmp_path / "old.wav", purpose="test")
    with g.reading() as s:
        signer = g.keys.manifest_signer(s)
    # The same key signs something the registry never recorded (C2PA will not sign with
    # an expired certificate, but a thief is not bound to c2pa-python).
    from guardian.provenance import GuardianAssertion, build_manifest, embed

    other = write_clip(tmp_path / "other.wav", seed=7)
    late = embed(
        other.read_bytes(),
        mime="audio/wav",
        signer=signer,
        manifest=build_manifest(
            GuardianAssertion(label_id="lbl_y", created_at="2020-01-01T00:00:00Z", software="x"),
            title="y.wav",
            mime="audio/wav",
        ),
    )
    time.sleep(5)  # the leaf has expired
    result = verify_file(g, out)
    assert result.verdict is Verdict.VERIFIED, result.reasons
    assert any("expired" in r for r in result.reasons)
    assert verify_bytes(g, late).verdict is Verdict.TAMPERED
    g.engine.dispose()


def test_label_cannot_assert_a_voice_or_consent(g: Guardian, clip: Path, tmp_path: Path) -> None:
    """`label --voice-id … --consent-id …` gave a `verified` clip carrying those ids."""
    with pytest.raises(TypeError):
        LabelRequest(  # type: ignore[call-arg]
            source=clip, output=tmp_path / "x.wav", voice_id="voice_victim", consent_id="c"
        )
    out = _label(g, clip, tmp_path / "out.wav", purpose="test")
    result = verify_file(g, out)
    assert result.verdict is Verdict.VERIFIED
    assert result.voice_id is None and result.consent_id is None
    assert result.origin == "imported" and result.to_dict()["origin"] == "imported"
    assert any("imported audio labeled by this deployment" in r for r in result.reasons)


def test_label_cli_refuses_voice_and_consent_options(clip: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli.main import app

    out = tmp_path / "out.wav"
    r = CliRunner().invoke(
        app, ["label", str(clip), "-o", str(out), "--voice-id", "voice_x", "--consent-id", "c"]
    )
    assert r.exit_code == 2 and not out.exists()


def test_label_is_decided_by_policy_and_audited(
    settings: Settings, clip: Path, tmp_path: Path
) -> None:
    import shutil

    from guardian.errors import PolicyDeniedError
    from guardian.policy import default_policy_dir

    policies = tmp_path / "policies"
    shutil.copytree(default_policy_dir(), policies)
    (policies / "local").mkdir()
    (policies / "local" / "no-ads.cedar").write_text(
        '@id("no-ad-labels")\n@reason("this deployment labels no advertising")\n'
        'forbid (principal, action == Action::"label", resource)\n'
        'when { context.purpose == "advertising" };\n'
    )
    g = open_guardian(settings.model_copy(update={"policy_dir": policies}))
    with pytest.raises(PolicyDeniedError, match="labels no advertising"):
        _label(g, clip, tmp_path / "ad.wav", purpose="advertising")
    assert not (tmp_path / "ad.wav").exists()
    _label(g, clip, tmp_path / "ok.wav", purpose="audiobook")
    with g.reading() as s:
        decisions = [
            json.loads(e.details_json)
            for e in s.exec(select(AuditEntry).where(AuditEntry.action == "policy.decision"))
        ]
    assert [(d["action"], d["allowed"]) for d in decisions] == [("label", False), ("label", True)]
    assert decisions[0]["policy_ids"] == ["no-ad-labels"]
    g.engine.dispose()


def _atempo(audio: Audio, factor: float) -> Audio:
    """ffmpeg's tempo change: time only, pitch kept (what editors call 'change tempo')."""
    import subprocess

    from guardian.audio._ffmpeg import ffmpeg_exe

    pcm = np.ascontiguousarray(audio.mono(), dtype=np.float32).tobytes()
    rate = str(audio.sample_rate)
    args = ["-f", "f32le", "-ar", rate, "-ac", "1", "-i", "-", "-filter:a", f"atempo={factor}"]
    out = subprocess.run(
        [ffmpeg_exe(), "-v", "error", *args, "-f", "f32le", "-"],
        input=pcm,
        capture_output=True,
        check=True,
    ).stdout
    return Audio(np.frombuffer(out, dtype=np.float32)[:, None].copy(), audio.sample_rate)


@pytest.mark.parametrize(("change", "factor"), [("speed", 0.95), ("speed", 1.05), ("tempo", 1.07)])
def test_a_clip_changed_in_speed_or_tempo_is_traced(
    g: Guardian, clip: Path, tmp_path: Path, change: str, factor: float
) -> None:
    """A 5-7 % speed or tempo change, which any editor makes, used to remove every
    signal: the fingerprint search now undoes it."""
    out = _label(g, clip, tmp_path / "out.wav")
    audio = decode_bytes(out.read_bytes())
    if change == "speed":  # played faster: resampled, pitch and time change together
        changed = Audio(resample(audio.samples, audio.sample_rate, round(16000 / factor)), 16000)
    else:
        changed = _atempo(audio, factor)
    result = verify_bytes(g, encode_bytes(changed, OutputFormat.WAV))
    assert result.verdict is Verdict.TRACED, result.reasons
    found = re.search(rf"{change} change of x([0-9.]+) is undone", " ".join(result.reasons))
    assert result.match == "fingerprint" and found, result.reasons
    assert abs(float(found.group(1)) - factor) <= 0.015  # the search's grid is 1 %
    other = write_clip(tmp_path / "other.wav", seed=77)
    unrelated = decode_bytes(other.read_bytes())
    moved = Audio(resample(unrelated.samples, 16000, round(16000 / factor)), 16000)
    assert verify_bytes(g, encode_bytes(moved, OutputFormat.WAV)).verdict is Verdict.NOT_FOUND


def test_a_detector_load_under_way_is_the_one_verify_uses(
    settings: Settings, clip: Path, tmp_path: Path
) -> None:
    """``open_guardian(detector=...)``: verify waits for that load (``guardian verify``
    starts it before the database opens) and meets its error, not a load of its own."""
    loaded = open_guardian(settings, detector=preload_detector(settings.watermark_model))
    assert verify_file(loaded, clip).verdict is Verdict.NOT_FOUND
    failed: Future[Detector] = Future()
    failed.set_exception(WatermarkModelError("the load under way failed"))
    g = open_guardian(settings, detector=failed)
    with pytest.raises(WatermarkModelError, match="the load under way failed"):
        verify_file(g, clip)
    loaded.engine.dispose()
    g.engine.dispose()


def test_a_look_ahead_gives_the_verdict_verify_gives_alone(
    g: Guardian, clip: Path, tmp_path: Path
) -> None:
    """``guardian verify`` lets the detector look at the clip before the database and the
    key are open; reading the payload afterwards gives what one pass gives."""
    labeled = _label(g, clip, tmp_path / "labeled.wav", purpose="test")
    mp3 = tmp_path / "labeled.mp3"
    mp3.write_bytes(encode_bytes(decode_bytes(labeled.read_bytes()), OutputFormat.MP3))
    loading = preload_detector(g.settings.watermark_model)
    for path in (labeled, mp3, clip):
        ahead = verify_file(g, path, seen=look_ahead(loading, path, g.settings))
        alone = verify_file(g, path)
        assert ahead.to_dict() == alone.to_dict()
    assert verify_file(g, mp3).verdict is Verdict.TRACED


def test_a_look_ahead_meets_the_errors_verify_meets(
    g: Guardian, clip: Path, tmp_path: Path
) -> None:
    loading = preload_detector(g.settings.watermark_model)
    missing, empty = tmp_path / "missing.wav", tmp_path / "empty.wav"
    empty.write_bytes(b"")
    for path in (missing, empty):
        with pytest.raises((UsageError, UnreadableAudioError)) as alone:
            verify_file(g, path)
        with pytest.raises(type(alone.value), match=re.escape(str(alone.value))):
            verify_file(g, path, seen=look_ahead(loading, path, g.settings))
    # a look taken of other bytes is never read as this clip's
    seen = look_ahead(loading, clip, g.settings).result()
    with pytest.raises(ValueError, match="other data"):
        verify_bytes(g, write_clip(tmp_path / "other.wav", seed=5).read_bytes(), seen=seen)
