"""CLI: `idbroker audit …` — the privacy officer's tools on the tamper-evident audit log.

verify (optionally against an exported checkpoint) · search · report PERSON · checkpoint (sign the head,
export it) · verify-checkpoint FILE (offline, no database) · retention · stats · alerts. Every command that
reads people's events records that read in the log itself.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from sqlmodel import Session

from idbroker.audit.alerts import load_alert_policy, rate_alerts
from idbroker.audit.checkpoints import (
    CheckpointInvalid,
    create_checkpoint,
    export_checkpoint,
    log_matches,
    verify_export,
)
from idbroker.audit.checkpoints import schedule as schedule_checkpoints
from idbroker.audit.reports import FORMATS, access_report, render_report
from idbroker.audit.retention import apply_retention, load_retention_policy
from idbroker.audit.retention import schedule as schedule_retention
from idbroker.audit.search import AuditFilter, AuditSearchError, search_events
from idbroker.audit.stats import app_statistics
from idbroker.audit.verify import verify_chain
from idbroker.cli.db import database_errors, fail, open_engine
from idbroker.cli.running import cli_actor, transaction
from idbroker.config import get_settings

audit_app = typer.Typer(no_args_is_help=True, help="The tamper-evident audit log.")


def _time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise fail(f"{option}: {value!r} is not a date or time (YYYY-MM-DD or YYYY-MM-DDTHH:MM[+08:00])") from None
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


def _read_checkpoint(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise fail(f"{path}: cannot read the checkpoint: {exc}") from None


@audit_app.command("verify")
def verify_command(
    batch: Annotated[int, typer.Option(min=1, help="Events read per query.")] = 10000,
    checkpoint: Annotated[
        Path | None, typer.Option("--checkpoint", help="An exported checkpoint the log must still match.")
    ] = None,
    key_id: Annotated[str | None, typer.Option("--key-id", help="Trust only checkpoints signed by this key.")] = None,
) -> None:
    """Recompute every event's hash and link; exit 1 naming the first event that fails."""
    signed = None
    if checkpoint is not None:
        try:
            signed = verify_export(_read_checkpoint(checkpoint), trusted_key_id=key_id)
        except CheckpointInvalid as exc:
            raise fail(f"{checkpoint}: {exc}") from None
    engine = open_engine()
    with database_errors(engine), Session(engine) as session:
        report = verify_chain(session, batch=batch)
        mismatch = log_matches(session, signed) if signed is not None and report.ok else None
    engine.dispose()
    if not report.ok:
        where = f" (seq {report.bad_seq})" if report.bad_seq is not None else ""
        raise fail(
            f"audit log verification FAILED{where}: {report.problem} ({report.checked} events verified before it)"
        )
    if mismatch is not None:
        raise fail(f"audit log verification FAILED against {checkpoint}: {mismatch}")
    typer.echo(f"audit log verified: {report.checked} events")
    if signed is not None:
        typer.echo(f"matches the checkpoint of {signed.at} (event {signed.seq}, key {signed.key_id})")


