"""The three pages in a real browser (Debian's Chromium driven by playwright).

A real uvicorn server (with uvicorn's own access log on, the case where request paths
are printed) runs on a fresh Guardian home with the shipped watermark model. Chromium's
fake microphone plays a WAV file made for each run: the test speaker (the synthetic
"slt" voice of the demo) reading the statement with the invitation's one-time code,
then the sentences, with pauses between them. The page opens the microphone once, so
the file plays on while the test presses Start and Stop around each part; what reaches
enrollment is MediaRecorder's WebM/Opus. A second run, whose sentences are read by
another voice ("kal"), must be refused.

Each page is saved as a screenshot into docs/web/.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from guardian.app._consent_voice import spoken_consent
from guardian.audio import Audio, OutputFormat, encode_bytes, read_audio, resample
from tests.conftest import free_port, wait_until_ready

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[3]
SLT = REPO / "guardian" / "app" / "assets" / "consent" / "slt"
KAL = REPO / "tests" / "data" / "voices" / "kal"
SHOTS = REPO / "docs" / "web"
ORG = "Guardian Demo Studio"  # the organisation the test speaker's statement names
RATE = 16000
LEAD_S, GAP_S, MARGIN_S = 1.0, 2.0, 0.6
N_SENTENCES = 4
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

if not CHROMIUM.exists():
    pytest.skip(
        "Debian's chromium is not installed (apt-get install chromium)", allow_module_level=True
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


@dataclass
class Server:
    url: str
    env: dict[str, str]
    log: Path
    keys: dict[str, str]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "cli.main", *args],
            capture_output=True, text=True, env=self.env, timeout=600, check=False,
        )  # fmt: skip

    def api(self, method: str, path: str, scope: str, **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.keys[scope]}"}
        return httpx.request(method, self.url + path, headers=headers, timeout=300, **kw)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp = tmp_path_factory.mktemp("web")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GUARDIAN_")}
    env.update(GUARDIAN_HOME=str(tmp / "home"), PYTHONPATH=str(REPO), OMP_NUM_THREADS="1")
    env["GUARDIAN_ALLOW_SYNTHETIC_CONSENT"] = "true"  # the voice owner is festival's slt
    port = free_port()
    log = tmp / "server.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "guardian.api:create_app", "--factory",
             "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=out, stderr=subprocess.STDOUT, cwd=tmp,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            wait_until_ready(proc, url, log)
            s = Server(url, env, log, {})
            for scope in ("enroll", "label", "audit", "synthesize"):
                made = s.cli("apikey", "create", "--name", scope, "--org", ORG,
                             "--scopes", scope, "--json")  # fmt: skip
                assert made.returncode == 0, made.stderr
                s.keys[scope] = json.loads(made.stdout)["key"]
            yield s
        finally:
            proc.terminate()
            proc.wait(timeout=30)


@pytest.fixture(scope="module")
def pw() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        yield p


def _browser(pw: Any, tmp: Path, microphone: Path | None = None, **kw: Any) -> Any:
    args = list(ARGS)
    if microphone is not None:
        args += [
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={microphone}%noloop",
        ]
    profile = tmp / f"profile-{time.monotonic_ns()}"
    return pw.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), args=args, headless=True,
        accept_downloads=True, viewport={"width": 1000, "height": 900}, **kw,
    )  # fmt: skip


def _shot(page: Any, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / name), full_page=True)


def _mono(path: Path) -> np.ndarray:
    audio = read_audio(path)
    return resample(audio.mono(), audio.sample_rate, RATE)


def _microphone(
    path: Path, invite: dict[str, Any], sentences: list[Path]
) -> list[tuple[float, float]]:
    """Write the fake microphone's file; returns each part's (start, end) in seconds."""
    parts = [np.zeros(int(LEAD_S * RATE), np.float32)]
    spans = []
    at = LEAD_S
    statement = spoken_consent(SLT, invite["phrase"].split(), invite["code"].split())
    clips = [resample(statement.mono(), statement.sample_rate, RATE)]
    clips += [_mono(p) for p in sentences]
    for i, clip in enumerate(clips):
        if i:
            parts.append(np.zeros(int(GAP_S * RATE), np.float32))
            at += GAP_S
        parts.append(clip.astype(np.float32))
        spans.append((at, at + len(clip) / RATE))
        at += len(clip) / RATE
    parts.append(np.zeros(int(GAP_S * RATE), np.float32))
    samples = np.concatenate(parts)[:, None]
    path.write_bytes(encode_bytes(Audio(samples, RATE), OutputFormat.WAV))
    return spans


def _invite(server: Server) -> dict[str, Any]:
    sentences = (SLT / "transcripts.txt").read_text().splitlines()[:N_SENTENCES]
    r = server.api(
        "POST", "/v1/consent/invitations", "enroll",
        json={"name": "Alex Morgan", "purposes": ["audiobook"], "sentences": sentences,
              "expires": "2099-12-31"},
    )  # fmt: skip
    assert r.status_code == 201, r.text
    return dict(r.json())


def _record_through_the_page(page: Any, link: str, spans: list[tuple[float, float]]) -> None:
    """Open the microphone once, then Start/Stop around each part of the fake file."""
    page.goto(link)
    page.get_by_role("button", name="Allow the microphone").click()
    sync_api.expect(page.locator("#mic-status")).to_have_text("Microphone ready.")
    t0 = time.monotonic()

    def at(seconds: float) -> None:
        time.sleep(max(0.0, t0 + seconds - time.monotonic()))

    for i, (start, end) in enumerate(spans):
        if i:
            page.get_by_role("button", name="Next").click()
            sync_api.expect(page.locator("#step-count")).to_contain_text(
                f"Sentence {i} of {len(spans) - 1}"
            )
        at(start - MARGIN_S)
        page.get_by_role("button", name=re.compile("Start recording|Record again")).click()
        at(end + MARGIN_S)
        page.get_by_role("button", name="Stop").click()
        sync_api.expect(page.locator("#playback")).to_be_visible()


@pytest.fixture(scope="module")
def enrolled(server: Server, pw: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The voice owner enrolls through the consent page; the result as the page shows it."""
    tmp = tmp_path_factory.mktemp("consent")
    invite = _invite(server)
    slt = sorted(SLT.glob("sample-*.flac"))[:N_SENTENCES]
    mic = tmp / "mic.wav"
    spans = _microphone(mic, invite, slt)
    browser = _browser(pw, tmp, mic)
    page = browser.new_page()
    urls: list[str] = []
    referers: list[str] = []
    page.on("request", lambda r: urls.append(r.url))
    page.on("request", lambda r: referers.append(r.headers.get("referer", "")))
    try:
        page.goto(server.url + invite["path"])
        tree = page.locator("main").aria_snapshot()
        assert "Who asks, and for what" in tree and "audiobook" in tree
        assert '- button "Allow the microphone"' in tree
        _record_through_the_page(page, server.url + invite["path"], spans)
        page.get_by_role("button", name="Send my recordings").click()
        words = page.locator("#outcome-words")
        sync_api.expect(words).not_to_be_empty(timeout=300_000)
        checks = page.locator("#checks li").all_inner_texts()
        token = page.locator("#token").inner_text()
        _shot(page, "consent.png")
        with page.expect_download() as dl:
            page.get_by_role("link", name="Download your signed consent record").click()
        record = json.loads(Path(dl.value.path()).read_text())
        tree = page.locator("main").aria_snapshot()
        result = {
            "words": words.inner_text(), "checks": checks, "token": token, "record": record,
            "tree": tree, "invite": invite, "urls": urls, "referers": referers,
        }  # fmt: skip
    finally:
        browser.close()
    return result


