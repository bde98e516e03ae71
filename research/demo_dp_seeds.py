"""How much of the demo clip's distance from its speaker is DP noise?

    .venv/bin/python research/demo_dp_seeds.py [--seeds 6] [--epochs 10 20] [--order Q] [--groups]

Trains the demo speaker's adapter as ``guardian demo`` does (its 48 shipped enrollment
recordings, ε = 8, the demo's δ) with fixed seeds, and once without DP, and measures
each adapter's rendering of the demo text against the speaker's held-out recordings
with the demo's own measure (``match_voice``). ``--epochs`` trains every seed once per
DP-SGD epoch count (the shipped tier's by default), so settings are compared on the same
examples and seeds; ``--groups`` also swaps each parameter group for the no-DP fit's.
Diagnostic only: nothing is chosen on these recordings.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch

from guardian.app._consent_voice import enrollment_samples, held_out_recordings
from guardian.app._engine import DELTA_RUNS, delta_cap
from guardian.app._voice_match import match_voice
from guardian.app.demo import DEMO_TEXT, DEMO_VOICE
from guardian.audio import read_audio
from guardian.engine import BaseVoice
from guardian.engine._adapter import group_sizes
from guardian.engine._dp import train_dp
from guardian.engine._pretrain import fit_nonprivate
from guardian.engine._prior import load_converter
from guardian.engine._trained import _build, prepare_examples


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=6)
    ap.add_argument("--epochs", type=int, nargs="*", default=[])
    ap.add_argument("--order", type=int, help="cepstral coefficients, not the tier's")
    ap.add_argument("--groups", action="store_true", help="each group swapped for no DP's")
    args = ap.parse_args()
    torch.set_num_threads(1)
    utterances = [read_audio(p) for p in enrollment_samples(DEMO_VOICE)]
    texts = (DEMO_VOICE / "transcripts.txt").read_text().splitlines()
    texts = [t.strip() for t in texts if t.strip()]
    base, converter = BaseVoice(), load_converter()
    n = len(utterances)
    delta = delta_cap(n) / DELTA_RUNS
    tier = converter.tier(8.0, utterances=n, delta=delta)
    prior = converter.prior.with_capacity(tier.components, args.order or tier.order)
    packed = prepare_examples(utterances, texts, prior, base)
    references = [read_audio(p) for p in held_out_recordings(DEMO_VOICE)]
    reading = read_audio(DEMO_VOICE / "heldout-demo.flac")
    base_clip = base.synthesize(DEMO_TEXT)

    def secs(theta: np.ndarray, run: object) -> float:
        adapter = _build(converter, prior, theta, run, base_model_id=base.model_id)  # type: ignore[arg-type]
        clip = adapter.speak(base, DEMO_TEXT)
        return match_voice(clip, reading=reading, references=references, base=base_clip).secs

    settings = [dataclasses.replace(tier.dp, epochs=e) for e in args.epochs] or [tier.dp]
    scores: dict[int, list[float]] = {dp.epochs: [] for dp in settings}
    run, no_dp = None, fit_nonprivate(packed, prior, steps=300).theta.detach().numpy()
    groups = group_sizes(prior) if args.groups else {}
    at = np.cumsum([0, *groups.values()])
    for seed in range(args.seeds):
        for dp in settings:
            run = train_dp(packed, prior, dp, epsilon=8.0, delta=delta, seed=seed)
            scores[dp.epochs].append(secs(run.theta, run))
            print(f"seed {seed}, {dp.epochs} epochs: SECS {scores[dp.epochs][-1]:.3f}", flush=True)
            for i, group in enumerate(groups):
                mixed = run.theta.copy()
                mixed[at[i] : at[i + 1]] = no_dp[at[i] : at[i + 1]]
                print(f"  {group} without DP: SECS {secs(mixed, run):.3f}", flush=True)
    for epochs, got in scores.items():
        below = sum(v < 0.70 for v in got)
        print(
            f"{epochs} epochs: DP mean {np.mean(got):.3f} (min {min(got):.3f}, {below} below 0.70)"
        )
    print(f"no DP {secs(no_dp, run):.3f}")


if __name__ == "__main__":
    main()
