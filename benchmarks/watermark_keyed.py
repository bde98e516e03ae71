"""The secret tone code: keyed layouts against the shipped layout, side by side.

    .venv/bin/python benchmarks/watermark_keyed.py [--clips 40] [--keys 3] [--negatives 100]

A deployment reads its payload at tone frequencies its master key places
(``PayloadKey.tones``: one pair in each 100 Hz band of 970-2520 Hz), not at the shipped
model's public ones. This checks that moving the code costs nothing: on held-out speech of
the watermark benchmark's corpus, each layout (the shipped tones, and the tones of
``--keys`` fixed benchmark secrets) embeds a random payload per clip, every attack of
``guardian.watermark.attacks`` runs with the same random draws for every layout, and
``detect`` reads the clip at that layout's tones. Per attack and layout:

- ``detected``: share of clips at or above the model's threshold (presence);
- ``payload``: share whose 16 bits all read right and reach the confidence floor
  (``MIN_TONE_CONFIDENCE``), i.e. a payload verify trusts;
- ``wrong_confident``: bits read wrong yet at the floor, over all clips.

On unwatermarked clips of the corpus (clean) it also reports, per layout, the share of
bits that reach the floor by chance (design rate 5 %) and of clips whose 16 bits all do.
Writes ``docs/benchmarks/watermark_keyed.json`` and ``.md``. The corpus
is the watermark benchmark's (``benchmarks/watermark.py`` builds and caches it).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import watermark as wb

from guardian.audio import Audio
from guardian.watermark import (
    SHIPPED_CARD,
    Payload,
    PayloadKey,
    WatermarkModel,
    detect,
    embed,
    load_card,
)
from guardian.watermark._detect import MIN_TONE_CONFIDENCE
from guardian.watermark.attacks import ATTACKS

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks" / "watermark_keyed.md"


def layouts(model: WatermarkModel, keys: int) -> dict[str, WatermarkModel]:
    """The shipped layout and ``keys`` keyed ones (fixed benchmark secrets)."""
    out = {"shipped": model}
    for i in range(keys):
        secret = hashlib.sha256(f"watermark-keyed-benchmark:{i}".encode()).digest()
        tones = PayloadKey.derive(secret).tones
        out[f"keyed-{i}"] = replace(model, embed=replace(model.embed, payload_tones=tones))
    return out


def _read(path: Path) -> Audio:
    x, rate = sf.read(path, dtype="float32", always_2d=True)
    return Audio(x, rate)


def _tally(rows: list[tuple[bool, bool, int]]) -> dict[str, float]:
    n = max(1, len(rows))
    return {
        "detected": sum(r[0] for r in rows) / n,
        "payload": sum(r[1] for r in rows) / n,
        "wrong_confident": float(sum(r[2] for r in rows)),
    }


def evaluate(models: dict[str, WatermarkModel], clips: list[Path]) -> dict[str, Any]:
    audio = [_read(p) for p in clips]
    rows: dict[str, dict[str, list[tuple[bool, bool, int]]]] = {
        name: {a.name: [] for a in ATTACKS} for name in models
    }
    for i, clip in enumerate(audio):
        bits = [int(b) for b in np.random.default_rng(1000 + i).integers(0, 2, 16)]
        payload = Payload.from_bits(bits)
        other = audio[(i + 1) % len(audio)]
        for name, model in models.items():
            marked = embed(model, clip, payload)
            for k, attack in enumerate(ATTACKS):
                rng = np.random.default_rng([i, k])  # the same draw for every layout
                d = detect(model, attack(marked, rng, other=other))
                conf = np.asarray(d.bit_confidence) >= MIN_TONE_CONFIDENCE
                right = np.asarray(d.bits) == np.asarray(bits)
                rows[name][attack.name].append(
                    (
                        d.detected,
                        bool(d.detected and conf.all() and right.all()),
                        int((conf & ~right).sum()),
                    )
                )
        print(f"clip {i + 1}/{len(audio)}", file=sys.stderr, flush=True)
    return {n: {a: _tally(r) for a, r in per.items()} for n, per in rows.items()}


def chance(models: dict[str, WatermarkModel], negatives: list[Path]) -> dict[str, Any]:
    out = {}
    for name, model in models.items():
        confident, whole = 0, 0
        for p in negatives:
            d = detect(model, _read(p))
            conf = np.asarray(d.bit_confidence) >= MIN_TONE_CONFIDENCE
            confident += int(conf.sum())
            whole += int(conf.all())
        out[name] = {
            "bits_at_floor": confident / max(1, 16 * len(negatives)),
            "clips_all_16": whole / max(1, len(negatives)),
        }
    return out


def markdown(report: dict[str, Any]) -> str:
    names = list(report["attacks"])
    head = "| attack | " + " | ".join(f"{n}: detected / payload" for n in names) + " |"
    lines = [head, "|---|" + "---|" * len(names)]
    for attack in report["attacks"][names[0]]:
        cells = [report["attacks"][n][attack] for n in names]
        lines.append(
            f"| {attack} | "
            + " | ".join(f"{c['detected']:.3f} / {c['payload']:.3f}" for c in cells)
            + " |"
        )
    mean = {n: float(np.mean([c["payload"] for c in report["attacks"][n].values()])) for n in names}
    lines.append("| **mean payload** | " + " | ".join(f"**{mean[n]:.3f}**" for n in names) + " |")
    wrong = {n: sum(c["wrong_confident"] for c in report["attacks"][n].values()) for n in names}
    neg = report["negatives"]
    tones = "\n".join(f"- `{n}`: {report['tones'][n]}" for n in names)
    return f"""# The secret tone code against the shipped one

