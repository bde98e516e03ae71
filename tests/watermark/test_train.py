"""The training recipe runs, checkpoints atomically and resumes where it stopped."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch

from guardian.audio import Audio, OutputFormat, encode_bytes, speechlike
from guardian.errors import WatermarkModelError
from guardian.watermark import _augment, load_card
from guardian.watermark._export import export
from guardian.watermark._model import ArchConfig, EmbedConfig
from guardian.watermark._train import TrainConfig, train


def _data(root: Path) -> list[Path]:
    root.mkdir()
    files = []
    for seed in range(3):
        path = root / f"s{seed}.wav"
        path.write_bytes(
            encode_bytes(Audio(speechlike(2.0, seed=seed)[:, None], 16000), OutputFormat.WAV)
        )
        files.append(path)
    return files


def test_train_resume_and_export(tmp_path: Path) -> None:
    files = _data(tmp_path / "data")
    config = TrainConfig(
        arch=ArchConfig(n_filters=4, dimension=8, lstm=1),
        embed=EmbedConfig(band_hz=(600.0, 2700.0)),
        misalign_prob=1.0,
        latent_rms_max=1.0,
        message_warmup_steps=1,
        steps=3,
        batch_size=2,
        segment_s=0.5,
        checkpoint_every=2,
        message_start_step=0,
        message_ramp_steps=1,
    )
    seen: list[int] = []
    ckpt = train(
        files,
        tmp_path / "run",
        config=config,
        progress=lambda s: seen.append(s.step),
        should_stop=lambda: len(seen) >= 2,
    )
    assert torch.load(ckpt, weights_only=True)["step"] == 2  # stopped early, saved
    train(files, tmp_path / "run", config=config, progress=lambda s: seen.append(s.step))
    assert seen == [1, 2, 3]
    assert torch.load(ckpt, weights_only=True)["step"] == 3
    log = [json.loads(line) for line in (tmp_path / "run" / "train_log.jsonl").open()]
    assert [row["step"] for row in log] == [1, 2, 3]
    assert all(row["latent_rms"] > 0 for row in log)
    assert [row["aug"] == "warmup" for row in log] == [True, False, False]
    negatives = [Audio(speechlike(2.0, seed=s)[:, None], 16000) for s in (40, 41)]
    card = export(ckpt, tmp_path / "m.yaml", model_id="t", config=config, negatives=negatives)
    model = load_card(card)
    assert model.model_id == "t" and model.generator is not None
    assert model.embed.band_hz == (600.0, 2700.0)

    # A fresh run can start from a card's weights (fine-tuning) ...
    tuned = TrainConfig.from_dict({**config.to_dict(), "init_from": str(card), "steps": 0})
    start = torch.load(train(files, tmp_path / "tune", config=tuned), weights_only=True)
    for name, value in model.generator.state_dict().items():  # type: ignore[union-attr]
        assert torch.equal(start["generator"][name], value), name
    # ... but only a card of the same architecture.
    other = TrainConfig.from_dict(
        {**tuned.to_dict(), "arch": {**config.arch.to_dict(), "dimension": 16}}
    )
    with pytest.raises(WatermarkModelError, match="architecture"):
        train(files, tmp_path / "other", config=other)


def test_attack_mix_overrides_are_checked() -> None:
    config = TrainConfig(augment_weights={"pink_noise_0db": 1.0, "mp3_32k": 0.0})
    mix = _augment.weights(config.augment_weights)
    assert mix["pink_noise_0db"] == 1.0 and mix["mp3_32k"] == 0.0
    assert mix["identity"] == 2.0  # the rest keep their defaults
    rng = random.Random(0)
    drawn = {_augment.choose(rng, mix)[0] for _ in range(2000)}
    assert "pink_noise_0db" in drawn and "mp3_32k" not in drawn
    with pytest.raises(ValueError, match="unknown training augmentation 'mp3_23k'"):
        TrainConfig(augment_weights={"mp3_23k": 1.0})
    with pytest.raises(ValueError, match=">= 0"):
        TrainConfig(augment_weights={"echo": -1.0})
