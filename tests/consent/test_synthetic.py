"""The synthetic-speech check of consent readings (issue 26, finding 8).

Enrollment-level refusals are in ``tests/app/test_enroll.py``; here the check itself:
people read LibriSpeech (held out from its training) and pass, synthesisers reading a
statement are caught, and the model file is pinned."""

from __future__ import annotations

import hashlib
import io
import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from guardian.app._consent_voice import spoken_consent
from guardian.audio import Audio, decode_bytes, encode_bytes, read_audio
from guardian.consent import _synthetic, check_synthetic, embed, new_phrase, render_statement
from guardian.consent._errors import NoSpeechError, SyntheticModelError
from guardian.consent._synthetic import (
    FEATURE_DIM,
    MODEL_PATH,
    MODEL_SHA256,
    cepstral_statistics,
    features,
    fit,
    parse_model,
    synthetic_model,
)
from tests.app.conftest import KAL, NAME, ORG, SLT

HUMAN = sorted((Path(__file__).resolve().parents[1] / "data" / "human").glob("*.flac"))
CODE = ("hotel", "kilo", "alpha", "tango", "xray")


def _score(audio: Audio) -> tuple[bool, float]:
    check = check_synthetic(audio)
    return check.synthetic, check.score


def _at_peak(audio: Audio, dbfs: float) -> Audio:
    samples = audio.samples / np.abs(audio.samples).max() * 10 ** (dbfs / 20)
    return Audio(samples.astype(np.float32), audio.sample_rate)


@pytest.mark.parametrize("path", HUMAN, ids=[p.stem for p in HUMAN])
def test_people_reading_aloud_are_not_flagged(path: Path) -> None:
    """Three LibriSpeech speakers the model never trained on: recorded quietly or near
    full scale, and after MP3 at 64 kbps (what a browser or phone upload might do)."""
    audio = read_audio(path)
    for heard in (_at_peak(audio, -30.0), _at_peak(audio, -0.5)):
        assert not _score(heard)[0], _score(heard)
    mp3 = decode_bytes(encode_bytes(audio, "mp3", bitrate_kbps=64), name="mp3")
    assert not _score(mp3)[0], _score(mp3)


@pytest.mark.parametrize("voice", [SLT, KAL], ids=["slt", "kal"])
def test_the_shipped_synthetic_voices_readings_are_flagged(voice: Path) -> None:
    rng = random.Random(1)
    for level in (-30.0, -12.0, -0.5):
        reading = _at_peak(spoken_consent(voice, new_phrase(rng.choice), CODE), level)
        assert _score(reading)[0], _score(reading)


def _espeak(text: str) -> Audio:
    wav = subprocess.run(
        ["espeak-ng", "-v", "en-us+m3", "--stdout", text], capture_output=True, check=True
    ).stdout
    samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return Audio(samples[:, None], int(rate))


def _festival_ked(text: str) -> Audio:
    from guardian.corpus import festival

    samples, rate = festival(text, "ked_diphone")
    return Audio(samples[:, None].astype(np.float32), rate)


def _piper(text: str) -> Audio:
    from guardian.corpus import Synth

    samples, rate, _ = Synth(require_espeak=False).piper(text, random.Random(0))
    return Audio(np.asarray(samples, np.float32)[:, None], rate)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("program", "speak"),
    [("espeak-ng", _espeak), ("text2wave", _festival_ked), ("piper", _piper)],
    ids=["espeak-ng", "festival-ked", "piper-joe"],
)
def test_synthesisers_reading_a_whole_statement_are_flagged(program: str, speak: object) -> None:
    """The attack without joined clips: a synthesiser reads the statement in one take."""
    if program != "piper" and shutil.which(program) is None:
        pytest.skip(f"{program} is not installed")
    if program == "piper":
        pytest.importorskip("piper")
    text = render_statement(
        name=NAME, org=ORG, code=CODE, phrase=("quiet", "lantern", "golden", "river")
    )
    reading = speak(text)  # type: ignore[operator]
    assert _score(reading)[0], _score(reading)


def test_the_model_file_is_pinned(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert hashlib.sha256(MODEL_PATH.read_bytes()).hexdigest() == MODEL_SHA256
    altered = tmp_path / "synthetic_speech.json"
    altered.write_bytes(MODEL_PATH.read_bytes().replace(b'"bias": ', b'"bias": -9', 1))
    monkeypatch.setattr(_synthetic, "MODEL_PATH", altered)
    synthetic_model.cache_clear()
    try:
        with pytest.raises(SyntheticModelError, match="SHA-256"):
            synthetic_model()
    finally:
        synthetic_model.cache_clear()


@pytest.mark.parametrize(
    "body",
    [b"", b"[]", b'{"model_id": "x"}', b"threshold", b"weights"],
    ids=["empty", "list", "missing", "threshold", "weights"],
)
def test_a_malformed_model_is_refused(body: bytes) -> None:
    shipped = MODEL_PATH.read_bytes()
    if body == b"threshold":
        body = shipped.replace(b'"threshold": 0.', b'"threshold": 7.', 1)
    elif body == b"weights":
        body = shipped.replace(b'"weights": [', b'"weights": [1.0, ', 1)
    with pytest.raises(SyntheticModelError):
        parse_model(body)


def test_a_recording_too_short_to_judge_is_a_no_speech_error() -> None:
    with pytest.raises(NoSpeechError):
        cepstral_statistics(Audio(np.ones((1000, 1), np.float32) * 0.1, 16_000))


def test_the_fit_separates_what_it_can_and_round_trips() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, FEATURE_DIM))
    y = (x[:, 0] + 0.1 * rng.normal(size=200) > 0).astype(float)
    model = fit(x, y, l2=1.0, model_id="t", threshold=0.5, trained_on=("a",))
    right = np.mean([(model.score(row) >= 0.5) == bool(t) for row, t in zip(x, y, strict=True)])
    assert right > 0.95
    again = parse_model(model.to_json())
    assert again.score(x[0]) == pytest.approx(model.score(x[0]))


def test_the_features_do_not_see_the_level() -> None:
    """A loud reader and a quiet one give the same numbers: both parts are computed at
    one reference level (the speaker encoder raises quiet recordings but leaves loud ones,
    and its embedding moved with the level), and c0's mean is left out."""
    reading = spoken_consent(SLT, ("quiet", "lantern", "golden", "river"), CODE)
    quiet, loud = _at_peak(reading, -30.0), _at_peak(reading, -0.5)
    np.testing.assert_allclose(features(quiet), features(loud), rtol=1e-4, atol=1e-4)
    assert not np.allclose(embed(quiet), embed(loud), rtol=1e-4, atol=1e-4)
    gain = cepstral_statistics(_at_peak(reading, -6.0)) - cepstral_statistics(reading)
    assert np.max(np.abs(gain)) < 1e-3
