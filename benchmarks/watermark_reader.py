"""The tone-code reader, coherent (shipped) against incoherent (before v13), side by side.

    .venv/bin/python benchmarks/watermark_reader.py [--clips 48] [--negatives 150]

The payload of the shipped model is 16 tone pairs that embedding adds to the watermark.
Until v13 the reader compared each pair's short-time powers frame by frame (100 ms
frames, mean log ratio and its z score: the baseline below, kept here as it was). The
shipped reader (``_tones.read_bits``) sums each tone's spectrum over frames coherently,
because the tones keep their phase for the whole clip. Both read the same clips over the
same frames (those the detector marks):

- bit accuracy, the share of clips whose 16 bits all reach the confidence floor
  (``MIN_TONE_CONFIDENCE``), and how many wrong bits reached it, on held-out speech of
  the watermark benchmark embedded by the shipped model (code 31.5 dB under the clip)
  and at the v12 candidate's levels on the same weights (watermark 30 dB, code 27 dB),
  clean and after MP3 64k, speed 1.1 and Opus 16k;
- on unwatermarked clips of the benchmark (speech, music, drones, noise, sweeps; at least
  10 of each kind, the rest in proportion): the share of bits that reach the floor
  (chance; the floor's design rate is 5 %) and of clips whose 16 bits all do;
- reading time on a 60 s clip, the two readers taking turns (median of 5).

Run ``benchmarks/watermark.py`` once first: it synthesises and caches the clips. Writes
``OUT/watermark_reader.json`` and ``docs/benchmarks/watermark_reader.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from guardian.audio import Audio, resample
from guardian.watermark import SHIPPED_CARD, Payload, WatermarkModel, embed, load_card
from guardian.watermark._detect import MIN_TONE_CONFIDENCE, _presence
from guardian.watermark._tones import SPEEDS, read_bits
from guardian.watermark.attacks import by_name

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks" / "watermark_reader.md"
RATE = 16000
CARDS = {"guardian-wm-v12": {"snr_db": 30.0, "code_snr_db": 27.0}, "guardian-wm-v13": {}}
"""Embeddings compared: the shipped one, and the v12 candidate's levels on the same weights."""
ATTACKS = ("clean", "mp3_64k", "speed_1.1", "opus_16k")
Tones = Sequence[tuple[float, float]]
Reader = Callable[[np.ndarray, np.ndarray, Tones], tuple[list[int], list[float]]]


