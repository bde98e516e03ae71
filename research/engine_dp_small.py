"""DP-SGD settings for a small enrollment (the demo's 48 utterances). Tuning voice only.

    .venv/bin/python research/engine_dp_small.py [--seeds 8] [--utterances 48 100]
        [--epsilon 8] [--variants LABEL ...]

The ε ≥ 3 tier's DP-SGD settings were chosen at 100 utterances
(``benchmarks/engine_tiers.py``); the demo enrolls 48. For each enrollment size, each
setting in VARIANTS trains one adapter per seed on the public tuning voice (espeak-ng
TUNING_VOICE, in neither the prior nor the benchmark), from the same examples (the
base voice's cached readings, so its sampling noise is left out), and scores SECS on
its 20 held-out sentences. No benchmark target is used. ``--variants`` runs only those
settings and adds them to the saved results. The runs behind
``results/engine_dp_small.md``: the first eight settings with the defaults, the last
three with ``--variants``, then the shipped setting and 20 epochs with ``--seeds 16
--epsilon E --variants ...`` for E = 8, 4 and 3.

Writes research/results/engine_dp_small.{json,md}.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from engine import DELTA, ENROLL, HELD_OUT, adapter_with, centroid, corpus, frames, log, secs_of

from guardian.engine._convert import convert_frames
from guardian.engine._data import example, pad
from guardian.engine._dp import _calibrated, noise_per_utterance, schedule, train_dp
from guardian.engine._pretrain import TUNING_VOICE, fit_nonprivate
from guardian.engine._prior import load_converter

OUT = Path(__file__).resolve().parent / "results"
VARIANTS = {
    "shipped (batch 0.5, 10 epochs)": {},
    "batch 1.0, 10 epochs": {"batch_fraction": 1.0},
    "batch 1.0, 5 epochs": {"batch_fraction": 1.0, "epochs": 5},
    "batch 0.5, 5 epochs": {"epochs": 5},
    "batch 0.5, 20 epochs": {"epochs": 20},
    "batch 0.25, 10 epochs": {"batch_fraction": 0.25},
    "batch 0.5, 10 epochs, clip 1.5": {"clip": 1.5},
    "batch 0.5, 10 epochs, momentum 0.5": {"momentum": 0.5},
    "batch 0.5, 40 epochs": {"epochs": 40},
    "batch 0.25, 20 epochs": {"batch_fraction": 0.25, "epochs": 20},
    "batch 0.5, 20 epochs, averaged from 0.25": {"epochs": 20, "average_from": 0.25},
}


def run(n: int, epsilon: float, seeds: int, variants: list[str]) -> dict[str, object]:
    """The ``variants`` at ``n`` utterances and ``epsilon``."""
    name = f"pub_{TUNING_VOICE[0]}"
    conv = load_converter()
    joe, target, cent = frames("joe"), frames(name), centroid(corpus(name))
    delta = min(DELTA, 0.25 / (10 * n))
    tier = conv.tier(epsilon, utterances=n, delta=delta)
    prior = conv.prior.with_capacity(tier.components, tier.order)
    packed = pad([example(target[i], joe[i], prior) for i in list(ENROLL)[:n]])

    def score(theta: np.ndarray) -> float:
        adapter = adapter_with(prior, theta)
        return secs_of([convert_frames(adapter, joe[i]) for i in HELD_OUT], cent)

    results: dict[str, object] = {
        "tier": [prior.p, prior.order],
        "no_dp": score(fit_nonprivate(packed, prior, steps=300).theta.detach().numpy()),
    }
    for label in variants:
        cfg = dataclasses.replace(tier.dp, **VARIANTS[label])
        batch, _, steps = schedule(n, cfg)
        sigma = _calibrated(epsilon, delta, n, cfg)[0]
        scores = []
        for seed in range(seeds):
            trained = train_dp(packed, prior, cfg, epsilon=epsilon, delta=delta, seed=seed)
            scores.append(score(trained.theta))
        results[label] = {
            "batch": batch,
            "steps": steps,
            "sigma": sigma,
            "noise_per_utterance": noise_per_utterance(epsilon, delta, n, cfg),
            "secs": scores,
        }
        log(f"n {n} {label}: multiplier {sigma:.2f}, SECS {np.mean(scores):.3f}")
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--utterances", type=int, nargs="+", default=[48, 100])
    ap.add_argument("--epsilon", type=float, default=8.0)
    ap.add_argument(
        "--variants",
        nargs="+",
        choices=list(VARIANTS),
        help="run only these, adding them to the saved results",
    )
    args = ap.parse_args()
    torch.set_num_threads(1)
    saved = OUT / "engine_dp_small.json"
    results: dict[str, dict[str, object]] = (
        json.loads(saved.read_text()) if args.variants and saved.exists() else {}
    )
    for n in args.utterances:
        key = f"{n} utterances, ε = {args.epsilon:g}, {args.seeds} seeds"
        done = run(n, args.epsilon, args.seeds, args.variants or list(VARIANTS))
        results.setdefault(key, {}).update(done)
    write(results)


def write(results: dict[str, dict[str, object]]) -> None:
    OUT.mkdir(exist_ok=True)
    # floats to 4 significant digits: scores and cosines, and the repository has little room
    rounded = json.loads(json.dumps(results), parse_float=lambda v: float(f"{float(v):.4g}"))
    (OUT / "engine_dp_small.json").write_text(json.dumps(rounded, separators=(",", ":")) + "\n")
    lines = [
        "# DP-SGD settings for a small enrollment (tuning voice)",
        "",
        "`.venv/bin/python research/engine_dp_small.py`, then with `--variants` for the rows",
        "added later (the commands are in the study's docstring). The same examples for",
        "every row of a size.",
        "",
        "| run | DP-SGD | steps | noise multiplier | SECS mean ± sd | min |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for n, rows in results.items():
        lines.append(f"| {n} | no DP | | | {rows['no_dp']:.3f} | |")
        for label in (v for v in VARIANTS if v in rows):
            row = rows[label]
            assert isinstance(row, dict)
            s = row["secs"]
            lines.append(
                f"| {n} | {label} | {row['steps']} | {row['sigma']:.2f} "
                f"| {np.mean(s):.3f} ± {np.std(s):.3f} | {min(s):.3f} |"
            )
    (OUT / "engine_dp_small.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
