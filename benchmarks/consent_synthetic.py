"""Train and measure the synthetic-speech check of enrollment.

    .venv/bin/python benchmarks/consent_synthetic.py --human data/human [--write-model]

Human speech: ``--human`` is a copy of the ``audio_data`` folder of the Resemblyzer
repository (github.com/resemble-ai/Resemblyzer, CC BY 4.0 LibriSpeech utterances and
public interview recordings), which holds:

- ``librispeech_train-clean-100``: 251 utterances, one per speaker. Speakers whose
  id hashes even train the model; the others are held out;
- ``librispeech_test-other``: 100 utterances of 10 more speakers, held out;
- ``donald_trump/real``: 12 interview recordings from another source and channel,
  cut into 15 s pieces (at most 8 per recording), held out.

Synthetic speech: ``--n`` readings per synthesiser (festival slt, kal, ked; Piper joe;
espeak-ng with a random accent and variant; Guardian's cloning engine, a random public
voice over Piper), half consent statements with a random subject, phrase and code, half
random sentences. Even-numbered readings train, odd ones are held out. They are
synthesised once into ``--corpus`` and reused.

Every recording is scored clean and through two channels drawn from MP3 32/64 kbps,
AAC 64 kbps, Opus 16 kbps, the 8 kHz phone band and a room (coloured noise), so that a
codec never tells the classes apart, each time at a random peak level from -30 to
-0.5 dBFS, so that loudness does not either. The threshold is the 99th percentile of the
training humans' 5-fold cross-validated scores: nothing held out chooses anything.

Then each synthesiser is left out of training in turn, to show what the check does with
one it has never heard. Also measured: the shipped consent voices' joined readings (the
demo's and the tests'), and the time the check takes.

``--write-model`` writes ``guardian/consent/assets/synthetic_speech.json`` (update
``MODEL_SHA256`` in ``guardian/consent/_synthetic.py``). Reports go to
``docs/benchmarks/consent_synthetic.{json,md}``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import platform
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from consent_speech import Speak
from consent_speech import _voices as consent_voices

from guardian.app._consent_voice import in_room, spoken_consent
from guardian.audio import Audio, read_audio, resample
from guardian.consent import new_phrase, render_statement
from guardian.consent._speech import CODE_LENGTH, CODE_WORDS
from guardian.consent._synthetic import (
    MODEL_PATH,
    SyntheticModel,
    features,
    fit,
)
from guardian.corpus import public_voice, sentence
from guardian.watermark.attacks import by_name

ROOT = Path(__file__).resolve().parents[1]
PEAK_DBFS = (-30.0, -0.5)
"""Every recording is set to a random peak level in this range: the synthetic corpus is
written near full scale and LibriSpeech is quieter, so level must not tell them apart."""
CHANNELS = ("mp3_32k", "mp3_64k", "aac_64k", "opus_16k", "resample_8k", "room")
L2 = 10.0
HUMAN_FLAG_RATE = 0.01
FOLDS = 5
NAMES = ("Alex Morgan", "Priya Tomas", "Martha Oliver", "Kwame Lindqvist", "Grace Okafor")
ORGS = ("Guardian Demo Studio", "Harbour Audio", "Acme Voice Labs", "Northwind Audiobooks")
SYNTHESISERS = ("festival slt", "festival kal", "festival ked", "piper joe", "espeak-ng", "engine")
JOINED = {
    "slt": ROOT / "guardian" / "app" / "assets" / "consent" / "slt",
    "kal": ROOT / "tests" / "data" / "voices" / "kal",
}


@dataclass(frozen=True)
class Item:
    path: Path
    source: str
    group: str
    """Recordings of one group (a speaker, a synthesised text) share a fold."""
    train: bool
    synthetic: bool
    start_s: float = 0.0
    seconds: float | None = None


# --- corpora -------------------------------------------------------------------------


def _speaker_trains(speaker: str) -> bool:
    return int(hashlib.sha256(speaker.encode()).hexdigest(), 16) % 2 == 0


def human_items(root: Path) -> list[Item]:
    items = []
    for p in sorted((root / "librispeech_train-clean-100").glob("*.flac")):
        speaker = p.name.split("-")[0]
        items.append(Item(p, "LibriSpeech clean", speaker, _speaker_trains(speaker), False))
    for p in sorted((root / "librispeech_test-other").glob("*/*.flac")):
        items.append(Item(p, "LibriSpeech other", p.parent.name, False, False))
    for p in sorted((root / "donald_trump" / "real").glob("*.mp3")):
        length = read_audio(p, max_seconds=3600).duration
        for k in range(min(8, int(length // 15))):
            items.append(Item(p, "interviews", p.stem, False, False, 15.0 * k, 15.0))
    if not items:
        raise SystemExit(f"no human recordings under {root}")
    return items


def _text(rng: random.Random) -> str:
    if rng.random() < 0.5:
        code = tuple(rng.choice(CODE_WORDS) for _ in range(CODE_LENGTH))
        return render_statement(
            name=rng.choice(NAMES), org=rng.choice(ORGS), code=code, phrase=new_phrase(rng.choice)
        )
    return sentence(rng, rng.randint(2, 4))


def _speakers() -> dict[str, Speak]:
    """The consent benchmark's voices, and the cloning engine over Piper."""
    voices = consent_voices()
    piper = voices["piper joe"]

    def engine(text: str, rng: random.Random) -> tuple[np.ndarray, int]:
        samples, rate = piper(text, rng)
        return public_voice(rng)(resample(np.asarray(samples, np.float32), rate, 16_000)), 16_000

    return {**voices, "engine": engine}


