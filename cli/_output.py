"""Printing results: one JSON object on stdout with ``--json``, text otherwise."""

from __future__ import annotations

import functools
import json
import logging
import sys
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import typer

from guardian.errors import ExitCode, GuardianError

P = ParamSpec("P")
R = TypeVar("R")

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


__all__ = ["JSON_OPTION", "ExitCode", "emit_json", "fail", "guarded", "setup_logging"]
