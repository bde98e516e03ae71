"""``guardian consent …``, ``guardian enroll`` and ``guardian policy …``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli._output import JSON_OPTION, TRUST_ANCHOR_OPTION, emit_json, guarded, report_check
from guardian import app as usecases
from guardian.config import get_settings
from guardian.errors import ExitCode, UsageError
from guardian.policy import Action, PolicyRequest

consent_app = typer.Typer(
    help="Consent challenges, signed consent records and revocation.", no_args_is_help=True
)
policy_app = typer.Typer(help="Check policies and explain decisions.", no_args_is_help=True)


@consent_app.command("challenge")
@guarded
def challenge(
    name: Annotated[str, typer.Option(help="The voice owner's name, as they will say it.")],
    org: Annotated[str | None, typer.Option(help="Organisation that will use the voice.")] = None,
    locale: Annotated[str, typer.Option(help="Language of the statement.")] = "en-US",
    link: Annotated[
        bool,
        typer.Option(
            "--link",
            help="Make a single-use web link to the consent page instead (needs --purpose).",
        ),
    ] = False,
    purpose: Annotated[
        list[str] | None, typer.Option(help="With --link: an allowed purpose (repeat).")
    ] = None,
    expires: Annotated[
        str | None, typer.Option(help="With --link: consent expiry (YYYY-MM-DD).")
    ] = None,
    sentence: Annotated[
        list[str] | None, typer.Option(help="With --link: a sentence to read (repeat).")
    ] = None,
    base_url: Annotated[
        str, typer.Option(help="With --link: where `guardian serve` is reached.")
    ] = "http://127.0.0.1:8000",
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Print a consent statement with a one-time code (valid 15 minutes, usable once).

    With --link, print a link to the consent page (valid 3 days, usable once), where the
    person reads the statement and the sentences in the browser.
    """
    if link:
        _invite(name, org, purpose or [], expires, sentence or [], base_url, as_json)
        return
    if purpose or expires or sentence:
        raise UsageError("--purpose, --expires and --sentence go with --link")
    result = usecases.create_challenge(
        usecases.open_guardian(), name=name, organization=org, locale=locale
    )
    if as_json:
        emit_json(result.to_dict())
        return
    typer.echo("Read this aloud, in one recording:\n")
    typer.echo(f"  {result.statement}\n")
    typer.echo(f"challenge  {result.challenge_id}")
    typer.echo(f"expires    {result.expires_at:%Y-%m-%d %H:%M:%S} UTC (single use)")


def _invite(
    name: str,
    org: str | None,
    purposes: list[str],
    expires: str | None,
    sentences: list[str],
    base_url: str,
    as_json: bool,
) -> None:
    result = usecases.create_invitation(
        usecases.open_guardian(),
        name=name,
        organization=org,
        purposes=purposes,
        consent_expires=usecases.parse_when(expires),
        sentences=sentences,
    )
    url = base_url.rstrip("/") + result.path
    if as_json:
        emit_json({**result.to_dict(), "url": url})
        return
    typer.echo("Send this link to the voice owner (it is shown only once):\n")
    typer.echo(f"  {url}\n")
    typer.echo(f"challenge  {result.challenge.challenge_id}")
    typer.echo(f"expires    {result.challenge.expires_at:%Y-%m-%d %H:%M:%S} UTC (single use)")


