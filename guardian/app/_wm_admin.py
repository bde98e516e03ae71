"""Use-cases: build training audio, train, export and inspect watermark models."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from guardian.app._context import Guardian, open_guardian
from guardian.audio import Audio, read_audio, resample, speechlike
from guardian.errors import UsageError
from guardian.watermark import Precision

if TYPE_CHECKING:  # training needs torch: imported by the use-cases that train
    from guardian.watermark._train import TrainConfig, TrainStatus

SEGMENT_S = 2.0


def make_corpus(
    out: Path,
    *,
    count: int,
    seed: int,
    converted: float = 0.0,
    engine_voices: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """``guardian watermark corpus``: synthesise training speech offline."""
    from guardian.corpus import write_speech_corpus

    if count < 1:
        raise UsageError("--count must be at least 1")
    if not 0.0 <= converted <= 1.0:
        raise UsageError("--converted must be a share between 0 and 1")
    if engine_voices < 0 or engine_voices > count:
        raise UsageError("--engine-voices must be between 0 and --count")
    if engine_voices:
        return _engine_corpus(out, count=count, voices=engine_voices, seed=seed, progress=progress)
    return write_speech_corpus(out, count=count, seed=seed, converted=converted, progress=progress)


def _engine_corpus(
    out: Path,
    *,
    count: int,
    voices: int,
    seed: int,
    progress: Callable[[int, int], None] | None,
) -> list[Path]:
    """What ``synthesize`` outputs before the watermark: the shipped demo voice enrolled and
    DP-trained ``voices`` times in a throwaway home (each training its own noise, so its
    own speaking rate and timbre), saying ``count`` generated sentences between them.

    The sentences follow ``seed``; the DP noise is drawn fresh, so two runs give the same
    words in other voices.
    """
    import random
    import tempfile

    import soundfile as sf

    from guardian.app.demo import trained_demo_adapter
    from guardian.config import Settings
    from guardian.corpus import sentence

    rng = random.Random(seed)  # noqa: S311 - which sentences, not a secret
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    with tempfile.TemporaryDirectory(prefix="guardian-wm-engine-") as tmp:
        g = open_guardian(Settings(home=Path(tmp) / "home", allow_synthetic_consent=True))
        for v in range(voices):
            adapter = trained_demo_adapter(g, Path(tmp), v, purpose="watermark-corpus")
            for _ in range(count * (v + 1) // voices - len(paths)):
                audio = adapter.speak(g.base_voice, sentence(rng, rng.choice([1, 2, 2])))
                path = out / f"engine-{seed}-{len(paths):05d}.wav"
                sf.write(path, audio.mono(), audio.sample_rate, subtype="PCM_16")
                paths.append(path)
                if progress is not None:
                    progress(len(paths), count)
    return paths


def load_train_config(path: Path) -> TrainConfig:
    """A single-stage config (a run directory's ``train_config.json``, or a recipe)."""
    stages = load_recipe(path)
    if len(stages) != 1:
        raise UsageError(f"{path}: a recipe of {len(stages)} stages, not one training config")
    return stages[0][1]


def load_recipe(path: Path) -> list[tuple[str, TrainConfig]]:
    """A training recipe: one config, or ``stages`` trained one after another.

    In a staged recipe the top-level keys are shared, each stage's keys override them,
    and every stage after the first starts from the previous stage's weights.
    """
    try:
        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise TypeError("expected a mapping")
        stages = data.pop("stages", None) or [{}]
        out: list[tuple[str, TrainConfig]] = []
        for i, stage in enumerate(stages, start=1):
            stage = dict(stage)
            name = str(stage.pop("name", f"stage{i}"))
            out.append((f"{i}-{name}" if len(stages) > 1 else "", _merged(data, stage)))
        return out
    except FileNotFoundError as e:
        raise UsageError(f"{path}: no such training config") from e
    except (yaml.YAMLError, TypeError, ValueError, AttributeError) as e:
        raise UsageError(f"{path}: not a valid training config ({e})") from e


def _merged(shared: dict[str, Any], stage: dict[str, Any]) -> TrainConfig:
    from guardian.watermark._train import TrainConfig

    merged = {**shared, **stage}
    for key in ("arch", "embed", "augment_weights"):  # nested: merge key by key
        merged[key] = {**(shared.get(key) or {}), **(stage.get(key) or {})}
    return TrainConfig.from_dict(merged)


def train_watermark(
    *,
    config_path: Path,
    data: list[Path],
    out: Path,
    device: str,
    steps: int | None,
    resume: bool,
    progress: Callable[[TrainStatus], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """``guardian watermark train``: resumable training; returns the checkpoint path.

    A staged recipe trains each stage in its own folder under ``out`` (``1-base`` …),
    each from the previous stage's weights; finished stages are skipped on a rerun.
    ``steps`` overrides the last stage's step count. ``progress`` counts steps over all
    stages.
    """
    import dataclasses

    import torch

    from guardian.watermark._train import iter_audio_files, train

    stages = load_recipe(config_path)
    if steps is not None:
        stages[-1][1].steps = steps
    if device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: no CUDA GPU is available on this machine")
    files = list(iter_audio_files(data))
    if not files:
        raise UsageError("no training audio found under " + ", ".join(map(str, data)))
    total = sum(config.steps for _, config in stages)
    done = 0
    ckpt = out / "checkpoint.pt"
    for i, (name, config) in enumerate(stages):
        if i > 0:
            config.init_from = str(ckpt)
        run = out / name if name else out
        ckpt = run / "checkpoint.pt"
        offset = done

        def counted(st: TrainStatus, offset: int = offset) -> None:
            if progress is not None:
                progress(dataclasses.replace(st, step=st.step + offset, steps=total))

        if not (resume and _finished(ckpt, config.steps)):
            train(
                files,
                run,
                config=config,
                device=device,
                resume=resume,
                progress=counted,
                should_stop=should_stop,
            )
        if not _finished(ckpt, config.steps):
            break  # stopped early: later stages wait for a rerun
        done += config.steps
    return ckpt


def recipe_steps(config_path: Path, steps: int | None = None) -> int:
    """Steps over all stages of a recipe (``steps`` replacing the last stage's)."""
    counts = [config.steps for _, config in load_recipe(config_path)]
    if steps is not None:
        counts[-1] = steps
    return sum(counts)


def _finished(checkpoint: Path, steps: int) -> bool:
    import torch

    if not checkpoint.exists():
        return False
    return int(torch.load(checkpoint, map_location="cpu", weights_only=True)["step"]) >= steps


def _negatives(dirs: list[Path], *, limit: int, seed: int) -> list[Audio]:
    """2 s unwatermarked segments: from files when given, else generated."""
    from guardian.watermark._synthetic import random_nonspeech
    from guardian.watermark._train import iter_audio_files

    out: list[Audio] = []
    for path in iter_audio_files(dirs):
        audio = read_audio(path)
        mono = resample(audio.mono(), audio.sample_rate, 16000)
        step = int(SEGMENT_S * 16000)
        for start in range(0, len(mono) - step + 1, step):
            out.append(Audio(mono[start : start + step, None], 16000))
        if len(out) >= limit:
            return out[:limit]
    rng = np.random.default_rng(seed)
    while len(out) < limit:
        n = int(SEGMENT_S * 16000)
        sig = (
            speechlike(SEGMENT_S, seed=int(rng.integers(1 << 30)))
            if len(out) % 2
            else random_nonspeech(rng, n, 16000)
        )
        out.append(Audio(sig[:, None], 16000))
    return out


def export_watermark(
    *, run_dir: Path, card: Path, model_id: str, negatives: list[Path], count: int
) -> Path:
    """``guardian watermark export``: pin, calibrate and publish a model card."""
    from guardian.watermark._export import export

    checkpoint = run_dir / "checkpoint.pt"
    if not checkpoint.exists():
        raise UsageError(f"{run_dir}: no checkpoint.pt (train first)")
    # Checked before the minutes of calibration; export() creates a missing folder.
    folder = next((p for p in (card.parent, *card.parent.parents) if p.exists()), None)
    if folder is not None and not folder.is_dir():
        raise UsageError(f"{card}: {folder} is not a folder")
    config = load_train_config(run_dir / "train_config.json")
    return export(
        checkpoint,
        card,
        model_id=model_id,
        config=config,
        negatives=_negatives(negatives, limit=count, seed=7),
    )


def export_watermark_onnx(card: Path, *, precision: Precision = Precision.FP32) -> Path:
    """``guardian watermark export --onnx``: rebuild the card's ONNX detector from its
    weights and pin it in the card."""
    from guardian.watermark import export_onnx

    if not card.is_file():
        raise UsageError(f"{card}: no such model card")
    return export_onnx(card, precision=precision)


def watermark_info(g: Guardian) -> dict[str, Any]:
    """``guardian watermark info``: which model is in use, with its pinned hash."""
    m = g.watermark
    return {
        "model_id": m.model_id,
        "source": m.source,
        "weights_sha256": m.weights_sha256,
        "threshold": m.threshold,
        "arch": m.arch.to_dict(),
        **({"detector_arch": m.detector_arch.to_dict()} if m.detector_arch else {}),
        "embed": m.embed.to_dict(),
        "can_embed": m.generator is not None,
        **m.extra,
    }
