"""``guardian verify-batch``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from cli._output import JSON_OPTION, emit_json, progress_bar
from guardian import app as usecases
from guardian.config import get_settings


def verify_batch(
    source: Annotated[
        str,
        typer.Argument(help="Directory (recursive), glob, or a .csv / .jsonl list of paths."),
    ],
    output: Annotated[
        Path, typer.Option("--output", "-o", help="JSON-lines report; a rerun resumes it.")
    ],
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="Run on this Ray cluster (address, or 'local'); default: "
            "GUARDIAN_RAY_ADDRESS, else a local process pool.",
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes or Ray actors (default: every core / the cluster)."),
    ] = None,
    actor_cpus: Annotated[float, typer.Option(help="CPUs each Ray actor reserves.")] = 1.0,
    actor_gpus: Annotated[float, typer.Option(help="GPUs each Ray actor reserves.")] = 0.0,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Verify every clip in SOURCE, one JSON line per clip, in parallel; resumable."""
    with progress_bar("verifying", 0, enabled=not as_json) as tick:
        summary = usecases.verify_batch(
            source,
            output,
            workers=workers,
            ray_address=ray or get_settings().ray_address,
            actor_cpus=actor_cpus,
            actor_gpus=actor_gpus,
            progress=lambda done, total: tick(done, total=total),
        )
    if as_json:
        emit_json(summary.to_dict())
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{summary.report} ({summary.backend}, {summary.workers} workers)")
    table.add_column("verdict")
    table.add_column("clips", justify="right")
    for verdict, count in summary.verdicts.items():
        table.add_row(verdict, str(count))
    table.add_row("error", str(summary.errors))
    table.add_row("skipped (already reported)", str(summary.skipped), end_section=True)
    table.add_row("clips/s", f"{summary.clips_per_s:.2f}")
    Console().print(table)
