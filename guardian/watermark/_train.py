"""Guardian's AudioSeal training recipe (CPU or GPU, resumable).

Follows the AudioSeal paper's ingredients, adapted to a small CPU budget:

- the generator's output is shaped to the speech envelope and scaled to an exact
  per-item SNR (``_signal.shape_watermark``), with the SNR ramped from easy to the
  target so that detection is learnt first, at a level it can find;
- perceptual losses: multi-scale log-mel distance and a time-frequency loudness
  penalty that keeps the watermark under the speech in every band;
- localization: each item is watermarked only on random segments (or not at all),
  and the detector is trained per sample against that mask, balanced 50/50;
- the watermark and the detector's view can be kept in one frequency band, and the
  detector input is shifted off the generator's frame grid on some steps;
- the payload can be trained alone first (a warm-up), with the generator's latent
  bounded so that the message embedding added to it keeps mattering;
- the watermarked audio passes through a random attack (``_augment``) before the
  detector, including real MP3/AAC/Opus round-trips with straight-through gradients.
"""

from __future__ import annotations

import copy
import json
import math
import os
import random
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from guardian.errors import WatermarkModelError
from guardian.watermark import _augment
from guardian.watermark._model import (
    SAMPLE_RATE,
    ArchConfig,
    AudioSealDetector,
    AudioSealWM,
    EmbedConfig,
    build_detector,
    build_generator,
    no_compile,
)
from guardian.watermark._signal import detector_input, shape_watermark

MODES = ("joint", "detector", "distill")
DISTILL_MSE_WEIGHT = 0.1
"""Weight of the squared logit difference beside the cross-entropy on the teacher's
presence (``distill``): it keeps the student's confidence where the teacher is sure."""
LOGIT_CLIP = 12.0
"""Presence logits are compared up to this size: past it both say the same."""


@dataclass
class TrainConfig:
    """Everything that determines a training run; saved next to the weights."""

    arch: ArchConfig = field(default_factory=ArchConfig)
    embed: EmbedConfig = field(default_factory=EmbedConfig)
    steps: int = 20000
    batch_size: int = 8
    segment_s: float = 1.0
    lr: float = 5e-4
    snr_start_db: float = 12.0
    snr_ramp_steps: int = 8000
    message_start_step: int = 1500
    message_ramp_steps: int = 2000
    message_weight: float = 1.0
    perceptual_weight: float = 1.0
    perceptual_ramp_steps: int = 4000
    unmarked_prob: float = 0.25
    partial_prob: float = 0.5
    nonspeech_prob: float = 0.15
    on_lines_prob: float = 0.0
    """Share of non-speech items played at the speed that moves their strongest tones
    onto the model's lines (``embed.speed_lines_hz``), as verify's speed search shows
    them to the detector: it must not take a tone on a line for the watermark."""
    misalign_prob: float = 0.0
    """Share of steps whose detector input is shifted off the generator's frame grid."""
    latent_rms_max: float | None = None
    """Penalise the generator's latent (its encoder output) above this RMS.

    The output is rescaled to an exact SNR, so nothing else bounds the latent; it grows
    (to an RMS over 100 within 2000 steps) until the message embedding that is added to
    it (RMS about 4) no longer changes the watermark, and the payload is never learnt.
    """
    latent_weight: float = 1.0
    message_warmup_steps: int = 0
    """First steps that train the payload alone: every item fully watermarked at the
    starting SNR, no attack, message loss only. Trained jointly from the start, the
    detection loss (learnt in a few hundred steps) teaches the generator to ignore the
    random message, and the payload stays at chance; ramps count from the warm-up's end.
    """
    mode: str = "joint"
    """What a run trains. ``joint``: generator and detector together (the recipe above).
    ``detector``: the detector alone, the generator frozen, on audio marked as embedding
    marks it (tone code included).
    ``distill``: a narrower detector (``detector_arch``) taught by ``init_from``'s
    detector to give its presence on watermarked, attacked and unmarked audio, the
    generator frozen. Detection speed scales with the detector's width.
    """
    detector_arch: ArchConfig | None = None
    """The detector's architecture where it is not ``arch`` (a ``distill`` run's student)."""
    augment_weights: dict[str, float] = field(default_factory=dict)
    """Overrides of the attack mix (``_augment.TRAINING_AUGMENTATIONS``), by name."""
    init_from: str | None = None
    """Start a fresh run from other weights, to fine-tune rather than train from scratch:
    a model card (a path, or a card name in the shipped weights folder), or a training
    checkpoint (``.pt``)."""
    checkpoint_every: int = 250
    seed: int = 1234

    def __post_init__(self) -> None:
        _augment.weights(self.augment_weights)  # refuse unknown names early
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.mode == "distill" and self.detector_arch is None:
            raise ValueError("a distill run needs detector_arch, the student's architecture")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["arch"] = self.arch.to_dict()
        if self.detector_arch is not None:
            d["detector_arch"] = self.detector_arch.to_dict()
        return d

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = dict(data)
        arch = ArchConfig.from_dict(data.pop("arch", {}))
        embed = EmbedConfig(**data.pop("embed", {}))
        student = data.pop("detector_arch", None)
        detector_arch = ArchConfig.from_dict(student) if student else None
        return cls(arch=arch, embed=embed, detector_arch=detector_arch, **data)


