"""The training recipe runs, checkpoints atomically and resumes where it stopped."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from guardian.audio import Audio, OutputFormat, encode_bytes, speechlike
from guardian.errors import WatermarkModelError
from guardian.watermark import _augment, load_card
from guardian.watermark._export import export
from guardian.watermark._model import SAMPLE_RATE, ArchConfig, EmbedConfig
from guardian.watermark._scoring import SPEED_MIN_STRENGTH, speed_strength
from guardian.watermark._synthetic import KINDS, random_nonspeech
from guardian.watermark._train import TrainConfig, TrainingAudio, TrainStatus, train


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


def _train_recipe(
    tmp_path: Path,
    recipe: Path,
    *,
    steps: int | None = None,
    progress: Callable[[TrainStatus], None] | None = None,
) -> Path:
    """``guardian watermark train`` of ``recipe`` on ``_data``'s clips into ``run``."""
    from guardian.app import train_watermark

    return train_watermark(
        config_path=recipe,
        data=[tmp_path / "data"],
        out=tmp_path / "run",
        device="cpu",
        steps=steps,
        resume=True,
        progress=progress,
    )


@pytest.mark.slow  # trains
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
    # The card's folder is created when missing.
    card = export(
        ckpt, tmp_path / "cards" / "m.yaml", model_id="t", config=config, negatives=negatives
    )
    model = load_card(card)
    assert model.model_id == "t" and model.generator is not None
    assert model.embed.band_hz == (600.0, 2700.0)

    # A fresh run can start from a card's weights (fine-tuning) ...
    tuned = TrainConfig.from_dict({**config.to_dict(), "init_from": str(card), "steps": 0})
    start = torch.load(train(files, tmp_path / "tune", config=tuned), weights_only=True)
    for name, value in model.generator.state_dict().items():  # type: ignore[union-attr]
        assert torch.equal(start["generator"][name], value), name
    # Exported with another embedding, the same weights are named, not copied.
    masked = TrainConfig.from_dict(
        {**tuned.to_dict(), "embed": {**config.embed.to_dict(), "spectral_mask": True}}
    )
    again = export(
        tmp_path / "tune" / "checkpoint.pt",
        tmp_path / "cards" / "m-masked.yaml",
        model_id="t2",
        config=masked,
        negatives=negatives,
    )
    assert sorted(p.name for p in again.parent.glob("*.pt")) == ["m.pt"]
    assert load_card(again).embed.spectral_mask and load_card(again).threshold > 0
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


@pytest.mark.slow  # trains
def test_staged_recipe_chains_weights_and_resumes(tmp_path: Path) -> None:
    from guardian.app import load_recipe, recipe_steps

    _data(tmp_path / "data")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "arch: {n_filters: 4, dimension: 8, lstm: 1}\n"
        "batch_size: 2\nsegment_s: 0.5\nsteps: 2\n"
        "augment_weights: {identity: 1.0}\n"
        "stages:\n"
        "  - name: base\n"
        "  - name: tune\n"
        "    steps: 0\n"
        "    augment_weights: {echo: 0.0}\n"
    )
    stages = load_recipe(recipe)
    assert [name for name, _ in stages] == ["1-base", "2-tune"]
    assert stages[1][1].augment_weights == {"identity": 1.0, "echo": 0.0}  # merged
    assert recipe_steps(recipe) == 2 and recipe_steps(recipe, 5) == 7
    seen: list[tuple[int, int]] = []
    last = _train_recipe(tmp_path, recipe, progress=lambda s: seen.append((s.step, s.steps)))
    assert last == tmp_path / "run" / "2-tune" / "checkpoint.pt"
    assert seen == [(1, 2), (2, 2)]
    first = torch.load(tmp_path / "run" / "1-base" / "checkpoint.pt", weights_only=True)
    tuned = torch.load(last, weights_only=True)
    for part in ("generator", "detector"):  # stage 2 (0 steps) starts from stage 1
        for name, value in first[part].items():
            assert torch.equal(tuned[part][name], value), name
    # A rerun skips the finished stages; --steps extends the last one.
    seen.clear()
    _train_recipe(tmp_path, recipe, steps=1, progress=lambda s: seen.append((s.step, s.steps)))
    assert seen == [(3, 3)]


def test_bad_recipe_is_a_usage_error(tmp_path: Path) -> None:
    from guardian.app import load_recipe, load_train_config
    from guardian.errors import UsageError

    bad = tmp_path / "bad.yaml"
    bad.write_text("stages:\n  - {augment_weights: {mp3_23k: 1.0}}\n")
    with pytest.raises(UsageError, match="mp3_23k"):
        load_recipe(bad)
    bad.write_text("- 1\n- 2\n")
    with pytest.raises(UsageError, match="not a valid training config"):
        load_recipe(bad)
    two = tmp_path / "two.yaml"
    two.write_text("stages: [{name: a}, {name: b}]\n")
    with pytest.raises(UsageError, match="2 stages"):
        load_train_config(two)


