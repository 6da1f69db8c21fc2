"""`idbroker serve --workers N`: on PostgreSQL, N uvicorn processes answer (their pids in the access log),
/metrics adds up the requests every worker counted, and SIGTERM stops them all cleanly; on SQLite, more than
one worker is refused with a message saying why."""

from __future__ import annotations

from pathlib import Path

import httpx
import psutil
import pytest
from ops_support import access_lines, environment, json_lines, reap, start_server, stop, stopped_cleanly, wait_until
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine
from typer.testing import CliRunner

from idbroker.cli.main import app


def live_requests_counted(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "idbroker_http_requests_total" and sample.labels.get("route") == "/health/live"
    )


def serving_workers(log: Path) -> set[int]:
    """The pids of the worker processes that finished their start-up (uvicorn says so in the log)."""
    return {e["pid"] for e in json_lines(log) if e["msg"] == "Application startup complete."}


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_two_workers_answer_count_together_and_stop_on_sigterm(engine: Engine, tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    env = environment(engine.url.render_as_string(hide_password=False), metrics_dir=metrics_dir)
    log = tmp_path / "serve.log"
    server = start_server(env, log, "--workers", "2")
    try:
        wait_until(lambda: len(serving_workers(log)) >= 2, "two worker processes to start", timeout=90)
        sent = 0
        answered: set[int] = set()
        while sent < 400 and len(answered) < 2:  # a new connection each time: the kernel hands it to either worker
            for _ in range(20):
                assert httpx.get(f"{server.url}/health/live", timeout=10).status_code == 200
            sent += 20
            answered = {e["pid"] for e in access_lines(log) if e["route"] == "/health/live"}
        workers = serving_workers(log)
        assert len(answered) == 2 and answered <= workers and server.process.pid not in answered
        wait_until(lambda: live_requests_counted(server.url) == sent, f"/metrics to count all {sent} requests")
        assert list(metrics_dir.glob("*.db")), "the workers keep their counts in IDBROKER_METRICS_DIR"
    finally:
        status = stop(server.process)
        reap(server.process)
    assert stopped_cleanly(status)
    assert not [pid for pid in workers if psutil.pid_exists(pid)]
    finished = {e["pid"] for e in json_lines(log) if e["msg"] == "Application shutdown complete."}
    assert answered <= finished  # each worker finished its shutdown, none was killed


def test_several_workers_are_refused_on_sqlite(sqlite_engine: Engine) -> None:
    result = CliRunner().invoke(app, ["serve", "--workers", "2"])
    assert result.exit_code == 1
    assert "SQLite has one writer" in result.output and "PostgreSQL" in result.output
