"""Where the watermark's energy goes, and what PESQ-WB makes of it.

Usage::

    .venv/bin/python benchmarks/watermark_masking.py [--clips 40] [--out benchmarks/out]

Two studies on the watermark benchmark's held-out speech clips (run
``benchmarks/watermark.py`` once first: it synthesises and caches them), each at the
shipped 26 dB SNR:

* **noise placed by rule**: Gaussian noise instead of a watermark, white or with the
  clip's own short-time magnitude in every STFT bin (``_signal.spectral_mask``; also
  that magnitude to the power 0.3, as v8 embeds), over the whole band or the
  watermark's band. It says how much PESQ the placement alone can buy, with no model
  involved;
* **models**: v5's weights embedded as v5's card says (broadband envelope), the same
  weights with ``spectral_mask`` switched on (no retraining), v6 (v5 fine-tuned with
  the mask) and v8 (v5's weights, the mask at power 0.3, as shipped).
  Clean detection is judged at each card's own threshold (v5's threshold for the
  re-masked v5, since its detector is unchanged).

Results go to ``OUT/watermark_masking.json`` and stdout; a run over at least 40 clips
also rewrites ``docs/benchmarks/watermark_masking.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from guardian.audio import Audio, resample  # noqa: E402
from guardian.watermark import Payload, detect, embed, load_card  # noqa: E402
from guardian.watermark._model import SAMPLE_RATE  # noqa: E402
from guardian.watermark._signal import band_limit, scale_to_snr, snr_db, spectral_mask  # noqa: E402

SNR_DB = 26.0
BAND = (600.0, 2700.0)
WEIGHTS = ROOT / "guardian" / "watermark" / "weights"
V5_CARD, V6_CARD = WEIGHTS / "guardian-wm-v5.yaml", WEIGHTS / "guardian-wm-v6.yaml"
V8_CARD = WEIGHTS / "guardian-wm-v8.yaml"
DOC = ROOT / "docs" / "benchmarks" / "watermark_masking.md"

Placement = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def _pesq(x: np.ndarray, y: np.ndarray) -> float:
    from pesq import pesq

    return float(pesq(SAMPLE_RATE, x, y, "wb"))


def _white(band: tuple[float, float] | None) -> Placement:
    return lambda x, noise: band_limit(noise, band)


def _masked(band: tuple[float, float] | None, power: float = 1.0) -> Placement:
    return lambda x, noise: band_limit(spectral_mask(noise, x, power), band)


PLACEMENTS: dict[str, Placement] = {
    "white noise, whole band": _white(None),
    "white noise, 600-2700 Hz": _white(BAND),
    "noise with the clip's STFT magnitude, whole band": _masked(None),
    "noise with the clip's STFT magnitude, 600-2700 Hz": _masked(BAND),
    "noise with the clip's STFT magnitude to the power 0.3, 600-2700 Hz": _masked(BAND, 0.3),
}


def noise_study(clips: list[np.ndarray]) -> list[dict[str, Any]]:
    rows = []
    for name, place in PLACEMENTS.items():
        scores = []
        for i, x16 in enumerate(clips):
            x = torch.from_numpy(x16)[None, None]
            noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(i))
            y = x + scale_to_snr(place(x, noise), x, SNR_DB)
            scores.append(_pesq(x16, y[0, 0].numpy()))
        rows.append({"placement": name, "pesq_wb": float(np.mean(scores))})
        print(f"{name}: PESQ-WB {rows[-1]['pesq_wb']:.3f}", flush=True)
    return rows


def model_study(clips: list[tuple[np.ndarray, int]]) -> list[dict[str, Any]]:
    v5 = load_card(V5_CARD)
    # the same (read-only) networks, embedded with the mask switched on
    remasked = dataclasses.replace(v5, embed=dataclasses.replace(v5.embed, spectral_mask=True))
    v6, v8 = load_card(V6_CARD), load_card(V8_CARD)
    rows = []
    for name, model in (
        (f"{v5.model_id} (envelope only)", v5),
        (f"{v5.model_id} weights + spectral mask, not retrained", remasked),
        (f"{v6.model_id} (v5 fine-tuned with the mask)", v6),
        (f"{v8.model_id} (v5's weights, mask at power 0.3, 2 s detection chunks)", v8),
    ):
        pesqs, snrs, hits, scores = [], [], [], []
        for i, (x, rate) in enumerate(clips):
            marked = embed(model, Audio(x[:, None], rate), Payload(i * 2654435761 % (1 << 16)))
            y = marked.samples[:, 0]
            snrs.append(snr_db(torch.from_numpy(x), torch.from_numpy(y)))
            pesqs.append(_pesq(resample(x, rate, SAMPLE_RATE), resample(y, rate, SAMPLE_RATE)))
            found = detect(model, marked)
            hits.append(found.score > model.threshold)
            scores.append(found.score)
        rows.append(
            {
                "model": name,
                "snr_db": float(np.mean(snrs)),
                "pesq_wb": float(np.mean(pesqs)),
                "threshold": model.threshold,
                "clean_tpr": float(np.mean(hits)),
                "lowest_score": float(np.min(scores)),
            }
        )
        r = rows[-1]
        print(
            f"{name}: SNR {r['snr_db']:.2f} dB, PESQ-WB {r['pesq_wb']:.3f}, clean TPR "
            f"{r['clean_tpr']:.3f} (lowest score {r['lowest_score']:.3f}, "
            f"threshold {r['threshold']:.3f})",
            flush=True,
        )
    return rows


def markdown(report: dict[str, Any]) -> str:
    n = report["clips"]
    lines = [
        "# Watermark masking study",
        "",
        "Written by `benchmarks/watermark_masking.py` (see its docstring); "
        f"{n} held-out clips of the watermark benchmark, everything at {SNR_DB:g} dB SNR.",
        "",
        "## Noise placed by rule (no model)",
        "",
        "| placement | PESQ-WB |",
        "|---|---|",
        *(f"| {r['placement']} | {r['pesq_wb']:.2f} |" for r in report["noise"]),
        "",
        "## Models",
        "",
        "| model | SNR (dB) | PESQ-WB | clean TPR at the card threshold "
        "| lowest score / threshold |",
        "|---|---|---|---|---|",
        *(
            f"| {r['model']} | {r['snr_db']:.1f} | {r['pesq_wb']:.2f} | {r['clean_tpr']:.3f} "
            f"| {r['lowest_score']:.3f} / {r['threshold']:.3f} |"
            for r in report["models"]
        ),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = parser.parse_args()
    pos = args.out / "wm-corpus" / "pos"
    paths = sorted(pos.glob("*.wav"))[: args.clips]
    if not paths:
        sys.exit(f"no clips under {pos}: run benchmarks/watermark.py once first")
    torch.set_num_threads(2)
    clips = [sf.read(p, dtype="float32") for p in paths]
    report = {
        "clips": len(clips),
        "snr_db": SNR_DB,
        "noise": noise_study([resample(x, rate, SAMPLE_RATE) for x, rate in clips]),
        "models": model_study(clips),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "watermark_masking.json").write_text(json.dumps(report, indent=2) + "\n")
    if len(clips) >= 40:
        DOC.write_text(markdown(report))
        print(f"wrote {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
