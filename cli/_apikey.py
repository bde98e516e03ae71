"""``guardian apikey create|list|revoke``: keys for the HTTP API."""

from __future__ import annotations

from typing import Annotated

import typer

from cli._output import JSON_OPTION, emit_json, guarded
from guardian import app as usecases
from guardian.app import Scope

apikey_app = typer.Typer(help="Manage API keys for `guardian serve`.", no_args_is_help=True)
_SCOPES = ", ".join(s.value for s in Scope)


@apikey_app.command("create")
@guarded
def apikey_create(
    name: Annotated[str, typer.Option(help="What the key is for.")],
    org: Annotated[
        str, typer.Option(help="Organisation the key acts for (the requester in policies).")
    ],
    scopes: Annotated[
        list[str], typer.Option("--scopes", help=f"Scopes, comma-separated or repeated: {_SCOPES}.")
    ],
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Create a key. The key itself is shown once, now, and cannot be recovered."""
    new = usecases.create_api_key(
        usecases.open_guardian(), name=name, organization=org, scopes=scopes
    )
    if as_json:
        emit_json({**new.info.to_dict(), "key": new.token})
        return
    scope_names = ", ".join(s.value for s in new.info.scopes)
    typer.echo(f"created {new.info.id} for {new.info.organization}: {scope_names}")
    typer.echo(f"key (shown once; store it now): {new.token}")


@apikey_app.command("list")
@guarded
def apikey_list(as_json: Annotated[bool, JSON_OPTION] = False) -> None:
    """List keys (never the keys themselves)."""
    keys = usecases.list_api_keys(usecases.open_guardian())
    if as_json:
        emit_json({"keys": [k.to_dict() for k in keys]})
        return
    if not keys:
        typer.echo("no API keys yet: run `guardian apikey create`")
    for k in keys:
        state = f"revoked {k.revoked_at:%Y-%m-%d %H:%M}" if k.revoked_at else "active"
        scopes = ",".join(s.value for s in k.scopes)
        typer.echo(f"{k.id:22} {k.organization:20} {scopes:30} {state}  {k.name}")


@apikey_app.command("revoke")
@guarded
def apikey_revoke(
    key_id: Annotated[str, typer.Argument(help="Key id, as shown by `guardian apikey list`.")],
    as_json: Annotated[bool, JSON_OPTION] = False,
) -> None:
    """Revoke a key: it stops working at once."""
    info = usecases.revoke_api_key(usecases.open_guardian(), key_id)
    if as_json:
        emit_json(info.to_dict())
    else:
        typer.echo(f"revoked {info.id}")


__all__ = ["apikey_app"]
