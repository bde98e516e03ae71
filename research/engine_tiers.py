"""Choose each privacy tier's adapter size on the public tuning voice.

    .venv/bin/python benchmarks/engine_tiers.py [--seeds 3]

The adapter maps the base frame's P principal components to a change of its first Q
cepstral coefficients. How large it may be depends on ε: noise grows with the number of
parameters. Each candidate (P, Q) is trained with DP-SGD, using the settings of the tier
it would join, at the ε values that tier must serve, on 100 utterances of the public
tuning voice (espeak-ng TUNING_VOICE, in neither the public prior nor the benchmark),
and scored by SECS on 20 held-out sentences, also without DP. No benchmark target is
used: the sizes chosen here go into the converter card (``engine.py pretrain``), and
``engine.py run`` then measures them on the targets.

Writes docs/benchmarks/engine_tiers.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from engine import (
    DELTA,
    DOCS,
    ENROLL,
    HELD_OUT,
    TIERS,
    adapter_with,
    centroid,
    corpus,
    frames,
    log,
    secs_of,
)

from guardian.engine import load_converter
from guardian.engine._adapter import Prior
from guardian.engine._convert import convert_frames
from guardian.engine._data import example, pad
from guardian.engine._dp import train_dp
from guardian.engine._pretrain import TUNING_VOICE, fit_nonprivate

SIZES = {
    # tier floor: (ε values it must serve, candidate (P, Q) sizes)
    0.0: ((1.0,), [(4, 20), (6, 15), (8, 10), (8, 20), (12, 10), (16, 20)]),
    3.0: ((3.0, 8.0), [(16, 59), (16, 20), (32, 20), (32, 30), (60, 20), (60, 30)]),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    warnings.simplefilter("ignore", DeprecationWarning)
    torch.set_num_threads(2)
    t = time.time()
    name = f"pub_{TUNING_VOICE[0]}"
    joe, target, real = frames("joe"), frames(name), corpus(name)
    cent = centroid(real)
    full = load_converter().prior
    tiers = {tier.min_epsilon: tier for tier in TIERS}
    # One DTW per utterance: a smaller adapter's rows are the full-size rows with
    # fewer leading components (the projection's first P rows).
    packed_full = pad([example(target[i], joe[i], full) for i in ENROLL])

    def secs(prior: Prior, theta: np.ndarray) -> float:
        adapter = adapter_with(prior, theta)
        return secs_of([convert_frames(adapter, joe[i]) for i in HELD_OUT], cent)

    rows = []
    for floor, (epsilons, sizes) in SIZES.items():
        for p, q in sizes:
            prior = full.with_capacity(p, q)
            packed = np.concatenate([packed_full[..., :p], packed_full[..., full.p :]], -1)
            nodp = fit_nonprivate(packed, prior, steps=300).theta.detach().numpy()
            row: dict[str, Any] = {"tier": floor, "components": p, "order": q}
            row["no_dp"] = secs(prior, nodp)
            row["parameters"] = int(nodp.size)
            for eps in epsilons:
                runs = [
                    secs(
                        prior,
                        train_dp(
                            packed, prior, tiers[floor].dp, epsilon=eps, delta=DELTA, seed=s
                        ).theta,
                    )
                    for s in range(args.seeds)
                ]
                row[f"eps{eps:g}"] = float(np.mean(runs))
                row[f"eps{eps:g}_runs"] = runs
            rows.append(row)
            log(
                f"P {p} Q {q}: "
                + ", ".join(
                    f"{k} {v:.3f}" for k, v in row.items() if isinstance(v, float) and k != "tier"
                )
            )
    write(
        {
            "command": "python benchmarks/engine_tiers.py",
            "voice": TUNING_VOICE[0],
            "seeds": args.seeds,
            "rows": rows,
            "seconds": time.time() - t,
        }
    )


def write(results: dict[str, object]) -> None:
    (DOCS / "engine_tiers.json").write_text(json.dumps(results, indent=2))
    lines = [
        "# Cloning engine: adapter size per privacy tier (public tuning voice)",
        "",
        f"Made by `python benchmarks/engine_tiers.py`. SECS of espeak-ng {results['voice']}"
        " (public; not in the prior, not a benchmark target) on 20 held-out sentences,",
        f"100 enrollment utterances, DP rows the mean of {results['seeds']} seeds.",
        "",
        "| tier | P x Q | parameters | no DP | ε = 1 | ε = 3 | ε = 8 |",
        "|---|---|---|---|---|---|---|",
    ]
    shipped = {(t.min_epsilon, t.components, t.order) for t in TIERS}
    for r in results["rows"]:  # type: ignore[attr-defined]
        mark = " (shipped)" if (r["tier"], r["components"], r["order"]) in shipped else ""
        cells = [f"{r[k]:.3f}" if k in r else "" for k in ("no_dp", "eps1", "eps3", "eps8")]
        lines.append(
            f"| ε ≥ {r['tier']:g} | {r['components']} x {r['order']}{mark} | {r['parameters']} | "
            + " | ".join(cells)
            + " |"
        )
    lines += [
        "",
        "A size replaces the shipped one only if it scores higher with every seed (the same",
        "seeds, so the same noise draws) at every ε of its tier, and then only if the",
        "benchmark targets keep their bars with it (engine.md); per-seed figures are in",
        "engine_tiers.json. The DP-SGD settings are the tier's (engine.md).",
        "",
        f"Wall time {results['seconds']:.0f} s on 2 threads.",
    ]
    (DOCS / "engine_tiers.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
