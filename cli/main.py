"""Entry point of the ``guardian`` command (``docs/cli.md`` is the contract)."""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.models import CommandInfo

from cli._apikey import apikey_app
from cli._batch import verify_batch
from cli._consent import consent_app, enroll, policy_app
from cli._engine import synthesize, train
from cli._output import JSON_OPTION, emit_json, guarded, progress_bar, setup_logging
from cli._rights import export, forget, receipt_app, report_app, retention_app
from cli._serve import remote_verify, serve
from guardian import app as usecases
from guardian.config import get_settings
from guardian.errors import UsageError
from guardian.watermark import Precision, preload_detector

app = typer.Typer(
    name="guardian",
    help="Consent, provenance and privacy for voice cloning.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
keys_app = typer.Typer(
    help="Manage the signing identity (root CA, signer, audit key).", no_args_is_help=True
)
audit_app = typer.Typer(help="Inspect and check the audit log.", no_args_is_help=True)
wm_app = typer.Typer(help="Train, export and inspect watermark models.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
app.add_typer(audit_app, name="audit")
app.add_typer(wm_app, name="watermark")
app.add_typer(consent_app, name="consent")
app.add_typer(policy_app, name="policy")
app.add_typer(receipt_app, name="receipt")
app.add_typer(retention_app, name="retention")
app.add_typer(report_app, name="report")
app.add_typer(apikey_app, name="apikey")
app.command("enroll")(guarded(enroll))
app.command("forget")(guarded(forget))
app.command("train")(guarded(train))
app.command("synthesize")(guarded(synthesize))
app.command("export")(guarded(export))
app.command("serve")(serve)
app.command("verify-batch")(guarded(verify_batch))


@app.callback()
def _main(
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Log details to stderr.")
    ] = False,
) -> None:
    setup_logging(verbose)


# --- keys ----------------------------------------------------------------------------


@keys_app.command("init")
@guarded
def keys_init(as_json: Annotated[bool, JSON_OPTION] = False) -> None:
    """Create the root CA, the signing certificate and the audit key (idempotent)."""
    created = usecases.init_keys(usecases.open_guardian())
    if as_json:
        emit_json({"created": [k.to_dict() for k in created]})
    elif created:
        for k in created:
            typer.echo(f"created {k.role.value:6} {k.kid}  {k.subject}")
    else:
        typer.echo("signing identity already initialised")


@keys_app.command("rotate")
@guarded
def keys_rotate(
    audit: Annotated[
        bool, typer.Option("--audit", help="Rotate the audit key instead (certified in the log).")
    ] = False,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Retire the signing certificate (old clips still verify) and issue a new one."""
    g = usecases.open_guardian()
    new = usecases.rotate_audit_key(g) if audit else usecases.rotate_key(g)
    if as_json:
        emit_json({"active": new.to_dict()})
    elif audit:
        typer.echo(f"new audit key {new.kid}, certified in the log by the previous one")
    else:
        typer.echo(f"new signing key {new.kid}; the previous one is retired and still verifies")


@keys_app.command("list")
@guarded
def keys_list(as_json: Annotated[bool, JSON_OPTION] = False) -> None:
    """List every key with its role and status."""
    g = usecases.open_guardian()
    keys = usecases.list_keys(g)
    warnings = usecases.key_warnings(g)
    if as_json:
        emit_json({"keys": [k.to_dict() for k in keys], "warnings": warnings})
        return
    for w in warnings:
        typer.echo(f"warning: {w}", err=True)
    if not keys:
        typer.echo("no keys yet: run `guardian keys init`")
    for k in keys:
        revoked = f"  revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else ""
        typer.echo(
            f"{k.kid:24} {k.role.value:6} {k.status.value:8} {k.created_at:%Y-%m-%d %H:%M}{revoked}"
        )


@keys_app.command("revoke")
@guarded
def keys_revoke(
    kid: Annotated[str, typer.Argument(help="Key id, as shown by `guardian keys list`.")],
    reason: Annotated[str, typer.Option(help="Why the key is revoked.")] = "unspecified",
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Revoke a signing key: clips it signs from now on fail verification."""
    info = usecases.revoke_key(usecases.open_guardian(), kid, reason=reason)
    if as_json:
        emit_json({"revoked": info.to_dict()})
    else:
        typer.echo(
            f"revoked {info.kid} at {info.revoked_at:%Y-%m-%dT%H:%M:%SZ}; "
            "run `guardian keys rotate` to sign again"
        )


# --- label / verify ----------------------------------------------------------------------


@app.command("label")
@guarded
def label(
    source: Annotated[Path, typer.Argument(help="Audio to label (WAV, FLAC, MP3, Ogg, AAC).")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Output .wav, .flac or .mp3.")],
    purpose: Annotated[str | None, typer.Option(help="Declared purpose of the clip.")] = None,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Label imported AUDIO: watermark, sign a C2PA manifest, record it in the registry.

    The manifest says the clip is imported audio labeled by this deployment. It names no
    voice and no consent: only `guardian synthesize` asserts those.
    """
    request = usecases.LabelRequest(source=source, output=output, purpose=purpose)
    result = usecases.label_file(usecases.open_guardian(), request)
    if as_json:
        emit_json(result.to_dict())
    else:
        typer.echo(f"labeled {result.output} ({result.duration_s:.1f} s, {result.format})")
        typer.echo(f"  label    {result.label_id}")
        typer.echo(f"  manifest {result.manifest_id}")
        typer.echo(f"  signer   {result.signer_kid}")


@app.command("verify")
@guarded
def verify(
    clip: Annotated[Path, typer.Argument(help="Audio clip to check.")],
    server: Annotated[
        str | None,
        typer.Option(help="Ask this remote verifier (http(s)://host:port) instead of this home."),
    ] = None,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Say where CLIP came from. Exit 0 verified/traced, 1 not found, 3 tampered, 4 unreadable."""
    if server is not None:
        report = remote_verify(server, clip)
    else:
        settings = get_settings()
        # the detector loads, and looks at the clip, while the database layer imports
        # and opens; only reading the payload needs the deployment's key
        loading = preload_detector(settings.watermark_model)
        seen = usecases.look_ahead(loading, clip, settings)
        g = usecases.open_guardian(settings, detector=loading)
        report = usecases.verify_file(g, clip, seen=seen).report()
    if as_json:
        emit_json(report.model_dump(mode="json"))
    else:
        typer.echo(f"{report.verdict.upper()}: {clip}")
        for reason in report.reasons:
            typer.echo(f"  - {reason}")
        for name in ("label_id", "voice_id", "consent_id", "purpose", "generated_at", "signer_kid"):
            value = getattr(report, name)
            if value is not None:
                typer.echo(f"  {name:13} {value}")
    raise typer.Exit(int(usecases.Verdict(report.verdict).exit_code))


# --- audit ---------------------------------------------------------------------------------


@audit_app.command("verify")
@guarded
def audit_verify(as_json: Annotated[bool, JSON_OPTION] = False) -> None:
    """Check every audit entry, the hash chain, the signatures and the signed head."""
    report = usecases.verify_audit(usecases.open_guardian())
    if as_json:
        emit_json(
            {
                "ok": bool(report),
                "entries": report.entries,
                "head": report.head_hash,
                "problems": [{"seq": p.seq, "reason": p.reason} for p in report.problems],
            }
        )
    elif report:
        typer.echo(f"audit log intact: {report.entries} entries, head {report.head_hash[:16]}")
    else:
        typer.echo(f"audit log BROKEN ({len(report.problems)} problems):")
        for p in report.problems:
            typer.echo(f"  entry {p.seq}: {p.reason}")
    raise typer.Exit(0 if report else 3)


@audit_app.command("show")
@guarded
def audit_show(
    limit: Annotated[int, typer.Option(min=1, help="Newest entries to show.")] = 20,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Show the newest audit entries."""
    entries = usecases.recent_audit(usecases.open_guardian(), limit=limit)
    if as_json:
        emit_json({"entries": entries})
        return
    for e in entries:
        typer.echo(f"{e['seq']:>6} {e['at']} {e['action']:16} {e['target'] or ''}")


# --- watermark ---------------------------------------------------------------------------


@wm_app.command("info")
@guarded
def wm_info(as_json: Annotated[bool, JSON_OPTION] = False) -> None:
    """Show the watermark model in use (GUARDIAN_WATERMARK_MODEL, default: shipped)."""
    info = usecases.watermark_info(usecases.open_guardian())
    if as_json:
        emit_json(info)
        return
    for key in ("model_id", "source", "weights_sha256", "threshold", "can_embed"):
        typer.echo(f"{key:15} {info[key]}")


@wm_app.command("corpus")
@guarded
def wm_corpus(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for the WAV files.")],
    count: Annotated[int, typer.Option(help="Number of sentences.")] = 500,
    seed: Annotated[int, typer.Option(help="Sentence and voice seed.")] = 777,
    converted: Annotated[
        float,
        typer.Option(help="Share of clips spoken by random public voices of the cloning engine."),
    ] = 0.0,
    engine_voices: Annotated[
        int,
        typer.Option(
            help="Instead: the cloning engine's own output, the demo voice DP-trained this "
            "many times saying the sentences."
        ),
    ] = 0,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Synthesise offline training speech (Piper joe + espeak-ng voices, or the engine's)."""
    with progress_bar("synthesising", count, enabled=not as_json) as tick:
        paths = usecases.make_corpus(
            out,
            count=count,
            seed=seed,
            converted=converted,
            engine_voices=engine_voices,
            progress=lambda done, _total: tick(done),
        )
    if as_json:
        emit_json({"out": str(out), "files": len(paths)})
    else:
        typer.echo(f"wrote {len(paths)} clips to {out}")


@wm_app.command("train")
@guarded
def wm_train(
    data: Annotated[list[Path], typer.Option("--data", help="Audio file or directory (repeat).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory (checkpoints, log).")],
    config: Annotated[
        Path | None,
        typer.Option(help="Training recipe (YAML); default: the shipped model's recipe."),
    ] = None,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    steps: Annotated[
        int | None, typer.Option(help="Override the step count (of a staged recipe's last stage).")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue from OUT/checkpoint.pt.")] = True,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Train Guardian's AudioSeal model; Ctrl-C stops after a checkpoint."""
    import signal

    stop = {"now": False}
    signal.signal(signal.SIGINT, lambda *_: stop.update(now=True))
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    if config is None:
        from guardian.watermark import SHIPPED_RECIPE

        config = SHIPPED_RECIPE
    total = usecases.recipe_steps(config, steps)
    with progress_bar("training", total, enabled=not as_json) as tick:
        ckpt = usecases.train_watermark(
            config_path=config,
            data=data,
            out=out,
            device=device,
            steps=steps,
            resume=resume,
            progress=lambda st: tick(st.step, _train_note(st.losses)),
            should_stop=lambda: stop["now"],
        )
    if as_json:
        emit_json({"checkpoint": str(ckpt), "stopped_early": stop["now"]})
    else:
        typer.echo(
            f"checkpoint: {ckpt}" + (" (stopped early; rerun to resume)" if stop["now"] else "")
        )


def _train_note(losses: dict[str, float]) -> str:
    if "agree" in losses:  # distill: how often the student says what its teacher says
        return f"det {losses['det_acc']:.2f} agree {losses['agree']:.2f}"
    return f"det {losses['det_acc']:.2f} bits {losses['bit_acc']:.2f}"


@wm_app.command("export")
@guarded
def wm_export(
    card: Annotated[Path, typer.Option(help="Model card to write (weights go beside it).")],
    run: Annotated[
        Path | None, typer.Option(help="Training run directory (omit with --onnx alone).")
    ] = None,
    model_id: Annotated[
        str | None, typer.Option(help="Model id recorded in manifests (with --run).")
    ] = None,
    negatives: Annotated[
        list[Path] | None, typer.Option(help="Unwatermarked audio for calibration.")
    ] = None,
    count: Annotated[int, typer.Option(help="Negative 2 s segments for calibration.")] = 1500,
    onnx: Annotated[
        bool,
        typer.Option(
            "--onnx", help="Also (or, without --run, only) rebuild the card's ONNX detector."
        ),
    ] = False,
    precision: Annotated[
        Precision, typer.Option(help="Precision of the ONNX detector.")
    ] = Precision.FP32,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Pin the weights by SHA-256 and calibrate the threshold for FPR <= 1e-3; with --onnx,
    export the detector that verify runs on ONNX Runtime and pin it too."""
    out: dict[str, str] = {}
    if run is not None:
        if model_id is None:
            raise UsageError("--model-id is needed with --run")
        path = usecases.export_watermark(
            run_dir=run, card=card, model_id=model_id, negatives=negatives or [], count=count
        )
        out["card"] = str(path)
    elif not onnx:
        raise UsageError("give --run (a training run to export), --onnx, or both")
    if onnx:
        out["card"] = str(card)
        out["onnx"] = str(usecases.export_watermark_onnx(card, precision=precision))
    if as_json:
        emit_json(out)
    else:
        for key, value in out.items():
            typer.echo(f"wrote {key:5} {value}")


# --- demo ------------------------------------------------------------------------------------


@app.command("demo")
@guarded
def demo(
    workdir: Annotated[Path | None, typer.Option(help="Keep the demo home and clips here.")] = None,
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Run the whole chain on a fresh, temporary Guardian home and report each step."""
    from guardian.app.demo import run_demo

    report = run_demo(workdir=workdir, progress=None if as_json else typer.echo)
    if as_json:
        emit_json(report.to_dict())
    else:
        typer.echo(report.summary())
    raise typer.Exit(0 if report.ok else 5)


def run() -> None:
    """Console-script entry point."""
    _for_argv(sys.argv[1:])()


def _for_argv(argv: list[str]) -> typer.Typer:
    """``app``, or, when ``argv`` names one of its own commands, a copy holding only that
    command: building the click command of each of the 35 commands costs every start
    about 35 ms (``guardian verify`` is the command run most). Help, usage and errors of
    that command read the same; anything else gets the whole app."""
    name = next((a for a in argv if not a.startswith("-")), None)
    chosen = [c for c in app.registered_commands if _command_name(c) == name]
    if name is None or len(chosen) != 1:
        return app
    narrow = copy.copy(app)
    narrow.registered_commands = chosen
    narrow.registered_groups = []
    return narrow


def _command_name(info: CommandInfo) -> str | None:
    if info.name is not None:
        return info.name
    return None if info.callback is None else info.callback.__name__.replace("_", "-")


if __name__ == "__main__":
    run()
