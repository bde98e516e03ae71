"""Detection speed: the folded detector head against the whole network, side by side.

    .venv/bin/python benchmarks/detect_speed.py [--card CARD ...] [--clips 10] [--trials 6]

``detect`` runs AudioSeal's detector with its last two layers (a transposed convolution
whose kernel equals its stride, then a 1x1 convolution) folded into one linear map, and
for a tone-code card computes only the presence row of it (``_detect._folded_head``).
This benchmark times the detector pass of ``detect`` (``_presence``) both ways on the
same clips, alternating within each trial, so that a machine busy with other work slows
both alike:

* ``whole``: the network run as built, every output channel (what ``detect`` did before);
* ``folded``: as ``detect`` runs it now, bit logits only for a card that reads them.

The clips are ``--clips`` speech-like clips of 3-10 s (fixed seeds; the content does not
change the cost). Speeds are multiples of real time by wall clock and by this process's
CPU time, with the median over ``--trials`` of the paired ratio. Writes
``OUT/detect_speed.json`` and ``docs/benchmarks/detect_speed.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from guardian.audio import speechlike
from guardian.watermark import load_model
from guardian.watermark._detect import _presence

ROOT = Path(__file__).resolve().parent.parent
WEIGHTS = ROOT / "guardian" / "watermark" / "weights"
DOC = ROOT / "docs" / "benchmarks" / "detect_speed.md"
DEFAULT_CARDS = [WEIGHTS / "guardian-wm-v8.yaml", WEIGHTS / "guardian-wm-v11.yaml"]
RATE = 16000


def measure(card: Path, clips: list[np.ndarray], trials: int) -> dict[str, Any]:
    model = load_model(str(card))
    bits = model.embed.payload_tones is None  # what detect asks for
    seconds = sum(len(c) for c in clips) / RATE

    def run(fold: bool) -> tuple[float, float]:
        """x real time by wall clock and by CPU time."""
        w, c = time.perf_counter(), time.process_time()
        for clip in clips:
            _presence(model, clip, bits=bits or not fold, fold=fold)
        return seconds / (time.perf_counter() - w), seconds / (time.process_time() - c)

    run(True)  # warm-up: lazy imports, allocator
    run(False)
    rows: dict[str, list[tuple[float, float]]] = {"whole": [], "folded": []}
    for trial in range(trials):
        order = ("whole", "folded") if trial % 2 == 0 else ("folded", "whole")
        for name in order:
            rows[name].append(run(name == "folded"))
    whole, folded = np.asarray(rows["whole"]), np.asarray(rows["folded"])
    return {
        "card": card.name,
        "model_id": model.model_id,
        "bit_logits": bits,
        "audio_s": seconds,
        "whole_x_rt": float(np.median(whole[:, 0])),
        "folded_x_rt": float(np.median(folded[:, 0])),
        "ratio_wall": float(np.median(folded[:, 0] / whole[:, 0])),
        "ratio_cpu": float(np.median(folded[:, 1] / whole[:, 1])),
        "trials": {k: [[round(w, 2), round(c, 2)] for w, c in v] for k, v in rows.items()},
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Detection speed: folded detector head against the whole network",
        "",
        "`benchmarks/detect_speed.py` (this file is written by it). The detector pass of",
        "`detect` on the same clips both ways, alternating within each trial;",
        f"{report['clips']} speech-like clips, {report['audio_s']:.1f} s of audio,",
        f"{report['trials']} trials, {report['cores']} cores, torch threads",
        f"{report['threads']}, load average {report['loadavg_1min']:.2f} at the start.",
        "Speeds are medians over the trials; ratios are medians of the paired ratios.",
        "",
        "| card | bit logits | whole, x real time | folded, x real time "
        "| ratio (wall) | ratio (CPU) |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["cards"]:
        lines.append(
            f"| {r['model_id']} | {'yes' if r['bit_logits'] else 'no (tone code)'} | "
            f"{r['whole_x_rt']:.1f} | {r['folded_x_rt']:.1f} | "
            f"{r['ratio_wall']:.2f} | {r['ratio_cpu']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--card", type=Path, action="append", help="model card (repeatable)")
    parser.add_argument("--clips", type=int, default=10)
    parser.add_argument("--trials", type=int, default=6)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = parser.parse_args()
    if args.clips < 1 or args.trials < 1:
        parser.error("--clips and --trials must be at least 1")
    rng = np.random.default_rng(0)
    clips = [speechlike(float(rng.uniform(3, 10)), seed=100 + i) for i in range(args.clips)]
    report: dict[str, Any] = {
        "clips": len(clips),
        "audio_s": sum(len(c) for c in clips) / RATE,
        "trials": args.trials,
        "cores": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "loadavg_1min": os.getloadavg()[0],
        "cards": [measure(card, clips, args.trials) for card in args.card or DEFAULT_CARDS],
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "detect_speed.json").write_text(json.dumps(report, indent=2) + "\n")
    DOC.write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
