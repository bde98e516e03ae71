"""Synthesis cost end to end: real-time factor with watermark and signing, stream latency.

    .venv/bin/python benchmarks/synthesis.py [--repeats 3]

Enrolls the shipped demo voice in a temporary home, trains its adapter (ε = 8), then
times ``guardian synthesize`` on a ~10 s text (policy decision, Piper, the adapter,
the AudioSeal watermark, C2PA signing, registry and audit) and the first chunk of
``--stream``. Stage times come from timing each stage on its own in the same run.
Writes docs/benchmarks/synthesis.json and docs/benchmarks/synthesis.md.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch

from guardian.app import (
    EnrollRequest,
    SynthesisRequest,
    create_challenge,
    enroll,
    open_guardian,
    synthesize,
    train_voice,
)
from guardian.app._consent_voice import enrollment_samples, spoken_consent
from guardian.app.demo import DEMO_NAME, DEMO_ORG, DEMO_VOICE
from guardian.audio import OutputFormat, encode_bytes
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory(prefix="guardian-bench-") as tmp:
        work = Path(tmp)
        g = open_guardian(Settings(home=work / "home"))
        c = create_challenge(g, name=DEMO_NAME, organization=DEMO_ORG)
        consent = work / "consent.wav"
        consent.write_bytes(encode_bytes(spoken_consent(DEMO_VOICE, c.code), OutputFormat.WAV))
        texts = tuple((DEMO_VOICE / "transcripts.txt").read_text().splitlines())
        voice = enroll(
            g,
            EnrollRequest(
                challenge_id=c.challenge_id,
                consent=consent,
                samples=tuple(enrollment_samples(DEMO_VOICE)),
                purposes=("bench",),
                transcripts=texts,
            ),
        ).voice_id
        t0 = time.perf_counter()
        train_voice(g, voice, epsilon=8.0)
        train_s = time.perf_counter() - t0
        synthesize(g, SynthesisRequest(voice, "Warm up.", work / "w.wav", "bench", DEMO_ORG))
        full, first, stages = [], [], {"base_tts": [], "adapter": [], "watermark": []}
        duration = 0.0
        from guardian.app._engine import _adapter

        _, adapter = _adapter(g, SynthesisRequest(voice, TEXT, work / "x.wav", "bench", DEMO_ORG))
        for i in range(args.repeats):
            t0 = time.perf_counter()
            r = synthesize(g, SynthesisRequest(voice, TEXT, work / f"o{i}.wav", "bench", DEMO_ORG))
            full.append(time.perf_counter() - t0)
            duration = r.labels[0].duration_s
            marks: list[float] = []
            start = time.perf_counter()

            def mark(_label: object, marks: list[float] = marks, start: float = start) -> None:
                marks.append(time.perf_counter() - start)

            synthesize(
                g,
                SynthesisRequest(voice, TEXT, work / f"s{i}.wav", "bench", DEMO_ORG),
                stream=True,
                on_chunk=mark,
            )
            first.append(marks[0])
            t0 = time.perf_counter()
            base = g.base_voice.synthesize(TEXT)
            stages["base_tts"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            converted = adapter.convert(base)
            stages["adapter"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            embed(g.watermark, converted, Payload.for_label(deployment=0, label_id="lbl_x"))
            stages["watermark"].append(time.perf_counter() - t0)
    result = {
        "text_seconds": round(duration, 2),
        "train_6_utterances_s": round(train_s, 1),
        "synthesize_s": round(_median(full), 3),
        "real_time_factor": round(_median(full) / duration, 3),
        "stream_first_chunk_s": round(_median(first), 3),
        "stages_s": {k: round(_median(v), 3) for k, v in stages.items()},
        "repeats": args.repeats,
        "torch_threads": 2,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "synthesis.json").write_text(json.dumps(result, indent=2) + "\n")
    rows = [
        ("clip length", f"{result['text_seconds']} s"),
        ("synthesize, end to end (median)", f"{result['synthesize_s']} s"),
        ("real-time factor (bar ≤ 0.3)", str(result["real_time_factor"])),
        ("`--stream` first chunk (bar ≤ 0.3 s)", f"{result['stream_first_chunk_s']} s"),
        *((f"stage: {k}", f"{v} s") for k, v in result["stages_s"].items()),
        ("training, ε = 8, 6 utterances", f"{result['train_6_utterances_s']} s"),
    ]
    table = "\n".join(f"| {a} | {b} |" for a, b in rows)
    (OUT / "synthesis.md").write_text(
        "# Synthesis cost\n\n"
        "`.venv/bin/python benchmarks/synthesis.py` (2 CPU cores, 2 torch threads; the\n"
        "demo voice enrolled with its 6 shipped samples and trained at ε = 8).\n\n"
        "The speaking rate is one of the adapter's DP-noised parameters, and 6 utterances\n"
        "leave it noisy, so the clip length (and with it the real-time factor) changes from\n"
        "one training run to the next; the stage times are for the same text.\n\n"
        "| measure | value |\n|---|---|\n" + table + "\n"
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