A deployment reads its 16-bit payload at tone frequencies its master key places
(`PayloadKey.tones`), so nobody without the key can write this deployment's payload.
This compares the shipped (public) layout with {len(names) - 1} keyed layouts on the
same {report["clips"]} held-out clips of the watermark benchmark's corpus, every attack
drawing the same randomness for every layout. "payload" is the share of clips whose 16
bits all read right and reach the confidence floor ({MIN_TONE_CONFIDENCE}).

Reproduce: `{report["command"]}` ({report["seconds"] / 60:.0f} min on 2 cores).

{chr(10).join(lines)}

Wrong bits at the confidence floor, all attacks: {", ".join(f"{n} {wrong[n]:.0f}" for n in names)}.

On {report["negative_clips"]} unwatermarked clips (clean): bits at the floor by chance
{", ".join(f"{n} {neg[n]['bits_at_floor']:.3f}" for n in names)}; clips with all 16 at
the floor {", ".join(f"{n} {neg[n]['clips_all_16']:.3f}" for n in names)}.

Layouts (Hz, one 0-tone/1-tone pair per bit):

{tones}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clips", type=int, default=40)
    parser.add_argument("--keys", type=int, default=3)
    parser.add_argument("--negatives", type=int, default=100)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = parser.parse_args()
    if args.clips < 2 or args.keys < 1 or args.negatives < 1:
        raise SystemExit("--clips must be at least 2, --keys and --negatives at least 1")
    torch.set_num_threads(1)
    started = time.perf_counter()
    meta = wb.build_corpus(args.out, 200, 1000)
    corpus = args.out / "wm-corpus"
    clips = [corpus / "pos" / f"{p['key']}.wav" for p in meta["positives"]][: args.clips]
    negatives = sorted((corpus / "neg").glob("*.wav"))[: args.negatives]
    models = layouts(load_card(SHIPPED_CARD), args.keys)
    report = {
        "command": " ".join([".venv/bin/python benchmarks/watermark_keyed.py", *sys.argv[1:]]),
        "clips": len(clips),
        "negative_clips": len(negatives),
        "tones": {n: [list(p) for p in m.embed.payload_tones or ()] for n, m in models.items()},
        "attacks": evaluate(models, clips),
        "negatives": chance(models, negatives),
    }
    report["seconds"] = time.perf_counter() - started
    DOC.with_suffix(".json").write_text(json.dumps(report, separators=(",", ":")) + "\n")
    DOC.write_text(markdown(report))
    print(DOC.read_text())


if __name__ == "__main__":
    main()