@audit_app.command("search")
def search_command(
    person: Annotated[str | None, typer.Option(help="A person ID or any number they hold.")] = None,
    app: Annotated[str | None, typer.Option(help="An app's client id.")] = None,
    actor: Annotated[str | None, typer.Option(help="person:<id> (staff), app:<client>, cli:<user>, system…")] = None,
    action: Annotated[str | None, typer.Option(help="An action, or a prefix ending in * (helpdesk.*).")] = None,
    purpose: Annotated[str | None, typer.Option(help="The purpose, exactly.")] = None,
    since: Annotated[str | None, typer.Option(help="From (ISO date/time; UTC unless an offset is given).")] = None,
    until: Annotated[str | None, typer.Option(help="Until, excluded.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    before: Annotated[int | None, typer.Option(help="Only events before this seq (the next page).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
) -> None:
    """Search the log, newest first; the search itself is recorded."""
    query = AuditFilter(person, app, actor, action, purpose, _time(since, "--since"), _time(until, "--until"))
    with transaction() as session:
        try:
            page = search_events(session, query, actor=cli_actor(), limit=limit, before=before)
        except AuditSearchError as exc:
            raise fail(str(exc)) from None
    for entry in page.entries:
        if as_json:
            typer.echo(json.dumps(entry.as_dict(), ensure_ascii=False, default=str))
            continue
        what = ",".join(entry.what) or "-"
        typer.echo(
            f"{entry.seq}\t{entry.at:%Y-%m-%d %H:%M:%S}\t{entry.actor}\t{entry.action}\t{entry.subject or '-'}\t"
            f"{what}\t{entry.purpose or '-'}\t{entry.client_ip or '-'}\t{entry.result or '-'}"
        )
    if not as_json:
        more = f"; next page: --before {page.next_before}" if page.next_before else ""
        typer.echo(f"{len(page.entries)} events{more}")


@audit_app.command("report")
def report_command(
    person: Annotated[str, typer.Argument(help="A person ID or any number they hold.")],
    fmt: Annotated[str, typer.Option("--format", help=" | ".join(FORMATS))] = "json",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")] = None,
) -> None:
    """Who read or changed what of this person, when and why (PIPL Art. 45 access and copy)."""
    if fmt not in FORMATS:
        raise fail(f"--format must be one of {', '.join(FORMATS)}")
    with transaction() as session:
        try:
            report = access_report(session, person, actor=cli_actor())
        except AuditSearchError as exc:
            raise fail(str(exc)) from None
    rendered = render_report(report, fmt)
    if output is None:
        typer.echo(rendered, nl=False)
        return
    try:
        output.write_text(rendered, encoding="utf-8")
    except OSError as exc:
        raise fail(f"{output}: cannot write: {exc}") from None
    typer.echo(f"{len(report.entries)} events of {report.person_id} written to {output}", err=True)


@audit_app.command("checkpoint")
def checkpoint_command(
    export: Annotated[Path | None, typer.Option("--export", help="Also write the signed checkpoint here.")] = None,
    schedule: Annotated[
        bool, typer.Option("--schedule", help="Also queue periodic checkpoints for `idbroker worker`.")
    ] = False,
) -> None:
    """Sign the head of the log (seq and hash) with the broker's checkpoint key."""
    settings = get_settings()
    with transaction() as session:
        checkpoint = create_checkpoint(session, settings, actor=cli_actor())
        if schedule:
            schedule_checkpoints(session, settings.audit_checkpoint_interval_seconds)
    typer.echo(f"checkpoint {checkpoint.id}: event {checkpoint.seq} hash {checkpoint.hash} (key {checkpoint.key_id})")
    if export is not None:
        try:
            export.write_text(json.dumps(export_checkpoint(checkpoint), indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise fail(f"{export}: cannot write: {exc}") from None
        typer.echo(f"exported to {export}: verify it anywhere with `idbroker audit verify-checkpoint {export}`")


@audit_app.command("verify-checkpoint")
def verify_checkpoint_command(
    path: Annotated[Path, typer.Argument(help="An exported checkpoint (JSON).")],
    key_id: Annotated[str | None, typer.Option("--key-id", help="Trust only this signing key.")] = None,
) -> None:
    """Check a checkpoint's signature offline (no database, no broker keys needed)."""
    try:
        signed = verify_export(_read_checkpoint(path), trusted_key_id=key_id)
    except CheckpointInvalid as exc:
        raise fail(f"{path}: {exc}") from None
    typer.echo(f"valid checkpoint: event {signed.seq} had hash {signed.hash} at {signed.at} (key {signed.key_id})")


@audit_app.command("retention")
def retention_command(
    schedule: Annotated[bool, typer.Option("--schedule", help="Also queue daily runs for `idbroker worker`.")] = False,
) -> None:
    """Reduce the details of old events as policies/retention.yaml says (the chain stays verifiable)."""
    settings = get_settings()
    with transaction() as session:
        report = apply_retention(session, load_retention_policy(settings), actor=cli_actor())
        if schedule:
            schedule_retention(session, settings.audit_retention_interval_seconds)
    typer.echo(
        f"network details removed from {report.network} events; {report.processing} events reduced to their "
        f"processing record; {report.legacy_kept} events of format v1 kept whole"
    )
    if report.unverifiable:
        raise fail(
            f"{len(report.unverifiable)} events do not verify and were left as they are (first: seq "
            f"{report.unverifiable[0]}): run `idbroker audit verify`"
        )


@audit_app.command("stats")
def stats_command(
    app: Annotated[str | None, typer.Option(help="One app's client id (default: every app).")] = None,
    days: Annotated[int, typer.Option(min=1, max=366)] = 30,
) -> None:
    """People and claims released per app per day."""
    engine = open_engine()
    with database_errors(engine), Session(engine) as session:
        rows = app_statistics(session, app=app, days=days)
    engine.dispose()
    typer.echo("day\tapp\tpeople\tclaims\treleases")
    for row in rows:
        typer.echo(f"{row.day}\t{row.app}\t{row.people}\t{row.claims}\t{row.releases}")


@audit_app.command("alerts")
def alerts_command() -> None:
    """Apps and staff reading far more than their usual rate (policies/alerts.yaml)."""
    settings = get_settings()
    with transaction() as session:
        alerts = rate_alerts(session, load_alert_policy(settings))
    for alert in alerts:
        typer.echo(f"{alert.actor}\t{alert.reads} reads since {alert.window_start:%Y-%m-%d %H:%M}\tusual {alert.usual}")
    typer.echo(f"{len(alerts)} alerts")


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")
