"""CLI: `idbroker demo load` — a generated campus (no real person) imported and linked, for newcomers."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from idbroker.cli.running import transaction
from idbroker.config import get_settings
from idbroker.demo.campus import EXAMPLE_NUMBERS, generate_campus
from idbroker.demo.wecom_demo import DEMO_PATH, point_broker_at_demo
from idbroker.sources.importer import run_import
from idbroker.staff.roles import grant, roles_of

demo_app = typer.Typer(no_args_is_help=True, help="Demo data: a generated campus on the embedded database.")
DEMO_SOURCES = ("student", "hr", "cas", "billing")
DEMO_STAFF_UID = EXAMPLE_NUMBERS[-1]


@demo_app.command("load")
def load(
    people: Annotated[int, typer.Option(help="How many generated people")] = 200,
    seed: Annotated[int, typer.Option(help="Generator seed")] = 2026,
    out: Annotated[Path, typer.Option(help="Where the generated exports are written")] = Path("var/demo"),
    env_file: Annotated[Path, typer.Option(help="The env file the broker reads")] = Path("var/idbroker.env"),
) -> None:
    """Generate a campus and import its student, HR, CAS and billing exports; point WeChat Work at the demo corp."""
    out.mkdir(parents=True, exist_ok=True)
    generate_campus(people=people, seed=seed, out_dir=out)
    settings = get_settings()
    for source in DEMO_SOURCES:
        with transaction() as session:
            report = run_import(
                session, source=source, location=str(out / f"{source}.csv"), settings=settings, actor="demo"
            )
        link = report.link or {}
        typer.echo(
            f"{source}: {report.counts['new']} new records, {link.get('new_people', 0)} new people, "
            f"{link.get('queued', 0)} review cases"
        )
    _grant_demo_staff()
    _point_at_demo_wecom(env_file, settings.public_url)


def _point_at_demo_wecom(env_file: Path, public_url: str) -> None:
    """DEMO ONLY: `idbroker wecom sync` goes to the demo's WeChat Work corp (served by `idbroker serve`)."""
    outcome = point_broker_at_demo(env_file, public_url)
    if outcome == "other":
        typer.echo("WeChat Work: configured for another corp; the demo corp stays unused")
        return
    added = f" (settings added to {env_file})" if outcome == "added" else ""
    typer.echo(f"WeChat Work: `idbroker wecom sync` goes to the demo corp {public_url.rstrip('/')}{DEMO_PATH}{added}")


def _grant_demo_staff() -> None:
    """The example teacher (张帅, 工号 6120170032) holds every staff role in the demo, to try the consoles."""
    with transaction() as session:
        held = roles_of(session, DEMO_STAFF_UID)
        for role in ("helpdesk", "privacy_officer", "admin"):
            if role not in held:
                grant(session, DEMO_STAFF_UID, role, actor="demo")
    typer.echo(f"demo staff: {DEMO_STAFF_UID} (张帅) may open /helpdesk and /privacy")


def register(app: typer.Typer) -> None:
    app.add_typer(demo_app, name="demo")
