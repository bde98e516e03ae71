"""Regenerate the synthetic consent voices that ship with Guardian and its tests.

    .venv/bin/python benchmarks/make_consent_assets.py

Writes, for the demo subject "Alex Morgan" at "Guardian Demo Studio":

* ``guardian/app/assets/consent/slt/`` (festival ``cmu_us_slt_arctic_hts``, the demo
  speaker);
* ``tests/data/voices/kal/`` (festival ``kal_diphone``, the impostor).

Both are stored at 16 kHz: slt's native 32 kHz would make its folder 1.7 MB, and the
recogniser, the speaker encoder and the quality gate all work at 16 kHz.

Each folder holds ``statement.flac`` (the statement's first sentence), ``words.flac``
("My words are"), ``and.flac``, ``code.flac`` ("and my code is"), one
``phrase-<word>.flac`` per phrase word, one ``code-<word>.flac`` per code word,
enrollment sentences ``sample-01.flac`` ... of 4-6 s each (slt: SLT_SAMPLES, kal: six),
and a ``README.md``. At run time :func:`guardian.app._consent_voice.spoken_consent`
joins them into one consent recording for a fresh phrase and code.

slt, the demo speaker, also gets held-out recordings that are never enrolled:
``heldout-01.flac`` ... (the next seeded sentences of 4-6 s) and ``heldout-demo.flac``
(the text ``guardian demo`` synthesizes). The demo compares its cloned clip with them:
speaker similarity against their centroid, speaking rate against the speaker's own
reading of the same text. Festival is deterministic, so the same command writes the
same audio.
"""

from __future__ import annotations

import argparse
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from guardian.app._consent_voice import JOINS
from guardian.app.demo import DEMO_TEXT
from guardian.audio import resample
from guardian.consent._speech import CODE_WORDS, PHRASE_ADJECTIVES, PHRASE_NOUNS, _opening
from guardian.corpus import festival, sentence

ROOT = Path(__file__).resolve().parents[1]
NAME, ORG = "Alex Morgan", "Guardian Demo Studio"
SEED = 2024
SAMPLES = 6
SLT_SAMPLES = 48
HELD_OUT = 3
SAMPLE_SECONDS = (4.0, 6.0)
RATE = 16_000
PEAK_DBFS = -6.0
EDGE_S = 0.3
"""Silence kept at each end of a sample: the SNR gate reads its noise floor from pauses."""
CLIP_EDGE_S = 0.04
"""Silence kept around a code word, so the joined recording sets its own pauses."""


@dataclass(frozen=True)
class Voice:
    """One festival voice and where its assets go."""

    key: str
    role: str
    festival_voice: str
    package: str
    licence: str
    folder: Path
    samples: int = SAMPLES
    held_out: int = 0


VOICES = (
    Voice(
        "slt",
        "the demo subject (`guardian demo` and the enrollment tests enroll this voice)",
        "cmu_us_slt_arctic_hts",
        "festvox-us-slt-hts",
        "EST-2003 (Carnegie Mellon University: use, copy, modify and licence for any "
        "purpose, keeping the copyright notice), HTS parts BSD-3-clause",
        ROOT / "guardian" / "app" / "assets" / "consent" / "slt",
        samples=SLT_SAMPLES,
        held_out=HELD_OUT,
    ),
    Voice(
        "kal",
        "an impostor (the tests read the demo subject's consent in this other voice)",
        "kal_diphone",
        "festvox-kallpc16k",
        "the permissive CMU/Edinburgh festival diphone licence (use and redistribute with "
        "the copyright notice kept)",
        ROOT / "tests" / "data" / "voices" / "kal",
    ),
)


def _speech_bounds(x: np.ndarray, rate: int) -> tuple[int, int]:
    """First and last sample of the region louder than -50 dB below the peak."""
    frame = rate // 100
    n = len(x) // frame
    power = np.mean(x[: n * frame].reshape(n, frame) ** 2, axis=1)
    loud = np.flatnonzero(power > np.max(power) * 1e-5)
    return int(loud[0]) * frame, min(len(x), (int(loud[-1]) + 1) * frame)


def _trimmed(x: np.ndarray, rate: int, edge_s: float) -> np.ndarray:
    """The speech at RATE with ``edge_s`` of silence at each end, peak at PEAK_DBFS."""
    start, end = _speech_bounds(x, rate)
    core = resample(np.asarray(x[start:end], dtype=np.float32), rate, RATE)
    core = core / np.max(np.abs(core)) * 10 ** (PEAK_DBFS / 20)
    pad = np.zeros(int(edge_s * RATE), dtype=np.float32)
    return np.concatenate([pad, core.astype(np.float32), pad])


def _write(path: Path, x: np.ndarray) -> None:
    sf.write(path, x, RATE, format="FLAC", subtype="PCM_16", compression_level=1.0)


