"""CLI: `idbroker apps add|list|rotate-secret|disable|enable` — the app registry. Every change is audited; a
secret is printed once and stored only as an argon2 hash."""

from __future__ import annotations

from typing import Annotated

import typer

from idbroker.cli.db import fail
from idbroker.cli.running import cli_actor, transaction
from idbroker.config import get_settings
from idbroker.release import registry

apps_app = typer.Typer(no_args_is_help=True, help="Apps (OAuth 2 / OpenID Connect clients) and their secrets.")
ClientId = Annotated[str, typer.Argument(help="The app's client id (its policy: policies/apps/<client id>.yaml)")]


def _registry_errors(action: str) -> typer.Exit:
    return fail(f"{action}\nnothing was changed")


@apps_app.command("add")
def add_command(
    client_id: ClientId,
    name: Annotated[str, typer.Option("--name", help="Shown to people on the consent page")],
    redirect_uri: Annotated[list[str], typer.Option("--redirect-uri", help="Exact redirect URI (repeatable)")],
    public: Annotated[bool, typer.Option("--public", help="A public app (no secret; must use PKCE)")] = False,
    sector: Annotated[str | None, typer.Option("--sector", help="Pseudonym sector (default: the URIs' host)")] = None,
    post_logout_redirect_uri: Annotated[
        list[str] | None, typer.Option("--post-logout-redirect-uri", help="Where logout may return (repeatable)")
    ] = None,
) -> None:
    """Register an app whose release policy file exists and is valid; prints its secret once."""
    try:
        with transaction() as session:
            made = registry.register(
                session,
                get_settings().policies_dir,
                client_id=client_id,
                name=name,
                redirect_uris=redirect_uri,
                kind="public" if public else "confidential",
                sector=sector,
                post_logout_redirect_uris=post_logout_redirect_uri or [],
                actor=cli_actor(),
            )
    except registry.RegistryError as exc:
        raise _registry_errors(str(exc)) from None
    typer.echo(f"registered {made.app.client_id} ({made.app.kind}, sector {made.app.sector})")
    if made.secret:
        typer.echo(f"client secret (shown once, store it now): {made.secret}")


@apps_app.command("list")
def list_command() -> None:
    """Every app: client id, kind, sector, enabled, redirect URIs."""
    with transaction() as session:
        apps = registry.list_apps(session)
    for app in apps:
        state = "enabled" if app.enabled else "disabled"
        typer.echo(f"{app.client_id}\t{app.kind}\t{app.sector}\t{state}\t{' '.join(app.redirect_uris)}")
    typer.echo(f"{len(apps)} apps")


@apps_app.command("rotate-secret")
def rotate_secret_command(client_id: ClientId) -> None:
    """A new secret for CLIENT_ID, printed once; the old one stops working at once."""
    try:
        with transaction() as session:
            secret = registry.rotate_secret(session, client_id, actor=cli_actor())
    except (registry.RegistryError, registry.UnknownApp) as exc:
        raise _registry_errors(str(exc)) from None
    typer.echo(f"client secret of {client_id} (shown once, store it now): {secret}")


@apps_app.command("disable")
def disable_command(client_id: ClientId) -> None:
    """Disable CLIENT_ID: no more sign-ins or answers; its live tokens are revoked."""
    try:
        with transaction() as session:
            registry.set_enabled(session, client_id, False, actor=cli_actor())
    except registry.UnknownApp as exc:
        raise _registry_errors(str(exc)) from None
    typer.echo(f"disabled {client_id}")


@apps_app.command("enable")
def enable_command(client_id: ClientId) -> None:
    """Enable CLIENT_ID again."""
    try:
        with transaction() as session:
            registry.set_enabled(session, client_id, True, actor=cli_actor())
    except registry.UnknownApp as exc:
        raise _registry_errors(str(exc)) from None
    typer.echo(f"enabled {client_id}")


def register(app: typer.Typer) -> None:
    app.add_typer(apps_app, name="apps")