def incoherent_read(
    mono: np.ndarray, marked: np.ndarray, tones: Tones
) -> tuple[list[int], list[float]]:
    """The reader before v13: per 100 ms frame, the log power ratio of each pair's two
    tones; a bit is the sign of its mean, its confidence ``2 Phi(|z|) - 1``."""
    window, hop = 1600, 400
    pairs = np.asarray(tones, dtype=np.float64)
    if len(mono) < window:
        mono = np.pad(mono, (0, window - len(mono)))
    starts = np.arange(0, len(mono) - window + 1, hop)
    csum = np.concatenate([[0.0], np.cumsum(np.asarray(marked, dtype=np.float64))])
    lo = np.minimum(starts // 160, len(marked))
    hi = np.minimum((starts + window) // 160, len(marked))
    keep = (csum[hi] - csum[lo]) / np.maximum(1, hi - lo) >= 0.5
    if keep.sum() < 8:
        keep[:] = True
    frames = np.stack([mono[i : i + window] for i in starts[keep]]) * np.hanning(window)
    spec = np.fft.rfft(frames, axis=1)
    power = spec.real**2 + spec.imag**2
    best: tuple[float, np.ndarray] | None = None
    for factor in SPEEDS:
        k = np.clip(np.rint(pairs * factor * window / RATE).astype(int), 2, power.shape[1] - 3)
        energy = power[:, k] + 1e-12
        between = (power[:, k - 2] + power[:, k + 2]).mean(axis=-1) / 2 + 1e-12
        tonality = float(np.log(energy.max(axis=-1) / between).mean())
        tonality -= 0.0 if factor == 1.0 else 0.2
        if best is None or tonality > best[0]:
            best = (tonality, np.log(energy[..., 1]) - np.log(energy[..., 0]))
    assert best is not None
    ratio = best[1]
    mean, std = ratio.mean(0), ratio.std(0)
    z = mean / (std / math.sqrt(max(1.0, len(ratio) / 4)) + 1e-9)
    return [int(v > 0) for v in z], [math.erf(abs(float(v)) / math.sqrt(2)) for v in z]


READERS: dict[str, Reader] = {"incoherent (before v13)": incoherent_read, "coherent": read_bits}


def _mono(audio: Audio) -> np.ndarray:
    mono = resample(audio.mono(), audio.sample_rate, RATE)
    return mono - float(mono.mean())


def _model(levels: dict[str, float]) -> WatermarkModel:
    model = load_card(SHIPPED_CARD)
    return dataclasses.replace(model, embed=dataclasses.replace(model.embed, **levels))


def watermarked(clips: list[Path]) -> list[dict[str, Any]]:
    rows = []
    for card, levels in CARDS.items():
        model = _model(levels)
        tones = model.embed.payload_tones
        assert tones is not None
        tally = {(r, a): [0, 0, 0, 0] for r in READERS for a in ATTACKS}
        for n, path in enumerate(clips):
            raw, sr = sf.read(path, dtype="float32")
            payload = Payload((n * 7919) % 2**16)
            truth = np.array(payload.bits())
            marked = embed(model, Audio(raw[:, None], sr), payload)
            for attack in ATTACKS:
                audio = (
                    marked
                    if attack == "clean"
                    else by_name(attack)(marked, np.random.default_rng(n))
                )
                mono = _mono(audio)
                prob, _ = _presence(model, mono, bits=False)
                for name, reader in READERS.items():
                    bits, conf = reader(mono, prob > 0.5, tones)
                    right, sure = np.array(bits) == truth, np.array(conf) >= MIN_TONE_CONFIDENCE
                    t = tally[(name, attack)]
                    t[0] += int(right.sum())
                    t[1] += int(sure.all())
                    t[2] += int((~right & sure).sum())
                    t[3] += 1
            print(f"{card} clip {n + 1}/{len(clips)}", flush=True)
        for (name, attack), (right, all_sure, wrong_sure, count) in tally.items():
            rows.append(
                {
                    "card": card,
                    "code_snr_db": model.embed.code_snr_db,
                    "reader": name,
                    "attack": attack,
                    "bit_accuracy": right / (16 * count),
                    "all_bits_confident": all_sure / count,
                    "wrong_bits_confident": wrong_sure,
                    "clips": count,
                }
            )
    return rows


def unwatermarked(clips: list[tuple[Path, str]], tones: Tones) -> list[dict[str, Any]]:
    conf: dict[tuple[str, str], list[list[float]]] = {}
    for n, (path, kind) in enumerate(clips):
        raw, sr = sf.read(path, dtype="float32")
        mono = _mono(Audio(raw[:, None] if raw.ndim == 1 else raw, sr))
        everywhere = np.ones(len(mono) // 160 + 1, bool)
        for name, reader in READERS.items():
            conf.setdefault((name, kind), []).append(reader(mono, everywhere, tones)[1])
        if (n + 1) % 25 == 0:
            print(f"unwatermarked clip {n + 1}/{len(clips)}", flush=True)
    rows = []
    for (name, kind), values in conf.items():
        arr = np.array(values) >= MIN_TONE_CONFIDENCE
        rows.append(
            {
                "reader": name,
                "kind": kind,
                "clips": len(values),
                "bits_confident": float(arr.mean()),
                "all_bits_confident": float(arr.all(axis=1).mean()),
            }
        )
    return rows


def speed(clip: Path, tones: Tones, repeats: int = 5) -> dict[str, float]:
    raw, sr = sf.read(clip, dtype="float32")
    mono = _mono(Audio(raw[:, None], sr))
    mono = np.tile(mono, math.ceil(60 * RATE / len(mono)))[: 60 * RATE]
    marks = np.ones(len(mono) // 160, bool)
    times: dict[str, list[float]] = {name: [] for name in READERS}
    for _ in range(repeats):
        for name, reader in READERS.items():
            start = time.perf_counter()
            reader(mono, marks, tones)
            times[name].append(time.perf_counter() - start)
    return {name: 60.0 / float(np.median(t)) for name, t in times.items()}


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Tone-code reader: coherent against incoherent",
        "",
        f"`benchmarks/watermark_reader.py` (see its docstring): {report['clips']} held-out",
        f"speech clips of the watermark benchmark and {report['negatives']} of its",
        "unwatermarked clips. Bars for the payload: bit accuracy >= 0.98 clean and >= 0.90",
        f"after MP3 64k. Confidence floor {MIN_TONE_CONFIDENCE}.",
        "",
        "## Watermarked speech",
        "",
        "| card (code SNR) | attack | reader | bit accuracy | all 16 bits confident "
        "| wrong bits confident |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["watermarked"]:
        lines.append(
            f"| {r['card']} ({r['code_snr_db']:.1f} dB) | {r['attack']} | {r['reader']} | "
            f"{r['bit_accuracy']:.3f} | {r['all_bits_confident']:.2f} | "
            f"{r['wrong_bits_confident']} |"
        )
    lines += [
        "",
        "## Unwatermarked clips (chance)",
        "",
        "| kind | clips | reader | bits confident | all 16 bits confident |",
        "|---|---|---|---|---|",
    ]
    for r in sorted(report["unwatermarked"], key=lambda r: (r["kind"], r["reader"])):
        lines.append(
            f"| {r['kind']} | {r['clips']} | {r['reader']} | {r['bits_confident']:.3f} | "
            f"{r['all_bits_confident']:.3f} |"
        )
    lines += ["", "## Reading speed (60 s clip, this machine, median of 5)", ""]
    lines += ["| reader | x real time |", "|---|---|"]
    lines += [f"| {name} | {x:.0f} |" for name, x in report["speed"].items()]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clips", type=int, default=48, help="watermarked speech clips")
    parser.add_argument("--negatives", type=int, default=150, help="unwatermarked clips (about)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = parser.parse_args()
    corpus = args.out / "wm-corpus"
    if args.clips < 1 or args.negatives < 1:
        raise SystemExit("--clips and --negatives must be at least 1")
    if not (corpus / "corpus.json").is_file():
        raise SystemExit("no clips: run benchmarks/watermark.py once first (it caches them)")
    meta = json.loads((corpus / "corpus.json").read_text())
    positives = sorted((corpus / "pos").glob("*.wav"))[: args.clips]
    # every kind of unwatermarked clip, in proportion, at least 10 of each, evenly spread
    kinds: dict[str, list[Path]] = {}
    for neg in meta["negatives"]:
        kinds.setdefault(neg["kind"], []).append(corpus / "neg" / f"{neg['key']}.wav")
    total = sum(len(paths) for paths in kinds.values())
    negatives = []
    for kind, paths in kinds.items():
        take = min(len(paths), max(10, round(args.negatives * len(paths) / total)))
        picks = np.linspace(0, len(paths) - 1, take).round().astype(int)
        negatives += [(paths[i], kind) for i in picks]
    # the unwatermarked clips and the timing are read for the shipped card's tones
    tones = load_card(SHIPPED_CARD).embed.payload_tones
    assert tones is not None
    report = {
        "clips": len(positives),
        "negatives": len(negatives),
        "watermarked": watermarked(positives),
        "unwatermarked": unwatermarked(negatives, tones),
        "speed": speed(positives[0], tones),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "watermark_reader.json").write_text(json.dumps(report, indent=2) + "\n")
    DOC.write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
