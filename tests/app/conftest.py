"""Fixtures for use-case tests that need a real enrollment."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from guardian.app import ChallengeResult, EnrollRequest, Guardian, create_challenge
from guardian.app._consent_voice import enrollment_samples, spoken_consent
from guardian.audio import Audio, OutputFormat, decode_bytes, encode_bytes, resample
from guardian.consent import embed

ASSETS = Path(__file__).resolve().parents[2] / "guardian" / "app" / "assets" / "consent"
SLT = ASSETS / "slt"
KAL = Path(__file__).resolve().parents[1] / "data" / "voices" / "kal"
NAME, ORG = "Alex Morgan", "Guardian Demo Studio"


TEST_SAMPLES = 16
"""Enrollment samples the tests use. The demo enrolls all 48 that ship, for its voice
measure; the first 16 pass every check and keep the tests quick."""


def slt_samples() -> tuple[Path, ...]:
    """The demo speaker's first ``TEST_SAMPLES`` enrollment recordings."""
    return tuple(enrollment_samples(SLT)[:TEST_SAMPLES])


def slt_transcripts() -> tuple[str, ...]:
    """What those recordings say, in order."""
    return tuple((SLT / "transcripts.txt").read_text().splitlines()[:TEST_SAMPLES])


def write_wav(path: Path, audio: Audio) -> Path:
    path.write_bytes(encode_bytes(audio, OutputFormat.WAV))
    return path


@dataclass
class Attempt:
    challenge: ChallengeResult
    consent: Path
    samples: tuple[Path, ...]

    def request(self, **kw: object) -> EnrollRequest:
        args: dict[str, object] = {
            "challenge_id": self.challenge.challenge_id,
            "consent": self.consent,
            "samples": self.samples,
            "purposes": ("audiobook", "demo"),
        }
        args.update(kw)
        return EnrollRequest(**args)  # type: ignore[arg-type]


@pytest.fixture
def attempt(g: Guardian, tmp_path: Path) -> Attempt:
    """A fresh challenge read correctly by the subject, with the subject's samples."""
    c = create_challenge(g, name=NAME, organization=ORG)
    consent = write_wav(tmp_path / "consent.wav", spoken_consent(SLT, c.phrase, c.code))
    return Attempt(c, consent, slt_samples())


def needles(samples: Sequence[Path]) -> dict[str, bytes]:
    needles: dict[str, bytes] = {"name": NAME.encode(), "name-utf16": NAME.encode("utf-16-le")}
    for i, path in enumerate(samples):
        data = path.read_bytes()
        needles[f"sample {i} file bytes"] = data[len(data) // 2 : len(data) // 2 + 48]
        audio = decode_bytes(data)
        pcm16 = (np.clip(audio.samples[:, 0], -1, 1) * 32767).astype("<i2").tobytes()
        mid = len(pcm16) // 2
        needles[f"sample {i} pcm16"] = pcm16[mid : mid + 48]
        f32 = audio.samples[:, 0].astype("<f4").tobytes()
        needles[f"sample {i} float32"] = f32[len(f32) // 2 : len(f32) // 2 + 48]
        mono16k = resample(audio.samples[:, 0], audio.sample_rate, 16000).astype("<f4").tobytes()
        needles[f"sample {i} 16k float32"] = mono16k[len(mono16k) // 2 : len(mono16k) // 2 + 48]
        needles[f"sample {i} embedding"] = embed(audio).astype("<f4").tobytes()[:32]
    return needles


def tree_files(root: Path) -> dict[Path, bytes]:
    """Every file under ``root`` with its bytes, for plaintext scans."""
    return {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
