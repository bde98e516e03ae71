"""The fast verification path: the torch detector beside the ONNX Runtime one, in one run.

Usage::

    nice -n 10 .venv/bin/python benchmarks/verify_speed.py [--clips 16] [--negatives 48] \
        [--repeats 3] [--warm 10] [--cold 5] [--before REV] [--out benchmarks/out]

Needs the speech corpus ``benchmarks/watermark.py`` caches (``OUT/wm-corpus``). Measures:

* detection speed (``detect`` of a whole clip: presence and payload reader), x real
  time by wall clock and by CPU time, median of ``--repeats`` passes over ``--clips``
  watermarked corpus clips, each runtime in turn within a pass: torch, ONNX fp32 (the
  shipped file; also reading one batch at a time instead of ``OnnxDetector.workers``
  at once), ONNX int8 (built here with ``export --onnx --precision int8``) and the
  ONNX file the card pinned at ``--before``;
* equivalence on the same clips and ``--negatives`` unwatermarked corpus clips: the
  largest score difference from torch, and detections, payloads and segments that differ;
* warm ``verify_file`` of a 10 s WAV labeled here, the same clip re-encoded to MP3 (its
  manifest lost: traced by fingerprint) and 10 s of unrelated speech, p50/p99 of ``--warm``
  calls per runtime;
* a cold ``guardian verify clip.wav`` process, interpreter start included: median wall
  time of ``--cold`` runs and the largest peak RSS, per runtime, and on the tree at git
  revision ``--before`` (default: where this branch left ``main``), with the top of
  ``python -X importtime`` for the two trees; both trees are byte-compiled first, so
  that neither pays for compiling its sources in every run;
* the sizes of the detector files.

The machine is shared: the load average is recorded at the start and the end. Writes
``OUT/verify_speed.json``; a run with the defaults also writes
``docs/benchmarks/verify_speed.{json,md}``.
"""

from __future__ import annotations

import argparse
import compileall
import dataclasses
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from guardian.app import LabelRequest, label_file, open_guardian, verify_file  # noqa: E402
from guardian.audio import Audio, OutputFormat, decode_bytes, encode_bytes  # noqa: E402
from guardian.config import Settings  # noqa: E402
from guardian.errors import WatermarkModelError  # noqa: E402
from guardian.watermark import (  # noqa: E402
    SHIPPED_CARD,
    Detector,
    OnnxDetector,
    Payload,
    Precision,
    TorchDetector,
    embed,
    export_onnx,
    load_card,
    load_detector,
)

DEFAULTS = {"clips": 16, "negatives": 48, "repeats": 3, "warm": 10, "cold": 5}
RATE = 24_000


def _git_show(rev: str, path: Path) -> bytes:
    relative = path.relative_to(ROOT).as_posix()
    return subprocess.run(
        ["git", "-C", str(ROOT), "show", f"{rev}:{relative}"], capture_output=True, check=True
    ).stdout


