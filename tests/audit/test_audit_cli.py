"""The privacy officer's CLI: verify naming the tampered row, search, report JSON/CSV, retention, stats, alerts."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from plugins.privacy import Campus, add_events
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from idbroker.cli.main import app

runner = CliRunner()


def run(*args: str, code: int = 0) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == code, result.output
    return result.output


def test_tampering_with_one_row_makes_verify_fail_naming_the_row(engine: Engine) -> None:
    add_events(engine, 5, subject="person01")
    assert "audit log verified: 5 events" in run("audit", "verify")
    postgres = engine.dialect.name == "postgresql"
    with engine.begin() as connection:
        if postgres:
            connection.execute(text("ALTER TABLE audit_event DISABLE TRIGGER ALL"))
        connection.execute(text("UPDATE audit_event SET subject = 'person02' WHERE seq = 3"))
        if postgres:
            connection.execute(text("ALTER TABLE audit_event ENABLE TRIGGER ALL"))
    out = run("audit", "verify", code=1)
    assert "FAILED (seq 3)" in out and "event 3 was altered" in out and "2 events verified before it" in out


def test_search_and_report_from_the_command_line(engine: Engine, privacy_campus: Campus, tmp_path: Path) -> None:
    add_events(engine, 3, subject=privacy_campus.zhang)
    out = run("audit", "search", "--person", "1120101234", "--app", "bus", "--limit", "2")
    assert out.count("\trelease\t") == 2 and "next page: --before" in out
    lines = run("audit", "search", "--action", "release", "--json").strip().splitlines()
    assert len(lines) == 3 and json.loads(lines[0])["client_ip"] == "10.0.0.7"
    document = json.loads(run("audit", "report", "1120101234"))
    assert document["person"] == privacy_campus.zhang and len(document["events"]) >= 3
    run("audit", "report", privacy_campus.zhang, "--format", "csv", "--output", str(tmp_path / "r.csv"))
    rows = list(csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text(encoding="utf-8"))))
    assert {row["action"] for row in rows} >= {"release", "audit.search"}
    assert "no person" in run("audit", "report", "0000000000", code=1)
    assert "--format" in run("audit", "report", "1120101234", "--format", "xml", code=1)
    assert "not a date" in run("audit", "search", "--since", "yesterday", code=1)


def test_retention_stats_and_alerts_from_the_command_line(engine: Engine) -> None:
    add_events(engine, 120, subject="person01")
    out = run("audit", "retention", "--schedule")
    assert "network details removed from 0 events" in out  # all are young
    out = run("audit", "stats")
    assert "\tbus\t1\t120\t120" in out
    out = run("audit", "alerts")
    assert "app:bus\t120 reads" in out and "1 alerts" in out
    assert "audit log verified" in run("audit", "verify")


@pytest.mark.parametrize(
    ("content", "where"),
    [("network_logs: {keep_days: 30, keys: [client_ip]}\n", "retention.yaml:1"), ("not: [valid\n", "retention.yaml:2")],
)
def test_a_bad_retention_policy_is_refused_naming_the_file(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, content: str, where: str
) -> None:
    (tmp_path / "policies").mkdir()
    (tmp_path / "policies" / "retention.yaml").write_text(content, encoding="utf-8")
    monkeypatch.setenv("IDBROKER_POLICIES_DIR", str(tmp_path / "policies"))
    import idbroker.config

    idbroker.config.get_settings.cache_clear()
    out = run("audit", "retention", code=1)
    assert where in out and "nothing was changed" in out
