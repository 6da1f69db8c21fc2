"""Liveness and readiness: is the process up, and can it serve (database reachable, schema at head)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine, text
from sqlalchemy.exc import SQLAlchemyError

from idbroker.migrate import current_revision

router = APIRouter(prefix="/health", tags=["health"])


class Live(BaseModel):
    status: Literal["ok"] = Field(description="Always `ok` while the process answers.")


class Ready(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    status: Literal["ready"]
    database: Literal["ok"]
    schema_revision: str = Field(alias="schema", description="The Alembic revision of the database (head).")


class NotReady(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    status: Literal["unavailable"]
    database: Literal["ok", "unreachable"]
    schema_revision: str | None = Field(
        alias="schema", description="The revision the database is at, when it could be read."
    )
    reason: str = Field(description="Why the service cannot serve yet, and what to do about it.")


@dataclass(frozen=True)
class Readiness:
    ready: bool
    database_ok: bool
    revision: str | None
    reason: str | None = None


def check_readiness(engine: Engine, head: str | None) -> Readiness:
    """Ask the database for a trivial answer and its schema revision; compare with the code's head."""
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        revision = current_revision(engine)
    except SQLAlchemyError as exc:
        # The driver's message may name hosts or users: keep only the kind of failure.
        return Readiness(False, False, None, f"database unreachable ({type(exc).__name__})")
    if revision != head:
        at = revision or "no revision"
        reason = f"database schema is at {at}, expected {head}: run `idbroker db upgrade`"
        return Readiness(False, True, revision, reason)
    return Readiness(True, True, revision)


@router.get("/live", response_model=Live, summary="The process is up")
def live() -> Live:
    return Live(status="ok")


@router.get(
    "/ready",
    response_model=Ready,
    summary="The service can serve: database reachable and migrated to head",
    responses={503: {"model": NotReady, "description": "The database is unreachable or not migrated"}},
)
def ready(request: Request) -> Ready | JSONResponse:
    result = check_readiness(request.app.state.engine, request.app.state.schema_head)
    if result.ready and result.revision is not None:
        return Ready(status="ready", database="ok", schema_revision=result.revision)
    body = NotReady(
        status="unavailable",
        database="ok" if result.database_ok else "unreachable",
        schema_revision=result.revision,
        reason=result.reason or "not ready",
    )
    return JSONResponse(status_code=503, content=body.model_dump(by_alias=True))
