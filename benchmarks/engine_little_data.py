"""Little enrollment data: the large against the small adapter at ε = 8, and the rate.

    .venv/bin/python benchmarks/engine_little_data.py [--voice slt] [--utterances 6,12,20]

    # the reduced check of engine.py run's DP cells (slt, 100 utterances, δ = 1e-5,
    # the tier ε picks at 100 utterances, 20 held-out sentences):
    .venv/bin/python benchmarks/engine_little_data.py --utterances 100 --delta 1e-5 \
        --epsilons 8,1 --adapters tier --held-out 20

For each number of enrollment utterances (the first N of the engine benchmark's
sentences) and each tier's adapter, DP-trains at ε = 8 with the δ Guardian gives that
many utterances (a quarter of 1/(10·N)), seeds 0 and 1, and prints one JSON line: SECS
over 10 held-out sentences (100-109; ``--held-out``) against the centroid of sentences 120-139, as
``engine.py run`` measures it, and the released speaking rate. Uses ``engine.py``'s
cached speech (``data/engine/``); ``--voice`` takes any of its speakers, e.g.
``pub_en-us+Alicia`` (the public tuning voice).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import engine as E

from guardian.audio import Audio
from guardian.consent import embed
from guardian.consent._errors import NoSpeechError
from guardian.engine import load_converter
from guardian.engine._adapter import SpeakerAdapter
from guardian.engine._convert import convert_frames, speaking_rate
from guardian.engine._data import example, pad
from guardian.engine._dp import train_dp
from guardian.engine._world import RATE


def _finite(x: np.ndarray) -> np.ndarray:
    """A noise-ruined adapter can output NaN; otherwise the clip is measured as
    ``engine.py run`` measures it."""
    return np.nan_to_num(x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--voice", default="slt")
    parser.add_argument("--utterances", default="6,12,20")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--epsilons", default="8")
    parser.add_argument("--delta", type=float, default=None, help="default: 1/(10·N)/4")
    parser.add_argument("--adapters", choices=("both", "tier"), default="both")
    parser.add_argument("--held-out", type=int, default=10)
    args = parser.parse_args()
    torch.set_num_threads(1)
    conv = load_converter()
    joe, target = E.frames("joe"), E.frames(args.voice)
    cent = E.centroid(E.corpus(args.voice))

    def secs(adapter: SpeakerAdapter) -> float:
        scores = []
        for i in range(100, 100 + args.held_out):
            clip = _finite(convert_frames(adapter, joe[i]))
            try:
                scores.append(float(embed(Audio(clip[:, None], RATE)) @ cent))
            except NoSpeechError:
                scores.append(0.0)  # a noise-ruined clip: no speaker at all
        return float(np.mean(scores))

    cases = [(n, float(e)) for n in args.utterances.split(",") for e in args.epsilons.split(",")]
    for n, eps in ((int(n), e) for n, e in cases):
        delta = args.delta or 1 / (10 * n) / 4
        both = (("large", conv.tier(8.0)), ("small", conv.tier(1.0)))
        for name, tier in both if args.adapters == "both" else (("tier", conv.tier(eps)),):
            prior = conv.prior.with_capacity(tier.components, tier.order)
            packed = pad([example(target[i], joe[i], prior) for i in range(n)])
            for seed in range(args.seeds):
                run = train_dp(packed, prior, tier.dp, epsilon=eps, delta=delta, seed=seed)
                adapter = E.adapter_with(prior, run.theta)
                row = {
                    "voice": args.voice,
                    "utterances": n,
                    "epsilon_target": eps,
                    "adapter": f"{name} ({prior.p} x {prior.order})",
                    "seed": seed,
                    "secs": round(secs(adapter), 3),
                    "rate": round(speaking_rate(adapter), 3),
                    "noise_multiplier": round(run.noise_multiplier, 3),
                    "epsilon": round(run.epsilon, 3),
                }
                print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