def _shipped_card_at(rev: str) -> Path:
    """The shipped card's path at git revision ``rev`` (its name changes with the model)."""
    names = subprocess.run(
        ["git", "-C", str(ROOT), "ls-tree", "--name-only", f"{rev}:guardian/watermark/weights"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    (card,) = (n for n in names if n.endswith(".yaml") and not n.endswith(".recipe.yaml"))
    return SHIPPED_CARD.with_name(card)


def _cards(work: Path, before: str) -> tuple[dict[str, Path], str | None]:
    """The shipped card as it is (ONNX fp32), without its ONNX entry (torch), with an
    int8 ONNX detector built here, and the card shipped at git revision ``before`` (its
    ONNX file); and why export refused the int8 build, if it did (no ``int8`` card)."""
    out = {}
    folder = work / "card-before"
    folder.mkdir()
    card = _shipped_card_at(before)
    old = yaml.safe_load(_git_show(before, card))
    onnx_name = old["detector_onnx"]["file"]
    (folder / onnx_name).write_bytes(_git_show(before, card.with_name(onnx_name)))
    (folder / card.name).write_text(yaml.safe_dump(old, sort_keys=False))
    out["before"] = folder / card.name
    weights = SHIPPED_CARD.with_suffix(".pt")
    for name in ("torch", "int8"):
        folder = work / f"card-{name}"
        folder.mkdir()
        (folder / weights.name).symlink_to(weights)
        meta = yaml.safe_load(SHIPPED_CARD.read_text())
        meta.pop("detector_onnx")
        (folder / SHIPPED_CARD.name).write_text(yaml.safe_dump(meta, sort_keys=False))
        out[name] = folder / SHIPPED_CARD.name
    refused = None
    try:
        export_onnx(out["int8"], precision=Precision.INT8)
    except WatermarkModelError as e:  # export's own check refused it: report, don't time
        refused = str(e)
        del out["int8"]
    out["onnx"] = SHIPPED_CARD
    return out, refused


def _corpus(out: Path, kind: str, n: int) -> list[Audio]:
    folder = out / "wm-corpus" / kind
    files = sorted(folder.glob("*.wav"))[:n]
    if len(files) < n:
        raise SystemExit(f"{folder}: {len(files)} clips, {n} needed; run benchmarks/watermark.py")
    return [Audio(sf.read(f, dtype="float32")[0][:, None], RATE) for f in files]


def detection(
    detectors: dict[str, Detector], positives: list[Audio], negatives: list[Audio], repeats: int
) -> dict[str, Any]:
    seconds = sum(a.duration for a in positives)
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in detectors}
    for d in detectors.values():
        d.detect(positives[0])  # lazy imports, first-call allocations
    for _ in range(repeats):
        for name, d in detectors.items():
            w0, c0 = time.perf_counter(), time.process_time()
            for clip in positives:
                d.detect(clip)
            runs[name].append((time.perf_counter() - w0, time.process_time() - c0))
    out: dict[str, Any] = {"clips": len(positives), "audio_s": round(seconds, 1)}
    clips = positives + negatives
    found = {name: [d.detect(c) for c in clips] for name, d in detectors.items()}
    for name in detectors:
        pairs = list(zip(found["torch"], found[name], strict=True))
        wall = statistics.median(r[0] for r in runs[name])
        cpu = statistics.median(r[1] for r in runs[name])
        hits = [f.detected for f in found[name]]
        out[name] = {
            "detect_x_rt": round(seconds / wall, 1),
            "detect_x_rt_cpu": round(seconds / cpu, 1),
            "max_score_diff": max(abs(a.score - b.score) for a, b in pairs),
            "mean_score_diff": float(np.mean([abs(a.score - b.score) for a, b in pairs])),
            "differ": {
                "detected": sum(a.detected != b.detected for a, b in pairs),
                "payload": sum(a.payload != b.payload for a, b in pairs),
                "segments": sum(a.segments != b.segments for a, b in pairs),
            },
            "tpr_at_card_threshold": float(np.mean(hits[: len(positives)])),
            "fpr_at_card_threshold": float(np.mean(hits[len(positives) :])),
        }
    return out


def _onnx_detector() -> OnnxDetector:
    detector = load_detector()
    assert isinstance(detector, OnnxDetector)
    return detector


def _ten_seconds(clips: list[Audio]) -> np.ndarray:
    x = np.concatenate([c.samples[:, 0] for c in clips])
    if len(x) < 10 * RATE:
        raise SystemExit("not enough corpus speech for a 10 s clip")
    return x[: 10 * RATE]


def warm_verify(work: Path, cards: dict[str, Path], speech: list[Audio], n: int) -> dict[str, Any]:
    home = work / "home"
    clips = {"unrelated": work / "unrelated.wav", "labeled": work / "labeled.wav"}
    src = work / "src.wav"
    src.write_bytes(encode_bytes(Audio(_ten_seconds(speech[:6])[:, None], RATE), "wav"))
    other = Audio(_ten_seconds(speech[6:])[:, None], RATE)
    clips["unrelated"].write_bytes(encode_bytes(other, "wav"))
    base = Settings(home=home, database_url=None, master_key=None)
    g = open_guardian(base.model_copy(update={"watermark_model": "guardian"}))
    label_file(g, LabelRequest(source=src, output=clips["labeled"], purpose="benchmark"))
    reencoded = decode_bytes(clips["labeled"].read_bytes())
    clips["reencoded"] = work / "reencoded.mp3"
    clips["reencoded"].write_bytes(encode_bytes(reencoded, OutputFormat.MP3, bitrate_kbps=128))
    g.engine.dispose()
    out: dict[str, Any] = {"clip_s": 10.0, "calls": n}
    for runtime in ("torch", "onnx"):
        spec = "guardian" if runtime == "onnx" else str(cards["torch"])
        g = open_guardian(base.model_copy(update={"watermark_model": spec}))
        assert g.detector.runtime == runtime
        row = {}
        for kind in ("labeled", "reencoded", "unrelated"):
            verdict = verify_file(g, clips[kind]).verdict.value  # warm-up
            times = []
            for _ in range(n):
                t0 = time.perf_counter()
                verify_file(g, clips[kind])
                times.append(time.perf_counter() - t0)
            row[kind] = {
                "verdict": verdict,
                "p50_ms": round(1000 * float(np.percentile(times, 50)), 1),
                "p99_ms": round(1000 * float(np.percentile(times, 99)), 1),
            }
        out[runtime] = row
        g.engine.dispose()
    out["home"], out["clips"] = home, clips
    return out


COLD = (
    "import atexit, sys\n"
    "def peak():  # this process's own high-water mark (ru_maxrss would count the fork)\n"
    "    status = open('/proc/self/status').read()\n"
    "    sys.stderr.write('VmHWM ' + status.split('VmHWM:')[1].split()[0] + '\\n')\n"
    "atexit.register(peak)\n"
    "sys.argv = ['guardian', 'verify', sys.argv[1], '--json']\n"
    "from cli.main import run\n"
    "run()\n"
)
"""``guardian verify CLIP --json`` through the console script's entry point, reporting the
process's peak resident memory on exit."""


def _cold_once(tree: Path, home: Path, clip: Path, spec: str) -> tuple[float, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDIAN_")}
    env |= {"GUARDIAN_HOME": str(home), "GUARDIAN_WATERMARK_MODEL": spec}
    env |= {"PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    t0 = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", COLD, str(clip)], cwd=tree, env=env, capture_output=True, text=True
    )
    wall = time.perf_counter() - t0
    verdict = json.loads(done.stdout)["verdict"] if done.stdout.strip() else "none"
    assert verdict == "verified", (verdict, done.stderr[-2000:])
    peak_kb = int(re.findall(r"VmHWM (\d+)", done.stderr)[-1])
    return wall, peak_kb / 1024


def _importtime(tree: Path, top: int = 15) -> list[dict[str, Any]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDIAN_")}
    env |= {"PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import cli.main"],
        cwd=tree,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    rows = []
    for line in done.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)", line)
        if m:
            rows.append({"module": m.group(4), "cumulative_ms": int(m.group(2)) / 1000})
    rows.sort(key=lambda r: -r["cumulative_ms"])
    return [{**r, "cumulative_ms": round(r["cumulative_ms"], 1)} for r in rows[:top]]


def _tree_at(rev: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", "--format=tar", rev], capture_output=True, check=True
    ).stdout
    into.mkdir()
    with tempfile.TemporaryFile() as f:
        f.write(archive)
        f.seek(0)
        with tarfile.open(fileobj=f) as tar:
            tar.extractall(into, filter="data")
    return into


def cold_verify(
    work: Path, home: Path, clip: Path, cards: dict[str, Path], n: int, before: str
) -> dict[str, Any]:
    old = _tree_at(before, work / "before")
    for tree in (ROOT, old):  # the runs write no bytecode (PYTHONDONTWRITEBYTECODE)
        for package in ("cli", "guardian"):
            compileall.compile_dir(tree / package, quiet=1)
    trees = {
        "torch": (ROOT, str(cards["torch"])),
        "onnx": (ROOT, "guardian"),
        "before": (old, "guardian"),
    }
    runs: dict[str, list[tuple[float, float]]] = {k: [] for k in trees}
    for _ in range(n):  # the trees take turns, so load affects them alike
        for name, (tree, spec) in trees.items():
            runs[name].append(_cold_once(tree, home, clip, spec))
    out: dict[str, Any] = {"runs": n, "before_rev": before}
    for name, rows in runs.items():
        out[name] = {
            "median_s": round(statistics.median(r[0] for r in rows), 3),
            "min_s": round(min(r[0] for r in rows), 3),
            "peak_rss_mb": round(max(r[1] for r in rows), 1),
        }
    out["importtime_before"] = _importtime(old)
    out["importtime_after"] = _importtime(ROOT)
    return out


def sizes(cards: dict[str, Path]) -> dict[str, float]:
    def onnx_file(card: Path) -> Path:
        return card.with_name(yaml.safe_load(card.read_text())["detector_onnx"]["file"])

    return {
        "torch_weights_mb": round(SHIPPED_CARD.with_suffix(".pt").stat().st_size / 1e6, 2),
        "onnx_fp32_mb": round(onnx_file(cards["onnx"]).stat().st_size / 1e6, 2),
        "onnx_int8_mb": round(onnx_file(cards["int8"]).stat().st_size / 1e6, 2)
        if "int8" in cards
        else None,
        "onnx_before_mb": round(onnx_file(cards["before"]).stat().st_size / 1e6, 2),
    }


def markdown(r: dict[str, Any]) -> str:
    det, warm, cold, size = r["detection"], r["warm_verify"], r["cold_verify"], r["sizes"]
    lines = [
        "# Verify speed: torch and ONNX Runtime",
        "",
        f"Made by `{r['command']}` on {r['date']}, {r['cpus']} CPUs shared with other work "
        f"(load average {r['loadavg_start']:.1f} at the start, {r['loadavg_end']:.1f} at the "
        f"end); Python {r['python']}, onnxruntime {r['onnxruntime']}.",
        "",
        "## Detection",
        "",
        f"`detect` on {det['clips']} watermarked corpus clips ({det['audio_s']} s), median of "
        f"{r['args']['repeats']} passes; differences against torch on those and "
        f"{r['args']['negatives']} unwatermarked clips.",
        "",
        "| runtime | x real time (wall) | x real time (CPU) | max score diff | "
        "detections / payloads / segments differing | TPR | FPR |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    labels = {
        "torch": "torch",
        "onnx": "ONNX fp32 (shipped)",
        "onnx_serial": "ONNX fp32, one batch at a time",
        "int8": "ONNX int8",
        "before": f"ONNX fp32 at `{cold['before_rev'][:10]}` ({r['models']['before']})",
    }
    for name, label in labels.items():
        if name not in det:
            lines.append(f"| {label} | refused by export: {r['int8_refused']} | | | | | |")
            continue
        d = det[name]
        differ = d["differ"]
        lines.append(
            f"| {label} | {d['detect_x_rt']} | {d['detect_x_rt_cpu']} | "
            f"{d['max_score_diff']:.2g} | {differ['detected']} / {differ['payload']} / "
            f"{differ['segments']} | {d['tpr_at_card_threshold']:.3f} | "
            f"{d['fpr_at_card_threshold']:.3f} |"
        )
    lines += [
        "",
        f"Detector files: torch weights {size['torch_weights_mb']} MB (generator and "
        f"detector, for embedding), ONNX fp32 {size['onnx_fp32_mb']} MB (weights stored as "
        f"float16), "
        + (f"ONNX int8 {size['onnx_int8_mb']} MB" if size["onnx_int8_mb"] else "no ONNX int8")
        + f"; the ONNX fp32 file at the earlier revision {size['onnx_before_mb']} MB. "
        f"Shipped model: {r['models']['onnx']}.",
        "",
        f"## Warm `verify_file`, 10 s clip, {warm['calls']} calls",
        "",
        "| clip | verdict | torch p50 / p99 (ms) | ONNX p50 / p99 (ms) |",
        "|---|---|---:|---:|",
    ]
    for kind in ("labeled", "reencoded", "unrelated"):
        t, o = warm["torch"][kind], warm["onnx"][kind]
        lines.append(
            f"| {kind} | {o['verdict']} | {t['p50_ms']} / {t['p99_ms']} | "
            f"{o['p50_ms']} / {o['p99_ms']} |"
        )
    lines += [
        "",
        f"## Cold `guardian verify clip.wav`, {cold['runs']} runs each",
        "",
        "A new process each time, interpreter start included; peak RSS is the largest.",
        "",
        "| tree | median (s) | fastest (s) | peak RSS (MB) |",
        "|---|---:|---:|---:|",
    ]
    names = {
        "before": f"before (`{cold['before_rev'][:10]}`)",
        "torch": "this tree, torch detector",
        "onnx": "this tree, ONNX detector (shipped)",
    }
    for key, label in names.items():
        c = cold[key]
        lines.append(f"| {label} | {c['median_s']} | {c['min_s']} | {c['peak_rss_mb']} |")
    lines += [
        "",
        "`python -X importtime -c 'import cli.main'`, the largest cumulative imports at any",
        "depth (a module's time includes what it imports):",
        "",
    ]
    lines += ["| before | ms | after | ms |", "|---|---:|---|---:|"]
    for b, a in zip(cold["importtime_before"], cold["importtime_after"], strict=False):
        lines.append(
            f"| `{b['module']}` | {b['cumulative_ms']} | `{a['module']}` | {a['cumulative_ms']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    for key, value in DEFAULTS.items():
        parser.add_argument(f"--{key}", type=int, default=value)
    parser.add_argument("--before", default=None, help="git revision of the tree to compare")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    args = parser.parse_args()
    git = ["git", "-C", str(ROOT)]
    before = (
        args.before
        or subprocess.run(
            [*git, "merge-base", "HEAD", "main"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    before = subprocess.run(  # a commit id, not a name that moves (HEAD, a branch)
        [*git, "rev-parse", "--verify", f"{before}^{{commit}}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    import onnxruntime

    started = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        cards, int8_refused = _cards(work, before)
        model = load_card(SHIPPED_CARD)
        speech = _corpus(args.out, "pos", max(args.clips, 12))
        rng = np.random.default_rng(0)
        positives = [embed(model, c, Payload(int(rng.integers(1 << 16)))) for c in speech]
        positives = positives[: args.clips]
        negatives = _corpus(args.out, "neg", args.negatives)
        detectors: dict[str, Detector] = {
            "torch": TorchDetector(model),
            "onnx": load_detector(),
            "onnx_serial": dataclasses.replace(_onnx_detector(), workers=1),
            "before": load_detector(str(cards["before"])),
        }
        if "int8" in cards:
            detectors["int8"] = load_detector(str(cards["int8"]))
        report: dict[str, Any] = {
            "command": "nice -n 10 .venv/bin/python benchmarks/verify_speed.py "
            + " ".join(f"--{k} {getattr(args, k)}" for k in DEFAULTS),
            "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "args": {k: getattr(args, k) for k in DEFAULTS},
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__,
            "loadavg_start": started,
            "int8_refused": int8_refused,
            "detection": detection(detectors, positives, negatives, args.repeats),
            "sizes": sizes(cards),
            "models": {
                name: yaml.safe_load(cards[name].read_text())["model_id"]
                for name in ("onnx", "before")
            },
        }
        warm = warm_verify(work, cards, speech, args.warm)
        home, clips = warm.pop("home"), warm.pop("clips")
        report["warm_verify"] = warm
        report["cold_verify"] = cold_verify(work, home, clips["labeled"], cards, args.cold, before)
        shutil.rmtree(work / "before", ignore_errors=True)
    report["loadavg_end"] = os.getloadavg()[0]
    args.out.mkdir(parents=True, exist_ok=True)
    data = json.dumps(report, separators=(",", ":")) + "\n"
    (args.out / "verify_speed.json").write_text(data)
    table = markdown(report)
    print(table)
    if all(getattr(args, k) == v for k, v in DEFAULTS.items()):
        docs = ROOT / "docs" / "benchmarks"
        (docs / "verify_speed.json").write_text(data)
        (docs / "verify_speed.md").write_text(table)


if __name__ == "__main__":
    main()
