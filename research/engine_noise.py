"""Does the base voice's own sampling noise spread the clone's similarity? Tuning voice only.

    .venv/bin/python research/engine_noise.py [--seeds 6] [--utterances 48]

Piper draws fresh noise at every synthesis (VITS: ``noise_scale`` for the acoustic
prior, ``noise_w_scale`` for durations; joe's own are 0.667 and 0.8). Enrollment
synthesises the base voice's reading of every transcript, and the adapter speaks
through the base voice again, so that noise reaches both the training examples and
the output. For each setting below, each seed prepares the examples afresh (as
enrollment does), trains one adapter at ε = 8 on the public tuning voice (espeak-ng
TUNING_VOICE, in neither the prior nor the benchmark) and scores SECS on its 20
held-out sentences, spoken through the same setting. No benchmark target is used.

Writes research/results/engine_noise.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from engine import CENTROID, DELTA, ENROLL, HELD_OUT, SEED, corpus, log

from guardian.audio import Audio, resample
from guardian.consent import embed
from guardian.engine import BaseVoice
from guardian.engine._dp import train_dp
from guardian.engine._pretrain import TUNING_VOICE, fit_nonprivate, public_sentences
from guardian.engine._prior import load_converter
from guardian.engine._trained import _build, prepare_examples
from guardian.engine._world import RATE

OUT = Path(__file__).resolve().parent / "results"
SETTINGS = {
    "joe's own (0.667, 0.8)": (None, None),
    "half (0.333, 0.4)": (0.333, 0.4),
    "none (0, 0)": (0.0, 0.0),
}
EPSILON = 8.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--utterances", type=int, default=48)
    args = ap.parse_args()
    torch.set_num_threads(1)
    n = args.utterances
    name = f"pub_{TUNING_VOICE[0]}"
    real = corpus(name)
    texts = public_sentences(len(real), SEED)
    cent = np.mean([embed(Audio(real[i][:, None], RATE)) for i in CENTROID], axis=0)
    cent /= np.linalg.norm(cent)
    utterances = [Audio(real[i][:, None], RATE) for i in list(ENROLL)[:n]]
    conv = load_converter()
    delta = min(DELTA, 0.25 / (10 * n))
    tier = conv.tier(EPSILON, utterances=n, delta=delta)
    prior = conv.prior.with_capacity(tier.components, tier.order)

    def secs(base: BaseVoice, theta: np.ndarray, run: object) -> float:
        adapter = _build(conv, prior, theta, run, base_model_id=base.model_id)  # type: ignore[arg-type]
        said = []
        for i in HELD_OUT:
            clip = adapter.speak(base, texts[i])
            said.append(embed(Audio(resample(clip.mono(), clip.sample_rate, RATE)[:, None], RATE)))
        return float(np.mean([e @ cent for e in said]))

    results: dict[str, object] = {
        "utterances": n,
        "epsilon": EPSILON,
        "tier": [prior.p, prior.order],
    }
    for label, (noise, noise_w) in SETTINGS.items():
        base = BaseVoice(noise_scale=noise, noise_w_scale=noise_w)
        scores = []
        run = None
        t0 = time.time()
        for seed in range(args.seeds):
            packed = prepare_examples(utterances, [texts[i] for i in list(ENROLL)[:n]], prior, base)
            run = train_dp(packed, prior, tier.dp, epsilon=EPSILON, delta=delta, seed=seed)
            scores.append(secs(base, run.theta, run))
            log(f"{label} seed {seed}: SECS {scores[-1]:.3f} ({time.time() - t0:.0f} s)")
        no_dp = fit_nonprivate(packed, prior, steps=300).theta.detach().numpy()
        row = {"dp": scores, "no_dp": secs(base, no_dp, run)}
        results[label] = row
        log(
            f"{label}: DP {np.mean(scores):.3f} ± {np.std(scores):.3f} "
            f"(min {min(scores):.3f}), no DP {row['no_dp']:.3f}"
        )
    OUT.mkdir(exist_ok=True)
    (OUT / "engine_noise.json").write_text(json.dumps(results, separators=(",", ":")) + "\n")
    lines = [
        "# Base-voice sampling noise and the clone's SECS",
        "",
        f"Tuning voice, {n} utterances, ε = {EPSILON:g}.",
        "",
        "`.venv/bin/python research/engine_noise.py`. Examples prepared afresh per seed.",
        "",
        "| Piper noise (noise_scale, noise_w) | SECS per seed | mean ± sd | min | no DP |",
        "|---|---|---:|---:|---:|",
    ]
    for label in SETTINGS:
        row = results[label]
        assert isinstance(row, dict)
        dp = row["dp"]
        lines.append(
            f"| {label} | {', '.join(f'{v:.3f}' for v in dp)} "
            f"| {np.mean(dp):.3f} ± {np.std(dp):.3f} | {min(dp):.3f} | {row['no_dp']:.3f} |"
        )
    (OUT / "engine_noise.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
