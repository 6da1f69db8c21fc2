"""Shared by the attack modules in `tests/security/`: the app's routes as its router list holds them, a
snapshot of every table (an attack must change nothing), and a staff member holding every role.

- `app_routes(app)` — `Endpoint(method, path, dependencies)` for every HTTP route of the app, walking the
  included routers (FastAPI keeps them nested); HEAD and the static mount are left out.
- `snapshot(engine)` — `{table: row count}` of every table the migrations made, plus the audit log's head
  hash: equal snapshots before and after mean nothing was written.
- `all_roles_token(client, cas, engine)` — signs in 赵磊 (the privacy campus's admin) holding every staff role
  and returns the session's CSRF token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from plugins.privacy import ADMIN_UID, signed_in_token
from sqlalchemy import Engine, func, inspect, select
from sqlmodel import Session

from idbroker.audit.models import AuditEvent
from idbroker.db import session_scope
from idbroker.staff.roles import ROLES, grant, roles_of

WRITES = ("POST", "PUT", "PATCH", "DELETE")


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    dependencies: tuple[str, ...]  # the names of the route's dependency callables (verify_csrf, check, …)
    in_schema: bool

    @property
    def label(self) -> str:
        return f"{self.method} {self.path}"


def _walk(routes: list[Any], prefix: str = "") -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    for route in routes:
        if hasattr(route, "original_router"):  # an included router (FastAPI ≥ 0.16x keeps it nested)
            found += _walk(route.original_router.routes, prefix + route.include_context.prefix)
        else:
            found.append((prefix, route))
    return found


def _dependency_names(route: Any) -> tuple[str, ...]:
    dependant = getattr(route, "dependant", None)
    calls = [getattr(dep.call, "__name__", type(dep.call).__name__) for dep in getattr(dependant, "dependencies", [])]
    return tuple(calls)


def app_routes(app: Any) -> list[Endpoint]:
    endpoints = []
    for prefix, route in _walk(app.routes):
        for method in sorted(getattr(route, "methods", None) or ()):
            if method == "HEAD":
                continue
            in_schema = getattr(route, "include_in_schema", True)
            endpoints.append(Endpoint(method, prefix + route.path, _dependency_names(route), in_schema))
    return endpoints


def snapshot(engine: Engine) -> dict[str, Any]:
    tables = sorted(name for name in inspect(engine).get_table_names() if name != "alembic_version")
    with Session(engine) as session:
        counts: dict[str, Any] = {
            name: session.execute(select(func.count()).select_from(_table(name))).scalar_one() for name in tables
        }
        counts["audit head"] = session.execute(select(func.max(AuditEvent.seq))).scalar_one()
    return counts


def _table(name: str) -> Any:
    from sqlalchemy import table

    return table(name)


def grant_every_role(engine: Engine, uid: str) -> None:
    with session_scope(engine) as session:
        for role in set(ROLES) - roles_of(session, uid):
            grant(session, uid, role, actor="cli:test")


def all_roles_token(client: Any, cas: Any, engine: Engine) -> str:
    grant_every_role(engine, ADMIN_UID)
    cas.add_user(ADMIN_UID)
    return signed_in_token(client, cas, ADMIN_UID)