def synthetic_items(corpus: Path, n: int, seed: int) -> list[Item]:
    """``n`` readings per synthesiser, synthesised into ``corpus`` unless already there."""
    speakers: dict[str, Speak] | None = None
    items = []
    for k, name in enumerate(SYNTHESISERS):
        folder = corpus / name.replace(" ", "-")
        folder.mkdir(parents=True, exist_ok=True)
        rng = random.Random(seed * 100 + k)
        for i in range(n):
            path = folder / f"{i:04d}.flac"
            text = _text(rng)
            if not path.exists():
                speakers = speakers or _speakers()
                samples, rate = speakers[name](text, rng)
                peak = max(1e-6, float(np.max(np.abs(samples))))
                sf.write(path, (np.asarray(samples) * 0.9 / peak).astype(np.float32), rate)
            items.append(Item(path, name, f"{name}/{i}", i % 2 == 0, True))
        print(json.dumps({"corpus": name, "readings": n}), flush=True)
    return items


# --- features ------------------------------------------------------------------------


def _load(item: Item) -> Audio:
    audio = read_audio(item.path, max_seconds=3600)
    mono = audio.mono()
    if item.seconds is not None:
        start = int(item.start_s * audio.sample_rate)
        mono = mono[start : start + int(item.seconds * audio.sample_rate)]
    return Audio(resample(mono.astype(np.float32), audio.sample_rate, 48_000)[:, None], 48_000)


def through(audio: Audio, channel: str, rng: np.random.Generator) -> Audio:
    if channel == "clean":
        return audio
    if channel == "room":
        return in_room(audio, rng, level_dbfs=rng.uniform(-60.0, -40.0))
    return by_name(channel)(audio, rng)


def at_level(audio: Audio, peak_dbfs: float) -> Audio:
    """``audio`` scaled so that its peak is at ``peak_dbfs``."""
    peak = max(float(np.max(np.abs(audio.samples))), 1e-9)
    return Audio(
        (audio.samples * (10 ** (peak_dbfs / 20) / peak)).astype(np.float32), audio.sample_rate
    )


