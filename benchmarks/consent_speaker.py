"""Calibrate the same-speaker threshold of enrollment on generated voices.

    .venv/bin/python benchmarks/consent_speaker.py [--seed 7] [--enroll 6] [--test 20]

Every voice (festival slt, kal, ked; Piper joe; espeak-ng accent+variant pairs) reads
its own random sentences, all different. Per voice, ``--enroll`` utterances form the
enrollment centroid, as in ``guardian enroll``; ``--test`` held-out utterances give the
genuine trials (against their own centroid) and the impostor trials (against every
other voice's centroid). Each voice also reads ``--consents`` consent statements, each
with its own name, company and code, to measure "a different speaker reads the
consent". The full check (:func:`check_same_speaker`) is run on genuine enrollments,
on enrollments with another voice's consent, and with one sample swapped for another
voice's utterance.

Writes ``docs/benchmarks/consent_speaker.{json,md,png}`` (``benchmarks/out/`` for a
smaller run than the defaults; ``--out`` to choose).
Synthesis is reproducible for one seed: festival and espeak-ng are deterministic and
Piper's sampling noise is seeded through onnxruntime. Audio stays in memory.
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import random
import shutil
import statistics
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from guardian.audio import Audio
from guardian.consent._speaker import THRESHOLD, check_same_speaker, embed
from guardian.corpus import Synth, festival, sentence

Synthesize = Callable[[str, random.Random], tuple[np.ndarray, int]]

# --- voices --------------------------------------------------------------------------

# (accent, variant): one fixed speaker each, every variant once. Variants are espeak's
# formant settings, i.e. the voice; the accent only changes pronunciation. Variants that
# are missing from espeak-ng-data fall back to the default voice silently, and those that
# barely move its formants (m1, m2, croak, grandpa) are the same speaker as the default:
# one of them (m3) stands for that family. NEAR_DUPLICATES measures the rest.
ESPEAK_VOICES = (
    ("en-us", "m3"),
    ("en-gb-x-rp", "m7"),
    ("en-gb-scotland", "f1"),
    ("en-us", "f3"),
    ("en-029", "klatt"),
    ("en", "Alicia"),
    ("en-gb-x-gbclan", "Andy"),
    ("en-us", "Gene"),
    ("en-gb", "Jacky"),
    ("en-us-nyc", "Michael"),
    ("en-us", "Storm"),
    ("en-gb-x-rp", "anika"),
    ("en-029", "Marco"),
    ("en-gb-scotland", "Tweaky"),
    ("en-us", "Diogo"),
)

# Pairs that are one synthetic speaker, not two: reported apart, not counted as impostors.
NEAR_DUPLICATES = (
    (("en-us", "m3"), ("en-gb-x-rp", "m3"), "same variant, another accent"),
    (("en-us", "m1"), ("en-us", "croak"), "default voice with small formant or flutter tweaks"),
    (("en-us", "Diogo"), ("en-us", "Henrique"), "variants with near-identical formants"),
)


@dataclass(frozen=True)
class Voice:
    name: str
    speak: Synthesize


def _festival_voice(voice: str) -> Synthesize:
    def speak(text: str, rng: random.Random) -> tuple[np.ndarray, int]:
        return festival(text, voice, stretch=rng.uniform(0.9, 1.15))

    return speak


def _piper_voice(synth: Synth) -> Synthesize:
    def speak(text: str, rng: random.Random) -> tuple[np.ndarray, int]:
        samples, rate, _ = synth.piper(text, rng)  # length scale drawn in 0.85..1.25
        return samples, rate

    return speak


def _espeak_voice(exe: str, accent: str, variant: str) -> Synthesize:
    def speak(text: str, rng: random.Random) -> tuple[np.ndarray, int]:
        speed, pitch = rng.randint(140, 185), rng.randint(44, 56)
        cmd = [exe, "-v", f"{accent}+{variant}", "-s", str(speed), "-p", str(pitch)]
        wav = subprocess.run([*cmd, "--stdout", text], capture_output=True, check=True).stdout
        samples, rate = sf.read(io.BytesIO(wav), dtype="float32")
        return samples, int(rate)

    return speak


def _espeak_exe() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise SystemExit("espeak-ng is not installed (Debian package espeak-ng)")
    return exe


def espeak(accent: str, variant: str) -> Voice:
    return Voice(f"espeak {accent}+{variant}", _espeak_voice(_espeak_exe(), accent, variant))


def voices() -> list[Voice]:
    out = [
        Voice("festival slt", _festival_voice("cmu_us_slt_arctic_hts")),
        Voice("festival kal", _festival_voice("kal_diphone")),
        Voice("festival ked", _festival_voice("ked_diphone")),
        Voice("piper joe", _piper_voice(Synth(require_espeak=False))),
    ]
    out += [espeak(a, v) for a, v in ESPEAK_VOICES]
    return out


# --- texts ---------------------------------------------------------------------------

_NAMES = ("Ana Lopez", "Ben Okafor", "Chen Wei", "Dana Novak", "Eli Haddad", "Farah Khan")
_ORGS = ("Northwind Studio", "Bright Access Ltd", "Harbor Audio", "Open Reader Labs")
_CODE = [
    "amber",
    "falcon",
    "granite",
    "harbor",
    "island",
    "jasper",
    "kettle",
    "lemon",
    "maple",
    "nectar",
    "orbit",
    "pepper",
]


def statement(rng: random.Random) -> str:
    """A consent statement in the shape Azure's Custom Neural Voice asks for, plus a code."""
    code = " ".join(rng.sample(_CODE, 4))
    return (
        f"I {rng.choice(_NAMES)} am aware that recordings of my voice will be used by "
        f"{rng.choice(_ORGS)} to create and use a synthetic version of my voice. "
        f"My code is {code}."
    )


