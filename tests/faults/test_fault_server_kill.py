"""`kill -9` of `idbroker serve` in the middle of a burst of WeChat Work callbacks.

Every callback the server answered 200 is in the database (it answers only after the commit); the ones it
never answered are sent again by WeChat Work — here, by the test — to the restarted server, together with
some it did acknowledge (a retry whose 200 was lost); `idbroker worker` then applies each stored callback
exactly once, and the audit log still verifies.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fault_support import (
    Burst,
    assert_audit_verifies,
    encrypted_callbacks,
    environment,
    events_per_callback,
    kill9,
    reap,
    run_callback_worker,
    start_server,
    stored_digests,
    wait_until,
)
from sqlalchemy import Engine

pytestmark = pytest.mark.slow

CALLBACKS = 1000
KILL_AFTER = 200  # acknowledged callbacks before the kill: well inside the burst


def test_callbacks_acknowledged_before_a_kill_9_are_kept_and_applied_once(engine: Engine, tmp_path: Path) -> None:
    env = environment(engine)
    callbacks = encrypted_callbacks(CALLBACKS, "wx-fault-kill-")
    server = start_server(env, tmp_path / "serve.log")
    try:
        burst = Burst(server.url, callbacks, concurrency=48).start()
        wait_until(lambda: burst.count(200) >= KILL_AFTER, f"{KILL_AFTER} acknowledged callbacks", timeout=120)
        kill9(server.process)
        burst.wait()
    finally:
        reap(server.process)

    acknowledged = burst.with_status(200)
    unanswered = [c for i, c in enumerate(callbacks) if burst.statuses.get(i) != 200]
    assert len(acknowledged) >= KILL_AFTER and unanswered, "the server was not killed mid-burst"
    assert set(burst.statuses.values()) <= {200, None}, "answers other than 200 or a cut connection"
    stored = stored_digests(engine)
    assert {c.digest for c in acknowledged} <= stored  # every acknowledged callback survived the kill

    server = start_server(env, tmp_path / "serve-again.log")  # the service manager restarts it
    try:
        retried = unanswered + acknowledged[:50]  # WeChat Work retries what got no 200, and some that did
        assert Burst(server.url, retried).start().wait().count(200) == len(retried)
    finally:
        reap(server.process)
    assert stored_digests(engine) == {c.digest for c in callbacks}  # all of them, each once (digest is unique)

    run_callback_worker(env, engine, tmp_path / "worker.log")
    effects = events_per_callback(engine)
    assert len(effects) == CALLBACKS and set(effects.values()) == {1}  # applied once each, none twice
    assert_audit_verifies(env)
