"""Does shrinking the DP adapter towards the public prior help? Tuning voice only.

    .venv/bin/python research/engine_shrink.py [--seeds 8] [--utterances 48 100]

DP-SGD returns the public start plus the speaker's change plus noise. Scaling the
change by a factor λ ≤ 1 (post-processing: no privacy cost) trades the speaker's
change for less noise. For each enrollment size, each seed trains one adapter at ε = 8
on the public tuning voice (espeak-ng TUNING_VOICE, in neither the prior nor the
benchmark), and every λ is scored by SECS on its 20 held-out sentences, with the
no-DP fit beside. No benchmark target is used.

Writes research/results/engine_shrink.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from engine import (
    DELTA,
    ENROLL,
    HELD_OUT,
    adapter_with,
    centroid,
    corpus,
    frames,
    log,
    secs_of,
)

from guardian.engine._adapter import Prior, group_sizes
from guardian.engine._convert import convert_frames
from guardian.engine._data import example, pad
from guardian.engine._dp import train_dp
from guardian.engine._pretrain import TUNING_VOICE, fit_nonprivate
from guardian.engine._prior import load_converter

OUT = Path(__file__).resolve().parent / "results"
LAMBDAS = (1.0, 0.9, 0.8, 0.7, 0.6)
EPSILON = 8.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--utterances", type=int, nargs="+", default=[48, 100])
    args = ap.parse_args()
    torch.set_num_threads(1)
    name = f"pub_{TUNING_VOICE[0]}"
    conv = load_converter()
    joe, target, real = frames("joe"), frames(name), corpus(name)
    cent = centroid(real)
    results: dict[str, object] = {}
    for n in args.utterances:
        delta = min(DELTA, 0.25 / (10 * n))
        tier = conv.tier(EPSILON, utterances=n, delta=delta)
        prior = conv.prior.with_capacity(tier.components, tier.order)
        packed = pad([example(target[i], joe[i], prior) for i in list(ENROLL)[:n]])
        sizes = group_sizes(prior)
        keep = np.concatenate([np.full(s, g in ("map", "offset", "gv")) for g, s in sizes.items()])

        def score(theta: np.ndarray, prior: Prior = prior) -> float:
            adapter = adapter_with(prior, theta)
            return secs_of([convert_frames(adapter, joe[i]) for i in HELD_OUT], cent)

        nodp = fit_nonprivate(packed, prior, steps=300).theta.detach().numpy()
        row: dict[str, object] = {"no_dp": score(nodp), "tier": [prior.p, prior.order]}
        per_lambda: dict[str, list[float]] = {f"{lam:g}": [] for lam in LAMBDAS}
        for seed in range(args.seeds):
            run = train_dp(packed, prior, tier.dp, epsilon=EPSILON, delta=delta, seed=seed)
            for lam in LAMBDAS:
                theta = np.where(keep, run.theta * lam, run.theta).astype(np.float32)
                per_lambda[f"{lam:g}"].append(score(theta))
            scores = " ".join(f"{k}:{v[-1]:.3f}" for k, v in per_lambda.items())
            log(f"n {n} seed {seed}: {scores}")
        row["dp"] = per_lambda
        results[str(n)] = row
        log(
            f"n {n}: no-DP {row['no_dp']:.3f} "
            + " ".join(f"λ {k}: {np.mean(v):.3f}±{np.std(v):.3f}" for k, v in per_lambda.items())
        )
    OUT.mkdir(exist_ok=True)
    (OUT / "engine_shrink.json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "| utterances | no DP | " + " | ".join(f"λ {lam:g}" for lam in LAMBDAS) + " |",
        "|---" * (len(LAMBDAS) + 2) + "|",
    ]
    for n, row in results.items():
        assert isinstance(row, dict)
        dp = row["dp"]
        cells = [
            f"{np.mean(dp[f'{lam:g}']):.3f} (min {np.min(dp[f'{lam:g}']):.3f})" for lam in LAMBDAS
        ]
        lines.append(f"| {n} | {row['no_dp']:.3f} | " + " | ".join(cells) + " |")
    (OUT / "engine_shrink.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
