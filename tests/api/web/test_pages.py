"""The web pages in-process: headers, the no-JavaScript verify form, invitations, CSRF.

The browser flows (recording, uploads with progress, self-service) are in
``test_browser.py``; these checks need no browser.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from guardian.api import create_app
from guardian.api.web import redact
from guardian.api.web._security import RedactConsentLinks
from guardian.app import Guardian, InvitationError, create_invitation, open_invitation
from guardian.config import Settings
from guardian.errors import NotFoundError
from tests.api.conftest import bearer, make_key
from tests.conftest import tree_bytes, write_clip


def _csrf(html: str) -> str:
    found = re.search(r'name="csrf"[^>]*value="([^"]+)"', html)
    assert found, "no CSRF field on the page"
    return found.group(1)


def test_pages_carry_a_strict_policy_and_no_referrer(client: TestClient) -> None:
    for path in ("/", "/me", "/static/guardian.css", "/static/verify.js"):
        r = client.get(path)
        assert r.status_code == 200, path
        csp = r.headers["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert r.headers["referrer-policy"] == "no-referrer"
        assert r.headers["x-content-type-options"] == "nosniff"
    page = client.get("/").text
    assert "<script>" not in page and "style=" not in page  # nothing inline for CSP to block
    assert re.search(r'<label for="file">', page)
    assert "http://" not in page and "https://" not in page  # no asset from elsewhere


def test_the_verify_form_works_without_javascript(client: TestClient, labeled: Path) -> None:
    r = client.post("/verify", files={"file": ("clip.wav", labeled.read_bytes())})
    assert r.status_code == 200
    assert 'id="verdict">Verified</span>' in r.text
    assert 'id="ai-label">AI-generated' in r.text
    # The test watermark model never claims a watermark: the waveform says so in words
    # (the browser test, on the shipped model, checks the shaded stretches).
    assert 'id="waveform"' in r.text and "No watermarked stretch was found" in r.text
    assert "Signer" in r.text and "Watermark" in r.text


def test_an_unrelated_clip_says_not_found_in_words(client: TestClient, tmp_path: Path) -> None:
    other = write_clip(tmp_path / "other.wav", seed=77)
    r = client.post("/verify", files={"file": ("other.wav", other.read_bytes())})
    assert 'id="verdict">No Guardian provenance</span>' in r.text
    assert "AI-generated" not in r.text


def test_verify_page_errors_are_the_api_errors_in_words(
    settings: Settings, g: Guardian, tmp_path: Path
) -> None:
    small = settings.model_copy(update={"api_max_upload_bytes": 50_000})
    with TestClient(create_app(small, guardian=g)) as c:
        junk = c.post("/verify", files={"file": ("notes.wav", b"hello, not audio" * 10)})
        assert junk.status_code == 415
        assert "not an audio file" in junk.text and 'role="alert"' in junk.text
        big = write_clip(tmp_path / "big.wav", seconds=10.0)
        too_large = c.post("/verify", files={"file": ("big.wav", big.read_bytes())})
        assert too_large.status_code == 413
        assert re.search(r"over the \d+ byte limit", too_large.text)


def test_an_invitation_link_opens_the_consent_page(
    client: TestClient, g: Guardian, monkeypatch: pytest.MonkeyPatch
) -> None:
    code = ("alpha", "xray", "golf", "xray", "tango")
    monkeypatch.setattr("guardian.app._consent.new_code", lambda: code)
    key = make_key(g, "enroll", org="Acme Studio")
    r = client.post(
        "/v1/consent/invitations",
        json={"name": "Alex Morgan", "purposes": ["audiobook", "Podcast"], "expires": "2099-01-31"},
        headers=bearer(key),
    )
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["url"].endswith(body["path"]) and body["path"].startswith("/consent/chl_")
    assert body["purposes"] == ["audiobook", "podcast"] and len(body["sentences"]) == 4
    page = client.get(body["path"])
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert "Acme Studio" in page.text and "Alex Morgan" in page.text
    assert "<li>audiobook</li>" in page.text and "31 January 2099" in page.text
    # The code words as the speaker reads them, in the statement and the hint alike.
    assert body["code"] == " ".join(code) and "xray" not in page.text
    assert page.text.count("alpha x-ray golf x-ray tango") == 2
    a1, n1, a2, n2 = body["phrase"].split()  # the phrase, in the statement and the hint
    assert page.text.count(f"{a1} {n1} and {a2} {n2}") == 2
    # The secret part is checked, not only the challenge id.
    forged = body["path"][:-3] + ("aaa" if not body["path"].endswith("aaa") else "bbb")
    assert client.get(forged).status_code == 404
    assert client.get("/consent/chl_nonsense.xyz").status_code == 404


def test_an_invitation_needs_an_enroll_key(client: TestClient, g: Guardian) -> None:
    body = {"name": "Alex Morgan", "purposes": ["audiobook"]}
    assert client.post("/v1/consent/invitations", json=body).status_code == 401
    other = make_key(g, "label")
    r = client.post("/v1/consent/invitations", json=body, headers=bearer(other))
    assert r.status_code == 403


def test_invitation_links_expire_and_keep_only_a_mac(g: Guardian) -> None:
    inv = create_invitation(
        g,
        name="Alex Morgan",
        purposes=["audiobook"],
        sentences=["One short sentence to read."],
        ttl=dt.timedelta(seconds=1),
    )
    assert open_invitation(g, inv.link).sentences == ("One short sentence to read.",)
    secret = inv.link.split(".", 1)[1]
    stored = tree_bytes(g.settings.home)
    assert len(stored) > 10_000 and secret.encode() not in stored
    time.sleep(1.2)
    with pytest.raises(InvitationError):
        open_invitation(g, inv.link)
    assert issubclass(InvitationError, NotFoundError)


def test_state_changing_forms_need_the_csrf_token(client: TestClient, g: Guardian) -> None:
    inv = create_invitation(g, name="Alex Morgan", purposes=["audiobook"])
    client.get(inv.path)  # sets the CSRF cookie
    r = client.post(
        inv.path + "/enroll",
        files={"consent": ("c.webm", b"x"), "samples": ("s.webm", b"y")},
        data={"csrf": "forged-token-of-the-right-length-000"},
    )
    assert r.status_code == 403 and r.json()["accepted"] is False
    assert "reload the page" in r.json()["problems"][0]
    login = client.post("/me", data={"token": "gwt_whatever", "csrf": "wrong-token-0000000000"})
    assert login.status_code == 403
    # With the right token the form is read, and an unknown token says so in words.
    csrf = _csrf(client.get("/me").text)
    r = client.post("/me", data={"token": "gwt_unknown", "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 404 and "unknown withdrawal token" in r.text
    assert "guardian_me" not in r.cookies


def test_consent_links_are_redacted_from_log_lines() -> None:
    line = '127.0.0.1:5000 - "GET /consent/chl_abc.s3cr3t-Tok_en HTTP/1.1" 200'
    assert "s3cr3t" not in redact(line) and "/consent/[link]" in redact(line)
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "POST", "/consent/chl_abc.s3cr3t/enroll", "1.1", 201), None,
    )  # fmt: skip
    RedactConsentLinks().filter(record)
    assert "s3cr3t" not in record.getMessage()
    assert "/consent/[link]/enroll" in record.getMessage()


def test_a_deployment_that_closed_the_verifier_closes_the_page(
    settings: Settings, g: Guardian, labeled: Path
) -> None:
    closed = settings.model_copy(update={"api_require_key_for_verify": True})
    with TestClient(create_app(closed, guardian=g)) as c:
        r = c.post("/verify", files={"file": ("clip.wav", labeled.read_bytes())})
        assert r.status_code == 401 and "only for API key holders" in r.text
        assert 'id="verdict"' not in r.text
