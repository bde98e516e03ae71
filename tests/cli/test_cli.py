"""The command line as a user runs it: real processes, exit codes, JSON on stdout."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import soundfile as sf
import yaml

from tests.conftest import write_clip

# Whole CLI runs in subprocesses: the demo, watermark training, corpora.
pytestmark = pytest.mark.slow

GUARDIAN = [sys.executable, "-m", "cli.main"]


def run(
    home: Path, *args: str, model: str | None = None, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDIAN_")}
    env["GUARDIAN_HOME"] = str(home)
    env["GUARDIAN_WATERMARK_MODEL"] = model or os.environ["GUARDIAN_WATERMARK_MODEL"]
    env["GUARDIAN_ALLOW_SYNTHETIC_CONSENT"] = "true"  # the consent subjects are festival voices
    return subprocess.run(
        [*GUARDIAN, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


def test_label_verify_json_contract(home: Path, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "in.wav")
    out = tmp_path / "out.mp3"
    r = run(home, "label", str(clip), "-o", str(out), "--purpose", "ad", "--json")
    assert r.returncode == 0, r.stderr
    labeled = json.loads(r.stdout)
    assert labeled["output"] == str(out) and labeled["format"] == "mp3"
    r = run(home, "verify", str(out), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["verdict"] == "verified"
    assert {"detected", "score", "payload", "segments"} <= set(doc["watermark"])
    assert set(doc["manifest"]) == {"present", "valid", "trusted", "id"}
    assert doc["manifest"]["trusted"] is True
    for key in ("voice_id", "consent_id", "generated_at", "epsilon"):
        assert key in doc
    assert doc["label_id"] == labeled["label_id"]


def test_exit_codes(home: Path, tmp_path: Path) -> None:
    other = write_clip(tmp_path / "other.wav", seed=42)
    assert run(home, "verify", str(other)).returncode == 1
    junk = tmp_path / "junk.wav"
    junk.write_text("hello")
    r = run(home, "verify", str(junk))
    assert r.returncode == 4
    assert r.stderr.count("\n") == 1 and "not an audio file" in r.stderr
    assert "Traceback" not in r.stderr
    r = run(home, "verify", str(tmp_path / "missing.wav"), "--json")
    assert r.returncode == 4 and json.loads(r.stdout)["error"]["exit_code"] == 4
    assert run(home, "verify").returncode == 2
    assert run(home, "label", str(other), "-o", str(tmp_path / "x.txt")).returncode == 2


def test_tampered_exit_code(home: Path, tmp_path: Path) -> None:
    from guardian.audio import flip_wav_sample

    clip = write_clip(tmp_path / "in.wav")
    out = tmp_path / "out.wav"
    assert run(home, "label", str(clip), "-o", str(out)).returncode == 0
    out.write_bytes(flip_wav_sample(out.read_bytes(), position=0.1))
    r = run(home, "verify", str(out), "--json")
    assert r.returncode == 3 and json.loads(r.stdout)["verdict"] == "tampered"


def test_keys_and_audit_commands(home: Path) -> None:
    r = run(home, "keys", "init", "--json")
    assert r.returncode == 0 and len(json.loads(r.stdout)["created"]) == 3
    r = run(home, "keys", "rotate", "--json")
    kid = json.loads(r.stdout)["active"]["kid"]
    r = run(home, "keys", "revoke", kid, "--reason", "test", "--json")
    assert json.loads(r.stdout)["revoked"]["status"] == "revoked"
    keys = json.loads(run(home, "keys", "list", "--json").stdout)["keys"]
    assert {k["status"] for k in keys} == {"active", "retired", "revoked"}
    r = run(home, "audit", "verify", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["entries"] == 3
    r = run(home, "keys", "revoke", "sig-unknown")
    assert r.returncode == 1 and "no key" in r.stderr


def test_demo_runs_end_to_end(tmp_path: Path) -> None:
    from guardian.watermark import SHIPPED_CARD

    trained = os.environ.get("GUARDIAN_TEST_TRAINED_CARD", str(SHIPPED_CARD))
    # The demo enrolls, trains and synthesizes: minutes on a busy 2-core machine.
    r = run(tmp_path / "unused", "demo", "--json", model=trained, timeout=900)
    assert r.returncode == 0, r.stdout + r.stderr
    report = json.loads(r.stdout)
    assert report["ok"]
    verdicts = [s["got"] for s in report["steps"]]
    for v in ("verified", "traced", "tampered", "not_found"):
        assert v in verdicts
    # The chain starts with a real enrollment and ends with an erasure.
    for v in ("enrolled", "rejected", "allow", "deny", "revoked", "erased"):
        assert v in verdicts
    assert verdicts[-2] == "verified, voice erased"
    # The clip is measured against the demo speaker's held-out recordings, at run time.
    voice = report["voice"]
    assert 0.0 < voice["rate_ratio"] < 3.0 and -1.0 <= voice["secs"] <= 1.0
    assert voice["references"] >= 3


def test_watermark_train_staged_recipe(home: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for seed in range(2):
        write_clip(data / f"c{seed}.wav", seconds=2.0, seed=seed)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(
        "arch: {n_filters: 4, dimension: 8, lstm: 1}\nbatch_size: 2\nsegment_s: 0.5\n"
        "steps: 1\naugment_weights: {identity: 1.0}\nstages: [{name: a}, {name: b}]\n"
    )
    args = ["watermark", "train", "--data", str(data), "--out", str(tmp_path / "run")]
    r = run(home, *args, "--config", str(recipe), "--json")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc == {
        "checkpoint": str(tmp_path / "run" / "2-b" / "checkpoint.pt"),
        "stopped_early": False,
    }
    export = ["watermark", "export", "--run", str(tmp_path / "run" / "2-b"), "--count", "4"]
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    r = run(home, *export, "--model-id", "t", "--card", str(blocker / "cards" / "t.yaml"))
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
    assert "not a folder" in r.stderr and blocker.read_text() == ""
    card = tmp_path / "new" / "cards" / "t.yaml"  # missing folders are created
    r = run(home, *export, "--model-id", "t", "--card", str(card), "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"card": str(card)} and card.with_suffix(".pt").exists()
    r = run(home, "watermark", "export", "--onnx", "--card", str(card), "--json")
    assert r.returncode == 0, r.stderr
    onnx = card.with_name("t.detector.onnx")
    assert json.loads(r.stdout) == {"card": str(card), "onnx": str(onnx)} and onnx.exists()
    assert yaml.safe_load(card.read_text())["detector_onnx"]["file"] == onnx.name
    r = run(home, "watermark", "export", "--card", str(card))
    assert r.returncode == 2 and "--onnx" in r.stderr
    recipe.write_text("augment_weights: {mp3_23k: 1.0}\n")
    r = run(home, *args, "--config", str(recipe))
    assert r.returncode != 0
    assert "mp3_23k" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("option", "bad", "good", "prefix"),
    [("--converted", "1.5", "1", "speech-"), ("--engine-voices", "3", "1", "engine-")],
)
def test_watermark_corpus_options(
    home: Path, tmp_path: Path, option: str, bad: str, good: str, prefix: str
) -> None:
    """Random public voices of the engine (--converted), or the engine's own output (the
    demo voice DP-trained --engine-voices times): a bad value is a one-line error with
    nothing written; a good one writes 2 clips at 16 kHz."""
    out = tmp_path / "corpus"
    args = ["watermark", "corpus", "-o", str(out), "--count", "2", option]
    r = run(home, *args, bad)
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1
    assert option in r.stderr and not out.exists()
    r = run(home, *args, good, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"out": str(out), "files": 2}
    clips = sorted(out.glob("*.wav"))
    assert len(clips) == 2 and all(p.name.startswith(prefix) for p in clips)
    assert all(sf.info(p).samplerate == 16_000 for p in clips)
    assert all(sf.info(p).duration > 1.0 for p in clips)


def test_receipt_signed_by_a_self_made_ca_is_untrusted_without_a_home(tmp_path: Path) -> None:
    import datetime as dt

    from guardian.keys import ManifestSigner, _x509
    from guardian.keys._documents import sign_as_service
    from guardian.rights import ErasureReceipt

    now = dt.datetime.now(dt.UTC)
    root_key, root = _x509.make_root(organization="Guardian", now=now)
    key, leaf = _x509.make_leaf(
        root_key=root_key, root_cert=root, organization="Guardian", common_name="x", now=now
    )
    signer = ManifestSigner("sig-rogue", key, _x509.cert_pem(leaf) + _x509.cert_pem(root))
    body = {
        "type": "guardian.erasure-receipt/v1",
        "receipt_id": "rcpt_" + "x" * 26,
        "erased_at": now.isoformat(),
    }
    path = tmp_path / "receipt.json"
    path.write_bytes(ErasureReceipt(body, (sign_as_service(body, signer),)).to_bytes())
    nohome = tmp_path / "no-home"
    r = run(nohome, "receipt", "verify", str(path))
    assert r.returncode == 3, r.stdout + r.stderr
    assert "signer UNTRUSTED" in r.stdout
    assert not nohome.exists(), "an offline check creates no home"
    anchor = tmp_path / "root.pem"
    anchor.write_text(_x509.cert_pem(root))
    r = run(nohome, "receipt", "verify", str(path), "--trust-anchor", str(anchor), "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    assert json.loads(r.stdout)["service"]["trusted"] is True


def test_verify_json_keys_match_the_documented_contract(home: Path, tmp_path: Path) -> None:
    """docs/cli.md's verify table and the JSON agree, key for key."""
    import re

    from guardian.app import ManifestInfo, Verdict, VerifyResult

    doc = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
    section = doc.split("### `guardian verify CLIP", 1)[1].split("###", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_]+)`", section, flags=re.M))
    (known,) = [line for line in section.splitlines() if line.endswith("| when known |")]
    documented |= set(re.findall(r"`([a-z_]+)`", known))
    keys = set(VerifyResult(Verdict.NOT_FOUND, [], ManifestInfo()).to_dict())
    assert keys <= documented, keys - documented
    codes = dict(re.findall(r"^\| (\d) \| (.+?) \|$", doc.split("## Commands")[0], flags=re.M))
    assert "watermarked" in codes["7"] and "watermarked" not in codes["0"]
    assert int(Verdict.WATERMARKED.exit_code) == 7