@consent_app.command("show")
@guarded
def show(
    voice: Annotated[str, typer.Argument(help="Voice id or consent id.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Also write the signed record here.")
    ] = None,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Show a voice's signed consent record and its current status."""
    view = usecases.show_consent(usecases.open_guardian(), voice)
    if output is not None:
        usecases.write_new_file(output, view.record.to_bytes())
    if as_json:
        emit_json(view.to_dict())
        return
    body = view.record.body
    terms = body["terms"]
    typer.echo(f"consent  {body['consent_id']}  ({view.status.value})")
    typer.echo(f"voice    {view.voice_id}")
    typer.echo(f"subject  {body['subject']['name']} ({body['subject_id']})")
    typer.echo(f"org      {body['organization']}")
    typer.echo(f"purposes {', '.join(terms['purposes'])}")
    typer.echo(f"requesters {', '.join(terms['requesters']) or '(the organisation only)'}")
    typer.echo(f"expires  {terms['expires_at'] or 'never'}   max ε {terms['max_epsilon']}")
    typer.echo(f"signed   {', '.join(s.role for s in view.record.signatures)}")
    if output is not None:
        typer.echo(f"wrote {output}")


@consent_app.command("verify")
@guarded
def verify(
    target: Annotated[str, typer.Argument(help="A record file, or a voice/consent id.")],
    trust_anchor: Annotated[Path | None, TRUST_ANCHOR_OPTION] = None,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Check a consent record's signatures. Exit 0 valid and trusted, 3 otherwise."""
    path = Path(target)
    if path.exists():
        g = None if trust_anchor else usecases.open_existing_guardian()
        result = usecases.verify_consent_file(path, g, trust_anchor=trust_anchor)
    else:
        result = usecases.verify_stored_consent(usecases.open_guardian(), target)
    subject = "co-signed by the subject" if result.subject_signed else "no subject signature"
    note = f" (service signature valid; {subject})"
    report_check(result, "consent", as_json=as_json, valid_note=note)


@consent_app.command("keygen")
@guarded
def keygen(
    output: Annotated[Path, typer.Option("--output", "-o", help="Private key file to create.")],
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Create a subject's own Ed25519 key (kept by the subject, not by Guardian)."""
    public = usecases.make_subject_key(output)
    if as_json:
        emit_json({"key": str(output), "public_key": public})
    else:
        typer.echo(f"wrote {output} (mode 0600); public key {public}")


@consent_app.command("sign")
@guarded
def sign(
    voice: Annotated[str, typer.Argument(help="Voice id or consent id.")],
    key: Annotated[Path, typer.Option(help="The subject's Ed25519 private key (PEM).")],
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Co-sign a consent record with the subject's key (named at enrollment)."""
    result = usecases.cosign_consent(usecases.open_guardian(), voice, key)
    if as_json:
        emit_json(result.to_dict())
    else:
        typer.echo(f"co-signed consent {result.document_id}")


@consent_app.command("revoke")
@guarded
def revoke(
    voice: Annotated[str, typer.Argument(help="Voice id or consent id.")],
    reason: Annotated[str, typer.Option(help="Why consent is withdrawn.")] = (
        "withdrawn by the subject"
    ),
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Revoke consent: every later use of the voice is denied, effective immediately."""
    result = usecases.revoke_consent(usecases.open_guardian(), voice, reason=reason)
    if as_json:
        emit_json(result.to_dict())
    elif result.already:
        typer.echo(f"{result.voice_id} was already revoked at {result.revoked_at:%Y-%m-%d %H:%M}")
    else:
        typer.echo(f"revoked {result.voice_id} (consent {result.consent_id})")


@consent_app.command("withdraw")
@guarded
def withdraw(
    token: Annotated[str, typer.Option(help="The withdrawal token given at enrollment.")],
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Withdraw consent yourself, with the token given at enrollment (no operator needed)."""
    result = usecases.withdraw_consent(usecases.open_guardian(), token)
    if as_json:
        emit_json(result.to_dict())
    else:
        typer.echo(f"consent withdrawn: {result.voice_id} will not be used again")
        typer.echo(f"to erase all data too: guardian forget {result.voice_id}")


def enroll(
    challenge_id: Annotated[str, typer.Option("--challenge", help="Challenge id.")],
    consent: Annotated[Path, typer.Option(help="Recording of the statement, read aloud.")],
    samples: Annotated[list[Path], typer.Argument(help="Enrollment recordings.")],
    purpose: Annotated[list[str], typer.Option(help="Allowed purpose (repeat).")],
    requester: Annotated[
        list[str] | None, typer.Option(help="Allowed requester besides the organisation.")
    ] = None,
    expires: Annotated[str | None, typer.Option(help="Consent expiry (YYYY-MM-DD).")] = None,
    max_epsilon: Annotated[float, typer.Option(help="Privacy budget cap (total ε).")] = 8.0,
    subject_key: Annotated[
        Path | None, typer.Option(help="Subject's Ed25519 key: private co-signs, public binds.")
    ] = None,
    transcript: Annotated[
        Path | None,
        typer.Option(help="Text file: what each sample says, one line per sample (for train)."),
    ] = None,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Enroll a voice: check the spoken consent and samples, then sign and store consent."""
    request = usecases.EnrollRequest(
        challenge_id=challenge_id,
        consent=consent,
        samples=tuple(samples),
        purposes=tuple(purpose),
        requesters=tuple(requester or ()),
        expires=usecases.parse_when(expires),
        max_epsilon=max_epsilon,
        subject_key=subject_key,
        transcripts=_lines(transcript) if transcript else (),
    )
    result = usecases.enroll(usecases.open_guardian(), request)
    if as_json:
        emit_json(result.to_dict())
        return
    typer.echo(result.voice_id)
    typer.echo(
        f"  consent {result.consent_id}; purposes {', '.join(result.purposes)}; "
        f"speaker score {result.speaker.consent_score:.2f} (threshold {result.speaker.threshold})",
        err=True,
    )
    if result.synthetic_allowed:
        typer.echo(
            f"  warning: the reading sounds like a speech synthesiser (score "
            f"{result.synthetic.score:.2f}); enrolled only because allow_synthetic_consent is on",
            err=True,
        )
    typer.echo(
        f"  give the subject their withdrawal token (shown only now): {result.withdraw_token}",
        err=True,
    )


def _lines(path: Path) -> tuple[str, ...]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"cannot read transcripts {path}: {e}") from e
    return tuple(line for line in text.splitlines() if line.strip())


@policy_app.command("check")
@guarded
def policy_check(
    directory: Annotated[
        Path | None, typer.Option("--dir", help="Policy directory (default: configured).")
    ] = None,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Validate the policies against their schema. Exit 0 valid, 2 invalid."""
    from guardian.policy import default_policy_dir

    where = directory or get_settings().policy_dir or default_policy_dir()
    problems = usecases.check_policies(where)
    if as_json:
        emit_json({"directory": str(where), "valid": not problems, "problems": problems})
    elif problems:
        typer.echo(f"policies in {where} are INVALID:")
        for p in problems:
            typer.echo(f"  - {p}")
    else:
        typer.echo(f"policies in {where} are valid")
    raise typer.Exit(0 if not problems else 2)


@policy_app.command("explain")
@guarded
def policy_explain(
    voice: Annotated[str, typer.Argument(help="Voice id.")],
    purpose: Annotated[str, typer.Option(help="Purpose of the use.")],
    requester: Annotated[
        str | None, typer.Option(help="Who asks (default: this deployment's organisation).")
    ] = None,
    action: Annotated[Action, typer.Option(help="Use to decide on.")] = Action.SYNTHESIZE,
    epsilon: Annotated[float, typer.Option(help="Privacy budget the use would spend.")] = 0.0,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Show the decision the policies would make on a use of VOICE, and why (exit 6: deny)."""
    g = usecases.open_guardian()
    request = PolicyRequest(
        action=action,
        voice_id=voice,
        purpose=purpose,
        requester=requester or g.settings.organization,
        epsilon=epsilon,
    )
    decision = usecases.explain_policy(g, request)
    if as_json:
        emit_json(decision.to_dict())
    else:
        verdict = "ALLOW" if decision else "DENY"
        typer.echo(f"{verdict}: {action.value} {voice} for {purpose!r} by {request.requester!r}")
        for pid, reason in zip(decision.policy_ids, decision.reasons, strict=False):
            typer.echo(f"  - [{pid}] {reason}")
    raise typer.Exit(0 if decision else int(ExitCode.REJECTED))
