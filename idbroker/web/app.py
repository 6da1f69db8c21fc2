"""The FastAPI application factory: settings in, an app with its routers and database engine out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles

from idbroker.config import Settings, get_settings
from idbroker.db import make_engine
from idbroker.keys.check import check_keys
from idbroker.migrate import head_revision
from idbroker.web import access_log, client, health, metrics, security
from idbroker.web import errors as web_errors
from idbroker.web.routers import (
    apps_admin,
    apps_api,
    demo_app,
    demo_cas,
    demo_wecom,
    helpdesk,
    login,
    me,
    me_privacy,
    oidc,
    privacy,
    wecom_callbacks,
)
from idbroker.web.templates import STATIC_DIR


def package_version() -> str:
    try:
        return version("idbroker")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0.0.0"


def operation_id(route: APIRoute) -> str:
    """Stable, readable operation ids for generated clients: `<first tag>_<function name>`."""
    return f"{route.tags[0]}_{route.name}" if route.tags else route.name


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    engine = make_engine(settings.database_url)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        check_keys(settings)  # issue 7: refuse to start without every key (not at the first request needing one)
        yield
        writer = getattr(_app.state, "idb_grouped_writer", None)  # the apps' grouped transactions (issue 4)
        if writer is not None:
            writer.close()
        engine.dispose()

    app = FastAPI(
        title="idbroker",
        version=package_version(),
        description="Campus identity and privacy broker: one opaque ID per person, verified contacts, "
        "pseudonymous release to apps.",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        # FastAPI's native OpenTelemetry hooks are not used (metrics are Prometheus, logs JSON lines: issue 7);
        # left on, they look the providers up in the environment on every request (~7 % of userinfo's CPU)
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.schema_head = head_revision()
    app.include_router(health.router)
    app.include_router(metrics.router)  # /metrics (issue 7): loopback only, or IDBROKER_METRICS_TOKEN
    # WeChat Work callbacks (issue 5) come first: routes are matched in order, and bursts of tens of thousands
    # of callbacks should not walk every other route first
    app.include_router(wecom_callbacks.router)
    # apps: OpenID Connect provider and REST API (issue 4), next for the same reason: userinfo and resolve are
    # called thousands of times a second (bench/oidc_load.py)
    app.include_router(oidc.router)
    app.include_router(apps_api.router)
    # web foundation (issues 3 and 6): security headers and body limit, error pages, static files, CAS login
    security.install(app, settings)
    web_errors.install(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.include_router(login.router)
    app.include_router(me.router)  # self-service contacts, their JSON API, gateway reports (issue 3)
    if settings.demo_mode:
        app.include_router(me.demo_router)  # DEMO ONLY: the outbox of what the broker "sent" (issue 3)
    if settings.demo_mode and not settings.cas_server_url:
        app.include_router(demo_cas.router)  # DEMO ONLY: the development CAS page
    # apps: the registry admin API (issue 4)
    app.include_router(apps_admin.router)
    if settings.demo_mode:
        app.include_router(demo_app.router)  # DEMO ONLY: a relying party showing the claims it received
        app.include_router(demo_wecom.router)  # DEMO ONLY: a WeChat Work corp to watch the sync (issue 5)
    # staff consoles and the person's privacy pages (issue 6)
    app.include_router(helpdesk.router)
    app.include_router(privacy.router)
    app.include_router(me_privacy.router)
    # outermost (issue 7): our access log and request metrics, and outside it the client behind trusted proxies
    web_errors.document_unreadable_bodies(app)
    access_log.install(app)
    client.install(app, settings)
    return app