def _samples(voice: Voice) -> list[tuple[str, np.ndarray]]:
    """The first seeded sentences whose speech lasts 4-6 s in this voice: the enrollment
    samples, then the held-out ones (more samples keep the earlier ones unchanged)."""
    rng = random.Random(SEED)
    found: list[tuple[str, np.ndarray]] = []
    seen: set[str] = set()
    while len(found) < voice.samples + voice.held_out:
        text = sentence(rng, rng.choice((1, 2)))
        if text in seen:
            continue
        seen.add(text)
        x, rate = festival(text, voice.festival_voice)
        start, end = _speech_bounds(x, rate)
        if SAMPLE_SECONDS[0] <= (end - start) / rate <= SAMPLE_SECONDS[1]:
            found.append((text, _trimmed(x, rate, EDGE_S)))
    return found


def make_voice(voice: Voice) -> list[str]:
    """Write one voice's folder; returns the sample sentences."""
    voice.folder.mkdir(parents=True, exist_ok=True)
    for old in voice.folder.glob("*.flac"):
        old.unlink()
    lead = _opening(name=NAME, org=ORG)
    clips = {
        "statement": lead,
        **JOINS,
        **{f"phrase-{w}": f"{w}." for w in PHRASE_ADJECTIVES + PHRASE_NOUNS},
        **{f"code-{w}": ("x-ray" if w == "xray" else w) + "." for w in CODE_WORDS},
    }
    for stem, text in clips.items():
        x, rate = festival(text, voice.festival_voice)
        _write(voice.folder / f"{stem}.flac", _trimmed(x, rate, CLIP_EDGE_S))
    found = _samples(voice)
    texts = []
    for i, (text, x) in enumerate(found[: voice.samples], start=1):
        _write(voice.folder / f"sample-{i:02d}.flac", x)
        texts.append(text)
    held = []
    for i, (text, x) in enumerate(found[voice.samples :], start=1):
        _write(voice.folder / f"heldout-{i:02d}.flac", x)
        held.append(text)
    if voice.held_out:
        x, rate = festival(DEMO_TEXT, voice.festival_voice)
        _write(voice.folder / "heldout-demo.flac", _trimmed(x, rate, EDGE_S))
    _readme(voice, lead, texts, held)
    # What each sample says: enrollment passes it as --transcript, training needs it.
    (voice.folder / "transcripts.txt").write_text("".join(f"{t}\n" for t in texts))
    return texts


def _readme(voice: Voice, lead: str, texts: list[str], held: list[str]) -> None:
    rows = "\n".join(f"| `sample-{i:02d}.flac` | {t} |" for i, t in enumerate(texts, 1))
    held_rows = "\n".join(f"| `heldout-{i:02d}.flac` | {t} |" for i, t in enumerate(held, 1))
    held_part = (
        f"""
- Held-out recordings, never enrolled: the demo measures its cloned voice against them
  (speaker similarity against their centroid; speaking rate against
  `heldout-demo.flac`, this voice reading the demo's own text):

| file | text |
|---|---|
{held_rows}
| `heldout-demo.flac` | {DEMO_TEXT} |
"""
        if held
        else ""
    )
    (voice.folder / "README.md").write_text(
        f"""# Synthetic consent voice "{voice.key}"

These recordings are **synthetic speech**: festival's `{voice.festival_voice}` voice.
No real person's voice is in them. The subject they speak for, "{NAME}" at
"{ORG}", is made up. Role: {voice.role}.

Made with:

    .venv/bin/python benchmarks/make_consent_assets.py

- Synthesiser: festival 2.5 (Debian package `festival`), voice `{voice.festival_voice}`
  from the Debian package `{voice.package}`; licence: {voice.licence}.
- Format: FLAC, mono, 16-bit, {RATE} Hz; each clip peaks at {PEAK_DBFS:g} dBFS.
- `statement.flac`: "{lead}"
- `words.flac`, `and.flac`, `code.flac`: "{JOINS["words"]}", "{JOINS["and"]}",
  "{JOINS["code"]}".
- `phrase-<word>.flac`: each phrase word (`PHRASE_ADJECTIVES`, `PHRASE_NOUNS` in
  `guardian/consent/_speech.py`) spoken on its own.
- `code-<word>.flac`: each one-time code word (`guardian.consent.CODE_WORDS`) spoken on
  its own. `guardian.app._consent_voice.spoken_consent` joins these clips, with short
  pauses, into one consent recording for any fresh phrase and code.
- Enrollment samples (seeded sentences from `guardian.corpus.sentence`, 4-6 s each):

| file | text |
|---|---|
{rows}
{held_part}"""
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--voice", choices=[v.key for v in VOICES], action="append")
    args = parser.parse_args()
    for voice in VOICES:
        if args.voice and voice.key not in args.voice:
            continue
        texts = make_voice(voice)
        size = sum(p.stat().st_size for p in voice.folder.iterdir())
        print(f"{voice.key}: {len(texts)} samples, {size / 1e6:.2f} MB in {voice.folder}")


if __name__ == "__main__":
    main()