def fresh_sentence(rng: random.Random, used: set[str], clauses: int) -> str:
    while True:
        text = sentence(rng, clauses)
        if text not in used:
            used.add(text)
            return text


# --- embeddings ----------------------------------------------------------------------


@dataclass
class VoiceSet:
    name: str
    enroll: np.ndarray  # (n_enroll, 256)
    test: np.ndarray  # (n_test, 256)
    consent: np.ndarray  # (n_consent, 256)
    seconds: float  # audio synthesised for this voice

    @property
    def centroid(self) -> np.ndarray:
        c = self.enroll.mean(axis=0)
        return np.asarray(c / np.linalg.norm(c))


def channel(samples: np.ndarray, rng: random.Random) -> np.ndarray:
    """A microphone and room the quality gates accept: spectral tilt, noise at 30-45 dB.

    Synthetic voices repeat themselves exactly; without this, genuine scores would be
    higher than any human's across sessions and the threshold would be set too high.
    """
    g = np.random.default_rng(rng.getrandbits(32))
    x = np.asarray(samples, dtype=np.float64)
    x = x + rng.uniform(-0.6, 0.6) * np.concatenate(([0.0], x[:-1]))  # first-order tilt
    power = float(np.mean(x**2))
    x = x + g.standard_normal(len(x)) * np.sqrt(power / 10 ** (rng.uniform(30, 45) / 10))
    return np.asarray(x / np.max(np.abs(x)) * 10 ** (rng.uniform(-12, -1) / 20), np.float32)


def _say(voice: Voice, text: str, rng: random.Random) -> tuple[np.ndarray, float]:
    samples, rate = voice.speak(text, rng)
    audio = Audio(channel(samples, rng).reshape(-1, 1), rate)
    return embed(audio), audio.duration


def embed_voice(
    voice: Voice, rng: random.Random, used: set[str], args: argparse.Namespace
) -> VoiceSet:
    seconds = 0.0

    def batch(texts: Sequence[str]) -> np.ndarray:
        nonlocal seconds
        rows = []
        for text in texts:
            e, s = _say(voice, text, rng)
            rows.append(e)
            seconds += s
        return np.stack(rows)

    enroll = batch([fresh_sentence(rng, used, 2) for _ in range(args.enroll)])
    test = batch([fresh_sentence(rng, used, rng.randint(1, 3)) for _ in range(args.test)])
    consent = batch([statement(rng) for _ in range(args.consents)])
    return VoiceSet(voice.name, enroll, test, consent, seconds)


