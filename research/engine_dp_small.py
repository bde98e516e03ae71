"""DP-SGD settings and adapter size for a small enrollment (48 utterances). Tuning voice only.

    .venv/bin/python research/engine_dp_small.py [--seeds 8] [--utterances 48 100]
        [--epsilon 8] [--variants LABEL ...] [--tag TAG] [--wer]

Each setting in VARIANTS trains one adapter per seed on the public tuning voice (in
neither the prior nor the benchmark), from the same examples, and scores SECS on its 20
held-out sentences (``--wer``: also PocketSphinx's WER on sentences 100-139).
``--variants`` adds only those settings to the saved results; ``--tag`` names runs made
on other examples. The runs behind ``results/engine_dp_small.md``: the first eight
settings with the defaults, the next three with ``--variants``, the shipped setting and
20 epochs with ``--seeds 16 --epsilon E --variants ...`` for E = 8, 4, 3, and the sizes
with ``--seeds 8 --tag sizes`` at ε = 8 (48 and 100 utterances), 4 and 3 (100).

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

from engine import (
    DELTA,
    ENROLL,
    HELD_OUT,
    Recogniser,
    adapter_with,
    centroid,
    clone_wer,
    corpus,
    frames,
    log,
    secs_of,
)

from guardian.engine._adapter import Prior
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
    # The adapter's size: the tier's components, fewer cepstral coefficients.
    "16 x 59 adapter": {"order": 59},
    "16 x 20 adapter": {"order": 20},
    "16 x 30 adapter": {"order": 30},
}


def run(
    n: int, epsilon: float, seeds: int, variants: list[str], *, with_wer: bool = False
) -> dict[str, object]:
    """The ``variants`` at ``n`` utterances and ``epsilon`` (and each adapter's WER)."""
    name = f"pub_{TUNING_VOICE[0]}"
    conv = load_converter()
    joe, target, cent = frames("joe"), frames(name), centroid(corpus(name))
    delta = min(DELTA, 0.25 / (10 * n))
    tier = conv.tier(epsilon, utterances=n, delta=delta)
    prior = conv.prior.with_capacity(tier.components, tier.order)
    packed = pad([example(target[i], joe[i], prior) for i in list(ENROLL)[:n]])

    def score(theta: np.ndarray, sized: Prior = prior) -> float:
        adapter = adapter_with(sized, theta)
        return secs_of([convert_frames(adapter, joe[i]) for i in HELD_OUT], cent)

    asr = Recogniser() if with_wer else None
    results: dict[str, object] = {
        "tier": [prior.p, prior.order],
        "no_dp": score(fit_nonprivate(packed, prior, steps=300).theta.detach().numpy()),
    }
    for label in variants:
        settings = dict(VARIANTS[label])
        # The examples do not depend on the number of coefficients the adapter changes.
        sized = prior.with_capacity(prior.p, int(settings.pop("order", prior.order)))
        cfg = dataclasses.replace(tier.dp, **settings)
        batch, _, steps = schedule(n, cfg)
        sigma = _calibrated(epsilon, delta, n, cfg)[0]
        scores, wers = [], []
        for seed in range(seeds):
            trained = train_dp(packed, sized, cfg, epsilon=epsilon, delta=delta, seed=seed)
            scores.append(score(trained.theta, sized))
            if asr is not None:
                wers.append(clone_wer(asr, joe, sized, trained.theta))
        own: dict[str, object] = {"wer": wers} if with_wer else {}
        # a size of its own has its own fit without DP
        if sized.order != prior.order:
            nodp = fit_nonprivate(packed, sized, steps=300).theta.detach().numpy()
            own["no_dp"] = score(nodp, sized)
        results[label] = {
            "batch": batch,
            "steps": steps,
            "sigma": sigma,
            "noise_per_utterance": noise_per_utterance(epsilon, delta, n, cfg),
            "secs": scores,
            **own,
        }
        log(f"n {n} {label}: multiplier {sigma:.2f}, SECS {np.mean(scores):.3f}, WER {wers}")
    return results


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--utterances", type=int, nargs="+", default=[48, 100])
    ap.add_argument("--epsilon", type=float, default=8.0)
    ap.add_argument("--wer", action="store_true", help="also PocketSphinx WER, sentences 100-139")
    ap.add_argument("--tag", default="", help="appended to the runs' names in the results")
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
        key += f", {args.tag}" if args.tag else ""
        done = run(n, args.epsilon, args.seeds, args.variants or list(VARIANTS), with_wer=args.wer)
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
        'every row of a run. "shipped" is the tier\'s setting when the row was made: the',
        "ε ≥ 3 tier's adapter was 16 x 59 for every row here, and is 16 x 20 since (ADR 0003).",
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
