"""`idbroker contacts …` and `idbroker explain`: why a phone is primary, update links, rates, collecting."""

from __future__ import annotations

from pathlib import Path

from factories import STUDENT_HEADER, student, write_csv
from services.kannel import Kannel
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from idbroker.cli.main import app

runner = CliRunner()


def run(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def load(tmp_path: Path) -> None:
    rows = [student("1120101234", "张帅", "男", "1992-05-17", "", "本科", "2010", "13812345678", "zs@example.edu.cn")]
    run("import", "student", str(write_csv(tmp_path / "s.csv", STUDENT_HEADER, rows)))


def test_explain_and_show_say_why_a_value_is_primary_without_showing_it(engine: Engine, tmp_path: Path) -> None:
    load(tmp_path)
    out = run("explain", "1120101234")
    assert "primary phone 138****5678: the only candidate" in out and "said by student" in out
    assert "primary email z***@example.edu.cn" in out
    run("contacts", "correct", "1120101234", "phone", "139 1234 5678", "--reason", "confirmed on a call, ticket 9")
    out = run("explain", "1120101234")
    assert "primary phone 139****5678: confirmed by the helpdesk" in out
    assert "phone 138****5678: ranked below: the other is confirmed by the helpdesk" in out
    out = run("contacts", "show", "1120101234")
    assert "helpdesk-confirmed by cli:" in out and "student 1120101234: since" in out
    for clear in ("13812345678", "13912345678", "zs@example.edu.cn"):
        assert clear not in out
    with engine.connect() as connection:
        actions = [row[0] for row in connection.execute(text("SELECT action FROM audit_event ORDER BY seq"))]
    assert "contact.helpdesk.corrected" in actions and "contact.show" in actions


def test_a_correction_without_a_reason_or_with_a_bad_number_changes_nothing(engine: Engine, tmp_path: Path) -> None:
    load(tmp_path)
    for args in (["phone", "13912345678"], ["phone", "12345", "--reason", "call"], ["fax", "1", "--reason", "x"]):
        result = runner.invoke(app, ["contacts", "correct", "1120101234", *args])
        assert result.exit_code == 1 and "nothing was changed" in result.output
    assert runner.invoke(app, ["contacts", "show", "9999999999"]).exit_code == 1
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM contact_claim WHERE source = 'helpdesk'")).scalar() == 0


def test_send_update_link_by_sms_through_kannel_and_the_rates(
    sqlite_engine: Engine, tmp_path: Path, use_kannel: Kannel
) -> None:
    load(tmp_path)
    out = run("contacts", "send-update-link", "1120101234", "--channel", "sms")
    assert "to 138****5678 by sms: sent" in out
    (message,) = use_kannel.wait_for("+8613812345678")
    assert "/me/update/" in message.text and "更新" in message.text
    out = run("contacts", "rates", "--days", "1")
    assert "sms" in out and "100.0%" in out
    assert '"channel": "sms"' in run("contacts", "rates", "--json")


def test_collect_all_rebuilds_what_imports_collected(engine: Engine, tmp_path: Path) -> None:
    load(tmp_path)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM primary_choice"))
        connection.execute(text("DELETE FROM contact_claim"))
        connection.execute(text("DELETE FROM contact_point"))
    assert "collected 1 people" in run("contacts", "collect", "--all")
    assert "primary phone 138****5678" in run("explain", "1120101234")


def test_records_imported_without_linking_are_collected_by_idbroker_link(engine: Engine, tmp_path: Path) -> None:
    rows = [student("1120101234", "张帅", "男", "1992-05-17", "", "本科", "2010", "13812345678")]
    run("import", "student", "--no-link", str(write_csv(tmp_path / "s.csv", STUDENT_HEADER, rows)))
    with engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM contact_point")).scalar() == 0
    run("link")
    assert "primary phone 138****5678" in run("explain", "1120101234")