def test_the_consent_page_enrolls_the_speaker_from_the_browser(
    enrolled: dict[str, Any], server: Server
) -> None:
    assert enrolled["words"] == "Your consent is recorded and your voice is enrolled.", enrolled
    assert enrolled["checks"] == [
        "Live recordings, not generated clips: passed",
        "Recording quality: passed",
        "Statement and one-time code heard: passed",
        "The same speaker in every recording: passed",
    ]
    assert enrolled["token"].startswith("gwt_")
    body = enrolled["record"]["record"]
    assert body["organization"] == ORG and body["terms"]["purposes"] == ["audiobook"]
    assert body["code"] == enrolled["invite"]["code"]
    assert body["terms"]["expires_at"].startswith("2099-12-31")
    assert "Download your signed consent record" in enrolled["tree"]
    # The link is single-use: the page now says it is not valid.
    again = httpx.get(server.url + enrolled["invite"]["path"], timeout=30)
    assert again.status_code == 404 and "unknown, used or expired" in again.text


def test_another_voice_reading_the_sentences_is_refused(
    server: Server, pw: Any, tmp_path: Path
) -> None:
    invite = _invite(server)
    kal = sorted(KAL.glob("sample-*.flac"))[:N_SENTENCES]
    mic = tmp_path / "mic.wav"
    spans = _microphone(mic, invite, kal)
    browser = _browser(pw, tmp_path, mic)
    try:
        page = browser.new_page()
        _record_through_the_page(page, server.url + invite["path"], spans)
        page.get_by_role("button", name="Send my recordings").click()
        words = page.locator("#outcome-words")
        sync_api.expect(words).not_to_be_empty(timeout=300_000)
        assert words.inner_text().startswith("Your voice was not enrolled and nothing was kept.")
        assert "ask the organisation for a new invitation" in words.inner_text()
        checks = page.locator("#checks li").all_inner_texts()
        assert (
            "The same speaker in every recording: not passed. The same person must read "
            "the statement and every sentence."
        ) in checks
        assert "Statement and one-time code heard: passed" in checks
        assert page.locator("#token").inner_text() == ""
    finally:
        browser.close()


