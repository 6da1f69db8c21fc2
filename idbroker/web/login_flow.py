"""After CAS says who someone is: find their person, and record the attempt in the audit log.

A CAS uid is a 学号 or 工号. It signs in the one person holding it in the directory; a uid nobody holds, or
one that several people hold (a case for the helpdesk), signs in nobody. Every attempt is audited as
`login` with its result; the actor is the person (`person:<id>`) or, failing one, `cas:<uid>`. A ticket is
never written anywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlmodel import Session

from idbroker.audit import chain
from idbroker.audit.chain import MAX_ACTOR
from idbroker.clock import utcnow
from idbroker.directory.queries import people_by_number

Outcome = Literal["ok", "unknown_uid", "ambiguous_uid"]


@dataclass(frozen=True)
class Resolved:
    outcome: Outcome
    person_id: str | None = None


def resolve_uid(session: Session, uid: str) -> Resolved:
    people = people_by_number(session, uid)
    if len(people) == 1:
        return Resolved("ok", people[0].id)
    return Resolved("unknown_uid" if not people else "ambiguous_uid")


def uid_actor(uid: str | None) -> str:
    return f"cas:{uid}"[:MAX_ACTOR] if uid else "anonymous"


def audit_login(
    session: Session,
    *,
    via: str,
    result: str,
    uid: str | None = None,
    person_id: str | None = None,
    cas_error: str | None = None,
) -> None:
    """One `login` event: `via` cas|demo, `result` ok|unknown_uid|ambiguous_uid|refused|unavailable."""
    details: dict[str, str] = {"via": via, "result": result}
    if uid:
        details["uid"] = uid
    if cas_error:
        details["cas_error"] = cas_error
    actor = f"person:{person_id}" if person_id else uid_actor(uid)
    chain.append(session, actor=actor, action="login", subject=person_id, details=details)


def authentication_time(attributes: dict[str, list[str]], now: datetime | None = None) -> datetime:
    """When the person authenticated: CAS's `authenticationDate` if it is a sane time, else now."""
    now = now or utcnow()
    for value in attributes.get("authenticationDate", [])[:1]:
        try:
            at = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            break
        if at.tzinfo is not None and at <= now:
            return at
    return now
