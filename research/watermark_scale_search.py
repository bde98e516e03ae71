"""Can the tone code tell the detector how far a clip's speed was changed?

    .venv/bin/python research/watermark_scale_search.py

The detector finds the watermark at the speeds it was trained on (x0.9, x1.0, x1.1) and
almost nowhere between (docs/benchmarks/watermark_heldout.md). If the speed factor were
known, resampling the clip back would restore it. The payload's tones keep their phase
for the whole clip, so one periodogram of the whole clip shows them as narrow peaks;
after a speed change by s they stand at s times their frequency. This study scores
every s in 0.78-1.28 (steps of 0.0002) by the tones' height over the local median of the
log periodogram (best tone of each pair, mean over pairs), resamples the clip back by
the best s and runs the shipped ONNX detector again. Prominence (best score over the
median score) is also taken on 200 clean negative segments, the gate such a search
would need. Clips: the first 12 of the held-out benchmark's watermarked clips
(``benchmarks/watermark_heldout.py`` caches them). Results: results/watermark_scale_search.md.
"""

from __future__ import annotations

import glob
import json
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.ndimage import maximum_filter1d, median_filter
from scipy.signal import resample_poly

from guardian.audio import Audio
from guardian.watermark import load_detector
from guardian.watermark._scoring import prepared, presence, window_score

RATE, SR = 24_000, 16_000
SCALES = np.arange(0.78, 1.28, 0.0002)
FACTORS = (1.0, 0.95, 1.05, 0.93, 0.87, 1.17, 1.23)


def estimate(mono: np.ndarray, tones: np.ndarray) -> tuple[float, float]:
    n = len(mono)
    hz = SR / n
    p = np.log(np.abs(np.fft.rfft(mono * np.hanning(n))) ** 2 + 1e-20)
    lo, hi = int(700 / hz), int(3300 / hz)
    band = p[lo:hi]
    rel = maximum_filter1d(band - median_filter(band, size=int(20 / hz) | 1), size=3)
    idx = tones.reshape(-1)[None, :] * SCALES[:, None] / hz - lo
    vals = np.interp(idx, np.arange(len(rel)), rel).reshape(len(SCALES), -1, 2)
    score = vals.max(axis=2).mean(axis=1)
    best = int(score.argmax())
    return float(SCALES[best]), float(score[best] - np.median(score))


def main() -> None:
    det = load_detector(threads=1)
    tones = np.asarray(det.embed.payload_tones)
    clips = sorted(glob.glob("benchmarks/out/wm-corpus/heldout/guardian-*/*.npy"))[:12]
    print("| speed | scale estimated exactly (±0.002) | TPR after restoring, card threshold |")
    print("|---|---:|---:|")
    for factor in FACTORS:
        exact, hits = 0, 0
        ratio = Fraction(factor).limit_denominator(100)
        for c in clips:
            y = resample_poly(np.load(c), ratio.denominator, ratio.numerator)
            mono = prepared(Audio(y[:, None], RATE))
            assert not isinstance(mono, str)
            s, _ = estimate(mono, tones)
            exact += abs(s - factor) <= 0.002
            back = Fraction(s).limit_denominator(2000)
            restored = resample_poly(mono, back.numerator, back.denominator)
            prob, _ = presence(det._run, restored, det.embed, bits=False, batch=4)
            hits += window_score(prob) >= det.threshold
        print(f"| x{factor:.2f} | {exact}/{len(clips)} | {hits / len(clips):.3f} |")
    meta = json.loads(Path("benchmarks/out/wm-corpus/corpus.json").read_text())
    proms, started = [], time.time()
    for key, a, b in meta["segments"][:200]:
        x = sf.read(f"benchmarks/out/wm-corpus/neg/{key}.wav", dtype="float32")[0][a:b]
        mono = prepared(Audio(x[:, None], RATE))
        if not isinstance(mono, str):
            proms.append(estimate(mono, tones)[1])
    q = np.quantile(proms, [0.5, 0.9, 0.99, 1.0])
    print(
        f"\nnegatives' prominence: median {q[0]:.2f}, 90 % {q[1]:.2f}, 99 % {q[2]:.2f}, "
        f"max {q[3]:.2f}; {1000 * (time.time() - started) / len(proms):.1f} ms a clip"
    )


if __name__ == "__main__":
    main()
