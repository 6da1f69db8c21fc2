"""DEMO ONLY: the demo's WeChat Work corp — `idbroker wecom sync` works against it, its page shows the result
masked, it survives a restart, and none of it is reachable outside demo mode or takes a real corp's secret."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from plugins.wecom import Role, campus_person, change_record, member_of, set_env, sync
from services.availability import free_port
from sqlalchemy import Engine
from standins.server_thread import ServerThread
from typer.testing import CliRunner

from idbroker.cli.keys import read_assignments
from idbroker.cli.main import app
from idbroker.config import Settings
from idbroker.demo.wecom_demo import SETTINGS, STATE_FILE, point_broker_at_demo, points_at_demo
from idbroker.web.app import create_app

CORP_ID, SECRET = "wwdemo0123456789ab", "demo-secret-for-this-test-only-0001"


def demo_settings(monkeypatch: pytest.MonkeyPatch, port: int, **more: object) -> Settings:
    values: dict[str, object] = {
        "demo_mode": "true",
        "public_url": f"http://127.0.0.1:{port}",
        "wecom_corp_id": CORP_ID,
        "wecom_contacts_secret": SECRET,
        "wecom_api_base": f"http://127.0.0.1:{port}/demo/wecom/cgi-bin/",
    }
    return set_env(monkeypatch, **{**values, **more})


def test_wecom_sync_works_against_the_demo_corp_and_its_page_shows_it_masked(
    sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = free_port()
    settings = demo_settings(monkeypatch, port)
    server = ServerThread(create_app(settings), port=port).start()
    try:
        people = [
            campus_person(
                sqlite_engine, f"演示{n}", Role("student", f"11202600{n:02d}", phone=f"+8613900{n:06d}", org="文学院")
            )
            for n in range(3)
        ]
        report = sync(sqlite_engine)
        assert report.counts["created"] == 3 and report.counts["departments"] == 20 and not report.failures
        page = httpx.get(f"{server.url}/demo/wecom", timeout=10)
        assert page.status_code == 200 and "DEMO" in page.text
        userid = member_of(sqlite_engine, people[1]).userid
        assert userid in page.text and "演示1" in page.text and "文学院" in page.text
        assert "139****0001" in page.text and "13900000001" not in page.text  # masked
        assert "batch/replaceparty" in page.text and "user/create" in page.text  # the calls, to watch
    finally:
        server.stop()
    assert STATE_FILE.exists()  # relative to the working directory, as var/ is for the demo

    server = ServerThread(create_app(settings), port=port).start()  # the demo restarted: the corp is kept
    try:
        change_record(sqlite_engine, "student", "1120260001", phone="+8613911112222")
        report = sync(sqlite_engine)  # the token cached in the database is unknown now: fetched again
        assert report.counts == {"updated": 1} and not report.failures
        page = httpx.get(f"{server.url}/demo/wecom", timeout=10)
        assert "139****2222" in page.text and page.text.count(">wx-") == 3
    finally:
        server.stop()


def test_the_demo_corp_is_unreachable_outside_demo_mode(sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = demo_settings(monkeypatch, 8000, demo_mode="false")
    with TestClient(create_app(settings)) as client:
        assert client.get("/demo/wecom").status_code == 404
        query = {"corpid": CORP_ID, "corpsecret": SECRET}
        assert client.get("/demo/wecom/cgi-bin/gettoken", params=query).status_code == 404
        assert client.post("/demo/wecom/cgi-bin/user/create", json={"userid": "x"}).status_code == 404


def test_the_demo_corp_never_takes_a_real_corps_secret(sqlite_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = demo_settings(monkeypatch, 8000, wecom_api_base="https://qyapi.weixin.qq.com/cgi-bin/")
    with TestClient(create_app(settings)) as client:
        answer = client.get("/demo/wecom/cgi-bin/gettoken", params={"corpid": CORP_ID, "corpsecret": SECRET})
        assert answer.status_code == 200 and answer.json()["errcode"] == 40013
        page = client.get("/demo/wecom")
        assert page.status_code == 200 and 'data-testid="demo-wecom-unconfigured"' in page.text


def test_demo_load_points_the_broker_at_the_demo_corp(sqlite_engine: Engine, tmp_path: Path) -> None:
    env_file = tmp_path / "var" / "idbroker.env"
    result = CliRunner().invoke(app, ["demo", "load", "--people", "20", "--out", str(tmp_path / "var" / "demo")])
    assert result.exit_code == 0, result.output
    assert (
        "WeChat Work: `idbroker wecom sync` goes to the demo corp http://127.0.0.1:8000/demo/wecom "
        "(settings added to var/idbroker.env)" in result.output
    )
    settings = Settings(_env_file=env_file)  # type: ignore[call-arg]
    assert points_at_demo(settings) and settings.wecom_corp_id and settings.wecom_corp_id.startswith("wwdemo")
    result = CliRunner().invoke(app, ["demo", "load", "--people", "20", "--out", str(tmp_path / "var" / "demo")])
    assert "goes to the demo corp http://127.0.0.1:8000/demo/wecom\n" in result.output  # kept, not added twice
    assert read_assignments(env_file)["IDBROKER_WECOM_CORP_ID"] == settings.wecom_corp_id
    assert env_file.read_text(encoding="utf-8").count("IDBROKER_WECOM_CORP_ID") == 1


def test_the_demo_corp_settings_are_written_once_and_never_over_a_real_corp(tmp_path: Path) -> None:
    env_file = tmp_path / "var" / "idbroker.env"
    env_file.parent.mkdir()
    env_file.write_text("IDBROKER_ENCRYPTION_KEY=kept")  # no final newline
    assert point_broker_at_demo(env_file, "http://127.0.0.1:8000/") == "added"
    text = env_file.read_text(encoding="utf-8")
    assert text.startswith("IDBROKER_ENCRYPTION_KEY=kept\n# DEMO ONLY")
    assert "IDBROKER_WECOM_API_BASE=http://127.0.0.1:8000/demo/wecom/cgi-bin/\n" in text
    assert stat.S_IMODE(os.stat(env_file).st_mode) == 0o600  # it holds a secret
    for name in SETTINGS:
        assert f"\n{name}=" in text

    assert point_broker_at_demo(env_file, "http://127.0.0.1:8000") == "demo"  # a second `demo load` keeps them
    assert env_file.read_text(encoding="utf-8") == text
    other = tmp_path / "other.env"
    other.write_text(
        "IDBROKER_WECOM_CORP_ID=wwrealcorp\nIDBROKER_WECOM_API_BASE=https://qyapi.weixin.qq.com/cgi-bin/\n"
    )
    assert point_broker_at_demo(other, "http://127.0.0.1:8000") == "other"  # a real corp configured: left alone
    assert other.read_text(encoding="utf-8").count("IDBROKER_") == 2
