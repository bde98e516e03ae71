"""``guardian train`` and ``guardian synthesize``."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import Annotated

import typer

from cli._output import JSON_OPTION, emit_json, progress_bar
from guardian import app as usecases


def train(
    voice: Annotated[str, typer.Argument(help="Voice id.")],
    epsilon: Annotated[float, typer.Option(help="Privacy budget of this run (ε).")] = 8.0,
    delta: Annotated[
        float | None, typer.Option(help="δ of this run (default: the voice's cap / 4).")
    ] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    ray: Annotated[
        str | None,
        typer.Option(
            "--ray",
            help="Train as a task on this Ray cluster (address, or 'local'); "
            "default: GUARDIAN_RAY_ADDRESS, else here.",
        ),
    ] = None,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Train VOICE's adapter with DP-SGD; Ctrl-C cancels safely (no partial adapter)."""
    stop = {"now": False}
    signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    g = usecases.open_guardian()
    with progress_bar("training", 100, enabled=not as_json) as tick:
        result = usecases.train_voice(
            g,
            voice,
            epsilon=epsilon,
            delta=delta,
            device=device,
            progress=lambda stage, done, total: tick(int(100 * done / max(total, 1)), stage),
            should_stop=lambda: stop["now"],
            ray_address=ray or g.settings.ray_address,
        )
    if as_json:
        emit_json(result.to_dict())
    else:
        typer.echo(
            f"trained {result.voice_id} on {result.utterances} utterances: ε {result.epsilon:.2f}, "
            f"δ {result.delta:.2g} (voice total ε {result.epsilon_total:.2f}, "
            f"δ {result.delta_total:.2g})"
        )
        for warning in result.warnings:
            typer.echo(f"warning: {warning}", err=True)


def synthesize(
    voice: Annotated[str, typer.Argument(help="Voice id.")],
    text: Annotated[str, typer.Argument(help="What to say (up to 5000 characters).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output .wav, .flac or .mp3.")],
    purpose: Annotated[str, typer.Option(help="Purpose of the clip (must be consented).")],
    requester: Annotated[
        str | None, typer.Option(help="Who asks (default: this deployment's organisation).")
    ] = None,
    stream: Annotated[
        bool, typer.Option(help="One labeled file per sentence, each as soon as it is ready.")
    ] = False,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Say TEXT in VOICE: policy check, base TTS, adapter, watermark, signed manifest."""
    g = usecases.open_guardian()
    request = usecases.SynthesisRequest(
        voice_id=voice,
        text=text,
        output=output,
        purpose=purpose,
        requester=requester or g.settings.organization,
    )

    def chunk(label: usecases.LabelResult) -> None:
        if not as_json:
            typer.echo(f"{label.output} ({label.duration_s:.1f} s)")

    result = usecases.synthesize(g, request, stream=stream, on_chunk=chunk)
    if as_json:
        emit_json(result.to_dict())
    elif not stream:
        label = result.labels[0]
        typer.echo(f"wrote {label.output} ({label.duration_s:.1f} s), label {label.label_id}")