def feature_rows(items: list[Item], seed: int) -> Iterator[tuple[int, str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    for k, item in enumerate(items):
        audio = _load(item)
        for channel in ("clean", *rng.choice(CHANNELS, 2, replace=False)):
            heard = through(at_level(audio, rng.uniform(*PEAK_DBFS)), str(channel), rng)
            yield k, str(channel), features(heard)
        if k % 50 == 0:
            print(json.dumps({"features": k, "of": len(items)}), flush=True)


# --- training and measurement --------------------------------------------------------


def _folds(groups: np.ndarray) -> np.ndarray:
    """A fold number per row; rows of one group share it."""
    names = sorted(set(groups.tolist()))
    order = random.Random(0).sample(names, len(names))
    fold = {g: i % FOLDS for i, g in enumerate(order)}
    return np.array([fold[g] for g in groups])


def train(x: np.ndarray, y: np.ndarray, groups: np.ndarray, left_out: str = "") -> SyntheticModel:
    """Fit on all rows; the threshold flags ``HUMAN_FLAG_RATE`` of cross-validated humans."""
    fold = _folds(groups)
    cv = np.empty(len(y))
    for f in range(FOLDS):
        held = fold == f
        m = fit(x[~held], y[~held], l2=L2, model_id="cv", threshold=0.5, trained_on=())
        cv[held] = [m.score(row) for row in x[held]]
    threshold = float(np.quantile(cv[y == 0], 1.0 - HUMAN_FLAG_RATE))
    names = tuple(s for s in SYNTHESISERS if s != left_out)
    return fit(x, y, l2=L2, model_id="synthetic-speech-v1", threshold=threshold, trained_on=names)


def rates(flagged: np.ndarray, sources: np.ndarray, channels: np.ndarray) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for s in sorted(set(sources.tolist())):
        m = sources == s
        out[s] = {
            "recordings": int(m.sum()),
            "flagged": round(float(flagged[m].mean()), 4),
            "by_channel": {
                c: round(float(flagged[m & (channels == c)].mean()), 4)
                for c in ("clean", *CHANNELS)
                if (m & (channels == c)).any()
            },
        }
    return out


def joined_readings(model: SyntheticModel, n: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    out = {}
    for voice, folder in JOINED.items():
        flagged = 0
        for _ in range(n):
            code = tuple(rng.choice(CODE_WORDS) for _ in range(CODE_LENGTH))
            audio = spoken_consent(folder, new_phrase(rng.choice), code)
            flagged += model.score(features(audio)) >= model.threshold
        out[voice] = round(flagged / n, 4)
    return out


def check_time(items: list[Item], repeats: int) -> dict[str, float]:
    """Milliseconds per recording of the check's features (its own embedding at the
    reference level, and the cepstra); the model itself is one dot product."""
    audio = [_load(i) for i in items[:repeats]]
    features(audio[0])  # the encoder's first load is not the check's cost
    t0 = time.perf_counter()
    for a in audio:
        features(a)
    ms = (time.perf_counter() - t0) / len(audio) * 1000
    seconds = sum(a.duration for a in audio) / len(audio)
    return {"check_ms": round(ms, 1), "mean_recording_s": round(seconds, 1)}


def _pct(x: float) -> str:
    return f"{100 * x:.1f} %"


def markdown(r: dict[str, Any]) -> str:
    lines = [
        "# Synthetic-speech check of consent readings",
        "",
        f"`{r['command']}` on {r['machine']}. Model `{r['model_id']}`, threshold "
        f"{r['threshold']:.3f} (the 99th percentile of cross-validated training humans).",
        "",
        "Held out from training and from the threshold: LibriSpeech speakers whose id hashes "
        "odd, all of LibriSpeech test-other, the interview recordings (another source), and "
        "the odd-numbered readings of each synthesiser. Each recording is scored clean and "
        "through two random channels, so a channel's column holds about a third of its "
        "row's recordings clean and a ninth for each other channel.",
        "",
        "| held-out source | recordings | flagged as synthetic | "
        + " | ".join(("clean", *CHANNELS))
        + " |",
        "|---|---:|---:|" + "---:|" * (1 + len(CHANNELS)),
    ]
    for source, v in r["held_out"].items():
        cells = [
            _pct(v["by_channel"][c]) if c in v["by_channel"] else "-" for c in ("clean", *CHANNELS)
        ]
        lines.append(
            f"| {source} | {v['recordings']} | {_pct(v['flagged'])} | " + " | ".join(cells) + " |"
        )
    lines += [
        "",
        f"Genuine human readings flagged (false rejects), all held-out human sources: "
        f"**{_pct(r['false_reject'])}** of {r['human_held_out']}. Synthetic readings "
        f"caught: **{_pct(r['detection'])}** of {r['synthetic_held_out']}.",
        "",
        "## A synthesiser the check has never heard",
        "",
        "Each synthesiser left out of training (and of the threshold) in turn; its held-out "
        "readings are then scored, beside the held-out humans.",
        "",
        "| left out | its readings caught | humans flagged |",
        "|---|---:|---:|",
    ]
    for name, v in r["left_out"].items():
        lines.append(f"| {name} | {_pct(v['caught'])} | {_pct(v['false_reject'])} |")
    lines += [
        "",
        "The check knows the synthesisers it was trained on. A new one is caught only where "
        "it happens to sound like them.",
        "",
        "## The shipped consent voices",
        "",
        f"Joined readings of {r['joined_n']} random challenges each, as the demo and the "
        "tests build them: "
        + ", ".join(f"{k} {_pct(v)} flagged" for k, v in r["joined"].items())
        + ".",
        "",
        f"Cost of the check: {r['time']['check_ms']} ms for a "
        f"{r['time']['mean_recording_s']} s recording (a speaker embedding of its own, of "
        "the recording at the reference level, and the cepstra).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--human", type=Path, required=True)
    parser.add_argument(
        "--corpus", type=Path, default=ROOT / "benchmarks" / "out" / "synthetic-corpus"
    )
    parser.add_argument("--n", type=int, default=80)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--joined", type=int, default=20)
    parser.add_argument("--write-model", action="store_true")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks")
    args = parser.parse_args()
    command = (
        f".venv/bin/python benchmarks/consent_synthetic.py --human {args.human} "
        f"--n {args.n} --seed {args.seed}" + (" --write-model" if args.write_model else "")
    )
    items = human_items(args.human) + synthetic_items(args.corpus, args.n, args.seed)
    cache = args.corpus / f"features-v3-{args.seed}-{len(items)}.npz"
    if cache.exists():
        saved = np.load(cache)
        which, channels, x = saved["which"], saved["channels"], saved["x"]
    else:
        rows = list(feature_rows(items, args.seed))
        which = np.array([k for k, _, _ in rows])
        channels = np.array([c for _, c, _ in rows])
        x = np.stack([f for _, _, f in rows])
        np.savez(cache, which=which, channels=channels, x=x)
    y = np.array([items[k].synthetic for k in which], dtype=np.float64)
    trains = np.array([items[k].train for k in which])
    sources = np.array([items[k].source for k in which])
    groups = np.array([items[k].group for k in which])

    model = train(x[trains], y[trains], groups[trains])
    flagged = np.array([model.score(row) >= model.threshold for row in x])
    held = ~trains
    human, synthetic = held & (y == 0), held & (y == 1)
    left_out = {}
    for name in SYNTHESISERS:
        keep = trains & (sources != name)
        m = train(x[keep], y[keep], groups[keep], left_out=name)
        hit = np.array([m.score(row) >= m.threshold for row in x])
        left_out[name] = {
            "caught": round(float(hit[held & (sources == name)].mean()), 4),
            "false_reject": round(float(hit[human].mean()), 4),
        }
        print(json.dumps({"left out": name, **left_out[name]}), flush=True)
    result = {
        "command": command,
        "machine": f"{platform.machine()}, {platform.system()}, Python {platform.python_version()}",
        "model_id": model.model_id,
        "threshold": model.threshold,
        "channels": list(CHANNELS),
        "train_rows": int(trains.sum()),
        "held_out": rates(flagged[held], sources[held], channels[held]),
        "false_reject": round(float(flagged[human].mean()), 4),
        "human_held_out": int(human.sum()),
        "detection": round(float(flagged[synthetic].mean()), 4),
        "synthetic_held_out": int(synthetic.sum()),
        "left_out": left_out,
        "joined_n": args.joined,
        "joined": joined_readings(model, args.joined, args.seed),
        "time": check_time([i for i in items if not i.synthetic], 20),
    }
    if args.write_model:
        MODEL_PATH.parent.mkdir(parents=True, exist_ok=True)
        MODEL_PATH.write_bytes(model.to_json())
        print(
            json.dumps(
                {"model": str(MODEL_PATH), "sha256": hashlib.sha256(model.to_json()).hexdigest()}
            )
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "consent_synthetic.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "consent_synthetic.md").write_text(markdown(result))
    print(json.dumps({k: result[k] for k in ("threshold", "false_reject", "detection", "joined")}))


if __name__ == "__main__":
    main()
