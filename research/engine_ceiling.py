"""Where the converter's SECS is lost: oracle features against the adapters, no DP.

    .venv/bin/python benchmarks/engine_ceiling.py [--targets slt espeak_rp_f2 ...]

For each benchmark target, the 20 held-out sentences are resynthesised from the base
voice's WORLD frames with one or more features replaced by the target's own (an
*oracle*: the target saying the same sentence, time-aligned onto the base voice by the
same DTW that training uses), and with the frame-wise converters the engine could learn
from the 100 enrollment utterances without DP:

* the shipped linear adapter at full size (the "no DP" row of engine.md);
* the same with an offset per phonetic class (soft classes: k-means on the base voice's
  public frames), a piecewise-linear map;
* a two-layer MLP from the base frame's cepstrum to the target's, with the linear
  adapter's variance restoration.

No DP anywhere: this bounds what frame-wise conversion of the base voice can reach
before privacy costs anything. Writes docs/benchmarks/engine_ceiling.{json,md}.
Speech and its analysis come from the caches of benchmarks/engine.py.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from engine import (
    DOCS,
    ENROLL,
    HELD_OUT,
    TARGETS,
    centroid,
    corpus,
    frames,
    log,
    secs_of,
    secs_table,
)

from guardian.engine import load_converter
from guardian.engine._adapter import Prior, SpeakerAdapter, cepstra
from guardian.engine._align import dtw_path, speech_span
from guardian.engine._convert import (
    bounded_envelope,
    convert_envelope,
    convert_f0,
    convert_frames,
)
from guardian.engine._data import example, pad
from guardian.engine._pretrain import fit_nonprivate
from guardian.engine._world import N_MEL, Frames, synthesise

CLASSES = 32
"""Phonetic classes of the piecewise-linear converter."""
CLASS_DIMS = 16
"""Whitened principal components the classes are clustered on."""
MLP_HIDDEN = 256
SEED = 0

ROWS = [
    ("real", "real target speech"),
    ("world_resynthesis", "the target's own WORLD frames, resynthesised (vocoder ceiling)"),
    ("oracle_envelope_ap_f0", "oracle envelope, aperiodicity and F0 contour, base timing"),
    ("oracle_envelope_ap", "oracle envelope and aperiodicity, adapter F0"),
    ("oracle_envelope", "oracle envelope, adapter F0, base aperiodicity"),
    ("linear_oracle_f0", "linear adapter, oracle F0 contour"),
    ("linear_oracle_ap", "linear adapter, oracle aperiodicity"),
    ("class_offsets", f"linear adapter + offsets per class ({CLASSES} classes)"),
    ("linear", "linear adapter, full size (engine.md's no-DP row)"),
    ("mlp", f"MLP ({MLP_HIDDEN} x 2 hidden) + variance restoration"),
]


def aligned_target(base: Frames, target: Frames) -> np.ndarray:
    """For each base-voice frame, the index of the target frame saying the same thing."""
    s0, s1 = speech_span(base.speech)
    t0, t1 = speech_span(target.speech)
    index = np.empty(base.n, dtype=np.int64)
    index[:s0], index[s1:] = t0, t1 - 1
    index[s0:s1] = dtw_path(base.env[s0:s1], target.env[t0:t1]) + t0
    return index


# --- piecewise-linear: an offset per soft phonetic class -------------------------------


def kmeans(x: np.ndarray, k: int, rng: np.random.Generator, iters: int = 30) -> np.ndarray:
    centres = x[rng.choice(len(x), k, replace=False)]
    for _ in range(iters):
        nearest = ((x[:, None] - centres[None]) ** 2).sum(-1).argmin(1)
        centres = np.stack(
            [x[nearest == j].mean(0) if (nearest == j).any() else centres[j] for j in range(k)]
        )
    return centres.astype(np.float32)


def class_posteriors(z: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """(..., K) soft class memberships of frames' whitened components."""
    d2 = ((z[..., None, : centres.shape[1]] - centres) ** 2).sum(-1)
    logits = -(d2 - d2.min(-1, keepdims=True))
    e = np.exp(logits)
    return np.asarray(e / e.sum(-1, keepdims=True), dtype=np.float32)