def _label(server: Server, source: Path, out: Path) -> Path:
    r = server.api("POST", "/v1/label", "label", files={"file": (source.name, source.read_bytes())},
                   data={"purpose": "podcast"})  # fmt: skip
    assert r.status_code == 200, r.text
    out.write_bytes(r.content)
    return out


def _mp3(source: Path, out: Path) -> Path:
    import imageio_ffmpeg

    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-loglevel", "error", "-i", str(source),
         "-b:a", "64k", str(out)],
        check=True,
    )  # fmt: skip
    return out


def _verify(page: Any, server: Server, clip: Path) -> dict[str, Any]:
    page.goto(server.url + "/")
    page.get_by_label("Audio file").set_input_files(str(clip))
    page.get_by_role("button", name="Check the clip").click()
    sync_api.expect(page.locator("#progress-words")).to_have_text("Done.", timeout=120_000)
    return {
        "badge": page.locator("#verdict").inner_text(),
        "ai": page.locator("#ai-label").count() == 1,
        "marks": page.locator("#waveform rect.mark").count(),
        "segments": page.locator("#segments").all_inner_texts(),
        "voice": page.locator("#voice-status").all_inner_texts(),
        "progress": page.locator("#progress").get_attribute("value"),
    }


def test_the_verify_page_shows_verdicts_in_words_and_the_marked_stretches(
    server: Server, pw: Any, tmp_path: Path
) -> None:
    speech = sorted(SLT.glob("heldout-*.flac"))[0]
    labeled = _label(server, speech, tmp_path / "labeled.wav")
    reencoded = _mp3(labeled, tmp_path / "reencoded.mp3")
    unrelated = KAL / "sample-05.flac"
    browser = _browser(pw, tmp_path)
    try:
        page = browser.new_page()
        page.goto(server.url + "/")
        tree = page.locator("main").aria_snapshot()
        assert '- button "Check the clip"' in tree and "Audio file" in tree
        page.keyboard.press("Tab")  # the skip link first: the page is keyboard operable
        assert page.evaluate("document.activeElement.textContent") == "Skip to content"
        first = _verify(page, server, labeled)
        assert first["badge"] == "Verified" and first["ai"] and first["progress"] == "100"
        assert first["marks"] >= 1 and first["segments"] and " s" in first["segments"][0]
        _shot(page, "verify.png")
        second = _verify(page, server, reencoded)
        assert second["badge"] == "Traced" and second["ai"] and second["marks"] >= 1
        third = _verify(page, server, unrelated)
        assert third["badge"] == "No Guardian provenance" and not third["ai"]
        assert third["marks"] == 0
    finally:
        browser.close()
    # Without JavaScript the form posts and the server renders the same answer.
    plain = _browser(pw, tmp_path, java_script_enabled=False)
    try:
        page = plain.new_page()
        page.goto(server.url + "/")
        page.get_by_label("Audio file").set_input_files(str(labeled))
        page.get_by_role("button", name="Check the clip").click()
        page.wait_for_url(server.url + "/verify")
        assert page.locator("#verdict").inner_text() == "Verified"
        junk = tmp_path / "notes.wav"
        junk.write_text("not audio at all")
        page.goto(server.url + "/")
        page.get_by_label("Audio file").set_input_files(str(junk))
        page.get_by_role("button", name="Check the clip").click()
        assert "not an audio file" in page.get_by_role("alert").inner_text()
    finally:
        plain.close()


