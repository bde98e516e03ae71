"""Consent invitations: links, terms, and enrollment from in-memory recordings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from guardian.app import (
    EnrollRequest,
    Guardian,
    InvitationError,
    create_invitation,
    enroll,
    enroll_invitation,
    open_invitation,
)
from guardian.errors import UsageError


def test_the_link_needs_its_secret_and_the_terms_come_from_the_invitation(g: Guardian) -> None:
    inv = create_invitation(
        g,
        name="Alex Morgan",
        organization="Acme Audio",
        purposes=["Audiobook", "audiobook", "ivr.support"],
        requesters=["Partner Ltd"],
        sentences=["The first sentence.", "The second  sentence."],
    )
    view = open_invitation(g, inv.link)
    assert view.purposes == ("audiobook", "ivr.support")
    assert view.requesters == ("Partner Ltd",)
    assert view.sentences == ("The first sentence.", "The second sentence.")
    assert view.organization == "Acme Audio" and view.code == inv.challenge.code
    challenge_id, secret = inv.link.split(".", 1)
    for bad in (
        f"{challenge_id}.{secret[:-1]}",
        f"{challenge_id}.",
        challenge_id,
        "chl_" + "a" * 26 + "." + secret,
        "../../etc/passwd",
    ):
        with pytest.raises(InvitationError, match="unknown, used or expired"):
            open_invitation(g, bad)


@pytest.mark.parametrize(
    ("terms", "message"),
    [
        ({"purposes": []}, "at least one purpose"),
        ({"purposes": ["not a slug!"]}, "must be a slug"),
        ({"purposes": ["a"], "requesters": ["<script>"]}, "characters outside"),
        ({"purposes": ["a"], "sentences": [" "]}, "1-1000 characters"),
    ],
)
def test_bad_terms_are_refused_before_anything_is_stored(
    g: Guardian, terms: dict[str, list[str]], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        create_invitation(g, name="Alex Morgan", **terms)  # type: ignore[arg-type]


def test_default_sentences_differ_between_invitations(g: Guardian) -> None:
    a = create_invitation(g, name="Alex Morgan", purposes=["audiobook"])
    b = create_invitation(g, name="Alex Morgan", purposes=["audiobook"])
    assert len(a.sentences) == 4 and a.sentences != b.sentences


def test_recordings_must_match_the_sentences(g: Guardian) -> None:
    inv = create_invitation(g, name="Alex Morgan", purposes=["audiobook"], sentences=["One."])
    with pytest.raises(UsageError, match="2 recordings for 1 sentences"):
        enroll_invitation(g, inv.link, consent=b"c", samples=[b"a", b"b"])
    # The link still works: nothing was claimed.
    assert open_invitation(g, inv.link).sentences == ("One.",)


def test_enroll_refuses_a_recording_count_that_does_not_match(g: Guardian) -> None:
    inv = create_invitation(g, name="Alex Morgan", purposes=["audiobook"])
    req = EnrollRequest(
        challenge_id=inv.challenge.challenge_id,
        consent=Path("consent"),
        samples=(Path("one"), Path("two")),
        purposes=("audiobook",),
    )
    with pytest.raises(UsageError, match="one recording per sample"):
        enroll(g, req, recorded=[b"consent", b"one"])


def test_the_cli_prints_a_link(g: Guardian) -> None:
    from cli.main import app

    env = {"GUARDIAN_HOME": str(g.settings.home)}
    env["GUARDIAN_WATERMARK_MODEL"] = str(g.settings.watermark_model)
    r = CliRunner().invoke(
        app,
        ["consent", "challenge", "--name", "Alex Morgan", "--link", "--purpose", "audiobook",
         "--base-url", "https://guardian.example.org/", "--json"],
        env=env,
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["url"] == "https://guardian.example.org" + out["path"]
    assert open_invitation(g, out["path"].removeprefix("/consent/")).purposes == ("audiobook",)
    bad = CliRunner().invoke(
        app,
        ["consent", "challenge", "--name", "Alex Morgan", "--purpose", "audiobook"],
        env=env,
    )
    assert bad.exit_code == 2 and "go with --link" in bad.output
