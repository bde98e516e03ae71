"""The payload-led registry search: finds the right row, never a wrong one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from guardian.app import Guardian, LabelRequest, label_file
from guardian.app._watermarking import assisted_lookup
from guardian.audio import Audio, decode_bytes
from guardian.provenance import fingerprint_of
from guardian.store import Label
from guardian.watermark import Detection, Payload
from tests.conftest import write_clip


def _detection(payload: Payload, *, confidence: float = 0.9) -> Detection:
    return Detection(
        detected=True,
        score=0.99,
        threshold=0.5,
        payload=payload,
        bits=payload.bits(),
        bit_confidence=[confidence] * 16,
    )


@pytest.fixture
def labeled(g: Guardian, tmp_path: Path) -> tuple[Label, Audio]:
    for seed in (31, 32, 33):  # other rows in the registry
        label_file(
            g,
            LabelRequest(
                source=write_clip(tmp_path / f"o{seed}.wav", seed=seed),
                output=tmp_path / f"o{seed}.out.wav",
            ),
        )
    out = tmp_path / "out.wav"
    result = label_file(
        g, LabelRequest(source=write_clip(tmp_path / "in.wav", seed=30), output=out)
    )
    with g.reading() as s:
        row = s.get(Label, result.label_id)
    assert row is not None
    return row, decode_bytes(out.read_bytes())


def _noisy(audio: Audio, snr_db: float) -> Audio:
    rng = np.random.default_rng(0)
    p = float(np.mean(audio.samples**2))
    noise = rng.standard_normal(audio.samples.shape) * np.sqrt(p / 10 ** (snr_db / 10))
    return Audio((audio.samples + noise).astype(np.float32), audio.sample_rate)


def test_payload_and_fingerprint_find_the_row(g: Guardian, labeled: tuple[Label, Audio]) -> None:
    row, audio = labeled
    payload = Payload.for_label(deployment=g.deployment_tag(), label_id=row.id)
    with g.reading() as s:
        found = assisted_lookup(
            s,
            g.registry,
            _detection(payload),
            fingerprint_of(_noisy(audio, 15)),
        )
    assert found is not None and found.label.id == row.id


def test_a_forged_payload_naming_another_deployment_does_not_veto_the_search(
    g: Guardian, labeled: tuple[Label, Audio]
) -> None:
    """A payload is forgeable: one that names another deployment must not hide our clip."""
    row, audio = labeled
    other = (g.deployment_tag() + 1) % 16
    payload = Payload.for_label(deployment=other, label_id=row.id)
    with g.reading() as s:
        found = assisted_lookup(
            s, g.registry, _detection(payload), fingerprint_of(_noisy(audio, 15))
        )
    assert found is not None and found.label.id == row.id


def test_a_payload_naming_another_row_never_returns_it(
    g: Guardian, labeled: tuple[Label, Audio], tmp_path: Path
) -> None:
    row, _ = labeled
    unrelated = decode_bytes(write_clip(tmp_path / "u.wav", seed=99).read_bytes())
    payload = Payload.for_label(deployment=g.deployment_tag(), label_id=row.id)
    with g.reading() as s:
        found = assisted_lookup(
            s,
            g.registry,
            _detection(payload),
            fingerprint_of(unrelated),
        )
    assert found is None  # the fingerprint must confirm the candidate
