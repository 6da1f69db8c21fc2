"""`kill -9` of `idbroker wecom sync` halfway through an increment of changes, against the API stand-in.

`tests/wecom/test_wecom_crash.py` kills a *first* sync (members being created, one by one and by a batch
job). This one kills a sync of *changes* — phones, departments and names of existing members, with new
members among them — and checks what an operator relies on: the re-run resumes and finishes, no member is
created twice, no change is lost (every member in WeChat Work ends as the directory says), a change is made
again only if its call was in flight when the process died, a third run has nothing left to do, and the
audit log verifies.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from fault_support import assert_audit_verifies, cli_here, environment, kill9, log_tail, reap, start, wait_until
from plugins.wecom import Role, campus_person, change_record, member_of, sync
from sqlalchemy import Engine
from standins.wecom_api import WeComStandIn

pytestmark = pytest.mark.slow

PEOPLE = 40
CHANGED = 30
NEW = 10
CONCURRENCY = 2


def role(n: int) -> Role:
    return Role("student", f"11202400{n:02d}", phone=f"+8613800{n:06d}")


def test_a_sync_of_changes_killed_halfway_resumes_with_no_duplicate_and_no_lost_change(
    engine: Engine, wecom_settings: object, wecom_api: WeComStandIn, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    people = [campus_person(engine, f"学生{n}", role(n)) for n in range(PEOPLE)]
    sync(engine)  # the corp as the last complete sync left it
    for n in range(CHANGED):
        values = {"phone": f"+8613700{n:06d}"} | ({"org": "物理学院", "name": f"学生{n}号"} if n % 3 == 0 else {})
        change_record(engine, "student", role(n).key, **values)
    people += [campus_person(engine, f"新生{n}", role(PEOPLE + n)) for n in range(NEW)]
    wecom_api.reset_calls()
    wecom_api.latency = 0.05  # calls take a moment, so the kill lands between them

    env = environment(engine, wecom_concurrency=CONCURRENCY)
    process = start(env, "wecom", "sync", log=tmp_path / "sync.log")
    try:
        half = (CHANGED + NEW) // 2
        wait_until(
            lambda: (
                wecom_api.count("user/update") + wecom_api.count("user/create") >= half or process.poll() is not None
            ),
            "the sync to get halfway",
        )
        assert process.poll() is None, f"the sync ended before it was killed:\n{log_tail(tmp_path / 'sync.log')}"
        kill9(process)
    finally:
        reap(process)
    done_before_kill = wecom_api.count("user/update") + wecom_api.count("user/create")
    assert done_before_kill < CHANGED + NEW  # really halfway
    assert_audit_verifies(env)

    code, output = cli_here(env, "wecom", "sync")  # the operator runs it again
    assert code == 0, output

    creates = Counter(c.userid for c in wecom_api.calls if c.api == "user/create" and c.errcode == 0)
    assert len(creates) == NEW and set(creates.values()) == {1}  # no member created twice
    assert len(wecom_api.members) == PEOPLE + NEW  # and no stray one
    userids = [member_of(engine, person).userid for person in people]
    changed, unchanged, new = set(userids[:CHANGED]), set(userids[CHANGED:PEOPLE]), set(userids[PEOPLE:])
    updates = Counter(c.userid for c in wecom_api.calls if c.api == "user/update" and c.errcode == 0)
    # every change made; a new member adopted after a create that was in flight may get its fields pushed
    assert changed <= set(updates) <= changed | new
    assert not unchanged & {c.userid for c in wecom_api.calls}  # nobody else was touched
    repeated = [userid for userid, times in updates.items() if times > 1]
    assert len(repeated) <= CONCURRENCY and set(updates.values()) <= {1, 2}  # only the calls in flight at the kill
    for n, person in enumerate(people):
        member = wecom_api.member(member_of(engine, person).userid)
        assert member is not None
        assert member["mobile"] == (f"+86 13700{n:06d}" if n < CHANGED else f"+86 13800{n:06d}")
        if n < CHANGED and n % 3 == 0:
            assert (member["name"], member["department"]) == (f"学生{n}号", [103])

    wecom_api.reset_calls()
    code, output = cli_here(env, "wecom", "sync")
    assert code == 0 and wecom_api.calls == [], output  # nothing lost, nothing left to do
    assert_audit_verifies(env)
