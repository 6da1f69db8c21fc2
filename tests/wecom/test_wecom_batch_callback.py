"""A batch job's end pushed by WeChat Work: the stand-in posts `batch_job_result` (encrypted by wechatpy) to the
broker's live callback URL, which the sync handed to `batch/replaceparty` and `batch/syncuser`; the worker
applies it."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from plugins.wecom import Role, campus_person, run_worker, set_env, sync, use_policy
from services.availability import free_port
from sqlalchemy import Engine, select
from sqlmodel import Session
from standins.server_thread import ServerThread
from standins.wecom_api import WeComStandIn

from idbroker.config import get_settings
from idbroker.web.app import create_app
from idbroker.wecom.callbacks.intake import WeComCallback
from idbroker.wecom.state import WeComBatch


@pytest.fixture
def live_broker(engine: Engine, wecom_settings: object, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    port = free_port()
    set_env(monkeypatch, public_url=f"http://127.0.0.1:{port}")
    server = ServerThread(create_app(get_settings()), port=port).start()
    try:
        yield server.url
    finally:
        server.stop()


def test_the_batch_job_result_callback_reaches_the_waiting_sync(
    engine: Engine,
    live_broker: str,
    wecom_api: WeComStandIn,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: object,
) -> None:
    use_policy(monkeypatch, tmp_path, batch_threshold=3)
    wecom_api.batch_delay = 2.0  # the sync looks after 1 s, then sleeps until 3 s — or until the callback
    for n in range(4):
        campus_person(engine, f"学生{n}", Role("student", f"11202501{n:02d}", phone=f"+8613602{n:06d}"))
    stop = threading.Event()

    def worker() -> None:  # `idbroker worker`, running beside the sync
        while not stop.is_set():
            run_worker(engine)
            stop.wait(0.1)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        report = sync(engine)
    finally:
        stop.set()
        thread.join(20)
    run_worker(engine)
    assert report.counts["created"] == 4
    with Session(engine) as session:  # the departments' replaceparty job, then the members' syncuser job
        batches = session.scalars(select(WeComBatch)).all()
        assert len(batches) == 2 and all(b.state == "done" and b.callback_at is not None for b in batches)
        callbacks = session.scalars(select(WeComCallback)).all()
        assert [(c.kind, c.outcome) for c in callbacks] == [("batch_job_result", "applied")] * 2
