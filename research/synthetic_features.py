"""Which features should the synthetic-speech check of consent readings use?

    .venv/bin/python research/synthetic_features.py --human data/human/audio_data

Reads the corpus and the cached features of ``benchmarks/consent_synthetic.py`` (run it
first, same ``--n`` and ``--seed``) and keeps the clean recordings. Adds eight numbers
of pitch micro-variation from WORLD's DIO + StoneMask F0 (voiced share, log-F0 spread,
mean and 90th percentile of the first and second frame-to-frame log-F0 differences,
and the logs of the two means), on the idea that a vocal tract jitters where a
synthesiser's pitch contour is smooth.

For each feature set: the model trained as the benchmark trains it, its held-out
detection and false rejects, and the same with each synthesiser left out of training.
Writes ``research/results/synthetic_features.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pyworld

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import consent_synthetic as bench

from guardian.audio import Audio, resample


def pitch_statistics(audio: Audio) -> np.ndarray:
    x = resample(audio.mono(), audio.sample_rate, 16_000).astype(np.float64)
    f0, t = pyworld.dio(x, 16_000, frame_period=5.0)
    f0 = pyworld.stonemask(x, f0, t, 16_000)
    voiced = f0 > 0
    log = np.log(np.where(voiced, f0, 1.0))
    d1 = np.diff(log)[voiced[1:] & voiced[:-1]]
    d2 = (log[2:] - 2 * log[1:-1] + log[:-2])[voiced[2:] & voiced[1:-1] & voiced[:-2]]
    if d1.size < 5 or d2.size < 5:
        d1 = d2 = np.zeros(5)
    spread = float(log[voiced].std()) if voiced.sum() > 1 else 0.0
    m1, m2 = float(np.abs(d1).mean()), float(np.abs(d2).mean())
    return np.array(
        [
            voiced.mean(),
            spread,
            m1,
            np.percentile(np.abs(d1), 90),
            m2,
            np.percentile(np.abs(d2), 90),
            np.log(m1 + 1e-6),
            np.log(m2 + 1e-6),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--human", type=Path, required=True)
    parser.add_argument("--n", type=int, default=80)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    corpus = bench.ROOT / "benchmarks" / "out" / "synthetic-corpus"
    items = bench.human_items(args.human) + bench.synthetic_items(corpus, args.n, args.seed)
    saved = np.load(corpus / f"features-v3-{args.seed}-{len(items)}.npz")
    clean = saved["channels"] == "clean"
    which, x = saved["which"][clean], saved["x"][clean]
    pitch_file = corpus / f"pitch-{args.seed}-{len(items)}.npy"
    if pitch_file.exists():
        pitch = np.load(pitch_file)
    else:
        pitch = np.stack([pitch_statistics(bench._load(items[k])) for k in which])
        np.save(pitch_file, pitch)
    every = (saved["which"], saved["x"])
    parts = [
        (
            "All recordings, clean and through their two channels",
            every,
            {"embedding": slice(0, 256), "cepstra": slice(256, None), "both (shipped)": None},
        ),
        ("Clean recordings only, with pitch", (which, np.hstack([x, pitch])), PITCH_SETS),
    ]
    report = [
        "# Feature sets for the synthetic-speech check",
        "",
        f"`.venv/bin/python research/synthetic_features.py --human {args.human} "
        f"--n {args.n} --seed {args.seed}`. Columns after the first two: the held-out "
        "readings of a synthesiser caught when it was left out of training and threshold.",
    ]
    for title, (rows_of, feats_all), sets in parts:
        report += ["", f"## {title}", "", _table_head()]
        for name, cols in sets.items():
            feats = feats_all if cols is None else feats_all[:, cols]
            report.append(_row(name, feats, [items[k] for k in rows_of]))
            print(report[-1], flush=True)
    report.append("")
    out = Path(__file__).resolve().parent / "results" / "synthetic_features.md"
    out.write_text("\n".join(report))


PITCH_SETS: dict[str, slice | None] = {
    "embedding + cepstra (shipped)": slice(0, 336),
    "embedding + cepstra + pitch": None,
    "cepstra + pitch": slice(256, None),
    "pitch": slice(336, None),
}


def _table_head() -> str:
    head = " | ".join(bench.SYNTHESISERS)
    return (
        f"| features | caught, all trained | humans flagged | {head} |\n"
        + "|---|"
        + "---:|" * (2 + len(bench.SYNTHESISERS))
    )


def _row(name: str, feats: np.ndarray, rows: list[bench.Item]) -> str:
    y = np.array([i.synthetic for i in rows], dtype=np.float64)
    trains = np.array([i.train for i in rows])
    sources = np.array([i.source for i in rows])
    groups = np.array([i.group for i in rows])
    held, human = ~trains, ~trains & (y == 0)
    model = bench.train(feats[trains], y[trains], groups[trains])
    hit = np.array([model.score(r) >= model.threshold for r in feats])
    cells = [hit[held & (y == 1)].mean(), hit[human].mean()]
    for left in bench.SYNTHESISERS:
        keep = trains & (sources != left)
        m = bench.train(feats[keep], y[keep], groups[keep], left_out=left)
        hit = np.array([m.score(r) >= m.threshold for r in feats])
        cells.append(hit[held & (sources == left)].mean())
    return f"| {name} | " + " | ".join(f"{100 * c:.1f} %" for c in cells) + " |"


if __name__ == "__main__":
    main()