def near_duplicates(rng: random.Random, used: set[str], args: argparse.Namespace) -> list[Any]:
    """Scores of one variant's held-out utterances against a near-identical variant's centroid."""
    rows = []
    for a, b, why in NEAR_DUPLICATES:
        va, vb = espeak(*a), espeak(*b)
        enroll = [_say(va, fresh_sentence(rng, used, 2), rng)[0] for _ in range(args.enroll)]
        centroid = np.mean(enroll, axis=0)
        centroid /= np.linalg.norm(centroid)
        tests = [
            _say(vb, fresh_sentence(rng, used, rng.randint(1, 3)), rng)[0] for _ in range(args.test)
        ]
        scores = np.stack(tests) @ centroid
        rows.append(
            {"enrolled_voice": va.name, "test_voice": vb.name, "why": why}
            | summary(scores)
            | {"accepted_at_threshold": float(np.mean(scores >= THRESHOLD))}
        )
    return rows


def embed_time(synth_voice: Voice, rng: random.Random, repeats: int) -> dict[str, float]:
    """Seconds to embed 10 s of speech: the first call in the process, then warm."""
    parts, total = [], 0
    while total < 10 * 22_050:
        samples, rate = synth_voice.speak(sentence(rng, 3), rng)
        parts.append(samples)
        total += len(samples)
    clip = Audio(np.concatenate(parts)[: 10 * rate].reshape(-1, 1).astype(np.float32), rate)
    t0 = time.perf_counter()
    embed(clip)
    cold = time.perf_counter() - t0
    warm = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        embed(clip)
        warm.append(time.perf_counter() - t0)
    return {"cold_s": cold, "median_s": statistics.median(warm), "max_s": max(warm)}


# --- metrics -------------------------------------------------------------------------


def rates(genuine: np.ndarray, impostor: np.ndarray, t: float) -> dict[str, float]:
    return {"far": float(np.mean(impostor >= t)), "frr": float(np.mean(genuine < t))}


def eer(genuine: np.ndarray, impostor: np.ndarray) -> dict[str, float]:
    """Equal error rate; when the classes separate, its threshold is mid-gap."""
    if impostor.max() < genuine.min():
        return {"eer": 0.0, "threshold": float((impostor.max() + genuine.min()) / 2)}
    candidates = np.unique(np.concatenate([genuine, impostor]))
    far = np.array([np.mean(impostor >= t) for t in candidates])
    frr = np.array([np.mean(genuine < t) for t in candidates])
    i = int(np.argmin(np.abs(far - frr)))
    return {"eer": float((far[i] + frr[i]) / 2), "threshold": float(candidates[i])}


MAX_HELD_OUT_FAR = 0.0005
"""Held-out false accepts tolerated when picking THRESHOLD: "about 0", 3 in 6840."""


def suggested_threshold(rows: list[dict[str, float]]) -> float:
    """The lowest sweep step that accepts no other voice's consent and ~no held-out impostor."""
    for r in rows:
        if r["consent_far"] == 0.0 and r["far"] <= MAX_HELD_OUT_FAR:
            return r["threshold"]
    return rows[-1]["threshold"]


def sweep(
    m: dict[str, np.ndarray], sets: list[VoiceSet], swapped: list[Swap]
) -> list[dict[str, float]]:
    """Error rates on every kind of trial over a grid of thresholds."""
    rows = []
    for t in np.round(np.arange(0.80, 0.955, 0.01), 2):
        held = rates(m["genuine"], m["impostor"], t)
        consent = rates(m["consent_genuine"], m["consent_impostor"], t)
        rows.append(
            {"threshold": float(t)}
            | held
            | {f"consent_{k}": v for k, v in consent.items()}
            | {"enroll_loo_frr": float(np.mean(m["enroll_leave_one_out"] < t))}
            | full_checks(sets, swapped, float(t))
        )
    return rows


def summary(x: np.ndarray) -> dict[str, float]:
    return {
        "n": int(x.size),
        "min": float(x.min()),
        "p5": float(np.percentile(x, 5)),
        "mean": float(x.mean()),
        "p95": float(np.percentile(x, 95)),
        "max": float(x.max()),
    }


