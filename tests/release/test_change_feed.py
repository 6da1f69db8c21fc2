"""The per-app change feed: people the app knows, updated, merged, un-merged or gone — in its pseudonyms,
never an internal ID, never anyone it was not given."""

from __future__ import annotations

import json

from plugins.apps import Campus, MakeApp
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from idbroker.audit.models import AuditEvent
from idbroker.config import get_settings
from idbroker.directory.events import DirectoryEvent, emit
from idbroker.linking.merge import merge_people, unmerge
from idbroker.release.feed import changes
from idbroker.release.gate import ReleaseGate
from idbroker.release.models import App
from idbroker.release.policies import policy_for


def test_the_feed_follows_merges_in_pseudonyms(engine: Engine, campus: Campus, make_app: MakeApp) -> None:
    make_app("bus")
    settings = get_settings()
    gate = ReleaseGate(settings)
    policy = policy_for(settings.policies_dir, "bus")
    with Session(engine) as session:
        app = session.get(App, "bus")
        assert app is not None
        subs = {
            person: gate.release(session, app, policy, person, wanted=None, via="resolve").sub
            for person in (campus.zhang_bachelor, campus.zhang_master, campus.li)
        }
        start = session.scalar(select(func.max(DirectoryEvent.id))) or 0
        operation = merge_people(session, campus.zhang_bachelor, campus.zhang_master, actor="test", reason="same")
        unmerge(session, operation.id, actor="test", reason="not the same")
        emit(session, "person.updated", campus.li)
        emit(session, "person.updated", campus.wang)  # the app never saw 王强
        emit(session, "person.left", campus.li)
        session.commit()

        items, cursor = changes(session, gate, app, policy, after=start, limit=100)
        session.commit()
        assert [(item.kind, item.claims) for item in items] == [
            ("merged", {"sub": subs[campus.zhang_bachelor], "merged_sub": subs[campus.zhang_master]}),
            ("unmerged", {"sub": subs[campus.zhang_master], "from_sub": subs[campus.zhang_bachelor]}),
            ("updated", {"sub": subs[campus.li]}),
            ("left", {"sub": subs[campus.li]}),
        ]
        assert cursor == session.scalar(select(func.max(DirectoryEvent.id)))
        text = json.dumps([item.claims for item in items])
        for internal in (campus.zhang_bachelor, campus.zhang_master, campus.li, campus.wang):
            assert internal not in text
        assert changes(session, gate, app, policy, after=cursor)[0] == []
        feed_releases = session.scalar(
            select(func.count()).select_from(AuditEvent).where(AuditEvent.details.like('%"via":"feed"%'))
        )
        assert feed_releases == 5  # merged, unmerged (+ the former survivor), updated, left