def _synthesize(server: Server, voice_id: str, out: Path) -> Path:
    trained = server.cli("train", voice_id, "--epsilon", "2", "--json")
    assert trained.returncode == 0, trained.stderr[-2000:]
    r = server.api(
        "POST", f"/v1/voices/{voice_id}/synthesize", "synthesize",
        json={"text": "Chapter one. The harbour was quiet.", "purpose": "audiobook"},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    out.write_bytes(r.content)
    return out


def test_the_self_service_page_withdraws_exports_and_erases(
    enrolled: dict[str, Any], server: Server, pw: Any, tmp_path: Path
) -> None:
    token = enrolled["token"]
    voice_id = enrolled["record"]["record"]["voice_id"]
    clip = _synthesize(server, voice_id, tmp_path / "clip.wav")
    browser = _browser(pw, tmp_path)
    urls: list[str] = []
    page = browser.new_page()
    page.on("request", lambda r: urls.append(r.url))
    try:
        page.goto(server.url + "/me")
        page.get_by_label("Withdrawal token").fill(token)
        page.get_by_role("button", name="Open my page").click()
        sync_api.expect(page.locator("#status")).to_have_text("voice active (consent in force)")
        uses = page.locator("#uses").inner_text()
        assert "training" in uses and "a clip was made" in uses and "audiobook" in uses
        assert ORG in uses
        tree = page.locator("main").aria_snapshot()
        for control in ("Withdraw my consent", "Download my data (zip)", "Erase my data…"):
            assert f'- button "{control}"' in tree
        assert "meter" in tree
        _shot(page, "me.png")

        page.get_by_role("button", name="Withdraw my consent").click()
        sync_api.expect(page.locator("#status")).to_have_text("voice withdrawn (consent revoked)")

        with page.expect_download() as dl:
            page.get_by_role("button", name="Download my data (zip)").click()
        names = zipfile.ZipFile(io.BytesIO(Path(dl.value.path()).read_bytes())).namelist()
        assert "manifest.json" in names
        # What the browser's MediaRecorder made is what enrollment kept.
        assert f"voices/{voice_id}/consent.webm" in names
        assert sum(n.endswith(".webm") for n in names) == 1 + N_SENTENCES

        page.get_by_role("button", name="Erase my data…").click()
        page.get_by_role("button", name="Erase everything now").click()  # unconfirmed: stays
        sync_api.expect(page.get_by_role("heading", name="Erase my data")).to_be_visible()
        page.get_by_label("I understand that my voice data will be destroyed for good.").check()
        page.get_by_role("button", name="Erase everything now").click()
        sync_api.expect(page.locator("#erased")).to_contain_text("Your voice data was destroyed.")
        with page.expect_download() as dl:
            page.get_by_role("button", name="Download the signed erasure receipt").click()
        receipt = json.loads(Path(dl.value.path()).read_text())
        assert receipt["receipt"]["type"].startswith("guardian.erasure")

        after = _verify(page, server, clip)
        assert after["badge"] in ("Verified", "Traced") and after["voice"] == ["voice erased"]
    finally:
        browser.close()
    assert not any(token in u for u in urls)


def test_secrets_stay_out_of_urls_logs_and_the_audit_log(
    enrolled: dict[str, Any], server: Server
) -> None:
    token = enrolled["token"]
    secret = enrolled["invite"]["path"].split(".", 1)[1]
    log = server.log.read_text()
    assert "/consent/[link]" in log  # uvicorn's access log saw the page, redacted
    assert secret not in log and token not in log
    assert not any(secret in r or token in r for r in enrolled["referers"])
    assert not any(token in u for u in enrolled["urls"])
    entries = server.api("GET", "/v1/audit/entries?limit=1000", "audit")
    assert entries.status_code == 200
    assert secret not in entries.text and token not in entries.text
    home = Path(server.env["GUARDIAN_HOME"])
    stored = b"".join(p.read_bytes() for p in home.rglob("*") if p.is_file())
    assert secret.encode() not in stored and token.encode() not in stored
