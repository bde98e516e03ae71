"""``guardian consent``/``enroll``/``policy`` as a user runs them: real processes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from guardian.app._consent_voice import spoken_consent
from guardian.audio import OutputFormat, encode_bytes
from guardian.consent import render_statement
from tests.app.conftest import SLT, slt_samples
from tests.cli.test_cli import run

pytestmark = pytest.mark.slow  # enrollment through the CLI in subprocesses


def test_challenge_enroll_show_verify_explain_revoke(tmp_path: Path) -> None:
    home = tmp_path / "home"
    r = run(
        home,
        "consent",
        "challenge",
        "--name",
        "Alex Morgan",
        "--org",
        "Guardian Demo Studio",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    challenge = json.loads(r.stdout)
    code, phrase = challenge["code"].split(), challenge["phrase"].split()
    # The statement shows the code as it is read aloud ("x-ray" for the word xray).
    assert challenge["statement"] == render_statement(
        name="Alex Morgan", org="Guardian Demo Studio", code=code, phrase=phrase
    )
    consent = tmp_path / "consent.wav"
    consent.write_bytes(encode_bytes(spoken_consent(SLT, phrase, code), OutputFormat.WAV))
    samples = [str(p) for p in slt_samples()]
    r = run(
        home,
        "enroll",
        "--challenge",
        challenge["challenge_id"],
        "--consent",
        str(consent),
        *samples,
        "--purpose",
        "audiobook",
        "--json",
    )
    assert r.returncode == 0, r.stderr
    voice = json.loads(r.stdout)["voice_id"]
    assert json.loads(r.stdout)["synthetic_speech"]["allowed_by_setting"] is True

    record = tmp_path / "record.json"
    r = run(home, "consent", "show", voice, "-o", str(record), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["status"] == "active"
    r = run(home, "consent", "verify", str(record), "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["valid"] is True
    doc = json.loads(record.read_text())
    doc["record"]["terms"]["max_epsilon"] = 100.0
    record.write_text(json.dumps(doc))
    assert run(home, "consent", "verify", str(record)).returncode == 3

    ask = ["policy", "explain", voice, "--requester", "Guardian Demo Studio", "--json"]
    r = run(home, *ask, "--purpose", "audiobook")
    assert r.returncode == 0 and json.loads(r.stdout)["allowed"] is True
    r = run(home, *ask, "--purpose", "advertising")
    assert r.returncode == 6 and "purpose-not-consented" in json.loads(r.stdout)["policy_ids"]
    assert run(home, "consent", "revoke", voice).returncode == 0
    r = run(home, *ask, "--purpose", "audiobook")
    assert r.returncode == 6 and "consent-revoked" in json.loads(r.stdout)["policy_ids"]

    # The spent challenge: a one-line refusal, exit 6.
    r = run(
        home,
        "enroll",
        "--challenge",
        challenge["challenge_id"],
        "--consent",
        str(consent),
        *samples,
        "--purpose",
        "audiobook",
    )
    assert r.returncode == 6 and r.stderr.count("\n") == 1 and "already used" in r.stderr


def test_bad_input_is_one_line_and_writes_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    r = run(home, "consent", "challenge", "--name", "<script>", "--json")
    assert r.returncode == 2 and json.loads(r.stdout)["error"]["exit_code"] == 2
    r = run(home, "consent", "challenge", "--name", "Alex", "--locale", "fr-FR")
    assert r.returncode == 2 and "not supported" in r.stderr
    r = run(
        home, "enroll", "--challenge", "nope", "--consent", "x.wav", "y.wav", "--purpose", "demo"
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    r = run(home, "consent", "show", "voice_" + "a" * 26)
    assert r.returncode == 1
    r = run(home, "policy", "check", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["valid"] is True
