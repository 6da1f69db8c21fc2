"""`/metrics` in Prometheus text format: requests and latency, and what the database says at each scrape.

- `idbroker_http_requests_total{method,route,status}` and `idbroker_http_request_duration_seconds{method,route}`
  (route = the route template, `unmatched` when none matched), counted by the access-log middleware. Under
  `idbroker serve --workers N` every worker writes them to prometheus_client's multiprocess directory
  (`PROMETHEUS_MULTIPROC_DIR`, which `serve` sets from `IDBROKER_METRICS_DIR`) and a scrape adds them up.
- Read from the database at each scrape, so they are the same whichever worker answers:
  `idbroker_job_queue_depth{queue}` (ready or running) and `idbroker_job_queue_oldest_seconds{queue}` (the
  longest a due job has waited); `idbroker_message_deliveries_24h{channel,state}` (SMS and email messages of
  the last day by state: queued, sending, sent, delivered, failed); `idbroker_wecom_callbacks_waiting` and
  `idbroker_wecom_callback_oldest_seconds` (stored, not yet processed); with WeChat Work configured, the sync
  lag: `idbroker_wecom_events_unsynced` (directory events after the incremental sync's cursor) and
  `idbroker_wecom_seconds_since_last_push`; `idbroker_database_up` (0 when the scrape could not read it).

Who may read it: with `IDBROKER_METRICS_TOKEN` set, whoever sends `Authorization: Bearer <token>`; without it,
only a client on loopback that did not come through a proxy (no `X-Forwarded-For`/`Forwarded` header).
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel import Session

from idbroker.clock import utcnow
from idbroker.config import Settings
from idbroker.contacts.models import MessageDelivery
from idbroker.directory.events import DirectoryEvent
from idbroker.jobs.models import Job
from idbroker.jobs.queue import depth
from idbroker.wecom.callbacks.intake import WeComCallback
from idbroker.wecom.merge import CURSOR as WECOM_CURSOR
from idbroker.wecom.state import WeComCursor, WeComMember

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
REGISTRY = CollectorRegistry(auto_describe=True)  # this process's request metrics (single-process mode)
REQUESTS = Counter(
    "idbroker_http_requests",
    "HTTP requests by method, route template and status.",
    ["method", "route", "status"],
    registry=REGISTRY,
)
LATENCY = Histogram(
    "idbroker_http_request_duration_seconds",
    "Time from the request's arrival to the end of its answer, by method and route template.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=REGISTRY,
)

router = APIRouter(tags=["health"], include_in_schema=False)


def record_request(method: str, route: str, status: int, seconds: float) -> None:
    """Count a request; `method` is one of METHODS or `other` (a client chooses it: the labels stay bounded)."""
    REQUESTS.labels(method, route, str(status)).inc()
    LATENCY.labels(method, route).observe(seconds)


class _ThisProcess:
    def collect(self) -> Iterator[Metric]:
        yield from REGISTRY.collect()


class DatabaseCollector:
    """The gauges read from the database at scrape time (see the module's docstring)."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.wecom = bool(settings.wecom_corp_id)

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("idbroker_database_up", "1 when this scrape could read the database, else 0.")
        try:
            with Session(self.engine) as session:
                families = list(self._read(session))
        except SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self, session: Session) -> Iterator[Metric]:
        now = utcnow()
        queues = GaugeMetricFamily("idbroker_job_queue_depth", "Jobs ready or running, per queue.", labels=["queue"])
        for queue, count in sorted(depth(session).items()):
            queues.add_metric([queue], count)
        yield queues
        oldest = GaugeMetricFamily(
            "idbroker_job_queue_oldest_seconds", "How long the longest-waiting due job has waited.", labels=["queue"]
        )
        due = select(Job.queue, func.min(Job.run_after)).where(Job.state == "ready", Job.run_after <= now)  # type: ignore[arg-type, operator]
        for queue, since in session.execute(due.group_by(Job.queue)):
            oldest.add_metric([queue], _seconds_since(since, now))
        yield oldest

        deliveries = GaugeMetricFamily(
            "idbroker_message_deliveries_24h",
            "SMS and email messages created in the last 24 hours, by channel and state.",
            labels=["channel", "state"],
        )
        rows = session.execute(
            select(MessageDelivery.channel, MessageDelivery.state, func.count())
            .where(MessageDelivery.created_at >= now - timedelta(days=1))  # type: ignore[arg-type, operator]
            .group_by(MessageDelivery.channel, MessageDelivery.state)
        )
        for channel, state, count in rows:
            deliveries.add_metric([channel, state], count)
        yield deliveries

        waiting = select(func.count(), func.min(WeComCallback.received_at)).where(
            WeComCallback.processed_at.is_(None)  # type: ignore[union-attr]
        )
        count, since = session.execute(waiting).one()
        yield _gauge("idbroker_wecom_callbacks_waiting", "WeChat Work callbacks stored, not yet processed.", count)
        yield _gauge(
            "idbroker_wecom_callback_oldest_seconds",
            "How long the oldest unprocessed WeChat Work callback has waited (0: none waits).",
            _seconds_since(since, now) if since is not None else 0,
        )
        if not self.wecom:
            return
        cursor = session.get(WeComCursor, WECOM_CURSOR)
        position = cursor.position if cursor is not None else 0
        unsynced = session.scalar(select(func.count()).where(DirectoryEvent.id > position)) or 0  # type: ignore[arg-type, operator]
        yield _gauge(
            "idbroker_wecom_events_unsynced",
            "Directory events after the WeChat Work incremental sync's cursor (not yet pushed).",
            unsynced,
        )
        last = session.scalar(select(func.max(WeComMember.pushed_at)))
        if last is not None:
            yield _gauge(
                "idbroker_wecom_seconds_since_last_push",
                "Seconds since the sync last pushed a member to WeChat Work.",
                _seconds_since(last, now),
            )


def _gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, documentation, value=value)


def _seconds_since(then: Any, now: Any) -> float:
    if then.tzinfo is None:  # SQLite hands back naive UTC
        then = then.replace(tzinfo=now.tzinfo)
    return max(0.0, (now - then).total_seconds())


def scrape(engine: Engine, settings: Settings) -> bytes:
    """The text a scrape gets: every worker's request metrics (or this process's), then the database's."""
    registry = CollectorRegistry()
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        MultiProcessCollector(registry, path=directory)
    else:
        registry.register(_ThisProcess())  # type: ignore[arg-type]
    registry.register(DatabaseCollector(engine, settings))  # type: ignore[arg-type]
    return generate_latest(registry)


def refusal(request: Request, settings: Settings) -> Response | None:
    """None when the caller may read the metrics, else the answer that says why not."""
    if settings.metrics_token is not None:
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        expected = settings.metrics_token.get_secret_value().encode()
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), expected):
            return None
        return JSONResponse(
            {"detail": "metrics need `Authorization: Bearer` with IDBROKER_METRICS_TOKEN"},
            status_code=401,
            headers={"www-authenticate": 'Bearer realm="metrics"'},
        )
    proxied = "x-forwarded-for" in request.headers or "forwarded" in request.headers
    if not proxied and _is_loopback(request.client.host if request.client else None):
        return None
    return JSONResponse(
        {"detail": "metrics are readable from loopback only; set IDBROKER_METRICS_TOKEN to read them from elsewhere"},
        status_code=403,
    )


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@router.get("/metrics")
def metrics(request: Request) -> Response:
    settings: Settings = request.app.state.settings
    refused = refusal(request, settings)
    if refused is not None:
        return refused
    return Response(scrape(request.app.state.engine, settings), media_type=CONTENT_TYPE_LATEST)
