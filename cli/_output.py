"""Printing results: one JSON object on stdout with ``--json``, text otherwise."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer

from guardian.errors import ExitCode, GuardianError

if TYPE_CHECKING:
    from guardian.keys._documents import DocumentCheck

P = ParamSpec("P")
R = TypeVar("R")

TRUST_ANCHOR_OPTION = typer.Option(
    "--trust-anchor",
    help="PEM file of the signing deployment's root certificates (GET /v1/trust/anchors.pem); "
    "without it, the anchors of the Guardian home, if there is one.",
)
JSON_OPTION = typer.Option("--json", help="Print one JSON object on stdout.")


def setup_logging(verbose: bool) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    root = logging.getLogger("guardian")
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.WARNING)
    root.propagate = False


def emit_json(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, indent=2, default=str) + "\n")


@contextmanager
def progress_bar(label: str, total: int, *, enabled: bool) -> Iterator[Callable[..., None]]:
    """A progress bar on stderr (never on stdout, which carries --json).

    It appears at the first tick, so input refused before any work leaves only the
    one-line error.
    """
    if not enabled:
        yield lambda *_a, **_k: None
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[info]}"),
    )
    progress = Progress(*columns, console=Console(stderr=True))
    task = progress.add_task(label, total=total, info="")

    def tick(done: int, info: str = "", total: int | None = None) -> None:
        if not progress.live.is_started:
            progress.start()
        progress.update(task, completed=done, info=info, total=total)

    try:
        yield tick
    finally:
        if progress.live.is_started:
            progress.stop()


def report_check(result: DocumentCheck, what: str, *, as_json: bool, valid_note: str = "") -> None:
    """Print a signed-document check (VALID, UNTRUSTED or INVALID with its problems) and
    exit 0 (valid and trusted) or 3."""
    if as_json:
        emit_json(result.to_dict())
    elif result:
        typer.echo(f"VALID: {what} {result.document_id}{valid_note}")
    elif result.signer_untrusted:
        typer.echo(
            f"UNTRUSTED: {what} {result.document_id}: signature valid, signer UNTRUSTED "
            "(no Guardian home here; pass --trust-anchor ROOT.pem with the deployment's "
            "published root certificates)"
        )
    else:
        typer.echo(f"INVALID: {what} {result.document_id}")
        for p in result.problems:
            typer.echo(f"  - {p}")
    raise typer.Exit(0 if result else int(ExitCode.TAMPERED))


def fail(error: GuardianError, *, as_json: bool) -> None:
    """Report an error in one line (or one JSON object) and exit with its code."""
    if as_json:
        emit_json(
            {
                "error": {
                    "type": type(error).__name__,
                    "message": error.diagnostics(),
                    "exit_code": int(error.exit_code),
                }
            }
        )
    else:
        typer.echo(f"error: {error.diagnostics()}", err=True)
    raise typer.Exit(int(error.exit_code))


def guarded(func: Callable[P, R]) -> Callable[P, R]:
    """Map :class:`GuardianError` to an exit code; nothing else is caught here."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        as_json = bool(kwargs.get("as_json", False))
        try:
            return func(*args, **kwargs)
        except GuardianError as e:
            fail(e, as_json=as_json)
            raise  # unreachable: fail() always exits
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None

    return wrapper


__all__ = [
    "JSON_OPTION",
    "ExitCode",
    "emit_json",
    "fail",
    "guarded",
    "progress_bar",
    "report_check",
    "setup_logging",
]
