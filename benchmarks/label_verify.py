"""Time `label` and `verify` on a 10 s clip, per output format.

    .venv/bin/python benchmarks/label_verify.py [--repeats 15] [--out benchmarks/out]

Writes ``label_verify.json`` and prints a markdown table. All formats are timed
in one run, interleaved, so the figures are comparable on a noisy machine.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path

from guardian.app import LabelRequest, init_keys, label_file, open_guardian, verify_file
from guardian.audio import Audio, OutputFormat, encode_bytes, speechlike
from guardian.config import Settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        g = open_guardian(Settings(home=work / "home", database_url=None, master_key=None))
        init_keys(g)
        src = work / "src.wav"
        src.write_bytes(
            encode_bytes(Audio(speechlike(args.seconds, seed=3)[:, None], 16000), OutputFormat.WAV)
        )
        times: dict[str, dict[str, list[float]]] = {
            f.value: {"label": [], "verify": []} for f in OutputFormat
        }
        for i in range(args.repeats + 1):  # the first round warms caches and is dropped
            for fmt in OutputFormat:
                out = work / f"o{i}.{fmt.value}"
                t0 = time.perf_counter()
                label_file(g, LabelRequest(source=src, output=out))
                t1 = time.perf_counter()
                verdict = verify_file(g, out).verdict.value
                t2 = time.perf_counter()
                assert verdict == "verified", verdict
                if i:
                    times[fmt.value]["label"].append(t1 - t0)
                    times[fmt.value]["verify"].append(t2 - t1)
    result = {
        "clip_seconds": args.seconds,
        "repeats": args.repeats,
        "machine": f"{platform.machine()} {platform.processor() or ''}".strip(),
        "formats": {
            fmt: {
                op: {"median_s": statistics.median(v), "p90_s": sorted(v)[int(0.9 * (len(v) - 1))]}
                for op, v in ops.items()
            }
            for fmt, ops in times.items()
        },
    }
    (args.out / "label_verify.json").write_text(json.dumps(result, indent=2))
    lines = [
        "| format | label median (s) | label p90 (s) | verify median (s) | verify p90 (s) |",
        "|---|---|---|---|---|",
    ]
    for fmt, ops in result["formats"].items():  # type: ignore[union-attr]
        lines.append(
            f"| {fmt} | {ops['label']['median_s']:.3f} | {ops['label']['p90_s']:.3f} | "
            f"{ops['verify']['median_s']:.3f} | {ops['verify']['p90_s']:.3f} |"
        )
    table = "\n".join(lines)
    print(table)
    doc = Path("docs/benchmarks/label_verify.md")
    doc.write_text(
        "# Label and verify time\n\n"
        f"A {args.seconds:g} s speech-like clip at 16 kHz, labeled (watermark, encode, C2PA "
        "signing, registry, audit) and verified (decode, watermark detection, manifest "
        "validation against the trust anchors, registry), per output format; "
        f"{args.repeats} interleaved rounds after one warm-up round, on this project's "
        "2-core CPU machine, in one process.\n\n"
        f"{table}\n\n"
        "Command: `.venv/bin/python benchmarks/label_verify.py "
        f"--repeats {args.repeats}` (JSON in `benchmarks/out/label_verify.json`).\n"
    )


if __name__ == "__main__":
    main()
