"""The FastAPI application factory: settings in, an app with its routers and database engine out."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from fastapi.routing import APIRoute

from idbroker.config import Settings, get_settings
from idbroker.db import make_engine
from idbroker.migrate import head_revision
from idbroker.web import health


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
        yield
        engine.dispose()

    app = FastAPI(
        title="idbroker",
        version=package_version(),
        description="Campus identity and privacy broker: one opaque ID per person, verified contacts, "
        "pseudonymous release to apps.",
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.schema_head = head_revision()
    app.include_router(health.router)
    return app
