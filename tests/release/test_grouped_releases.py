"""Userinfo and resolve run in grouped transactions (`idbroker.web.grouped`): many releases, one commit —
each still with its own audit event, the chain intact, a failing request never taking another's release with
it, and a disabled app or a rotated secret refused at once (nothing about apps is cached)."""

from __future__ import annotations

import asyncio
import contextvars
import json
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from plugins.apps import Campus, MakeApp, app_token
from plugins.web import LiveServer
from sqlalchemy import Engine, event, func, select, text
from sqlmodel import Session

from idbroker.audit import verify_chain
from idbroker.audit.chain import append
from idbroker.audit.models import AuditEvent
from idbroker.clock import utcnow
from idbroker.config import get_settings
from idbroker.oidc.provider import Provider
from idbroker.oidc.rfc6749.errors import OAuthError
from idbroker.oidc.rfc6749.tokens import find_token, new_grant, new_token, revoke_grant
from idbroker.oidc.userinfo import userinfo
from idbroker.release import people, registry
from idbroker.release.app_access import NotAnApp, app_of_token
from idbroker.release.gate import ReleaseGate
from idbroker.release.models import App
from idbroker.release.policies import policy_for
from idbroker.web.grouped import GroupWriter
from idbroker.web.routers.oidc import _one_writer


