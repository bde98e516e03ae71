"""verify-batch on the local process pool: sources, the report, resume after a kill."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from guardian.app import (
    BatchSummary,
    Guardian,
    LabelRequest,
    label_file,
    list_clips,
    verify_batch,
    verify_file,
)
from guardian.app._batch import open_worker, reported
from guardian.audio import Audio, OutputFormat, decode_bytes, encode_bytes, flip_wav_sample
from guardian.config import Settings
from guardian.errors import GuardianError, UsageError
from tests.conftest import write_clip

ROOT = Path(__file__).resolve().parents[2]


def make_corpus(g: Guardian, root: Path) -> Path:
    """About twenty clips: labeled (WAV, FLAC), re-encoded to MP3, spliced, one with a
    flipped sample, unrelated, and one corrupt; in nested folders, beside a non-audio
    file that the listing must skip."""
    src, clips = root / "src", root / "clips"
    (clips / "nested").mkdir(parents=True)
    src.mkdir()
    labeled: list[Path] = []
    for i in range(5):
        fmt = OutputFormat.FLAC if i == 4 else OutputFormat.WAV
        raw = write_clip(src / f"s{i}.wav", seed=40 + i)
        out = clips / f"labeled-{i}.{fmt.value}"
        label_file(g, LabelRequest(source=raw, output=out, purpose="test"))
        labeled.append(out)
    for i, path in enumerate(labeled[:4]):
        audio = decode_bytes(path.read_bytes())
        mp3 = encode_bytes(audio, "mp3", bitrate_kbps=128)
        (clips / "nested" / f"reencoded-{i}.mp3").write_bytes(mp3)
    unrelated = [write_clip(clips / f"unrelated-{i}.wav", seed=900 + i) for i in range(5)]
    for i in range(3):
        a = decode_bytes(labeled[i].read_bytes()).samples
        b = decode_bytes(unrelated[i].read_bytes()).samples
        half = len(a) // 2
        spliced = Audio(np.concatenate([a[:half], b[half:]]), 16000)
        (clips / "nested" / f"spliced-{i}.wav").write_bytes(encode_bytes(spliced, "wav"))
    (clips / "flipped.wav").write_bytes(flip_wav_sample(labeled[0].read_bytes()))
    (clips / "corrupt.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + os.urandom(64))
    (clips / "notes.txt").write_text("not audio")
    return clips


def read_report(report: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in report.read_text().splitlines()]


def assert_same_as_verify(g: Guardian, lines: list[dict[str, Any]]) -> None:
    """Each line says what ``verify`` says about its clip (the score to 1e-3, since the
    workers run torch on one thread)."""
    for line in lines:
        path = Path(line["path"])
        if line["error"] is not None:
            with pytest.raises(GuardianError) as caught:
                verify_file(g, path)
            assert line["error"]["type"] == type(caught.value).__name__
            assert line["error"]["exit_code"] == int(caught.value.exit_code)
            continue
        want = verify_file(g, path).to_dict()
        got = {k: v for k, v in line.items() if k not in ("path", "error")}
        got_score, want_score = got["watermark"].pop("score"), want["watermark"].pop("score")
        assert got == want, path.name
        assert got_score == pytest.approx(want_score, abs=1e-3)


# --- fast: sources and the report ------------------------------------------------------------


def test_sources_directory_glob_csv_jsonl(tmp_path: Path) -> None:
    (tmp_path / "d" / "sub").mkdir(parents=True)
    a = write_clip(tmp_path / "d" / "a.wav")
    b = write_clip(tmp_path / "d" / "sub" / "b.FLAC", fmt=OutputFormat.FLAC)
    (tmp_path / "d" / "readme.txt").write_text("x")
    assert list_clips(str(tmp_path / "d")) == [a, b]
    assert list_clips(str(tmp_path / "d" / "**" / "*.*")) == [a, b]
    (tmp_path / "list.csv").write_text("id,path\n1,d/sub/b.FLAC\n2,d/a.wav\n3,d/a.wav\n")
    assert list_clips(str(tmp_path / "list.csv")) == [b, a]
    (tmp_path / "list.jsonl").write_text(f'{{"path": "{a}"}}\n\n"d/sub/b.FLAC"\n')
    assert list_clips(str(tmp_path / "list.jsonl")) == [a, b]


@pytest.mark.parametrize(
    ("source", "message"),
    [("missing-dir", "no such"), ("empty", "no audio clips"), ("bad.jsonl", "line 1")],
)
def test_bad_sources_are_refused_and_nothing_is_written(
    tmp_path: Path, settings: Settings, source: str, message: str
) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.jsonl").write_text("{not json\n")
    report = tmp_path / "report.jsonl"
    with pytest.raises(UsageError, match=message):
        verify_batch(str(tmp_path / source), report, settings=settings)
    assert not report.exists()


def test_a_torn_last_line_is_dropped_and_other_files_are_refused(tmp_path: Path) -> None:
    report = tmp_path / "r.jsonl"
    good = '{"path":"/a.wav","verdict":"not_found","error":null}\n'
    report.write_text(good + '{"path":"/b.wav","verd')
    assert reported(report) == {str(Path("/a.wav").resolve())}
    assert report.read_text() == good
    other = tmp_path / "notes.txt"
    other.write_text("my notes\nmore notes")
    with pytest.raises(UsageError, match="not a verify-batch report"):
        reported(other)
    assert other.read_text() == "my notes\nmore notes"


@pytest.mark.slow  # a fresh interpreter
def test_importing_the_cli_does_not_import_ray() -> None:
    code = "import sys, cli.main, guardian.app._batch; print('ray' in sys.modules)"
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"


@pytest.mark.slow
def test_a_batch_on_the_default_path_does_not_import_ray(
    tmp_path: Path, settings: Settings
) -> None:
    clip = write_clip(tmp_path / "c.wav")
    code = (
        "import sys\n"
        "from cli.main import app\n"
        f"app(['verify-batch', {str(clip)!r}, '-o', {str(tmp_path / 'r.jsonl')!r}, "
        "'--workers', '1', '--json'], standalone_mode=False)\n"
        "assert 'ray' not in sys.modules, 'ray was imported'\n"
        "print('ok')\n"
    )
    env = {**os.environ, "GUARDIAN_HOME": str(settings.home), "PYTHONPATH": str(ROOT)}
    env.pop("GUARDIAN_RAY_ADDRESS", None)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().endswith("ok")
    assert len(read_report(tmp_path / "r.jsonl")) == 1


# --- slow: the pool against verify, resume ----------------------------------------------------


@pytest.mark.slow
def test_the_pool_says_what_verify_says(g: Guardian, settings: Settings, tmp_path: Path) -> None:
    clips = make_corpus(g, tmp_path)
    report = tmp_path / "report.jsonl"
    summary = verify_batch(str(clips), report, settings=settings, workers=2)
    lines = read_report(report)
    assert summary.listed == summary.done == len(lines) == 19 and summary.workers == 2
    assert sorted(x["path"] for x in lines) == sorted(str(p) for p in list_clips(str(clips)))
    assert summary.errors == 1 and summary.verdicts["verified"] == 5
    assert {"traced", "tampered", "not_found"} <= set(summary.verdicts)
    assert_same_as_verify(g, lines)
    again = verify_batch(str(clips), report, settings=settings, workers=2)
    assert again.skipped == 19 and again.done == 0 and len(read_report(report)) == 19


@pytest.mark.slow
def test_a_killed_batch_resumes_and_reports_every_clip_once(
    g: Guardian, settings: Settings, tmp_path: Path
) -> None:
    clips = tmp_path / "clips"
    clips.mkdir()
    sources = [write_clip(tmp_path / f"s{i}.wav", seed=70 + i) for i in range(4)]
    for n in range(60):
        (clips / f"{n:03d}.wav").write_bytes(sources[n % 4].read_bytes())
    report = tmp_path / "report.jsonl"
    env = {
        **os.environ,
        "GUARDIAN_HOME": str(settings.home),
        "GUARDIAN_WATERMARK_MODEL": str(settings.watermark_model),
        "PYTHONPATH": str(ROOT),
    }
    cmd = [sys.executable, "-m", "cli.main", "verify-batch", str(clips), "-o", str(report)]
    run = subprocess.Popen(
        [*cmd, "--workers", "1", "--json"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and run.poll() is None:
        if report.exists() and report.read_text().count("\n") >= 5:
            break
        time.sleep(0.02)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    first = report.read_text().count("\n")
    assert 5 <= first < 60, "the batch was not stopped halfway"
    with report.open("a") as f:  # a line cut short, as a kill during a write leaves it
        f.write('{"path":"' + str(clips / "059.wav") + '","verdict":"not_fo')
    summary = verify_batch(str(clips), report, settings=settings, workers=2)
    lines = read_report(report)
    paths = [x["path"] for x in lines]
    assert len(paths) == len(set(paths)) == 60
    assert set(paths) == {str(p) for p in list_clips(str(clips))}
    assert summary.skipped == first and summary.done == 60 - first
    assert all(x["error"] is None and x["verdict"] == "not_found" for x in lines)


def test_summary_keys_match_the_documented_contract() -> None:
    doc = (ROOT / "docs" / "cli.md").read_text()
    section = doc.split("### `guardian verify-batch", 1)[1].split("###", 1)[0]
    documented = set(re.findall(r"`([a-z_]+)`", section.split("prints the summary instead", 1)[1]))
    summary = BatchSummary(report="r", backend="pool", workers=1, listed=0, skipped=0, done=0)
    assert set(summary.to_dict()) <= documented, set(summary.to_dict()) - documented


@pytest.mark.slow
def test_workers_that_cannot_start_stop_the_batch_and_report_nothing(tmp_path: Path) -> None:
    from guardian.app._batch import _run_pool
    from guardian.errors import ConfigError

    (tmp_path / "not-a-dir").write_text("x")
    broken = Settings(home=tmp_path / "not-a-dir" / "home")
    lines: list[dict[str, Any]] = []
    with pytest.raises(ConfigError, match="before verifying any clip"):
        _run_pool([str(write_clip(tmp_path / "c.wav"))], broken, 1, lines.append)
    assert lines == []


def test_a_worker_runs_the_detector_on_the_cores_it_is_given(settings: Settings) -> None:
    """N workers on N cores: each worker's ONNX Runtime session gets its own thread count
    (ONNX Runtime would otherwise start one thread per core in every worker), and the
    worker loads the detector that verify runs, not the torch model that embeds."""
    shipped = settings.model_copy(update={"watermark_model": None})  # its ONNX detector
    g = open_worker(shipped, threads=1)
    options = g.detector.session.get_session_options()  # type: ignore[attr-defined]
    assert options.intra_op_num_threads == 1
    assert g._watermark is None
    g.engine.dispose()
