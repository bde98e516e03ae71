"""``guardian forget``, ``guardian export`` and ``guardian receipt verify``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli._output import JSON_OPTION, TRUST_ANCHOR_OPTION, emit_json, guarded, report_check
from guardian import app as usecases

receipt_app = typer.Typer(help="Check erasure receipts.", no_args_is_help=True)


def forget(
    subject: Annotated[str, typer.Argument(help="Subject, voice or consent id.")],
    reason: Annotated[str, typer.Option(help="Why the data is erased.")] = (
        "erasure requested by the subject"
    ),
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the signed receipt here.")
    ] = None,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Erase a subject (GDPR Art. 17): destroy their key, then their data. Idempotent."""
    result = usecases.forget(usecases.open_guardian(), subject, reason=reason)
    if output is not None:
        usecases.write_new_file(output, result.receipt.to_bytes())
    if as_json:
        emit_json(result.to_dict())
        return
    body = result.receipt.body
    state = "was already erased" if result.already else "erased"
    typer.echo(f"subject {state} at {body['erased_at']}; receipt {body['receipt_id']}")
    typer.echo(f"  voices: {', '.join(body['voices']) or '(none)'}")
    typer.echo(f"  destroyed: data key, {body['destroyed']['vault_blobs']} vault objects")
    if output is not None:
        typer.echo(f"  receipt written to {output}")


def export(
    subject: Annotated[str, typer.Argument(help="Subject, voice or consent id.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="The .zip to create.")],
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Export everything held about a subject (GDPR Art. 15/20) as a zip."""
    result = usecases.export_subject(usecases.open_guardian(), subject, output)
    if as_json:
        emit_json(result.to_dict())
    else:
        typer.echo(f"wrote {result.output} ({result.files} files, sha256 {result.sha256[:16]}…)")


@receipt_app.command("verify")
@guarded
def receipt_verify(
    receipt: Annotated[Path, typer.Argument(help="An erasure receipt (JSON).")],
    trust_anchor: Annotated[Path | None, TRUST_ANCHOR_OPTION] = None,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Check an erasure receipt's signature. Exit 0 valid and trusted, 3 otherwise."""
    g = None if trust_anchor else usecases.open_existing_guardian()
    result = usecases.verify_receipt_file(receipt, g, trust_anchor=trust_anchor)
    report_check(result, "erasure receipt", as_json=as_json)


retention_app = typer.Typer(help="Apply the retention rules.", no_args_is_help=True)
report_app = typer.Typer(help="Compliance reports.", no_args_is_help=True)


@retention_app.command("run")
@guarded
def retention_run(
    dry_run: Annotated[bool, typer.Option(help="Only show what would be done.")] = False,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Apply policies/retention.yaml: idempotent, safe from cron, logged."""
    report = usecases.run_retention(usecases.open_guardian(), dry_run=dry_run)
    if as_json:
        emit_json(report.to_dict())
        return
    verb = "would apply" if dry_run else "applied"
    typer.echo(f"retention: {verb} {len(report.actions)} action(s)")
    for a in report.actions:
        typer.echo(f"  [{a.rule}] {a.target}: {a.detail}")


@report_app.command("processing")
@guarded
def report_processing(
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Records of processing (GDPR Art. 30) as markdown, or JSON with --json."""
    report = usecases.processing_report(usecases.open_guardian())
    if as_json:
        emit_json(report.to_dict())
    else:
        typer.echo(report.to_markdown(), nl=False)
