"""Does a detector tuned on tempo changes (guardian-wm-v15's stage 7) read WSOLA tempo
changes better than the one it was tuned from, and does it fire less on music that the
speed search moves onto the watermark's lines?

    .venv/bin/guardian watermark corpus -o data/wm-dev --count 32 --seed 4242
    mkdir -p /tmp/v14 && for f in yaml pt detector.onnx; do
        git show 29a8433:guardian/watermark/weights/guardian-wm-v14.$f > /tmp/v14/guardian-wm-v14.$f
    done
    .venv/bin/python research/watermark_tempo.py /tmp/v14/guardian-wm-v14.yaml \
        guardian/watermark/weights/guardian-wm-v15.yaml

Development clips only (seed 4242), each model at its own card threshold. The tempo
changes here are SoX's WSOLA (`sox tempo -s`) and librosa's phase vocoder: neither is
the held-out family's ffmpeg `atempo`, nor training's own WSOLA. The negatives are 1,500
generated segments of a seed (31337) that neither export's calibration (7) nor the
benchmarks use. About 20 minutes on 2 cores.
"""

import json
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import librosa
import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

from guardian.app._wm_admin import _negatives
from guardian.audio import Audio, resample
from guardian.watermark import Payload, detect, embed, load_card
from guardian.watermark._detect import look
from guardian.watermark._scoring import _confirmed, window_score

SR = 16_000


def sox_tempo(x, factor):
    raw = ["-t", "f32", "-r", str(SR), "-c", "1"]
    done = subprocess.run(
        ["sox", *raw, "-", *raw, "-", "tempo", "-s", str(factor)],
        input=x.astype(np.float32).tobytes(),
        capture_output=True,
        check=True,
    )
    return np.frombuffer(done.stdout, dtype=np.float32)


def by_speed(factor):
    r = Fraction(factor).limit_denominator(100)
    return lambda x: resample_poly(x, r.denominator, r.numerator)


ATTACKS = {"clean": lambda x: x}
ATTACKS |= {
    f"sox tempo x{f}": lambda x, f=f: sox_tempo(x, f) for f in (0.85, 0.9, 0.95, 1.05, 1.1, 1.2)
}
ATTACKS |= {
    f"phase-vocoder stretch x{f}": lambda x, f=f: librosa.effects.time_stretch(x, rate=f)
    for f in (0.85, 1.15)
}
ATTACKS |= {
    f"phase-vocoder pitch {s:+d}": lambda x, s=s: librosa.effects.pitch_shift(x, sr=SR, n_steps=s)
    for s in (-1, 1)
}
ATTACKS |= {f"speed x{f}": by_speed(f) for f in (0.93, 1.07)}


def dev_clips():
    rng = np.random.default_rng(5)
    for path in sorted(Path("data/wm-dev").glob("*.wav"))[:32]:
        a, rate = sf.read(path, dtype="float32")
        a = resample(a if a.ndim == 1 else a.mean(1), rate, SR)[: SR * int(rng.integers(3, 9))]
        yield a, Payload(int(rng.integers(1 << 16)))


def tpr(model):
    hits = dict.fromkeys(ATTACKS, 0)
    clips = list(dev_clips())
    for a, payload in clips:
        x = embed(model, Audio(a[:, None], SR), payload).mono()
        for name, attack in ATTACKS.items():
            y = np.asarray(attack(x), dtype=np.float32)
            hits[name] += detect(model, Audio(y[:, None], SR)).detected
    return {name: round(h / len(clips), 3) for name, h in hits.items()}


def music_on_lines(model):
    """Negatives whose look with a speed change undone reaches the threshold, and those
    of them whose tone code also confirms (what a false positive of the search needs)."""
    high = confirmed = 0
    for audio in _negatives([], limit=1500, seed=31337):
        others = look(model, audio, search_all=True).others
        up = [o for o in others if window_score(o.prob) >= model.threshold]
        high += bool(up)
        confirmed += any(_confirmed(o, model.embed) is not None for o in up)  # verify's rule
    return {"negatives": 1500, "restored look >= threshold": high, "and confirmed": confirmed}


def main():
    out = {}
    for card in sys.argv[1:]:
        model = load_card(Path(card))
        out[model.model_id] = {
            "threshold": round(model.threshold, 4),
            "TPR at the card threshold, 32 development clips": tpr(model),
            "generated negatives, speed search": music_on_lines(model),
        }
        print(json.dumps(out[model.model_id], indent=1), flush=True)
    (Path(__file__).parent / "results" / "watermark_tempo.json").write_text(
        json.dumps(out, indent=1) + "\n"
    )


if __name__ == "__main__":
    main()