class ClassOffsets(torch.nn.Module):
    """The linear adapter's cepstral change plus a learned offset per soft class."""

    def __init__(self, linear: SpeakerAdapter, classes: int) -> None:
        super().__init__()
        self.linear = linear
        self.offsets = torch.nn.Parameter(torch.zeros(classes, linear.prior.order))

    def change(self, z: torch.Tensor, post: torch.Tensor) -> torch.Tensor:
        g = self.linear.groups()
        return z @ g["map"].T + g["offset"] + post @ self.offsets


def fit_class_offsets(
    packed: np.ndarray, posts: np.ndarray, prior: Prior, steps: int = 400
) -> ClassOffsets:
    """Fit map, offset and class offsets jointly on the spectral loss (Adam, no DP)."""
    model = ClassOffsets(fit_nonprivate(packed, prior, steps=300), posts.shape[-1])
    p, q = prior.p, prior.order
    data, post = torch.from_numpy(packed), torch.from_numpy(posts)
    z, src = data[..., :p], data[..., p : p + N_MEL]
    tgt, mask = data[..., p + N_MEL : p + 2 * N_MEL], data[..., p + 2 * N_MEL]
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    for _ in range(steps):
        opt.zero_grad()
        err = ((src[..., 1 : q + 1] + model.change(z, post) - tgt[..., 1 : q + 1]) ** 2).sum(-1)
        ((err * mask).sum() / mask.sum()).backward()
        opt.step()
    return model


def class_envelope(model: ClassOffsets, base: Frames, centres: np.ndarray) -> np.ndarray:
    lin, q = model.linear, model.linear.prior.order
    cep = cepstra(base.env)
    z = lin.prior.features(cep)
    with torch.no_grad():
        change = model.change(torch.from_numpy(z), torch.from_numpy(class_posteriors(z, centres)))
        c = torch.from_numpy(cep)
        conv = torch.cat([c[:, :1], c[:, 1 : q + 1] + change, c[:, q + 1 :]], -1)
    return bounded_envelope(lin, conv, base.speech)


# --- nonlinear: an MLP on the aligned frame pairs --------------------------------------


def fit_mlp(packed: np.ndarray, prior: Prior, steps: int = 3000) -> torch.nn.Module:
    p = prior.p
    rows = packed[..., p + 2 * N_MEL] > 0
    x = torch.from_numpy(packed[..., p : p + N_MEL][rows])
    y = torch.from_numpy(packed[..., p + N_MEL : p + 2 * N_MEL][rows])
    mean, sd = x.mean(0), x.std(0) + 1e-3
    net = torch.nn.Sequential(
        torch.nn.Linear(N_MEL, MLP_HIDDEN),
        torch.nn.GELU(),
        torch.nn.Linear(MLP_HIDDEN, MLP_HIDDEN),
        torch.nn.GELU(),
        torch.nn.Linear(MLP_HIDDEN, N_MEL - 1),
    )
    model = torch.nn.Sequential(_Standardise(mean, sd), net)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    gen = torch.Generator().manual_seed(SEED)
    for _ in range(steps):
        idx = torch.randint(0, len(x), (512,), generator=gen)
        loss = ((x[idx, 1:] + model(x[idx]) - y[idx, 1:]) ** 2).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model


class _Standardise(torch.nn.Module):
    def __init__(self, mean: torch.Tensor, sd: torch.Tensor) -> None:
        super().__init__()
        self.mean, self.sd = mean, sd

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.sd


def mlp_envelope(model: torch.nn.Module, linear: SpeakerAdapter, base: Frames) -> np.ndarray:
    c = torch.from_numpy(cepstra(base.env))
    with torch.no_grad():
        conv = torch.cat([c[:, :1], c[:, 1:] + model(c)], -1)
    return bounded_envelope(linear, conv, base.speech)