@pytest.mark.parametrize("sr", [16000, 22050])
def test_every_kind_of_nonspeech_fills_the_segment(sr: int) -> None:
    # Training and threshold calibration both draw from these kinds, the music-like
    # ones of guardian.corpus included (made at 48 kHz and resampled).
    rng = np.random.default_rng(0)
    n = int(1.3 * sr)
    for make in KINDS:
        x = make(rng, n, sr)
        assert x.shape == (n,) and np.isfinite(x).all() and np.abs(x).max() > 0
        # not silent at the end: the 48 kHz generators are asked for enough audio
        assert np.abs(x[-sr // 10 :]).max() > 0
    peaks = [float(np.abs(random_nonspeech(rng, n, sr)).max()) for _ in range(40)]
    assert min(peaks) >= 10 ** (-20 / 20) - 1e-6 and max(peaks) <= 10 ** (-3 / 20) + 1e-6


def test_on_lines_items_show_a_tone_where_the_speed_search_would_put_it(tmp_path: Path) -> None:
    # What the speed search shows the detector of music: a tone moved onto the lines.
    lines = (1600.0, 1650.0, 1700.0)
    data = TrainingAudio(_data(tmp_path / "data"), seed=3)
    n = int(1.5 * SAMPLE_RATE)

    def strength_at_one(x: np.ndarray) -> float:
        speeds, strength = speed_strength(x, lines)
        return float(strength[np.abs(speeds - 1).argmin()])

    moved = [strength_at_one(data.on_lines(n, lines)) for _ in range(12)]
    plain = [strength_at_one(data.nonspeech(n)) for _ in range(12)]
    assert np.median(moved) >= SPEED_MIN_STRENGTH > np.median(plain)
    batch = data.batch(4, n, 1.0, on_lines_prob=1.0, lines_hz=lines)
    assert batch.shape == (4, 1, n)
    assert np.median([strength_at_one(row) for row in batch[:, 0].numpy()]) >= SPEED_MIN_STRENGTH


@pytest.mark.slow  # trains
def test_detector_mode_trains_only_the_detector(tmp_path: Path) -> None:
    files = _data(tmp_path / "data")
    common = {"arch": ArchConfig(n_filters=4, dimension=8, lstm=1), "segment_s": 0.4}
    base = train(files, tmp_path / "base", config=TrainConfig(steps=1, batch_size=2, **common))
    tuned = train(
        files,
        tmp_path / "det",
        config=TrainConfig(mode="detector", init_from=str(base), steps=2, batch_size=4, **common),
    )
    before, after = (torch.load(p, weights_only=True) for p in (base, tuned))

    def same(part: str) -> bool:
        return all(torch.equal(before[part][k], after[part][k]) for k in before[part])

    assert same("generator") and not same("detector")


def test_unknown_modes_are_refused() -> None:
    with pytest.raises(ValueError, match="mode must be one of"):
        TrainConfig(mode="code")


def _silence_half(detector: torch.nn.Module, rng: np.random.Generator) -> None:
    """Silence a random half of every channel group but the detector's output: no weight
    or bias feeds those channels, so they stay exactly zero."""

    def convs(m: torch.nn.Module) -> list[torch.nn.Conv1d]:
        return [c for c in m.modules() if isinstance(c, torch.nn.Conv1d)]

    def silence(conv: torch.nn.Conv1d, channels: np.ndarray) -> None:
        conv.weight[channels] = 0
        conv.bias[channels] = 0

    def half(n: int) -> np.ndarray:
        return rng.permutation(n)[: n // 2]

    layers = list(detector.detector[0].model)  # type: ignore[index]
    stream = np.array([], dtype=int)
    with torch.no_grad():
        for layer in layers[:-1]:  # the last convolution makes the output: kept whole
            lstm = getattr(layer, "lstm", None)
            if isinstance(lstm, torch.nn.LSTM):
                width = lstm.hidden_size
                for _name, value in lstm.named_parameters():
                    for gate in range(4):
                        value[gate * width + stream] = 0
            elif hasattr(layer, "block"):
                *inner, last = convs(layer)
                for conv in inner:
                    silence(conv, half(conv.out_channels))
                silence(last, stream)
            else:
                for conv in convs(layer):
                    stream = half(conv.out_channels)
                    silence(conv, stream)


def test_a_narrowed_detector_keeps_the_channels_that_carry_the_signal() -> None:
    """A teacher with half of its channels silent computes nothing with them, so the
    student cut down to the active half must give exactly the teacher's output."""
    from guardian.watermark._model import build_detector, no_compile
    from guardian.watermark._train import narrowed

    torch.manual_seed(0)
    wide, half = (
        ArchConfig(n_filters=4, dimension=8, lstm=1),
        ArchConfig(n_filters=2, dimension=8, lstm=1),
    )
    teacher, student = build_detector(wide), build_detector(half)
    _silence_half(teacher, np.random.default_rng(1))
    x = torch.from_numpy(np.stack([speechlike(0.5, seed=s) for s in range(3)]))[:, None, :]
    with no_compile():
        student.load_state_dict(narrowed(teacher, student, x))
        with torch.no_grad():
            assert torch.allclose(student.detector(x), teacher.detector(x), atol=1e-5)
            # a student as wide as its teacher is the teacher, channel for channel
            same = build_detector(wide)
            same.load_state_dict(narrowed(teacher, same, x))
            assert all(
                torch.equal(a, b)
                for a, b in zip(same.state_dict().values(), teacher.state_dict().values())
            )


@pytest.mark.slow  # trains
def test_distill_mode_teaches_a_narrower_detector_and_exports_it(tmp_path: Path) -> None:
    files = _data(tmp_path / "data")
    common = {"arch": ArchConfig(n_filters=4, dimension=8, lstm=1), "segment_s": 0.4}
    base = train(files, tmp_path / "base", config=TrainConfig(steps=1, batch_size=2, **common))
    student_arch = ArchConfig(n_filters=2, dimension=8, lstm=1)
    config = TrainConfig(
        mode="distill",
        init_from=str(base),
        detector_arch=student_arch,
        steps=2,
        batch_size=2,
        **common,
    )
    ckpt = train(files, tmp_path / "student", config=config)
    before, after = (torch.load(p, weights_only=True) for p in (base, ckpt))
    assert all(torch.equal(before["generator"][k], v) for k, v in after["generator"].items())
    first = "detector.0.model.0.conv.conv.inner_conv.weight"
    assert before["detector"][first].shape[0] == 4 and after["detector"][first].shape[0] == 2
    log = [json.loads(line) for line in (tmp_path / "student" / "train_log.jsonl").open()]
    assert [row["step"] for row in log] == [1, 2] and all(0 <= row["agree"] <= 1 for row in log)
    assert all(torch.equal(before["detector"][k], v) for k, v in after["teacher"].items())
    # a distill run from a distill checkpoint goes on with the same student and teacher
    more = TrainConfig.from_dict({**config.to_dict(), "init_from": str(ckpt), "steps": 0})
    again = torch.load(train(files, tmp_path / "more", config=more), weights_only=True)
    for part in ("detector", "teacher", "generator"):
        assert all(torch.equal(after[part][k], v) for k, v in again[part].items()), part
    negatives = [Audio(speechlike(2.0, seed=s)[:, None], 16000) for s in (40, 41)]
    card = export(ckpt, tmp_path / "s.yaml", model_id="s", config=config, negatives=negatives)
    model = load_card(card)
    assert model.detector_arch == student_arch and model.arch == common["arch"]
    assert model.detector.state_dict()[first].shape[0] == 2
    # the exported card cannot seed a run that expects a full-width detector
    tuned = TrainConfig(mode="detector", init_from=str(card), steps=0, **common)  # type: ignore[arg-type]
    with pytest.raises(WatermarkModelError, match="architecture"):
        train(files, tmp_path / "tuned", config=tuned)
    with pytest.raises(ValueError, match="needs detector_arch"):
        TrainConfig(mode="distill", init_from=str(base))
    with pytest.raises(WatermarkModelError, match="needs init_from"):
        train(
            files,
            tmp_path / "orphan",
            config=TrainConfig(mode="distill", detector_arch=student_arch),
        )


@pytest.mark.slow  # trains
def test_a_staged_recipe_can_end_with_a_distilled_detector(tmp_path: Path) -> None:
    _data(tmp_path / "data")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "arch: {n_filters: 4, dimension: 8, lstm: 1}\n"
        "batch_size: 2\nsegment_s: 0.5\nsteps: 1\n"
        "stages:\n"
        "  - name: base\n"
        "  - name: distill\n"
        "    mode: distill\n"
        "    detector_arch: {n_filters: 2, dimension: 8, lstm: 1}\n"
    )
    last = _train_recipe(tmp_path, recipe)
    first = torch.load(tmp_path / "run" / "1-base" / "checkpoint.pt", weights_only=True)
    student = torch.load(last, weights_only=True)
    assert all(torch.equal(first["generator"][k], v) for k, v in student["generator"].items())
    conv = "detector.0.model.0.conv.conv.inner_conv.weight"
    assert first["detector"][conv].shape[0] == 4 and student["detector"][conv].shape[0] == 2
