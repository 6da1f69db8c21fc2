"""The operator's path through the CLI: import, explain, merge, unmerge, export, audit verify."""

from __future__ import annotations

import csv
from datetime import date
from pathlib import Path
from typing import Any

from factories import HR_HEADER, STUDENT_HEADER, national_id, staff, student, write_csv
from sqlalchemy import Engine
from typer.testing import CliRunner

from idbroker.cli.main import app

runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def test_import_explain_merge_unmerge_export_verify(engine: Engine, tmp_path: Path) -> None:
    nid = national_id(date(1985, 6, 1), 31)
    students = write_csv(
        tmp_path / "s.csv",
        STUDENT_HEADER,
        [
            student("1120030001", "欧阳修", "男", "1985-06-01", nid, "本科", "2003", "13600000001"),
            student("2120070001", "欧阳修", "男", "1985-06-01", "", "硕士", "2007", "13600000002"),
        ],
    )
    out = run("import", "student", str(students))
    assert "read 2 / new 2" in out and "1 pairs queued for review" in out
    out = run("explain", "1120030001")
    assert "1120030001" in out and nid not in out and "13600000001" not in out
    cases = run("review", "list")
    case = cases.split("\t", 1)[0].strip()
    run("review", "decide", case, "merge", "--reason", "ticket 7")
    out = run("explain", "2120070001")
    assert "1120030001" in out and "2120070001" in out and "merge" in out
    run("unmerge", out.split("operation ")[1].split(":")[0], "--reason", "wrong")
    run("export", "identities", str(tmp_path / "ids.csv"))
    with (tmp_path / "ids.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert {r["record"] for r in rows} == {"1120030001", "2120070001"}
    assert len({r["person"] for r in rows}) == 2 and set(rows[0]) >= {"person", "source", "record", "status"}
    assert "audit log verified" in run("audit", "verify")


def test_bad_input_gets_a_clear_message_and_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    result = runner.invoke(app, ["import", "student", str(tmp_path / "missing.csv")])
    assert result.exit_code == 1 and "missing.csv" in result.output and "nothing was changed" in result.output
    hr = write_csv(tmp_path / "hr.csv", HR_HEADER, [staff("6120170032", "张帅", "男", "1992-05-17", "", "139")])
    out = run("import", "hr", str(hr))
    assert "hr.csv, row 2: phone" in out and "field set aside" in out
    result = runner.invoke(app, ["import", "nosuchsource", str(hr)])
    assert result.exit_code == 1 and "student" in result.output


def test_each_command_starts_with_only_its_own_modules() -> None:
    """`idbroker CMD` loads only the modules `COMMAND_MODULES` names for CMD: in a fresh interpreter (no other
    command module imported), they give CMD exactly the subcommands and options it has with every module
    loaded, and every command is named there."""
    import json
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    from typer.main import get_command

    from idbroker.cli.main import COMMAND_MODULES, build

    script = """if True:
        import json, sys
        from typer.main import get_command
        from idbroker.cli.main import build
        def tree(command):
            if hasattr(command, "commands"):
                return {name: tree(sub) for name, sub in command.commands.items()}
            return sorted(param.name or "" for param in command.params)
        print(json.dumps(tree(get_command(build(sys.argv[1])).commands[sys.argv[1]])))
    """

    def tree(command: Any) -> object:  # a group's subcommands, a command's parameters
        if hasattr(command, "commands"):
            return {name: tree(sub) for name, sub in command.commands.items()}
        return sorted(param.name or "" for param in command.params)

    def alone(command: str) -> object:
        run = subprocess.run([sys.executable, "-c", script, command], capture_output=True, text=True, check=True)
        return json.loads(run.stdout)

    whole: Any = get_command(build())
    assert set(whole.commands) == set(COMMAND_MODULES)
    with ThreadPoolExecutor(max_workers=4) as pool:
        fresh = dict(zip(COMMAND_MODULES, pool.map(alone, COMMAND_MODULES), strict=True))
    for command in COMMAND_MODULES:
        assert fresh[command] == tree(whole.commands[command]), command
