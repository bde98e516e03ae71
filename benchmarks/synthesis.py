"""Synthesis cost end to end: real-time factor with watermark and signing, stream latency.

    .venv/bin/python benchmarks/synthesis.py [--voices 5] [--repeats 3]

For each of ``--voices`` training runs, enrolls the shipped demo voice in a temporary
home, trains its adapter (ε = 8), then times ``guardian synthesize`` on a ~10 s text
(policy decision, Piper, the adapter, the AudioSeal watermark, C2PA signing, registry
and audit) and the first chunk of ``--stream``. Stage times come from timing each
stage on its own in the same run. Writes docs/benchmarks/synthesis.json and
docs/benchmarks/synthesis.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from guardian.app import (
    SynthesisRequest,
    open_guardian,
    synthesize,
    train_voice,
)
from guardian.app._engine import _adapter, stream_parts
from guardian.app.demo import DEMO_ORG, enroll_demo_voice
from guardian.config import Settings
from guardian.watermark import Payload, embed

TEXT = (
    "The lighthouse keeper wrote a letter every evening. "
    "She described the weather, the ships that passed, and the birds on the rocks. "
    "In spring the letters grew longer."
)
OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


def _median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def _measure(g: Any, work: Path, index: int, repeats: int) -> dict[str, Any]:
    """Enroll the demo voice afresh, train it at ε = 8, and time its synthesis."""
    voice = enroll_demo_voice(g, work, index, purpose="bench")
    t0 = time.perf_counter()
    train_voice(g, voice, epsilon=8.0)
    train_s = time.perf_counter() - t0

    def request(name: str, text: str = TEXT) -> SynthesisRequest:
        return SynthesisRequest(voice, text, work / f"{index}-{name}.wav", "bench", DEMO_ORG)

    synthesize(g, request("warm", "Warm up."))
    _, adapter = _adapter(g, request("x"))
    full: list[float] = []
    first: list[float] = []
    stages: dict[str, list[float]] = {"base_tts": [], "adapter": [], "watermark": []}
    duration, first_words = 0.0, 0
    for i in range(repeats):
        t0 = time.perf_counter()
        r = synthesize(g, request(f"o{i}"))
        full.append(time.perf_counter() - t0)
        duration = r.labels[0].duration_s
        marks: list[float] = []
        start = time.perf_counter()

        def mark(_label: object, marks: list[float] = marks, start: float = start) -> None:
            marks.append(time.perf_counter() - start)

        synthesize(g, request(f"s{i}"), stream=True, on_chunk=mark)
        first.append(marks[0])
        first_words = len(stream_parts(TEXT, stretch=adapter.stretch)[0].split())
        t0 = time.perf_counter()
        base = g.base_voice.synthesize(TEXT)
        stages["base_tts"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        converted = adapter.convert(base)
        stages["adapter"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        embed(g.watermark, converted, Payload.for_label(deployment=0, label_id="lbl_x"))
        stages["watermark"].append(time.perf_counter() - t0)
    return {
        "speaking_rate_stretch": round(adapter.stretch, 3),
        "text_seconds": round(duration, 2),
        "train_6_utterances_s": round(train_s, 1),
        "synthesize_s": round(_median(full), 3),
        "real_time_factor": round(_median(full) / duration, 3),
        "stream_first_chunk_s": round(_median(first), 3),
        "stream_first_chunk_words": first_words,
        "stages_s": {k: round(_median(v), 3) for k, v in stages.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--voices", type=int, default=5, help="training runs (voices)")
    parser.add_argument("--repeats", type=int, default=3, help="syntheses per voice")
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory(prefix="guardian-bench-") as tmp:
        work = Path(tmp)
        g = open_guardian(Settings(home=work / "home", allow_synthetic_consent=True))
        runs = [_measure(g, work, i, args.repeats) for i in range(args.voices)]
    result = {
        "runs": runs,
        "worst_real_time_factor": max(r["real_time_factor"] for r in runs),
        "worst_stream_first_chunk_s": max(r["stream_first_chunk_s"] for r in runs),
        "voices": args.voices,
        "repeats": args.repeats,
        "torch_threads": 2,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "synthesis.json").write_text(json.dumps(result, indent=2) + "\n")
    columns = [
        ("speaking rate (x base length)", "speaking_rate_stretch", ""),
        ("clip length", "text_seconds", " s"),
        ("synthesize, end to end (median)", "synthesize_s", " s"),
        ("real-time factor (bar ≤ 0.3)", "real_time_factor", ""),
        ("`--stream` first chunk (bar ≤ 0.3 s)", "stream_first_chunk_s", " s"),
        ("`--stream` first chunk, words", "stream_first_chunk_words", ""),
        *((f"stage: {k}", k, " s") for k in runs[0]["stages_s"]),
        ("training, ε = 8, 6 utterances", "train_6_utterances_s", " s"),
    ]

    def cell(run: dict[str, Any], key: str, unit: str) -> str:
        return f"{run['stages_s'][key] if key in run['stages_s'] else run[key]}{unit}"

    head = "| measure | " + " | ".join(f"run {i + 1}" for i in range(len(runs))) + " |"
    rule = "|---|" + "---|" * len(runs)
    body = "\n".join(
        f"| {name} | " + " | ".join(cell(r, key, unit) for r in runs) + " |"
        for name, key, unit in columns
    )
    (OUT / "synthesis.md").write_text(
        "# Synthesis cost\n\n"
        "`.venv/bin/python benchmarks/synthesis.py` (2 CPU cores, 2 torch threads). Each run\n"
        "enrolls the demo voice with its 6 shipped samples, trains it at ε = 8 and times\n"
        f"{args.repeats} syntheses (medians).\n\n"
        "The speaking rate is one of the adapter's DP-noised parameters, and 6 utterances\n"
        "leave it noisy, so the clip length (and with it the real-time factor) changes from\n"
        "one training run to the next. `--stream` sizes its first chunk by that rate.\n"
        "Stage times are for the whole text.\n\n"
        f"{head}\n{rule}\n{body}\n\n"
        f"Worst of the runs: real-time factor {result['worst_real_time_factor']}, "
        f"first chunk {result['worst_stream_first_chunk_s']} s.\n"
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
