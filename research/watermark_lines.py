"""Why a speed change hides the watermark, and what a search on its lines costs.

    .venv/bin/guardian watermark corpus -o data/wm-dev --count 32 --seed 4242
    .venv/bin/python research/watermark_lines.py

On development clips watermarked by the shipped model: the lines' whitened power, the
detector's speed tolerance, and detection with the lines' two best speeds undone.
"""

import dataclasses
import json
from collections import defaultdict
from fractions import Fraction
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.ndimage import uniform_filter1d as smooth
from scipy.signal import butter, resample_poly, sosfilt

from guardian.audio import Audio, resample
from guardian.watermark import Payload, embed, load_card, load_detector
from guardian.watermark._config import SHIPPED_CARD
from guardian.watermark._synthetic import random_nonspeech

SR, LINES, SPEEDS = 16_000, np.array([1600.0, 1650.0, 1700.0]), np.arange(0.76, 1.30, 2e-5)


def power_at(x, hz):  # band-limited, envelope divided out, whitened
    x = sosfilt(butter(4, (500, 3600), "bandpass", fs=SR, output="sos"), x)
    env = np.sqrt(smooth(x * x, 321) + 1e-8)
    x = x / np.maximum(env, env.max() * 10 ** (-35 / 20))
    n = min(8 * SR, len(x))
    size = 1 << int(np.ceil(np.log2(2 * n)))
    p = sum(
        np.abs(np.fft.rfft(x[s : s + n] * np.hanning(n), size)) ** 2
        for s in range(0, len(x) - n + 1, n // 2)
    )
    w, k = int(40 * size / SR) | 1, int(4 * size / SR) | 1
    p = p / ((smooth(p, w) * w - smooth(p, k) * k) / (w - k) + 1e-12)
    p = np.maximum(p, np.maximum(np.roll(p, 1), np.roll(p, -1)))
    return np.interp(hz * size / SR, np.arange(len(p)), p)


def candidates(x):
    out, strength = [], power_at(x, np.outer(SPEEDS, LINES)).sum(axis=1)
    for i in np.argsort(strength)[::-1]:
        if len(out) < 2 and all(abs(SPEEDS[i] / g - 1) > 3e-3 for g in out):
            out.append(float(SPEEDS[i]))
    return out


def speed(x, f):
    r = Fraction(f).limit_denominator(2000)
    return resample_poly(x, r.denominator, r.numerator).astype(np.float32)


def main():
    card, det = load_card(SHIPPED_CARD), load_detector(threads=2)
    det = dataclasses.replace(det, embed=dataclasses.replace(det.embed, speed_lines_hz=None))
    rng, r, others = np.random.default_rng(11), defaultdict(list), np.arange(1000, 2350, 50)
    t = det.threshold

    def score(x):  # without the shipped search
        return float(det.detect(Audio(x[:, None], SR)).score)

    def searched(x):
        return max(score(y) for y in [x] + [speed(x, 1 / f) for f in candidates(x)])

    for path in sorted(Path("data/wm-dev").glob("*.wav"))[:32]:
        a, rate = sf.read(path, dtype="float32")
        a = resample(a if a.ndim == 1 else a.mean(1), rate, SR)[: SR * int(rng.integers(3, 9))]
        m = embed(card, Audio(a[:, None], SR), Payload(int(rng.integers(1 << 16)))).mono()
        for name, x in (("marked", m), ("plain", a)):
            r[f"{name}: strongest of the 3 lines"].append(power_at(x, LINES).max())
            rest = power_at(x, others[(others < 1600) | (others > 1700)]).max()
            r[f"{name}: strongest other 50 Hz multiple"].append(rest)
        for e in (-0.01, -0.003, -0.001, 0.001, 0.003, 0.01):
            r[f"score at speed x{1 + e:.3f}"].append(score(speed(m, 1 + e)))
        f = float(rng.uniform(0.80, 1.25))
        r["marked, x0.80-1.25, no search"].append(score(speed(m, f)) >= t)
        r["marked, x0.80-1.25, search"].append(searched(speed(m, f)) >= t)
        r["plain, x0.80-1.25, search"].append(searched(speed(a, f)) >= t)
    noise = np.random.default_rng(9)
    for _ in range(150):
        x = random_nonspeech(noise, 2 * SR, SR)
        r["non-speech, no search"].append(score(x - x.mean()) >= t)
        r["non-speech, search"].append(searched(x - x.mean()) >= t)
    out = json.dumps({k: [round(float(np.mean(v)), 3), len(v)] for k, v in r.items()}, indent=1)
    (Path(__file__).parent / "results" / "watermark_lines.json").write_text(out + "\n")
    print(out)


if __name__ == "__main__":
    main()
