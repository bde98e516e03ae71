"""The watermark on Guardian's own output: attacks on synthesised (converted) speech.

    .venv/bin/python benchmarks/watermark_synthesis.py [--card CARD ...] [--voices 3]
                                                       [--sentences 20]

The main watermark benchmark (benchmarks/watermark.py) measures held-out Piper and
espeak-ng speech. What Guardian watermarks in production is different: speech converted
by a DP-trained adapter, whose noised speaking rate can make it twice as slow or fast
as the base voice. This benchmark enrolls the shipped demo voice ``--voices`` times and
trains each at ε = 8 (each training gets its own noise, so its own rate and timbre).
Each voice says ``--sentences`` sentences; each watermark model (``--card``, repeat to
compare; default the shipped one) embeds them as ``synthesize`` does (watermark, then
16-bit WAV), and every attack of ``guardian.watermark.attacks`` runs on the result.
Negatives are the same voices' unwatermarked conversions of other sentences, attacked
alike; they are also the other speech that ``splice`` and ``mix_speech_10db`` need (the
same voice: the hardest case). All models see the same clips and the same random draws.

Scores are compared with each model card's calibrated threshold: the decision
``guardian verify`` makes. Writes docs/benchmarks/watermark_synthesis.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from guardian.app import open_guardian
from guardian.app.demo import trained_demo_adapter
from guardian.audio import Audio, OutputFormat, decode_bytes, encode_bytes
from guardian.config import Settings
from guardian.corpus import sentence
from guardian.watermark import SHIPPED_CARD, Payload, WatermarkModel, detect, embed, load_card
from guardian.watermark.attacks import ATTACKS

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"
SEED = 4242
SURVIVES = 0.90
"""TPR at which the main benchmark calls an attack survived."""


def texts(count: int, rng: random.Random) -> list[str]:
    out: list[str] = []
    while len(out) < count:
        text = sentence(rng, rng.choice([1, 2, 2]))
        if text not in out:
            out.append(text)
    return out


def voice_clips(
    g: Any, work: Path, index: int, sentences: int, rng: random.Random
) -> dict[str, Any]:
    """One fresh DP training of the demo voice; its conversions of 2 x ``sentences``."""
    adapter = trained_demo_adapter(g, work, index, purpose="wm-bench")
    said = [adapter.speak(g.base_voice, text) for text in texts(2 * sentences, rng)]
    return {"stretch": adapter.stretch, "speech": said[:sentences], "plain": said[sentences:]}


def as_written(model: WatermarkModel, clip: Audio, i: int) -> Audio:
    """The clip as ``synthesize`` writes it: watermarked, then 16-bit WAV."""
    marked = embed(model, clip, Payload(i % 2**16))
    return decode_bytes(encode_bytes(marked, OutputFormat.WAV))


def scores(
    model: WatermarkModel, clips: list[Audio], others: list[Audio], index: int
) -> np.ndarray:
    """Scores of ``clips`` after attack ``index``, each with its own seeded draws."""
    out = []
    for i, clip in enumerate(clips):
        rng = np.random.default_rng([SEED, i, index])
        attacked = ATTACKS[index](clip, rng, other=others[(i + 1) % len(others)])
        out.append(detect(model, attacked).score)
    return np.array(out)


def evaluate(
    model: WatermarkModel, speech: list[Audio], plain: list[Audio], owner: np.ndarray
) -> dict[str, Any]:
    marked = [as_written(model, clip, i) for i, clip in enumerate(speech)]
    rows: list[dict[str, Any]] = []
    for index, attack in enumerate(ATTACKS):
        pos = scores(model, marked, plain, index)
        neg = scores(model, plain, plain, index)
        hit = pos >= model.threshold
        rows.append(
            {
                "attack": attack.name,
                "tpr": float(hit.mean()),
                "tpr_per_voice": [float(hit[owner == v].mean()) for v in np.unique(owner)],
                "min_score": float(pos.min()),
                "median_score": float(np.median(pos)),
                "fpr": float((neg >= model.threshold).mean()),
                "max_negative_score": float(neg.max()),
            }
        )
        print(f"{model.model_id} {attack.name}: TPR {rows[-1]['tpr']:.3f}", file=sys.stderr)
    attacked = [r["tpr"] for r in rows if r["attack"] != "none"]
    return {
        "model": model.model_id,
        "threshold": model.threshold,
        "average_tpr_over_attacks": float(np.mean(attacked)),
        "attacks": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--card", type=Path, action="append", help="watermark model card (repeat to compare)"
    )
    parser.add_argument("--voices", type=int, default=3, help="DP trainings of the demo voice")
    parser.add_argument("--sentences", type=int, default=20, help="clips per voice")
    args = parser.parse_args()
    torch.set_num_threads(2)
    t0 = time.time()
    rng = random.Random(SEED)
    with tempfile.TemporaryDirectory(prefix="guardian-wmsyn-") as tmp:
        work = Path(tmp)
        g = open_guardian(Settings(home=work / "home", allow_synthetic_consent=True))
        voices = []
        for i in range(args.voices):
            voices.append(voice_clips(g, work, i, args.sentences, rng))
            print(f"voice {i}: speaking rate x{voices[-1]['stretch']:.2f}", file=sys.stderr)
    speech = [c for v in voices for c in v["speech"]]
    plain = [c for v in voices for c in v["plain"]]
    owner = np.array([i for i, v in enumerate(voices) for _ in v["speech"]])
    cards = args.card or [SHIPPED_CARD]
    result = {
        "command": "python benchmarks/watermark_synthesis.py"
        + "".join(f" --card {c}" for c in args.card or []),
        "voices": [{"speaking_rate_stretch": round(v["stretch"], 3)} for v in voices],
        "clips": len(speech),
        "clip_seconds": {
            "min": round(min(c.duration for c in speech), 2),
            "max": round(max(c.duration for c in speech), 2),
        },
        "negatives": len(plain),
        "models": [evaluate(load_card(card), speech, plain, owner) for card in cards],
        "seconds": round(time.time() - t0, 1),
    }
    OUT.mkdir(parents=True, exist_ok=True)
    # floats to 4 significant digits: scores and cosines, and the repository has little room
    rounded = json.loads(json.dumps(result), parse_float=lambda v: float(f"{float(v):.4g}"))
    (OUT / "watermark_synthesis.json").write_text(json.dumps(rounded, separators=(",", ":")) + "\n")
    (OUT / "watermark_synthesis.md").write_text(markdown(result))
    print(f"wrote {OUT / 'watermark_synthesis.md'}", file=sys.stderr)


def markdown(r: dict[str, Any]) -> str:
    rates = ", ".join(f"x{v['speaking_rate_stretch']:.2f}" for v in r["voices"])
    models = r["models"]
    lines = [
        "# Watermark on Guardian's own synthesis",
        "",
        f"Made by `{r['command']}` (see its docstring). The demo voice trained",
        f"{len(r['voices'])} times at ε = 8 (speaking rates {rates} of the base voice);",
        f"{r['clips']} clips of {r['clip_seconds']['min']}-{r['clip_seconds']['max']} s,",
        "watermarked and written as `synthesize` writes them; "
        f"{r['negatives']} unwatermarked conversions",
        "of other sentences as negatives and as the other speech for splice and mix.",
        "Each model is judged at its card's threshold, as `verify` judges a clip: "
        + ", ".join(f"{m['model']} {m['threshold']:.3f}" for m in models)
        + ".",
        "",
        "| attack | "
        + " | ".join(
            f"{m['model']} TPR (per voice) | lowest score | FPR on attacked negatives"
            for m in models
        )
        + " | survives (TPR >= 0.90) |",
        "|---|" + "---:|---:|---:|" * len(models) + "---|",
    ]
    for i, attack in enumerate(ATTACKS):
        cells, survives = [], []
        for m in models:
            a = m["attacks"][i]
            per = " / ".join(f"{v:.2f}" for v in a["tpr_per_voice"])
            cells.append(f"{a['tpr']:.3f} ({per}) | {a['min_score']:.3f} | {a['fpr']:.3f}")
            survives.append("yes" if a["tpr"] >= SURVIVES else "no")
        lines.append(f"| {attack.name} | " + " | ".join(cells) + f" | {' / '.join(survives)} |")
    lines += [
        "",
        "Average TPR over the 22 attacks: "
        + ", ".join(f"{m['model']} {m['average_tpr_over_attacks']:.3f}" for m in models)
        + f". Wall time {r['seconds']:.0f} s.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
