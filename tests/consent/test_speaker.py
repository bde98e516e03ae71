"""Speaker verification on the shipped voices: festival slt (demo) and festival kal.

The FLAC files ship with the package and the tests, so these run without festival.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from guardian.audio import Audio, read_audio, resample
from guardian.consent import _speaker
from guardian.consent._errors import NoSpeechError, SpeakerModelError
from guardian.consent._speaker import (
    THRESHOLD,
    SpeakerCheck,
    check_same_speaker,
    embed,
)

ROOT = Path(__file__).resolve().parents[2]
SLT = ROOT / "guardian/app/assets/consent/slt"
KAL = ROOT / "tests/data/voices/kal"

Embeddings = tuple[np.ndarray, ...]


def _samples(folder: Path) -> list[Path]:
    return [folder / f"sample-{i:02d}.flac" for i in range(1, 7)]


@functools.cache
def _embeddings(folder: Path) -> Embeddings:
    return tuple(embed(read_audio(p)) for p in _samples(folder))


@functools.cache
def _statement(folder: Path) -> np.ndarray:
    return embed(read_audio(folder / "statement.flac"))


@pytest.fixture(scope="module")
def slt() -> Embeddings:
    return _embeddings(SLT)


@pytest.fixture(scope="module")
def kal() -> Embeddings:
    return _embeddings(KAL)


@pytest.fixture(scope="module")
def slt_consent() -> np.ndarray:
    return _statement(SLT)


@pytest.fixture(scope="module")
def kal_consent() -> np.ndarray:
    return _statement(KAL)


# --- embeddings ----------------------------------------------------------------------


def test_embedding_is_unit_norm_float32_256(slt: Embeddings) -> None:
    for e in slt:
        assert e.shape == (256,)
        assert e.dtype == np.float32
        assert abs(float(np.linalg.norm(e)) - 1.0) < 1e-5


def test_embedding_is_deterministic() -> None:
    audio = read_audio(_samples(SLT)[0])
    first, second = embed(audio), embed(audio)
    assert np.array_equal(first, second)


def test_embedding_ignores_rate_and_channel_layout() -> None:
    audio = read_audio(_samples(SLT)[1])
    reference = embed(audio)
    mono = audio.mono()
    stereo = Audio(np.stack([mono, mono], axis=1), audio.sample_rate)
    at_48k = Audio(resample(mono, audio.sample_rate, 48_000)[:, None], 48_000)
    assert float(embed(stereo) @ reference) > 0.999
    assert float(embed(at_48k) @ reference) > 0.98


def test_silence_has_no_speaker() -> None:
    with pytest.raises(NoSpeechError):
        embed(Audio(np.zeros((16_000 * 3, 1), dtype=np.float32), 16_000))


# --- the check on shipped voices -----------------------------------------------------


def test_same_speaker_passes(slt: Embeddings, slt_consent: np.ndarray) -> None:
    result = check_same_speaker(slt_consent, list(slt))
    assert result, result.reason
    assert result.reason is None
    assert result.rejected == ()
    assert result.threshold == THRESHOLD
    assert len(result.sample_scores) == len(slt)
    assert min(result.sample_scores) >= THRESHOLD
    assert result.consent_score >= THRESHOLD


def test_a_kal_sample_among_slt_samples_is_named(
    slt: Embeddings, kal: Embeddings, slt_consent: np.ndarray
) -> None:
    samples = [slt[0], slt[1], kal[2], slt[3], slt[4], slt[5]]
    result = check_same_speaker(slt_consent, samples)
    assert not result
    assert result.rejected == (2,)
    assert result.reason is not None
    assert result.reason.startswith("sample 3 does not match")
    assert "consent" not in result.reason  # the consent matches the five slt samples
    assert result.sample_scores[2] < THRESHOLD
    assert all(s >= THRESHOLD for i, s in enumerate(result.sample_scores) if i != 2)


def test_two_kal_samples_are_both_named(
    slt: Embeddings, kal: Embeddings, slt_consent: np.ndarray
) -> None:
    samples = [kal[0], slt[1], slt[2], slt[3], kal[1], slt[5]]
    result = check_same_speaker(slt_consent, samples)
    assert result.rejected == (0, 4)
    assert result.reason is not None and "samples 1 and 5 do not match" in result.reason


def test_kal_consent_against_slt_samples_is_rejected(
    slt: Embeddings, kal_consent: np.ndarray
) -> None:
    result = check_same_speaker(kal_consent, list(slt))
    assert not result
    assert result.rejected == ()
    assert result.consent_score < THRESHOLD
    assert result.reason is not None
    assert "consent recording's voice does not match the samples" in result.reason


def test_slt_consent_against_kal_samples_is_rejected(
    kal: Embeddings, slt_consent: np.ndarray
) -> None:
    result = check_same_speaker(slt_consent, list(kal))
    assert not result
    assert result.consent_score < THRESHOLD
    assert result.reason is not None and "consent recording's voice" in result.reason


def test_any_kal_recording_as_consent_is_rejected(slt: Embeddings, kal: Embeddings) -> None:
    for consent in kal:
        assert not check_same_speaker(consent, list(slt))


def test_one_sample_is_compared_with_the_consent(
    slt: Embeddings, kal: Embeddings, slt_consent: np.ndarray
) -> None:
    assert check_same_speaker(slt_consent, [slt[1]])
    result = check_same_speaker(slt_consent, [kal[1]])
    assert not result and result.rejected == (0,)


# --- the check's arithmetic, on constructed embeddings -------------------------------


def _voice(rng: np.random.Generator, centre: np.ndarray, n: int, spread: float) -> list[Any]:
    out = []
    for _ in range(n):
        v = centre + spread * rng.standard_normal(centre.shape)
        out.append(v / np.linalg.norm(v))
    return out


def test_no_samples_is_a_failure_not_a_pass() -> None:
    result = check_same_speaker(np.ones(256) / 16, [])
    assert not result and result.reason == "no enrollment samples were given"


def test_scores_are_cosines_against_leave_one_out_centroids() -> None:
    rng = np.random.default_rng(0)
    centre = rng.standard_normal(256)
    samples = _voice(rng, centre, 4, 0.02)
    consent = _voice(rng, centre, 1, 0.02)[0]
    result = check_same_speaker(consent, samples, threshold=0.5)
    m = np.stack(samples)
    for i, score in enumerate(result.sample_scores):
        others = m.sum(axis=0) - m[i]
        assert score == pytest.approx(float(m[i] @ others / np.linalg.norm(others)))
    centroid = m.mean(axis=0)
    assert result.consent_score == pytest.approx(
        float(consent @ centroid / np.linalg.norm(centroid))
    )


def test_two_voices_two_samples_the_one_unlike_the_consent_is_named() -> None:
    rng = np.random.default_rng(1)
    a, b = rng.standard_normal(256), rng.standard_normal(256)
    consent = _voice(rng, a, 1, 0.01)[0]
    result = check_same_speaker(consent, [*_voice(rng, b, 1, 0.01), *_voice(rng, a, 1, 0.01)])
    assert result.rejected == (0,)
    assert result.consent_score > 0.99


def test_result_is_falsy_exactly_when_not_ok() -> None:
    check = SpeakerCheck(False, 0.9, 0.1, (0.95,), (), "x")
    assert not check and bool(SpeakerCheck(True, 0.9, 0.95, (0.95,), ())) is True


# --- weights -------------------------------------------------------------------------


def test_tampered_weights_are_refused(tmp_path: Path) -> None:
    weights = tmp_path / "pretrained.pt"
    weights.write_bytes(b"not the pinned weights")
    with pytest.raises(SpeakerModelError, match="SHA-256"):
        _speaker.read_pinned(weights, _speaker.WEIGHTS_SHA256)


def test_missing_weights_are_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SpeakerModelError, match="unreadable"):
        _speaker.read_pinned(tmp_path / "absent.pt", _speaker.WEIGHTS_SHA256)


def test_pinned_hash_matches_the_installed_wheel() -> None:
    data = _speaker.read_pinned(_speaker._weights_path(), _speaker.WEIGHTS_SHA256)
    assert len(data) > 1_000_000


def test_weights_load_only_with_weights_only(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    calls: list[dict[str, Any]] = []
    real_load = torch.load

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    _speaker.encoder.cache_clear()
    try:
        _speaker.encoder()
    finally:
        _speaker.encoder.cache_clear()
    assert calls and all(c.get("weights_only") is True for c in calls)


# --- privacy -------------------------------------------------------------------------

_FILE_EVENTS = {"os.mkdir", "os.rename", "os.remove", "tempfile.mkstemp", "tempfile.mkdtemp"}
_writes: list[tuple[str, Any]] | None = None
_hooked = False


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _writes is None:
        return
    writing = event == "open" and isinstance(args[1], str) and set(args[1]) & set("wax+")
    if writing or event in _FILE_EVENTS:
        _writes.append((event, args[0]))


def test_embedding_writes_nothing_to_disk(slt: Embeddings) -> None:
    """Voice audio and embeddings are personal data: no file, not even a temporary one."""
    global _writes, _hooked
    if not _hooked:  # audit hooks cannot be removed, so one hook is gated by _writes
        sys.addaudithook(_audit)
        _hooked = True
    audio = read_audio(_samples(SLT)[3])
    _writes = []
    try:
        embedding = embed(audio)
        check_same_speaker(embedding, list(slt))
        seen = list(_writes)
    finally:
        _writes = None
    assert seen == []
