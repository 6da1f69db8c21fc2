"""PostgreSQL restarted (`pg_ctl restart -m fast`, every connection cut) in the middle of a callback burst.

The cluster is the test's own (the session's is shared with other tests). What must hold: every callback
answered 200 is stored; while the database is away the server answers 503 (WeChat Work retries), never 200
and never a hang; it recovers by itself — the pool's pre-ping replaces the dead connections — with no
restart of `idbroker serve`; the callbacks that got 503 are stored when sent again; the worker applies each
stored callback once; the audit log verifies.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fault_support import (
    Burst,
    assert_audit_verifies,
    encrypted_callbacks,
    environment,
    events_per_callback,
    reap,
    run_callback_worker,
    start_server,
    stored_digests,
    wait_until,
)
from services import postgres
from services.availability import ServiceUnavailable, missing
from sqlalchemy import Engine

from idbroker.db import make_engine
from idbroker.migrate import upgrade

pytestmark = [pytest.mark.slow, pytest.mark.postgresql]

CALLBACKS = 1000
RESTART_AFTER = 100  # acknowledged callbacks before the restart


@pytest.fixture
def own_cluster() -> Iterator[postgres.PostgresCluster]:
    reason = postgres.missing_reason()
    if reason:
        missing(reason)
    try:
        cluster = postgres.start_cluster()
    except ServiceUnavailable as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield cluster
    finally:
        postgres.remove_cluster(cluster)


@pytest.fixture
def own_engine(own_cluster: postgres.PostgresCluster) -> Iterator[Engine]:
    own_cluster.create_database("idbroker")
    engine = make_engine(own_cluster.url("idbroker"))
    upgrade(engine)
    try:
        yield engine
    finally:
        engine.dispose()


def test_a_postgresql_restart_mid_burst_loses_no_acknowledged_callback_and_heals_itself(
    own_cluster: postgres.PostgresCluster, own_engine: Engine, tmp_path: Path
) -> None:
    env = environment(own_engine)
    callbacks = encrypted_callbacks(CALLBACKS, "wx-fault-pg-")
    server = start_server(env, tmp_path / "serve.log")
    try:
        burst = Burst(server.url, callbacks, concurrency=32).start()
        wait_until(lambda: burst.count(200) >= RESTART_AFTER, f"{RESTART_AFTER} acknowledged callbacks", timeout=120)
        own_engine.dispose()  # the test's own connections would only hold up the shutdown
        outage = Outage(server.url).start()
        own_cluster.restart("fast")
        up_at = time.monotonic()
        burst.wait()
        outage.stop()

        statuses = set(burst.statuses.values())
        assert statuses <= {200, 503}, f"answers other than 200 and 503: {statuses}"
        assert burst.count(503) > 0, "no request met the outage"
        assert outage.ready_statuses >= {503}, "readiness did not report the database unreachable"

        # no restart of the server: it stores and acknowledges again by itself (the pool pre-pings connections)
        healed = [i for i, status in burst.statuses.items() if status == 200 and burst.answered_at[i] > up_at]
        assert healed, "no callback of the burst was acknowledged after the database came back"
        wait_until(lambda: _ready(server.url), "the server to be ready again", timeout=60)
        refused = burst.with_status(503)
        assert Burst(server.url, refused).start().wait().count(200) == len(refused)  # WeChat Work's retries
        assert server.process.poll() is None
    finally:
        reap(server.process)

    stored = stored_digests(own_engine)
    assert {c.digest for c in burst.with_status(200)} <= stored  # every acknowledged callback is there
    assert stored == {c.digest for c in callbacks}
    run_callback_worker(env, own_engine, tmp_path / "worker.log")
    effects = events_per_callback(own_engine)
    assert len(effects) == CALLBACKS and set(effects.values()) == {1}
    assert_audit_verifies(env)


def _ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/health/ready", timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


class Outage:
    """Polls `/health/ready` while the database restarts: what the readiness probe said meanwhile."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ready_statuses: set[int] = set()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="readiness", daemon=True)

    def start(self) -> Outage:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._done.set()
        self._thread.join(10)

    def _poll(self) -> None:
        with httpx.Client(timeout=5) as client:
            while not self._done.is_set():
                try:
                    self.ready_statuses.add(client.get(f"{self.url}/health/ready").status_code)
                except httpx.HTTPError:
                    self.ready_statuses.add(0)
                time.sleep(0.02)