def score_matrix(sets: list[VoiceSet], attr: str) -> np.ndarray:
    """scores[i, j, k]: utterance k of voice i against the centroid of voice j."""
    centroids = np.stack([s.centroid for s in sets])
    return np.stack([getattr(s, attr) @ centroids.T for s in sets]).transpose(0, 2, 1)


def genuine_impostor(m: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    n = m.shape[0]
    own = np.eye(n, dtype=bool)
    return m[own].reshape(-1), m[~own].reshape(-1)


def loo_scores(sets: list[VoiceSet]) -> np.ndarray:
    """Each enrollment sample against the centroid of its voice's other samples."""
    out = []
    for s in sets:
        others = s.enroll.sum(axis=0, keepdims=True) - s.enroll
        others /= np.linalg.norm(others, axis=1, keepdims=True)
        out.append(np.einsum("ij,ij->i", s.enroll, others))
    return np.concatenate(out)


Swap = tuple[np.ndarray, list[np.ndarray], int]


def swaps(sets: list[VoiceSet], rng: random.Random) -> list[Swap]:
    """Per ordered voice pair: one enrollment sample replaced by the other voice's speech."""
    out = []
    for s in sets:
        for o in sets:
            if o is not s:
                k = rng.randrange(len(s.enroll))
                samples = list(s.enroll)
                samples[k] = o.test[rng.randrange(len(o.test))]
                out.append((s.consent[0], samples, k))
    return out


def full_checks(sets: list[VoiceSet], swapped: list[Swap], t: float) -> dict[str, Any]:
    """The enrollment check itself, on genuine sets, foreign consents and swapped samples."""
    passed = [
        bool(check_same_speaker(c, list(s.enroll), threshold=t)) for s in sets for c in s.consent
    ]
    foreign = [
        not check_same_speaker(c, list(s.enroll), threshold=t)
        for s in sets
        for o in sets
        if o is not s
        for c in o.consent
    ]
    named = [check_same_speaker(c, xs, threshold=t).rejected == (k,) for c, xs, k in swapped]
    return {
        "genuine_pass_rate": float(np.mean(passed)),
        "genuine_trials": len(passed),
        "foreign_consent_reject_rate": float(np.mean(foreign)),
        "foreign_consent_trials": len(foreign),
        "swapped_sample_named_rate": float(np.mean(named)),
        "swapped_sample_trials": len(named),
    }


def pair_table(m: np.ndarray, names: list[str]) -> list[dict[str, Any]]:
    rows = []
    for i, test_voice in enumerate(names):
        for j, enrolled in enumerate(names):
            if i != j:
                rows.append(
                    {"test_voice": test_voice, "enrolled_voice": enrolled} | summary(m[i, j])
                )
    return sorted(rows, key=lambda r: -r["max"])


def evaluate(sets: list[VoiceSet], rng: random.Random) -> dict[str, Any]:
    names = [s.name for s in sets]
    test_m, consent_m = score_matrix(sets, "test"), score_matrix(sets, "consent")
    raw: dict[str, np.ndarray] = {}
    raw["genuine"], raw["impostor"] = genuine_impostor(test_m)
    raw["consent_genuine"], raw["consent_impostor"] = genuine_impostor(consent_m)
    raw["enroll_leave_one_out"] = loo_scores(sets)
    swapped = swaps(sets, rng)
    return {
        "threshold": THRESHOLD,
        "eer": eer(raw["genuine"], raw["impostor"]),
        "at_threshold": rates(raw["genuine"], raw["impostor"], THRESHOLD),
        "consent_at_threshold": rates(raw["consent_genuine"], raw["consent_impostor"], THRESHOLD),
        "enroll_loo_frr": float(np.mean(raw["enroll_leave_one_out"] < THRESHOLD)),
        "sweep": sweep(raw, sets, swapped),
        "scores": {k: summary(v) for k, v in raw.items()},
        "full_check": full_checks(sets, swapped, THRESHOLD),
        "per_voice": [
            {"voice": n, "genuine": summary(test_m[i, i])}
            | {"closest_impostor": _closest(test_m, i, names)}
            for i, n in enumerate(names)
        ],
        "pairs": pair_table(test_m, names),
        "_genuine": raw["genuine"],
        "_impostor": raw["impostor"],
        "_pair_max": test_m.max(axis=2),
    }


def _closest(m: np.ndarray, i: int, names: list[str]) -> dict[str, Any]:
    """The other voice whose utterances score highest against voice i's centroid."""
    col = m[:, i, :].max(axis=1)
    col[i] = -1.0
    j = int(np.argmax(col))
    return {"voice": names[j], "max": float(col[j])}


# --- report --------------------------------------------------------------------------


def plot(result: dict[str, Any], names: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(15, 6), gridspec_kw={"width_ratios": [1, 1.2]})
    bins = np.linspace(0.3, 1.0, 71)
    ax1.hist(result["_impostor"], bins=bins, alpha=0.7, label="impostor (other voice)")
    ax1.hist(result["_genuine"], bins=bins, alpha=0.7, label="genuine (same voice)")
    ax1.axvline(THRESHOLD, color="k", linestyle="--", label=f"THRESHOLD {THRESHOLD:.2f}")
    ax1.set_xlabel("cosine to the enrollment centroid")
    ax1.set_ylabel("held-out utterances")
    ax1.set_yscale("log")
    ax1.legend()
    ax1.set_title("Held-out utterance vs enrollment centroid")
    im = ax2.imshow(result["_pair_max"], vmin=0.3, vmax=1.0, cmap="viridis")
    ax2.set_xticks(range(len(names)), names, rotation=70, ha="right", fontsize=7)
    ax2.set_yticks(range(len(names)), names, fontsize=7)
    ax2.set_xlabel("enrolled voice (centroid)")
    ax2.set_ylabel("test voice")
    ax2.set_title("Highest score per voice pair")
    fig.colorbar(im, ax=ax2)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _pct(x: float) -> str:
    return f"{100 * x:.2f} %"


def _row(result: dict[str, Any], t: float) -> dict[str, Any]:
    return next(r for r in result["sweep"] if abs(r["threshold"] - t) < 1e-9)


def choice(result: dict[str, Any]) -> list[str]:
    """The paragraphs that explain THRESHOLD, and the sweep it was read from."""
    t, sug = result["threshold"], result["suggested_threshold"]
    s = result["scores"]
    check = (
        "This run picks it too."
        if abs(t - sug) < 1e-9
        else f"**This run picks {sug:.2f}, not the committed {t:.2f}: re-check the choice.**"
    )
    at, up = _row(result, t), _row(result, round(t + 0.01, 2))
    lines = [
        "## Choice of THRESHOLD",
        "",
        "A false accept lets someone clone a voice without its owner's consent; a false "
        "reject costs the subject another recording. THRESHOLD is therefore the lowest "
        "0.01 step at which no consent statement read by another voice is accepted and "
        f"held-out FAR is at most {_pct(MAX_HELD_OUT_FAR)}: {sug:.2f}. {check} "
        f"Highest impostor scores: {s['consent_impostor']['max']:.3f} (consent), "
        f"{s['impostor']['max']:.3f} (held-out). At {t:.2f} the full check passes "
        f"{_pct(at['genuine_pass_rate'])} of genuine enrollments; one step up, "
        f"{up['threshold']:.2f}, held-out FAR is {_pct(up['far'])} but the check passes "
        f"only {_pct(up['genuine_pass_rate'])} of them and held-out FRR rises from "
        f"{_pct(at['frr'])} to {_pct(up['frr'])}.",
        "",
        "The closest impostors are espeak-ng formant voices, which share one synthesiser's "
        "glottal source and rules; the festival and Piper voices score far lower against "
        "each other. Genuine scores come from synthesisers that repeat themselves, which "
        "the simulated channel (spectral tilt, noise at 30-45 dB SNR, gain) only partly "
        "offsets: people recorded in different sessions score lower, so their FRR will be "
        "higher than measured here, which is why the step that would also remove the last "
        "held-out false accepts is not taken. `check_same_speaker` takes the threshold as "
        "a parameter for deployments that calibrate on their own recordings.",
        "",
        "Held-out: utterances of 1-3 clauses against a centroid. Consent: statements. "
        "Sample: an enrollment sample against its voice's other samples. Check: "
        "`check_same_speaker` on whole enrollments (own consent passes; another voice's "
        "consent is rejected; the one swapped-in sample is the one named, and only it).",
        "",
        "| threshold | FAR | FRR | consent FAR | consent FRR | sample FRR "
        "| check passes own | check rejects foreign consent | check names swapped sample |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['threshold']:.2f} | {_pct(r['far'])} | {_pct(r['frr'])} "
        f"| {_pct(r['consent_far'])} | {_pct(r['consent_frr'])} | {_pct(r['enroll_loo_frr'])} "
        f"| {_pct(r['genuine_pass_rate'])} | {_pct(r['foreign_consent_reject_rate'])} "
        f"| {_pct(r['swapped_sample_named_rate'])} |"
        for r in result["sweep"]
    ]
    return [*lines, ""]


def markdown(result: dict[str, Any], command: str) -> str:
    s, cfg, fc = result["scores"], result["config"], result["full_check"]
    at, cat = result["at_threshold"], result["consent_at_threshold"]
    lines = [
        "# Consent speaker verification: threshold calibration",
        "",
        f"{len(result['voices'])} generated voices ({', '.join(result['voices'])}). "
        f"Per voice: {cfg['enroll']} enrollment utterances (their L2-normalised mean is the "
        f"centroid), {cfg['test']} held-out utterances and {cfg['consents']} consent "
        "statements, every text different. Resemblyzer GE2E embeddings, cosine scores.",
        "",
        "| measure | value |",
        "|---|---|",
        f"| voices / genuine trials / impostor trials | {len(result['voices'])} / "
        f"{s['genuine']['n']} / {s['impostor']['n']} |",
        f"| EER (threshold) | {_pct(result['eer']['eer'])} ({result['eer']['threshold']:.3f}) |",
        f"| genuine score min / mean | {s['genuine']['min']:.3f} / {s['genuine']['mean']:.3f} |",
        f"| impostor score mean / max | {s['impostor']['mean']:.3f} / {s['impostor']['max']:.3f} |",
        f"| **THRESHOLD** | **{result['threshold']:.2f}** |",
        f"| FAR / FRR at THRESHOLD | {_pct(at['far'])} / {_pct(at['frr'])} |",
        f"| consent read by another voice: FAR ({s['consent_impostor']['n']} trials, "
        f"max score {s['consent_impostor']['max']:.3f}) | {_pct(cat['far'])} |",
        f"| own consent: FRR ({s['consent_genuine']['n']} trials, "
        f"min score {s['consent_genuine']['min']:.3f}) | {_pct(cat['frr'])} |",
        f"| enrollment sample vs the other samples: FRR ({s['enroll_leave_one_out']['n']}, "
        f"min {s['enroll_leave_one_out']['min']:.3f}) | {_pct(result['enroll_loo_frr'])} |",
        f"| full check passes genuine enrollments ({fc['genuine_trials']}) "
        f"| {_pct(fc['genuine_pass_rate'])} |",
        f"| full check rejects another voice's consent ({fc['foreign_consent_trials']}) "
        f"| {_pct(fc['foreign_consent_reject_rate'])} |",
        f"| full check names the one swapped-in sample ({fc['swapped_sample_trials']}) "
        f"| {_pct(fc['swapped_sample_named_rate'])} |",
        f"| embed 10 s of speech, warm median (first call in a process) "
        f"| {result['embed_time']['median_s']:.3f} s ({result['embed_time']['cold_s']:.2f} s) |",
        "",
        "![scores](consent_speaker.png)",
        "",
        *choice(result),
        "## Closest voice pairs",
        "",
        "Impostor scores of held-out utterances of the test voice against the enrolled "
        "voice's centroid; the ten pairs with the highest maximum (all pairs in the JSON).",
        "",
        "| test voice | enrolled voice | min | mean | max |",
        "|---|---|---|---|---|",
    ]
    lines += [
        f"| {p['test_voice']} | {p['enrolled_voice']} | {p['min']:.3f} | {p['mean']:.3f} "
        f"| {p['max']:.3f} |"
        for p in result["pairs"][:10]
    ]
    lines += ["", "## Per voice", "", "| voice | genuine min | genuine mean | closest impostor |"]
    lines += ["|---|---|---|---|"]
    lines += [
        f"| {v['voice']} | {v['genuine']['min']:.3f} | {v['genuine']['mean']:.3f} "
        f"| {v['closest_impostor']['voice']} ({v['closest_impostor']['max']:.3f}) |"
        for v in result["per_voice"]
    ]
    lines += [
        "",
        "## Near-duplicate espeak variants (not counted above)",
        "",
        "| enrolled voice | test voice | why one speaker | min | mean | max | accepted |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {d['enrolled_voice']} | {d['test_voice']} | {d['why']} | {d['min']:.3f} "
        f"| {d['mean']:.3f} | {d['max']:.3f} | {_pct(d['accepted_at_threshold'])} |"
        for d in result["near_duplicates"]
    ]
    lines += ["", f"Command: `{command}` ({result['machine']}, {result['wall_s']:.0f} s).", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--enroll", type=int, default=6)
    parser.add_argument("--test", type=int, default=20)
    parser.add_argument("--consents", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    full = args.enroll == 6 and args.test >= 20 and args.consents >= 3
    if args.out is None:  # a smaller run must not overwrite the published results
        args.out = Path("docs/benchmarks" if full else "benchmarks/out")
    started = time.perf_counter()

    import onnxruntime
    import torch

    torch.set_num_threads(1)  # timings comparable across machines; the 2 cores are shared
    onnxruntime.set_seed(args.seed)  # before Piper's session exists: seeds its noise
    rng, used = random.Random(args.seed), set[str]()
    vs = voices()
    piper = next(v for v in vs if v.name == "piper joe")
    timing = embed_time(piper, random.Random(args.seed + 1), repeats=10)
    sets = []
    for v in vs:
        sets.append(embed_voice(v, rng, used, args))
        print(f"{v.name}: {sets[-1].seconds:.0f} s of speech", flush=True)
    result = evaluate(sets, random.Random(args.seed + 2))
    result["suggested_threshold"] = suggested_threshold(result["sweep"])
    result["near_duplicates"] = near_duplicates(rng, used, args)
    command = ".venv/bin/python benchmarks/consent_speaker.py" + "".join(
        f" --{k} {v}" for k, v in vars(args).items() if k != "out" and v != parser.get_default(k)
    )
    result |= {
        "config": {k: v for k, v in vars(args).items() if k != "out"},
        "voices": [s.name for s in sets],
        "embed_time": timing,
        "machine": f"{platform.machine()} CPU, torch {torch.__version__}, 1 thread",
        "wall_s": time.perf_counter() - started,
    }
    write(result, args.out, command)


def significant(value: Any, digits: int = 4) -> Any:
    """``value`` with every float rounded to ``digits`` significant digits: the scores
    are float32 cosines, and their noise digits made most of the JSON."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, dict):
        return {k: significant(v, digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [significant(v, digits) for v in value]
    return value


def columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows of equal keys as one list per key (the keys once, not once per row)."""
    return {k: [r[k] for r in rows] for k in rows[0]} if rows else {}


def write(result: dict[str, Any], out: Path, command: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    names = result["voices"]
    plot(result, names, out / "consent_speaker.png")
    public = {k: v for k, v in result.items() if not k.startswith("_")}
    public["pair_max"] = result["_pair_max"].tolist()
    pairs = columns(result["pairs"])
    for side in ("test_voice", "enrolled_voice"):  # by position in "voices", not by name
        pairs[side] = [names.index(v) for v in pairs[side]]
    public["pairs"] = pairs
    (out / "consent_speaker.json").write_text(
        json.dumps(significant(public), separators=(",", ":")) + "\n"
    )
    (out / "consent_speaker.md").write_text(markdown(result, command))
    print(markdown(result, command))


if __name__ == "__main__":
    main()