@dataclass(frozen=True)
class TrainStatus:
    step: int
    steps: int
    losses: dict[str, float]
    snr_db: float
    seconds_per_step: float


# --- data ------------------------------------------------------------------------------


class TrainingAudio:
    """Speech files resampled to 16 kHz in memory, plus synthetic non-speech."""

    def __init__(self, files: list[Path], *, seed: int) -> None:
        from guardian.audio import read_audio, resample

        if not files:
            raise ValueError("no training audio given")
        self._clips: list[np.ndarray] = []
        for path in files:
            audio = read_audio(path, max_seconds=120)
            mono = resample(audio.mono(), audio.sample_rate, SAMPLE_RATE)
            if len(mono) >= SAMPLE_RATE:
                self._clips.append(mono.astype(np.float32))
        if not self._clips:
            raise ValueError("no training clip is at least 1 s long")
        self._rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self._clips)

    def crop(self, n: int) -> np.ndarray:
        for _ in range(20):
            clip = self._clips[int(self._rng.integers(len(self._clips)))]
            if len(clip) < n:
                continue
            start = int(self._rng.integers(0, len(clip) - n + 1))
            seg = clip[start : start + n]
            if float(np.sqrt(np.mean(seg**2))) > 1e-3:
                return seg * float(10 ** (self._rng.uniform(-12, 6) / 20))
        return seg

    def nonspeech(self, n: int) -> np.ndarray:
        """Music-like sounds, noise or sweeps: the detector must not fire on them."""
        from guardian.watermark._synthetic import random_nonspeech

        return random_nonspeech(self._rng, n, SAMPLE_RATE)

    def on_lines(self, n: int, lines_hz: tuple[float, ...]) -> np.ndarray:
        """Non-speech played at the speed change the speed search would undo first: a
        tone of it on one of ``lines_hz``, like the looks that search takes."""
        from guardian.watermark._scoring import slowed, speed_candidates

        for _ in range(10):
            sound = self.nonspeech(int(n * 1.35))
            found = speed_candidates(sound, lines_hz)
            if found:
                return slowed(sound, found[0])[:n]
        return self.nonspeech(n)

    def batch(
        self,
        size: int,
        n: int,
        nonspeech_prob: float,
        *,
        on_lines_prob: float = 0.0,
        lines_hz: tuple[float, ...] | None = None,
    ) -> torch.Tensor:
        def item() -> np.ndarray:
            if self._rng.random() >= nonspeech_prob:
                return self.crop(n)
            if lines_hz and self._rng.random() < on_lines_prob:
                return self.on_lines(n, lines_hz)
            return self.nonspeech(n)

        items = [item() for _ in range(size)]
        x = np.stack(items)[:, None, :]
        peak = np.abs(x).max(axis=-1, keepdims=True).clip(1e-6, None)
        return torch.from_numpy(np.where(peak > 0.99, x * 0.99 / peak, x).astype(np.float32))


# --- losses ---------------------------------------------------------------------------


