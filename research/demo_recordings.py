"""Does the demo's clip get closer to its speaker with 100 enrollment recordings, not 48?

    .venv/bin/python research/demo_recordings.py SOURCE WORK N KBPS

SOURCE is a voice folder written by ``benchmarks/make_consent_assets.py`` with
``SLT_SAMPLES = 100`` (its statement, code words, transcripts and held-out recordings).
The study copies it to WORK with the first N enrollment samples, each re-encoded as
Ogg/Opus at KBPS kbit/s (0 keeps FLAC), points ``guardian demo`` at that folder and
prints one JSON line: the demo's speaking rate and SECS, its time and the time of its
slow steps. Opus was the way to fit 100 recordings in the package.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import guardian.app._consent_voice as consent_voice
import guardian.app.demo as demo
from guardian.audio import encode_bytes, read_audio


def _folder(src: Path, dst: Path, n: int, kbps: int) -> None:
    dst.mkdir(parents=True)
    for p in src.glob("*.flac"):
        if not p.name.startswith("sample-"):
            shutil.copy(p, dst / p.name)
    lines = (src / "transcripts.txt").read_text().splitlines()[:n]
    (dst / "transcripts.txt").write_text("".join(f"{t}\n" for t in lines))
    for i in range(1, n + 1):
        p = src / f"sample-{i:02d}.flac"
        if kbps:
            opus = encode_bytes(read_audio(p), "opus", bitrate_kbps=kbps)
            (dst / f"sample-{i:02d}.opus").write_bytes(opus)
        else:
            shutil.copy(p, dst / p.name)


def _samples(voice_dir: Path) -> list[Path]:
    return sorted(p for p in voice_dir.glob("sample-*") if p.suffix in (".flac", ".opus"))


def main() -> None:
    src, dst, n, kbps = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    if not dst.exists():
        _folder(src, dst, n, kbps)
    demo.DEMO_VOICE = dst
    demo.enrollment_samples = _samples  # type: ignore[attr-defined]
    consent_voice.enrollment_samples = _samples
    size = sum(p.stat().st_size for p in dst.glob("sample-*"))
    start = time.time()
    report = demo.run_demo().to_dict()
    slow = {s["name"]: round(s["seconds"], 1) for s in report["steps"] if s["seconds"] > 2}
    out = {"samples": n, "opus_kbps": kbps, "samples_mb": round(size / 1e6, 2)}
    out |= {"seconds": round(time.time() - start, 1), "ok": report["ok"]}
    print(json.dumps(out | {"voice": report["voice"], "slow_steps": slow}), flush=True)


if __name__ == "__main__":
    main()
