"""``guardian demo``: the whole chain, as far as it exists, on a fresh home."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from guardian.app._audit import verify_audit
from guardian.app._context import Guardian, open_guardian
from guardian.app._keys import init_keys, rotate_key
from guardian.app._label import LabelRequest, label_file
from guardian.app._verify import Verdict, verify_file
from guardian.audio import (
    Audio,
    OutputFormat,
    decode_bytes,
    encode_bytes,
    flip_wav_sample,
    resample,
)
from guardian.config import Settings

Progress = Callable[[str], None]


@dataclass(frozen=True)
class DemoStep:
    name: str
    expected: str
    got: str
    seconds: float
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.expected == self.got


@dataclass
class DemoReport:
    home: str
    kept: bool = False
    steps: list[DemoStep] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.ok for s in self.steps)

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "home": self.home,
            "steps": [
                {
                    "name": s.name,
                    "expected": s.expected,
                    "got": s.got,
                    "ok": s.ok,
                    "seconds": round(s.seconds, 4),
                    "detail": s.detail,
                }
                for s in self.steps
            ],
        }

    def summary(self) -> str:
        lines = [f"{'step':58} {'expected':11} {'got':11} {'time':>8}"]
        for s in self.steps:
            mark = "ok" if s.ok else "FAIL"
            lines.append(f"{s.name:58} {s.expected:11} {s.got:11} {s.seconds * 1000:6.0f}ms {mark}")
            if s.detail:
                lines.append(f"    {s.detail[:150]}")
        where = self.home if self.kept else f"{self.home} (temporary, removed)"
        lines.append("demo " + ("passed" if self.ok else "FAILED") + f"; home: {where}")
        return "\n".join(lines)


@contextmanager
def _workspace(workdir: Path | None) -> Iterator[Path]:
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
        yield workdir.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="guardian-demo-") as tmp:
        yield Path(tmp)


def _write(path: Path, audio: Audio, fmt: OutputFormat = OutputFormat.WAV) -> Path:
    path.write_bytes(encode_bytes(audio, fmt))
    return path


def run_demo(*, workdir: Path | None = None, progress: Progress | None = None) -> DemoReport:
    """Label, verify, strip and re-encode, tamper, rotate, audit; report each step."""
    say = progress or (lambda _msg: None)
    with _workspace(workdir) as work:
        home = work / "home"
        g = open_guardian(Settings(home=home, database_url=None, master_key=None))
        report = DemoReport(home=str(home), kept=workdir is not None)

        def step(name: str, expected: str, fn: Callable[[], tuple[str, str]]) -> None:
            say(f"- {name} ...")
            t0 = time.perf_counter()
            got, detail = fn()
            report.steps.append(DemoStep(name, expected, got, time.perf_counter() - t0, detail))

        step(
            "create signing identity (root CA, signer, audit)",
            "created",
            lambda: ("created", ", ".join(k.kid for k in init_keys(g))),
        )
        original = _write(work / "speech.wav", _asset("demo-speech.flac"))
        labeled = work / "speech.labeled.wav"

        def do_label() -> tuple[str, str]:
            r = label_file(g, LabelRequest(source=original, output=labeled, purpose="demo"))
            return "labeled", r.label_id

        step("label a speech clip (watermark, C2PA manifest, registry)", "labeled", do_label)
        _verify_step(g, step, "verify the labeled clip", labeled, Verdict.VERIFIED)
        reencoded = _reencode(labeled, work / "speech.reencoded.wav")
        _verify_step(
            g, step, "verify after WAV->MP3 128k->WAV @44.1 kHz", reencoded, Verdict.TRACED
        )
        tampered = work / "speech.tampered.wav"
        tampered.write_bytes(flip_wav_sample(labeled.read_bytes(), position=0.37))
        _verify_step(g, step, "verify with one sample flipped", tampered, Verdict.TAMPERED)
        other_audio = _asset("other-speech.flac")
        other = _write(work / "other.wav", other_audio)
        _verify_step(g, step, "verify an unrelated clip", other, Verdict.NOT_FOUND)
        spliced = _write(work / "spliced.wav", _splice(labeled, other_audio))
        _verify_step(
            g, step, "verify 3 s of it spliced into other speech", spliced, Verdict.WATERMARKED
        )
        step("rotate the signing key", "rotated", lambda: ("rotated", rotate_key(g).kid))
        _verify_step(g, step, "verify the old clip after rotation", labeled, Verdict.VERIFIED)

        def do_audit() -> tuple[str, str]:
            r = verify_audit(g)
            return ("intact" if r else "broken"), f"{r.entries} entries"

        step("check the audit log", "intact", do_audit)
        g.engine.dispose()
        return report


def _verify_step(
    g: Guardian,
    step: Callable[[str, str, Callable[[], tuple[str, str]]], None],
    name: str,
    path: Path,
    expected: Verdict,
) -> None:
    def run() -> tuple[str, str]:
        r = verify_file(g, path)
        wm = r.watermark
        marks = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in wm.segments)
        seen = f"watermark score {wm.score:.2f}" + (f" at {marks}" if marks else "")
        return r.verdict.value, "; ".join([*r.reasons, seen])

    step(name, expected.value, run)


def _asset(name: str) -> Audio:
    return decode_bytes((Path(__file__).with_name("assets") / name).read_bytes(), name=name)


def _splice(labeled: Path, other: Audio) -> Audio:
    """3 s cut from the labeled clip, inserted 2 s into unrelated speech."""
    marked = decode_bytes(labeled.read_bytes())
    rate = other.sample_rate
    excerpt = marked.samples[2 * rate : 5 * rate]
    mixed = np.concatenate([other.samples[: 2 * rate], excerpt, other.samples[2 * rate :]])
    return Audio(mixed, rate)


def _reencode(src: Path, dst: Path) -> Path:
    """Strip metadata the way a platform does: lossy transcode, then resample."""
    audio = decode_bytes(src.read_bytes(), name=src.name)
    mp3 = decode_bytes(encode_bytes(audio, OutputFormat.MP3, bitrate_kbps=128), name="mp3")
    up = resample(mp3.samples, mp3.sample_rate, 44100)
    return _write(dst, Audio(np.clip(up, -1, 1), 44100))