def _mel_fb(n_fft: int, n_mels: int) -> torch.Tensor:
    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        return 2595 * np.log10(1 + f / 700)

    mels = np.linspace(hz_to_mel(np.array(0.0)), hz_to_mel(np.array(SAMPLE_RATE / 2)), n_mels + 2)
    hz = 700 * (10 ** (mels / 2595) - 1)
    bins = np.fft.rfftfreq(n_fft, 1 / SAMPLE_RATE)
    fb = np.zeros((n_mels, len(bins)), dtype=np.float32)
    for i in range(n_mels):
        lo, c, hi = hz[i], hz[i + 1], hz[i + 2]
        fb[i] = np.clip(
            np.minimum((bins - lo) / (c - lo + 1e-9), (hi - bins) / (hi - c + 1e-9)), 0, None
        )
    return torch.from_numpy(fb)


class PerceptualLoss(torch.nn.Module):
    """Multi-scale log-mel distance plus a per-band loudness penalty on the watermark."""

    def __init__(self, scales: tuple[int, ...] = (256, 512, 1024, 2048), n_mels: int = 64) -> None:
        super().__init__()
        self.scales = scales
        for s in scales:
            self.register_buffer(f"fb{s}", _mel_fb(s, min(n_mels, s // 8)))
            self.register_buffer(f"win{s}", torch.hann_window(s))

    def _mel(self, x: torch.Tensor, s: int) -> torch.Tensor:
        spec = (
            torch.stft(
                x.squeeze(1),
                s,
                hop_length=s // 4,
                window=getattr(self, f"win{s}"),
                return_complex=True,
            )
            .abs()
            .pow(2)
        )
        return torch.einsum("mf,bft->bmt", getattr(self, f"fb{s}"), spec)

    def forward(self, x: torch.Tensor, watermarked: torch.Tensor) -> dict[str, torch.Tensor]:
        mel = torch.zeros((), device=x.device)
        loud = torch.zeros((), device=x.device)
        wm = watermarked - x
        for s in self.scales:
            mx, mw, mwm = self._mel(x, s), self._mel(watermarked, s), self._mel(wm, s)
            mel = mel + (torch.log(mw + 1e-5) - torch.log(mx + 1e-5)).abs().mean()
            # Penalise bands where the watermark comes within 15 dB of the speech.
            ratio_db = 10 * torch.log10((mwm + 1e-9) / (mx + 1e-7))
            loud = loud + F.softplus(ratio_db + 15.0).mean() / 10
        return {"mel": mel / len(self.scales), "loudness": loud / len(self.scales)}


# --- the loop ---------------------------------------------------------------------------


def _ramp(step: int, start: int, length: int) -> float:
    if step < start:
        return 0.0
    return min(1.0, (step - start) / max(1, length))


def _masks(b: int, n: int, cfg: TrainConfig, rng: random.Random) -> torch.Tensor:
    """Per-sample labels: 1 where the watermark is kept, 0 where it is removed."""
    m = torch.ones(b, 1, n)
    for i in range(b):
        u = rng.random()
        if u < cfg.unmarked_prob:
            m[i] = 0
        elif u < cfg.unmarked_prob + cfg.partial_prob:
            for _ in range(rng.randint(1, 3)):
                length = rng.randint(n // 10, n // 2)
                start = rng.randint(0, n - length)
                m[i, :, start : start + length] = 1 - m[i, :, start : start + length]
    return m


def train(
    files: list[Path],
    out_dir: Path,
    *,
    config: TrainConfig,
    device: str = "cpu",
    resume: bool = True,
    progress: Callable[[TrainStatus], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> Path:
    """Train (or continue training) and return the path of the newest checkpoint."""
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    gen = build_generator(config.arch).to(device)
    det = build_detector(config.detector_arch or config.arch).to(device)
    teacher = None
    if config.mode == "distill":
        if not config.init_from:  # a staged recipe sets it to the previous stage
            raise WatermarkModelError("a distill run needs init_from: its teacher's weights")
        gen_state, teacher_state, student_state = _distill_start(config)
        teacher = build_detector(config.arch).to(device)
        teacher.load_state_dict(teacher_state)
        teacher.eval().requires_grad_(False)
    if config.mode != "joint":
        gen.requires_grad_(False)
    opt_g = torch.optim.Adam(
        [p for p in gen.parameters() if p.requires_grad] or [torch.zeros(1)],
        lr=config.lr,
        betas=(0.5, 0.9),
    )
    # the joint recipe's betas suit two networks that chase each other; a student
    # follows a fixed teacher
    betas = (0.9, 0.999) if teacher is not None else (0.5, 0.9)
    opt_d = torch.optim.Adam(det.parameters(), lr=config.lr, betas=betas)
    perceptual = PerceptualLoss().to(device)
    ckpt = out_dir / "checkpoint.pt"
    step = 0
    if resume and ckpt.exists():
        state = torch.load(ckpt, map_location=device, weights_only=True)
        gen.load_state_dict(state["generator"])
        det.load_state_dict(state["detector"])
        opt_g.load_state_dict(state["opt_g"])
        opt_d.load_state_dict(state["opt_d"])
        step = int(state["step"])
        rng.seed(config.seed + step)
    elif teacher is not None:
        gen.load_state_dict(gen_state)
        if student_state is not None:
            det.load_state_dict(student_state)
    elif config.init_from:
        gen_state, det_state = _init_weights(config)
        gen.load_state_dict(gen_state)
        det.load_state_dict(det_state)
    (out_dir / "train_config.json").write_text(json.dumps(config.to_dict(), indent=2))
    data = TrainingAudio(files, seed=config.seed + step)
    if teacher is not None and step == 0 and student_state is None:
        with no_compile():
            det.load_state_dict(narrowed(teacher, det, _seen_by_teacher(gen, data, config)))
    attack_mix = _augment.weights(config.augment_weights)
    latent: dict[str, torch.Tensor] = {}
    gen.encoder.register_forward_hook(lambda _m, _i, out: latent.__setitem__("h", out))
    n = int(config.segment_s * SAMPLE_RATE)
    log_path = out_dir / "train_log.jsonl"
    t_last = time.perf_counter()
    with no_compile():
        while step < config.steps:
            if should_stop is not None and should_stop():
                break
            x = data.batch(
                config.batch_size,
                n,
                config.nonspeech_prob,
                on_lines_prob=config.on_lines_prob,
                lines_hz=config.embed.speed_lines_hz,
            ).to(device)
            msg = torch.randint(0, 2, (config.batch_size, config.arch.nbits), device=device)
            if teacher is not None:
                snr = config.embed.snr_db
                aug_name, losses = _distill_step(
                    gen, teacher, det, opt_d, x, msg, rng, attack_mix, config
                )
            else:
                aug_name, snr, losses = _joint_step(
                    gen,
                    det,
                    opt_g,
                    opt_d,
                    perceptual,
                    x,
                    msg,
                    latent,
                    step,
                    rng,
                    attack_mix,
                    config,
                )
            step += 1
            now = time.perf_counter()
            status = TrainStatus(
                step=step,
                steps=config.steps,
                snr_db=snr,
                seconds_per_step=now - t_last,
                losses=losses,
            )
            t_last = now
            if progress is not None:
                progress(status)
            with open(log_path, "a") as f:
                f.write(json.dumps({"step": step, "aug": aug_name, "snr": snr, **losses}) + "\n")
            if step % config.checkpoint_every == 0 or step == config.steps:
                _save(ckpt, gen, det, opt_g, opt_d, step, teacher)
    _save(ckpt, gen, det, opt_g, opt_d, step, teacher)
    return ckpt


def _joint_step(
    gen: AudioSealWM,
    det: AudioSealDetector,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    perceptual: PerceptualLoss,
    x: torch.Tensor,
    msg: torch.Tensor,
    latent: dict[str, torch.Tensor],
    step: int,
    rng: random.Random,
    attack_mix: dict[str, float],
    config: TrainConfig,
) -> tuple[str, float, dict[str, float]]:
    """One step of the AudioSeal recipe (``joint``), or of the detector alone."""
    device, (b, _, n) = x.device, x.shape
    train_gen = config.mode == "joint"
    warm = step < config.message_warmup_steps
    joint = max(0, step - config.message_warmup_steps)
    snr = config.snr_start_db + (config.embed.snr_db - config.snr_start_db) * _ramp(
        joint, 0, config.snr_ramp_steps
    )
    if train_gen:
        wm = shape_watermark(gen.get_watermark(x, message=msg), x, config.embed, snr_db=snr)
    else:  # the generator is frozen: mark as embedding marks, tone code included
        from guardian.watermark._detect import watermark_of

        with torch.no_grad():
            wm = watermark_of(gen, x, msg, config.embed)
    labels = (torch.ones(b, 1, n) if warm else _masks(b, n, config, rng)).to(device)
    marked = x + wm * labels
    aug_name, aug = ("warmup", _augment.identity()) if warm else _augment.choose(rng, attack_mix)
    attacked, att_labels = aug(marked, labels, rng)
    if rng.random() < config.misalign_prob:
        attacked, att_labels = _augment.misalign(
            attacked, att_labels, rng, max_shift=math.prod(config.arch.ratios)
        )
    out = det.detector(detector_input(attacked, config.embed))
    det_logits = out[:, :2, :]
    target = att_labels[:, 0, :].round().long()
    loss_det = F.cross_entropy(det_logits, target)
    pos = att_labels[:, 0, :]
    has_pos = pos.sum(dim=-1) > 0
    bits = (out[:, 2:, :] * pos[:, None, :]).sum(-1) / pos.sum(-1, keepdim=True).clamp_min(1)
    loss_msg = (
        F.binary_cross_entropy_with_logits(bits[has_pos], msg[has_pos].float())
        if bool(has_pos.any())
        else torch.zeros((), device=device)
    )
    w_msg = config.message_weight * _ramp(
        joint, config.message_start_step, config.message_ramp_steps
    )
    zero = torch.zeros((), device=device)
    perc = perceptual(x, x + wm) if train_gen else {"mel": zero, "loudness": zero}
    w_perc = config.perceptual_weight * _ramp(joint, 0, config.perceptual_ramp_steps)
    latent_rms = latent["h"].pow(2).mean().sqrt()
    loss_latent = (
        F.relu(latent_rms - config.latent_rms_max)
        if config.latent_rms_max is not None and train_gen
        else zero
    )
    if warm:
        loss = loss_msg + config.latent_weight * loss_latent
    else:
        loss = (
            loss_det
            + w_msg * loss_msg
            + w_perc * (perc["mel"] + perc["loudness"])
            + config.latent_weight * loss_latent
        )
    opt_g.zero_grad(set_to_none=True)
    opt_d.zero_grad(set_to_none=True)
    torch.autograd.backward(loss)
    if train_gen:
        torch.nn.utils.clip_grad_norm_(gen.parameters(), 5.0)
        opt_g.step()
    torch.nn.utils.clip_grad_norm_(det.parameters(), 5.0)
    opt_d.step()
    with torch.no_grad():
        acc = ((out[:, 1, :] > out[:, 0, :]).long() == target).float().mean().item()
        bit_acc = (
            ((bits[has_pos] > 0).long() == msg[has_pos]).float().mean().item()
            if bool(has_pos.any())
            else float("nan")
        )
    return (
        aug_name,
        snr,
        {
            "total": loss.item(),
            "det": loss_det.item(),
            "msg": loss_msg.item(),
            "mel": perc["mel"].item(),
            "loud": perc["loudness"].item(),
            "latent_rms": latent_rms.item(),
            "det_acc": acc,
            "bit_acc": bit_acc,
        },
    )


def _presence_logit(out: torch.Tensor) -> torch.Tensor:
    """Presence as one logit per sample (softmax over two is the sigmoid of this)."""
    return out[:, 1, :] - out[:, 0, :]


def _distill_step(
    gen: AudioSealWM,
    teacher: AudioSealDetector,
    det: AudioSealDetector,
    opt_d: torch.optim.Optimizer,
    x: torch.Tensor,
    msg: torch.Tensor,
    rng: random.Random,
    attack_mix: dict[str, float],
    config: TrainConfig,
) -> tuple[str, dict[str, float]]:
    """One step of ``distill``: the audio is marked as embedding marks it (tone code
    included), on random segments or not at all, attacked, and the student learns the
    teacher's presence on it sample by sample."""
    from guardian.watermark._detect import watermark_of

    b, _, n = x.shape
    with torch.no_grad():
        mark = watermark_of(gen, x, msg, config.embed)
        labels = _masks(b, n, config, rng).to(x.device)
        aug_name, aug = _augment.choose(rng, attack_mix)
        attacked, att_labels = aug(x + mark * labels, labels, rng)
        if rng.random() < config.misalign_prob:
            attacked, att_labels = _augment.misalign(
                attacked, att_labels, rng, max_shift=math.prod(config.arch.ratios)
            )
        view = detector_input(attacked, config.embed)
        target = _presence_logit(teacher.detector(view))
    got = _presence_logit(det.detector(view))
    loss_ce = F.binary_cross_entropy_with_logits(got, torch.sigmoid(target))
    loss_mse = F.mse_loss(got.clamp(-LOGIT_CLIP, LOGIT_CLIP), target.clamp(-LOGIT_CLIP, LOGIT_CLIP))
    loss = loss_ce + DISTILL_MSE_WEIGHT * loss_mse
    opt_d.zero_grad(set_to_none=True)
    torch.autograd.backward(loss)
    torch.nn.utils.clip_grad_norm_(det.parameters(), 5.0)
    opt_d.step()
    with torch.no_grad():
        truth = att_labels[:, 0, :].round()
        agree = ((got > 0) == (target > 0)).float().mean().item()
        acc = ((got > 0).float() == truth).float().mean().item()
    return aug_name, {
        "total": loss.item(),
        "det": loss_ce.item(),
        "logit_mse": loss_mse.item(),
        "agree": agree,
        "det_acc": acc,
    }


def _seen_by_teacher(gen: AudioSealWM, data: TrainingAudio, config: TrainConfig) -> torch.Tensor:
    """Watermarked training audio in the detector's view: what a student's channels are
    chosen on (:func:`narrowed`)."""
    from guardian.watermark._detect import watermark_of

    n = int(config.segment_s * SAMPLE_RATE)
    device = next(gen.parameters()).device
    x = data.batch(4 * config.batch_size, n, config.nonspeech_prob).to(device)
    msg = torch.randint(0, 2, (len(x), config.arch.nbits), device=device)
    with torch.no_grad():
        return detector_input(x + watermark_of(gen, x, msg, config.embed), config.embed)


def _strongest(rms: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (ascending) of the ``k`` channels with the largest RMS."""
    return torch.sort(torch.argsort(rms, descending=True)[:k]).values


def narrowed(
    teacher: AudioSealDetector, student: AudioSealDetector, x: torch.Tensor
) -> dict[str, torch.Tensor]:
    """A state dict for ``student`` (a narrower SEANet detector of the same depth) cut
    from ``teacher``: at each width, the teacher's channels most active on ``x`` (B, 1, T,
    the detector's view), with every weight between kept channels copied. A start near
    the teacher, from which distillation has less to learn than from random weights.

    The residual blocks add to their input, and the LSTM to its input, so the channels
    kept where a convolution widens the signal are kept through its block and the LSTM.
    """
    rms: dict[torch.nn.Module, torch.Tensor] = {}

    def record(wrapper: torch.nn.Module) -> Callable[..., None]:
        conv = getattr(wrapper, "inner_conv")  # noqa: B009
        return lambda _m, _i, out: rms.__setitem__(conv, out.detach().pow(2).mean(dim=(0, 2)))

    # audioseal's wrappers call their convolution's forward directly, past its hooks
    hooks = [
        m.register_forward_hook(record(m))
        for m in teacher.modules()
        if isinstance(getattr(m, "inner_conv", None), torch.nn.Conv1d)
    ]
    try:
        with torch.no_grad():
            teacher.detector(x)
    finally:
        for h in hooks:
            h.remove()
    student = copy.deepcopy(student)

    def inner(m: torch.nn.Module) -> list[torch.nn.Conv1d]:
        return [c for c in m.modules() if isinstance(c, torch.nn.Conv1d)]

    def cut(t: torch.nn.Conv1d, s: torch.nn.Conv1d, out: torch.Tensor, inp: torch.Tensor) -> None:
        s.weight.copy_(t.weight[out][:, inp])
        if s.bias is not None and t.bias is not None:
            s.bias.copy_(t.bias[out])

    t_enc: Any = teacher.detector[0]
    s_enc: Any = student.detector[0]
    stream = torch.arange(1)  # the audio's one channel
    with torch.no_grad():
        for t_layer, s_layer in zip(t_enc.model, s_enc.model, strict=True):
            lstm = getattr(t_layer, "lstm", None)
            if isinstance(lstm, torch.nn.LSTM):
                width = lstm.hidden_size
                rows = torch.cat([gate * width + stream for gate in range(4)])
                for name, value in s_layer.lstm.named_parameters():
                    source = getattr(lstm, name)[rows]
                    value.copy_(source[:, stream] if source.dim() == 2 else source)
            elif hasattr(t_layer, "block"):  # residual: back to the stream's channels
                pairs = list(zip(inner(t_layer), inner(s_layer), strict=True))
                inp = stream
                for i, (t, s) in enumerate(pairs):
                    out = stream if i == len(pairs) - 1 else _strongest(rms[t], s.out_channels)
                    cut(t, s, out, inp)
                    inp = out
            else:
                for t, s in zip(inner(t_layer), inner(s_layer), strict=True):
                    out = _strongest(rms[t], s.out_channels)
                    cut(t, s, out, stream)
                    stream = out
        rev_t, rev_s = t_enc.reverse_convolution, s_enc.reverse_convolution
        rev_s.weight.copy_(rev_t.weight[stream])
        rev_s.bias.copy_(rev_t.bias)
        student.detector[1].load_state_dict(teacher.detector[1].state_dict())
    return student.state_dict()


def _init_weights(config: TrainConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """The weights a fine-tuning run starts from: a training checkpoint (``.pt``, the
    previous stage of a staged recipe), or a model card (a path, or the name of a card
    in the shipped weights folder) of the run's architecture."""
    from guardian.watermark._config import WEIGHTS_DIR
    from guardian.watermark._loader import load_model

    spec = str(config.init_from)
    if spec.endswith(".pt"):
        state = torch.load(spec, map_location="cpu", weights_only=True)
        return state["generator"], state["detector"]
    shipped = WEIGHTS_DIR / f"{spec}.yaml"
    model = load_model(str(shipped) if not Path(spec).exists() and shipped.exists() else spec)
    # a distill run's teacher is the generator's own partner, of the same width
    detector_arch = None if config.mode == "distill" else config.detector_arch
    if model.generator is None or (model.arch, model.detector_arch) != (
        config.arch,
        detector_arch,
    ):
        raise WatermarkModelError(
            f"init_from {spec!r}: needs a generator and detector with the run's architecture "
            f"({config.arch.to_dict()}), got {model.arch.to_dict()}"
        )
    return model.generator.state_dict(), model.detector.state_dict()


def _distill_start(config: TrainConfig) -> tuple[Any, Any, Any | None]:
    """The generator, teacher and student states a ``distill`` run starts from. After a
    distill stage (its checkpoint holds a teacher) the student goes on with the same
    teacher; from any other weights, those are the teacher, and the student (None here)
    is cut from it by :func:`narrowed`."""
    spec = str(config.init_from)
    if spec.endswith(".pt"):
        state = torch.load(spec, map_location="cpu", weights_only=True)
        if "teacher" in state:
            return state["generator"], state["teacher"], state["detector"]
    gen_state, det_state = _init_weights(config)
    return gen_state, det_state, None


def _save(
    path: Path,
    gen: torch.nn.Module,
    det: torch.nn.Module,
    opt_g: torch.optim.Optimizer,
    opt_d: torch.optim.Optimizer,
    step: int,
    teacher: torch.nn.Module | None = None,
) -> None:
    """Atomic: a crash mid-save leaves the previous checkpoint intact. A distill run's
    checkpoint carries its teacher, for a distill stage that goes on from it."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    state = {
        "generator": gen.state_dict(),
        "detector": det.state_dict(),
        "opt_g": opt_g.state_dict(),
        "opt_d": opt_d.state_dict(),
        "step": step,
    }
    if teacher is not None:
        state["teacher"] = teacher.state_dict()
    torch.save(state, tmp)
    os.replace(tmp, path)


def iter_audio_files(roots: list[Path]) -> Iterator[Path]:
    for root in roots:
        if root.is_file():
            yield root
            continue
        for p in sorted(root.rglob("*")):
            if p.suffix.lower() in {".wav", ".flac", ".mp3", ".ogg"}:
                yield p


__all__ = [
    "TrainConfig",
    "TrainStatus",
    "TrainingAudio",
    "iter_audio_files",
    "narrowed",
    "train",
]