def run_coroutine(coroutine: Any) -> Any:
    """`asyncio.run` in a thread of its own: a session fixture (Playwright's sync API) may hold a running
    loop in this one, and `asyncio.run` refuses to start inside a running loop."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture
def live_server_overrides(apps_policies: Path) -> dict[str, Any]:
    return {"policies_dir": apps_policies}


def person_token(engine: Engine, client_id: str, person_id: str, scope: str = "openid profile") -> str:
    with Session(engine) as session:
        grant = new_grant(session, client_id=client_id, person_id=person_id, scope=scope, auth_time=utcnow(),
                          session_id=None)  # fmt: skip
        token = new_token(session, kind="access", client_id=client_id, grant_id=grant.id, scope=scope,
                          lifetime_seconds=int(timedelta(hours=1).total_seconds()))  # fmt: skip
        session.commit()
    return token.value


def known_sub(engine: Engine, client_id: str, person_id: str) -> str:
    settings = get_settings()
    with Session(engine) as session:
        app = session.get(App, client_id)
        assert app is not None
        sub = (
            ReleaseGate(settings)
            .release(session, app, policy_for(settings.policies_dir, client_id), person_id, wanted=None, via="resolve")
            .sub
        )
        session.commit()
    return sub


def releases(engine: Engine) -> list[dict[str, Any]]:
    with Session(engine) as session:
        rows = session.scalars(select(AuditEvent).where(AuditEvent.action == "release").order_by(AuditEvent.seq))
        return [{"subject": e.subject, **json.loads(e.details)} for e in rows]


def test_concurrent_releases_each_audited_in_one_chain(
    engine: Engine, campus: Campus, make_app: MakeApp, live_server: LiveServer
) -> None:
    _app, secret = make_app("bus", claims=("pseudonym", "nickname", "name"))
    assert secret is not None
    li_sub = known_sub(engine, "bus", campus.li)
    tokens = {person: person_token(engine, "bus", person) for person in (campus.li, campus.wang)}
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        app_bearer = {"Authorization": f"Bearer {app_token(client, 'bus', secret)}"}
    before = len(releases(engine))

    def one(index: int) -> tuple[str, dict[str, Any]]:
        with httpx.Client(base_url=live_server.url, timeout=30) as client:
            if index % 3 == 2:
                answer = client.get(f"/api/apps/v1/people/{li_sub}", headers=app_bearer)
                assert answer.status_code == 200, answer.text
                return campus.li, answer.json()
            person = campus.li if index % 3 == 0 else campus.wang
            answer = client.get("/oidc/userinfo", headers={"Authorization": f"Bearer {tokens[person]}"})
            assert answer.status_code == 200, answer.text
            return person, answer.json()

    with ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(one, range(60)))

    names = {campus.li: "李丽", campus.wang: "王强"}
    for person, claims in answers:
        assert set(claims) == {"sub", "nickname", "name"} and claims["name"] == names[person]
    assert {claims["sub"] for person, claims in answers if person == campus.li} == {li_sub}
    events = releases(engine)[before:]
    assert len(events) == 60  # one audit event per answer, none lost, none twice
    assert sorted(e["via"] for e in events) == ["resolve"] * 20 + ["userinfo"] * 40
    assert {e["subject"] for e in events} == {campus.li, campus.wang}
    with Session(engine) as session:
        assert verify_chain(session).ok


def test_a_disabled_app_and_a_rotated_secret_are_refused_at_once(
    engine: Engine, campus: Campus, make_app: MakeApp, live_server: LiveServer
) -> None:
    _app, secret = make_app("bus")
    assert secret is not None
    sub = known_sub(engine, "bus", campus.li)
    token = person_token(engine, "bus", campus.li)
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        app_bearer = {"Authorization": f"Bearer {app_token(client, 'bus', secret)}"}
        person_bearer = {"Authorization": f"Bearer {token}"}
        assert client.get("/oidc/userinfo", headers=person_bearer).status_code == 200
        assert client.get(f"/api/apps/v1/people/{sub}", headers=app_bearer).status_code == 200

        with Session(engine) as session:
            new_secret = registry.rotate_secret(session, "bus", actor="test")
            session.commit()
        refused = client.post("/oidc/token", data={"grant_type": "client_credentials"}, auth=("bus", secret))
        assert refused.status_code == 401  # the old secret, the very next request
        assert client.post(
            "/oidc/token", data={"grant_type": "client_credentials"}, auth=("bus", new_secret)
        ).is_success

        with Session(engine) as session:
            registry.set_enabled(session, "bus", False, actor="test")
            session.commit()
        before = len(releases(engine))
        assert client.get("/oidc/userinfo", headers=person_bearer).status_code == 401
        assert client.get(f"/api/apps/v1/people/{sub}", headers=app_bearer).status_code == 401
        assert len(releases(engine)) == before  # nothing released, nothing audited as released


def run_in_one_group(
    engine: Engine, works: list[Any], aheads: list[Any] | None = None, read_ahead: Any = None
) -> list[tuple[str, Any]]:
    """Queue `works` so that the writer takes them as one group: a first job holds the writer until all are queued."""
    writer = GroupWriter(engine, _one_writer, read_ahead=read_ahead)
    release_first = threading.Event()

    async def main() -> list[tuple[str, Any]]:
        first = asyncio.ensure_future(writer.run(lambda _session: release_first.wait(10)))
        await asyncio.sleep(0.05)  # the writer now waits inside the first job
        futures = [
            asyncio.ensure_future(writer.run(work, ahead))
            for work, ahead in zip(works, aheads or [None] * len(works), strict=True)
        ]
        await asyncio.sleep(0.05)
        release_first.set()
        await first
        outcomes: list[tuple[str, Any]] = []
        for future in futures:
            try:
                outcomes.append(("ok", await future))
            except Exception as exc:  # what each request would get
                outcomes.append(("error", exc))
        return outcomes

    try:
        return run_coroutine(main())
    finally:
        writer.close()


def audited(label: str) -> Any:
    def work(session: Session) -> str:
        append(session, actor="test", action="test.grouped", details={"label": label})
        return label

    return work


def test_a_failing_request_takes_nothing_of_the_others_with_it(engine: Engine) -> None:
    def half_written(session: Session) -> None:
        append(session, actor="test", action="test.grouped", details={"label": "broken"})
        raise RuntimeError("fails after writing")

    def refused(_session: Session) -> None:
        raise OAuthError("invalid_token", "refused before writing anything", 401)

    outcomes = run_in_one_group(engine, [audited("a"), half_written, refused, audited("b")])
    assert outcomes[0] == ("ok", "a") and outcomes[3] == ("ok", "b")
    assert outcomes[1][0] == "error" and isinstance(outcomes[1][1], RuntimeError)
    assert outcomes[2][0] == "error" and isinstance(outcomes[2][1], OAuthError)
    with Session(engine) as session:
        labels = [json.loads(e.details)["label"] for e in session.scalars(
            select(AuditEvent).where(AuditEvent.action == "test.grouped").order_by(AuditEvent.seq))]  # fmt: skip
        assert labels == ["a", "b"]  # the half-written request left nothing; the others were kept once each
        assert verify_chain(session).ok


def test_waiting_requests_share_one_transaction(engine: Engine) -> None:
    sqlite = engine.dialect.name == "sqlite"

    def transaction_of(label: str) -> Any:
        def work(session: Session) -> tuple[str, int]:
            append(session, actor="test", action="test.grouped", details={"label": label})
            if sqlite:
                return label, id(session.connection())
            return label, int(session.execute(text("SELECT txid_current()")).scalar_one())

        return work

    outcomes = run_in_one_group(engine, [transaction_of(str(n)) for n in range(5)])
    assert [value[0] for _, value in outcomes] == ["0", "1", "2", "3", "4"]
    assert len({value[1] for _, value in outcomes}) == 1  # one transaction, one commit
    with Session(engine) as session:
        count = session.scalar(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == "test.grouped"))
        assert count == 5 and verify_chain(session).ok


def test_each_work_runs_in_its_own_requests_context(engine: Engine) -> None:
    """What a request set in its context (the access log's request id) is what its work sees in the writer."""
    marker: contextvars.ContextVar[str] = contextvars.ContextVar("marker", default="none")
    writer = GroupWriter(engine, _one_writer)

    async def request(value: str) -> str:
        marker.set(value)
        return await writer.run(lambda _session: marker.get())

    async def main() -> list[str]:
        return list(await asyncio.gather(*(request(value) for value in ("a", "b", "c"))))

    try:
        assert run_coroutine(main()) == ["a", "b", "c"]
    finally:
        writer.close()


# --- set-based groups: the route's own work and read-ahead (idbroker.release.people.read_ahead) ------------------


def userinfo_work(provider: Provider, token: str) -> tuple[Any, people.Ahead]:
    return (lambda session: userinfo(session, provider, token)), people.Ahead(token)


def resolve_work(provider: Provider, token: str, pseudonym: str) -> tuple[Any, people.Ahead]:
    def work(session: Session) -> people.Resolved:
        app = app_of_token(session, token)
        policy = policy_for(provider.settings.policies_dir, app.client_id)
        return people.resolve(session, provider.gate, app, policy, [pseudonym])

    return work, people.Ahead(token, pseudonym)


def test_a_set_based_group_answers_each_request_on_its_own(
    engine: Engine, campus: Campus, make_app: MakeApp, live_server: LiveServer
) -> None:
    settings = get_settings()
    make_app("bus", claims=("pseudonym", "nickname", "name"))
    make_app("lib", claims=("pseudonym", "name"), sector="library", separate_consent=True,
             recipient={"name": "图书馆", "contact": "privacy@example.edu"})  # fmt: skip
    provider = Provider.create(engine, settings)
    li_sub = known_sub(engine, "bus", campus.li)
    li, wang = person_token(engine, "bus", campus.li), person_token(engine, "bus", campus.wang)
    no_consent = person_token(engine, "lib", campus.wang)  # the library's policy needs consent wang never gave
    revoked = person_token(engine, "bus", campus.zhang_bachelor)
    with Session(engine) as session:
        bus_app = new_token(session, kind="access", client_id="bus", grant_id=None, scope="people",
                            lifetime_seconds=3600).value  # fmt: skip
        token_row = find_token(session, revoked)
        assert token_row is not None and token_row.grant_id is not None
        revoke_grant(session, token_row.grant_id, reason="test")
        session.commit()
    before = len(releases(engine))

    plan = [
        ("li", userinfo_work(provider, li)),
        ("unknown token", userinfo_work(provider, "not-a-token")),
        ("wang", userinfo_work(provider, wang)),
        ("no consent", userinfo_work(provider, no_consent)),
        ("li by sub", resolve_work(provider, bus_app, li_sub)),
        ("revoked", userinfo_work(provider, revoked)),
        ("unknown sub", resolve_work(provider, bus_app, "a" * 32)),
        ("li again", userinfo_work(provider, li)),
        ("li by sub again", resolve_work(provider, bus_app, li_sub)),
        ("person token on the REST API", resolve_work(provider, li, li_sub)),
    ]
    answers = run_in_one_group(engine, [w for _, (w, _) in plan], [a for _, (_, a) in plan], people.read_ahead)
    outcomes = dict(zip([label for label, _ in plan], answers, strict=True))

    for label in ("li", "li again"):
        assert outcomes[label] == ("ok", {"sub": li_sub, "name": "李丽", "nickname": outcomes["li"][1]["nickname"]})
    assert outcomes["wang"][0] == "ok" and outcomes["wang"][1]["name"] == "王强"
    for label in ("unknown token", "revoked", "no consent"):
        kind, error = outcomes[label]
        assert kind == "error" and isinstance(error, OAuthError) and error.error == "invalid_token", label
    for label in ("li by sub", "li by sub again"):
        kind, resolved = outcomes[label]
        assert kind == "ok" and resolved.found == {li_sub: outcomes["li"][1]}
    assert outcomes["unknown sub"][0] == "ok" and outcomes["unknown sub"][1].unknown == ["a" * 32]
    assert outcomes["person token on the REST API"][0] == "error"  # NotAnApp: not a refusal, so run alone
    assert isinstance(outcomes["person token on the REST API"][1], NotAnApp)

    events = releases(engine)[before:]  # one per release, in the order the requests ran; none for a refusal
    assert [(e["subject"], e["via"], e["app"]) for e in events] == [
        (campus.li, "userinfo", "bus"),
        (campus.wang, "userinfo", "bus"),
        (campus.li, "resolve", "bus"),
        (campus.li, "userinfo", "bus"),
        (campus.li, "resolve", "bus"),
    ]
    with Session(engine) as session:
        assert verify_chain(session).ok


def test_a_group_reads_each_table_once_whatever_its_size(sqlite_engine: Engine, campus: Campus,
                                                         make_app: MakeApp) -> None:  # fmt: skip
    """The statements SQLite runs for a group of 4 and of 24 requests (its trace): the same reads, one each."""
    make_app("bus", claims=("pseudonym", "nickname", "name"))
    provider = Provider.create(sqlite_engine, get_settings())
    li_sub = known_sub(sqlite_engine, "bus", campus.li)
    with Session(sqlite_engine) as session:
        bus_app = new_token(session, kind="access", client_id="bus", grant_id=None, scope="people",
                            lifetime_seconds=3600).value  # fmt: skip
        session.commit()
    tokens = [person_token(sqlite_engine, "bus", person) for person in (campus.li, campus.wang)]

    def statements(size: int) -> list[str]:
        seen: list[str] = []

        def trace(connection: Any, _record: Any, _proxy: Any) -> None:
            connection.set_trace_callback(seen.append)

        plan = [userinfo_work(provider, tokens[n % 2]) if n % 3 else resolve_work(provider, bus_app, li_sub)
                for n in range(size)]  # fmt: skip
        event.listen(sqlite_engine, "checkout", trace)
        try:
            outcomes = run_in_one_group(sqlite_engine, [w for w, _ in plan], [a for _, a in plan], people.read_ahead)
        finally:
            event.remove(sqlite_engine, "checkout", trace)
        assert all(kind == "ok" for kind, _ in outcomes), outcomes
        words = [" ".join(s.split()).split(" ") for s in seen]
        return [w[0] + (" " + w[w.index("FROM") + 1] if "FROM" in w else "") for w in words]

    statements(4)  # the first release of each person to the app stores their pseudonym: not measured
    small, large = Counter(statements(4)), Counter(statements(24))
    assert (small.pop("INSERT"), large.pop("INSERT")) == (4, 24)  # the events: one executemany (traced per row)
    assert small == large  # the reads and the head's move: as many for 24 requests as for 4
    assert Counter({k: v for k, v in large.items() if k.startswith("SELECT")}) == Counter(
        {"SELECT oidc_token": 1, "SELECT pseudonym": 1, "SELECT person": 1, "SELECT audit_head": 1}
    )


def test_the_first_request_a_server_answers_may_be_a_grouped_release(
    engine: Engine, campus: Campus, make_app: MakeApp, live_server: LiveServer
) -> None:
    """The provider (and its signing key, made in a transaction of its own) is made before a grouped work is
    queued: made inside the group, after its reads ahead, it would wait for the group's own transaction."""
    make_app("bus", claims=("pseudonym", "nickname", "name"))
    token = person_token(engine, "bus", campus.li)
    bearer = {"Authorization": f"Bearer {token}"}
    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(lambda _: httpx.get(f"{live_server.url}/oidc/userinfo", headers=bearer, timeout=10),
                                range(4)))  # fmt: skip
    assert [answer.status_code for answer in answers] == [200] * 4
    assert {answer.json()["name"] for answer in answers} == {"李丽"}
