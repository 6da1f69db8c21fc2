"""/metrics: who may read it (loopback not through a proxy, or the bearer token), that the text parses as
Prometheus exposition format, that the request counters and latency histogram move with requests, and that
the gauges read from the database say what it holds: queue depth, deliveries by state, callbacks waiting and
the WeChat Work sync lag."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient
from plugins.web import add_person
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Engine, func, select
from sqlmodel import Session

from idbroker.clock import utcnow
from idbroker.config import Settings
from idbroker.contacts.models import MessageDelivery
from idbroker.directory.events import DirectoryEvent, emit
from idbroker.jobs.queue import enqueue
from idbroker.web.app import create_app
from idbroker.wecom.callbacks.intake import WeComCallback
from idbroker.wecom.state import WeComCursor, WeComMember

LOOPBACK = ("127.0.0.1", 40000)
ELSEWHERE = ("192.0.2.10", 40000)


@contextmanager
def client_of(engine: Engine | str, peer: tuple[str, int] = LOOPBACK, **settings: Any) -> Iterator[TestClient]:
    url = engine if isinstance(engine, str) else engine.url.render_as_string(hide_password=False)
    app = create_app(Settings(database_url=url, **settings))
    with TestClient(app, client=peer, follow_redirects=False) as client:
        yield client


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """{(sample name, labels): value} of a scrape; parsing fails loudly on anything not in the format."""
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(scrape: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return scrape.get((name, frozenset(labels.items())), 0.0)


def test_only_loopback_not_through_a_proxy_or_the_token_holder_may_read_the_metrics(sqlite_engine: Engine) -> None:
    with client_of(sqlite_engine) as client:
        answer = client.get("/metrics")
        assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain; version=")
        assert client.get("/metrics", headers={"x-forwarded-for": "203.0.113.5"}).status_code == 403
        assert client.get("/metrics", headers={"forwarded": "for=203.0.113.5"}).status_code == 403
    with client_of(sqlite_engine, ELSEWHERE) as client:
        refused = client.get("/metrics")
        assert refused.status_code == 403 and "IDBROKER_METRICS_TOKEN" in refused.json()["detail"]
        assert "idbroker_" not in refused.text
    token = "metrics-token-for-tests-0123456789"
    with client_of(sqlite_engine, ELSEWHERE, metrics_token=token) as client:
        assert client.get("/metrics", headers={"authorization": f"Bearer {token}"}).status_code == 200
        for wrong in ("", "Bearer nope", f"Basic {token}", f"Bearer {token}x"):
            answer = client.get("/metrics", headers={"authorization": wrong} if wrong else {})
            assert answer.status_code == 401 and answer.headers["www-authenticate"].startswith("Bearer")
    with client_of(sqlite_engine, LOOPBACK, metrics_token=token) as client:
        assert client.get("/metrics").status_code == 401  # with a token set, loopback needs it too


def test_the_text_parses_and_the_request_counters_move(sqlite_engine: Engine) -> None:
    with client_of(sqlite_engine) as client:
        before = samples(client.get("/metrics").text)
        for _ in range(3):
            assert client.get("/health/live").status_code == 200
        assert client.get("/people/13912340001").status_code == 404
        assert client.post("/oidc/token", data={"grant_type": "nonsense"}).status_code in (400, 401)
        after = samples(client.get("/metrics").text)
    live = {"method": "GET", "route": "/health/live"}
    total = "idbroker_http_requests_total"
    assert value(after, total, **live, status="200") - value(before, total, **live, status="200") == 3
    count = "idbroker_http_request_duration_seconds_count"
    assert value(after, count, **live) - value(before, count, **live) == 3
    bucket = "idbroker_http_request_duration_seconds_bucket"
    assert value(after, bucket, **live, le="+Inf") - value(before, bucket, **live, le="+Inf") == 3
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    assert value(after, total, **unmatched) - value(before, total, **unmatched) == 1
    assert any(name == total and dict(labels).get("route") == "/oidc/token" for name, labels in after)
    assert not any("13912340001" in str(labels) for _, labels in after)  # a path never becomes a label
    assert value(after, "idbroker_database_up") == 1


def test_the_gauges_read_from_the_database(engine: Engine) -> None:
    now = utcnow()
    person = add_person(engine, {"student": "1120101234"})
    with Session(engine) as session:
        for n in range(2):
            enqueue(session, "ops.metrics", {"n": n})
        for channel, state, age in (
            ("sms", "delivered", 60),
            ("sms", "delivered", 60),
            ("sms", "failed", 60),
            ("email", "queued", 5),
            ("sms", "delivered", 3 * 86400),  # older than a day: not counted
        ):
            session.add(
                MessageDelivery(
                    channel=channel,
                    template="phone_code",
                    recipient_cipher="sealed",
                    recipient_hint="139****0001",
                    state=state,
                    created_at=now - timedelta(seconds=age),
                )
            )
        for n, processed in ((1, None), (2, None), (3, now)):
            session.add(
                WeComCallback(
                    digest=f"{n:064d}",
                    kind="subscribe",
                    encrypt="sealed",
                    received_at=now - timedelta(seconds=30),
                    processed_at=processed,
                )
            )
        for _ in range(3):
            emit(session, "person.updated", person)
        session.add(WeComMember(userid="wx-0000000000000001", person_id=person, pushed_at=now - timedelta(seconds=120)))
        session.commit()
        first_event = session.scalar(select(func.min(DirectoryEvent.id)))
        session.add(WeComCursor(name="wecom.sync", position=first_event))
        session.commit()

    with client_of(engine) as client:
        plain = samples(client.get("/metrics").text)
    with client_of(engine, wecom_corp_id="ww0000000000000000") as client:
        scrape = samples(client.get("/metrics").text)

    assert value(scrape, "idbroker_database_up") == 1
    assert value(scrape, "idbroker_job_queue_depth", queue="ops.metrics") == 2
    assert 0 <= value(scrape, "idbroker_job_queue_oldest_seconds", queue="ops.metrics") < 60
    deliveries = "idbroker_message_deliveries_24h"
    assert value(scrape, deliveries, channel="sms", state="delivered") == 2
    assert value(scrape, deliveries, channel="sms", state="failed") == 1
    assert value(scrape, deliveries, channel="email", state="queued") == 1
    assert value(scrape, "idbroker_wecom_callbacks_waiting") == 2
    assert 29 <= value(scrape, "idbroker_wecom_callback_oldest_seconds") < 90
    assert value(scrape, "idbroker_wecom_events_unsynced") == 2  # three events, the cursor after the first
    assert 119 <= value(scrape, "idbroker_wecom_seconds_since_last_push") < 180
    # without WeChat Work configured there is no sync to lag
    assert not [name for name, _ in plain if name.startswith("idbroker_wecom_events")]
    assert value(plain, "idbroker_wecom_callbacks_waiting") == 2


def test_an_unreachable_database_reads_as_down_not_as_an_error() -> None:
    with client_of("postgresql+psycopg://postgres@127.0.0.1:9/nowhere") as client:
        answer = client.get("/metrics")
    assert answer.status_code == 200
    assert value(samples(answer.text), "idbroker_database_up") == 0