# --- the measurement -----------------------------------------------------------------


def evaluate(name: str, joe: list[Frames], centres: np.ndarray) -> dict[str, float]:
    target, real = frames(name), corpus(name)
    cent = centroid(real)
    prior = load_converter().prior  # full size: every component and coefficient
    packed = pad([example(target[i], joe[i], prior) for i in ENROLL])
    linear = fit_nonprivate(packed, prior, steps=300)
    posts = class_posteriors(packed[..., : prior.p], centres)
    classes = fit_class_offsets(packed, posts, prior)
    mlp = fit_mlp(packed, prior)
    clips: dict[str, list[np.ndarray]] = {key: [] for key, _ in ROWS}
    for i in HELD_OUT:
        base, tgt = joe[i], target[i]
        m = aligned_target(base, tgt)
        f0, env = convert_f0(linear, base.f0), convert_envelope(linear, base)
        clips["real"].append(real[i])
        clips["world_resynthesis"].append(synthesise(tgt.f0, tgt.env, tgt.ap))
        clips["oracle_envelope_ap_f0"].append(synthesise(tgt.f0[m], tgt.env[m], tgt.ap[m]))
        clips["oracle_envelope_ap"].append(synthesise(f0, tgt.env[m], tgt.ap[m]))
        clips["oracle_envelope"].append(synthesise(f0, tgt.env[m], base.ap))
        clips["linear_oracle_f0"].append(synthesise(tgt.f0[m], env, base.ap))
        clips["linear_oracle_ap"].append(synthesise(f0, env, tgt.ap[m]))
        classes_env = class_envelope(classes, base, centres)
        clips["class_offsets"].append(synthesise(f0, classes_env, base.ap))
        clips["linear"].append(convert_frames(linear, base))
        clips["mlp"].append(synthesise(f0, mlp_envelope(mlp, linear, base), base.ap))
    return {key: secs_of(wavs, cent) for key, wavs in clips.items()}


def write(results: dict[str, object]) -> None:
    (DOCS / "engine_ceiling.json").write_text(json.dumps(results, indent=2))
    targets: dict[str, dict[str, float]] = results["targets"]  # type: ignore[assignment]
    names = list(targets)
    lines = [
        "# Cloning engine: where SECS is lost (no DP)",
        "",
        "Made by `python benchmarks/engine_ceiling.py`. Held-out sentences resynthesised",
        "from the base voice's WORLD frames with the target's own features swapped in",
        "(oracle, time-aligned by DTW), and with the frame-wise converters one could fit to",
        "the 100 enrollment utterances without DP. SECS as in engine.md (20 held-out",
        "sentences against the centroid of 20 real ones).",
        "",
        *secs_table(names, [(label, [targets[n][key] for n in names]) for key, label in ROWS]),
        "",
        f"Wall time {results['seconds']:.0f} s on {results['threads']} threads.",
    ]
    (DOCS / "engine_ceiling.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--targets", nargs="*", choices=list(TARGETS), default=list(TARGETS))
    args = parser.parse_args()
    warnings.simplefilter("ignore", DeprecationWarning)
    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    t = time.time()
    joe = frames("joe")
    prior = load_converter().prior
    public = np.concatenate([prior.features(cepstra(f.env[f.speech])) for f in joe[:100]])
    centres = kmeans(public[:, :CLASS_DIMS], CLASSES, np.random.default_rng(SEED))
    results: dict[str, object] = {
        "command": "python benchmarks/engine_ceiling.py",
        "classes": CLASSES,
        "class_dims": CLASS_DIMS,
        "mlp_hidden": MLP_HIDDEN,
        "threads": 2,
        "targets": {},
    }
    for name in args.targets:
        scores = evaluate(name, joe, centres)
        results["targets"][name] = scores  # type: ignore[index]
        log(f"{name}: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
    results["seconds"] = time.time() - t
    write(results)
    log(f"wrote {DOCS / 'engine_ceiling.md'}")


if __name__ == "__main__":
    main()
