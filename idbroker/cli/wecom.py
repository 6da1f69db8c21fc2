"""CLI: `idbroker wecom plan|sync|invite|reconcile|report` — WeChat Work membership."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from sqlalchemy import select
from sqlmodel import Session

from idbroker.cli.db import database_errors, fail, open_engine
from idbroker.cli.running import cli_actor, progress_bar
from idbroker.config import MissingKeyError, get_settings
from idbroker.policy import PolicyError
from idbroker.wecom.apply import Sync, SyncReport
from idbroker.wecom.errors import WeComError
from idbroker.wecom.follow import follow_report, invite_unfollowed
from idbroker.wecom.merge import people_changed_since, save_cursor
from idbroker.wecom.plan import Plan
from idbroker.wecom.reconcile import reconcile
from idbroker.wecom.state import WeComConflict

wecom_app = typer.Typer(no_args_is_help=True, help="WeChat Work (企业微信): sync members, invite, reconcile, report.")
SAMPLE = 10
Changed = Annotated[
    bool, typer.Option("--changed", help="Only the people the directory events touched since the last --changed sync")
]


@contextmanager
def _opened() -> Iterator[Sync]:
    engine = open_engine()
    try:
        with database_errors(engine):
            try:
                sync = Sync.open(engine, get_settings())
                try:
                    yield sync
                finally:
                    if sync.client is not None:
                        sync.client.close()
            except (WeComError, MissingKeyError, PolicyError) as exc:
                raise fail(str(exc)) from None
    finally:
        engine.dispose()


def _changed(sync: Sync) -> tuple[set[str], int]:
    with Session(sync.engine) as session:
        return people_changed_since(session)


def describe(plan: Plan) -> list[str]:
    counts = plan.counts()
    lines = [
        f"departments to create or update: {counts['departments']}"
        + (
            " (by batch: media/upload + batch/replaceparty, if the corp holds no other department; else one by one)"
            if plan.department_batch
            else ""
        ),
        f"members to create: {counts['batch_create'] + counts['create']}"
        + (" (by batch: media/upload + batch/syncuser)" if counts["batch_create"] else " (one by one)"),
        f"members to update: {counts['update']}"
        + (f" ({', '.join(f'{k} {v}' for k, v in sorted(plan.field_counts().items()))})" if counts["update"] else ""),
        f"leavers to disable: {counts['disable']}; in their grace period: {counts['waiting_grace']}",
        f"members to retire (merged people): {counts['retire']}",
        f"waiting for a batch job: {counts['pending_batch']}",
        f"people without a member yet: {counts['skipped']}"
        + (f" ({', '.join(f'{k} {v}' for k, v in sorted(plan.skipped.items()))})" if plan.skipped else ""),
        f"WeChat Work calls needed: about {plan.call_count}",
    ]
    sample = (plan.batch + plan.calls)[:SAMPLE]
    if sample:
        lines.append("sample:")
        lines += [f"  {call.kind:<8} {call.userid}  {', '.join(call.fields)}" for call in sample]
    return lines


@wecom_app.command("plan")
def plan_command(changed: Changed = False) -> None:
    """Print what a sync would change (counts and a sample) without calling WeChat Work."""
    with _opened() as sync:
        people = _changed(sync)[0] if changed else None
        plan = sync.plan(people=people)
    for line in describe(plan):
        typer.echo(line)


def _summary(report: SyncReport) -> str:
    shown = ", ".join(f"{name} {count}" for name, count in sorted(report.counts.items()) if count)
    return f"{shown or 'nothing to change'}; {report.total_calls} calls to WeChat Work"


@wecom_app.command("sync")
def sync_command(changed: Changed = False) -> None:
    """Apply the plan: departments, then members (batch for a first sync), with a progress bar. Resumable."""
    with _opened() as sync, progress_bar("wecom sync") as bar:
        people, cursor = _changed(sync) if changed else (None, 0)
        task = bar.add_task("members", total=None)

        def planned(plan: Plan) -> None:
            bar.update(task, total=len(plan.calls) + len(plan.batch))

        report = sync.run(actor=cli_actor(), people=people, progress=lambda n: bar.advance(task, n), on_plan=planned)
        if changed:
            with Session(sync.engine) as session:
                save_cursor(session, cursor)
                session.commit()
    typer.echo(_summary(report))
    for failure in report.failures[:SAMPLE]:
        typer.echo(f"failed: {failure}")
    for jobid in report.unfinished_batches:
        typer.echo(f"batch job {jobid} is still running: `idbroker wecom sync` again waits for it")


@wecom_app.command("invite")
def invite_command() -> None:
    """Invite (batch/invite) the enabled members who have not followed yet, at most once a week each."""
    with _opened() as sync, progress_bar("wecom invite") as bar:
        task = bar.add_task("members", total=None)
        invited, refused = invite_unfollowed(
            lambda: Session(sync.engine, expire_on_commit=False),
            sync.connect(),
            progress=lambda n: bar.advance(task, n),
        )
    typer.echo(f"invited {invited} members; WeChat Work refused {refused}")


@wecom_app.command("reconcile")
def reconcile_command() -> None:
    """Compare with the corp (user/list_id): unknown members are reported, never deleted."""
    with _opened() as sync, progress_bar("wecom reconcile") as bar:
        task = bar.add_task("members", total=None)
        result = reconcile(sync.engine, sync.connect(), actor=cli_actor(), progress=lambda n: bar.advance(task, n))
    typer.echo(
        f"corp members {result.corp_members}; unknown to the broker {len(result.unknown)} (left alone); "
        f"vanished from the corp {len(result.vanished)} (the next sync creates them again); "
        f"to be adopted {len(result.found)}"
    )
    for userid in result.unknown[:SAMPLE]:
        typer.echo(f"  unknown: {userid}")


@wecom_app.command("report")
def report_command(
    conflicts: Annotated[bool, typer.Option("--conflicts", help="List what the helpdesk has to resolve")] = False,
) -> None:
    """Follow report: members, followed, rate per 学院 and per role."""
    console = Console()
    with _opened() as sync, Session(sync.engine) as session:
        report = follow_report(session, sync.desired)
        open_conflicts = list(session.scalars(select(WeComConflict).order_by(WeComConflict.at)))  # type: ignore[arg-type]
    typer.echo(f"members {report.members}, followed {report.followed} ({report.rate:.1%})")
    for title, rows in (("学院 / 部门", report.by_org), ("role", report.by_role)):
        table = Table(title=f"follow by {title}")
        for column in (title, "members", "followed", "rate"):
            table.add_column(column, justify="left" if column == title else "right")
        for row in rows:
            table.add_row(row.group, str(row.members), str(row.followed), f"{row.rate:.1%}")
        console.print(table)
    typer.echo(f"conflicts for the helpdesk: {len(open_conflicts)}")
    if conflicts:
        for item in open_conflicts:
            typer.echo(
                f"  {item.userid}  person {item.person_id}  {item.field} {item.reason}  since {item.at:%Y-%m-%d}"
            )


def register(app: typer.Typer) -> None:
    app.add_typer(wecom_app, name="wecom")
