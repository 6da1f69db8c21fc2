"""The difference between the desired and the recorded state, as the fewest calls.

One call per member at most: a new member is one `user/create`; a changed one is one `user/update` that
carries every changed field (name, departments, mobile, email, enable) at once; an unchanged one costs
nothing. Many new members at once (a first sync: at least the policy's `batch_threshold`) go instead
through one `media/upload` + `batch/syncuser`. Departments come before members: one call each, or — in a first
sync (no department pushed yet) of at least `DEPARTMENT_BATCH_MIN` — one `media/upload` + `batch/replaceparty`
for the whole tree, which the sync sends only if the corp holds no department outside the policy (see
`apply`); replaceparty replaces the corp's tree, so it is never sent where it could delete or move anything
the broker did not put there. Order of the member calls:
retirements and disables first (they let go of mobiles and emails that others may take), then creations,
then updates.

Leavers are disabled, never deleted, once the grace period of the policy has passed since a sync first saw
them without an active role; whatever does not need a call (a grace period starting, a userid reserved) is
a `Mark`, recorded without calling WeChat Work. `make_plan` reads only the database: `idbroker wecom
plan` prints it without a single call.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import Session

from idbroker.directory.protect import Protector
from idbroker.wecom.desired import Desired, DesiredState
from idbroker.wecom.merge import Resolver, choose_member
from idbroker.wecom.policy import WeComPolicy
from idbroker.wecom.state import WeComConflict, WeComDepartment, WeComMember
from idbroker.wecom.userid import userid_for

CREATE, UPDATE, RETIRE, DISABLE = "create", "update", "retire", "disable"
# A batch of departments costs three calls (media/upload, batch/replaceparty, batch/getresult): from four on
# it is cheaper than one department/create each.
DEPARTMENT_BATCH_MIN = 4


def value_hash(protector: Protector, kind: str, value: str | None) -> str | None:
    return None if value is None else protector.keyed_hash(value, purpose=f"wecom_{kind}")


@dataclass
class MemberCall:
    kind: str  # create | update | retire | disable
    userid: str
    owner: str  # the person the userid was made for
    holder: str  # the person the member stands for now
    payload: dict[str, Any]  # the API body (in memory only: it holds mobiles and emails)
    record: dict[str, Any]  # what to record once WeChat Work accepted it (hashes, never values)
    create_payload: dict[str, Any] | None = None  # to re-create a member that vanished (60111)
    create_record: dict[str, Any] | None = None

    @property
    def fields(self) -> list[str]:
        return sorted(k for k in self.payload if k not in ("userid", "main_department", "to_invite"))


@dataclass
class DepartmentCall:
    id: int
    name: str
    parent: int
    order: int
    update: bool  # recorded already (in the corp), with another name/parent/order


@dataclass
class Mark:
    """A change of the recorded state that needs no call."""

    userid: str
    owner: str
    values: dict[str, Any]
    new: bool = False  # a member row to insert (its userid reserved)


@dataclass
class Plan:
    departments: list[DepartmentCall] = field(default_factory=list)
    department_batch: bool = False  # all departments by batch/replaceparty, if the corp holds no other department
    calls: list[MemberCall] = field(default_factory=list)
    batch: list[MemberCall] = field(default_factory=list)
    marks: list[Mark] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # why a person gets no member yet
    waiting: int = 0  # leavers inside their grace period
    pending: int = 0  # members a submitted batch job is still creating
    people: int = 0

    @property
    def call_count(self) -> int:
        batch_calls = 3 if self.batch else 0  # upload, syncuser, getresult (at least once)
        department_calls = 3 if self.department_batch else len(self.departments)  # upload, replaceparty, getresult
        return department_calls + len(self.calls) + batch_calls

    def counts(self) -> dict[str, int]:
        kinds = Counter(call.kind for call in self.calls)
        return {
            "departments": len(self.departments),
            "batch_create": len(self.batch),
            "create": kinds[CREATE],
            "update": kinds[UPDATE],
            "disable": kinds[DISABLE],
            "retire": kinds[RETIRE],
            "waiting_grace": self.waiting,
            "pending_batch": self.pending,
            "skipped": sum(self.skipped.values()),
        }

    def field_counts(self) -> Counter[str]:
        return Counter(name for call in self.calls for name in call.fields)


class Planner:
    def __init__(self, session: Session, policy: WeComPolicy, desired: DesiredState, protector: Protector) -> None:
        self.session, self.policy, self.desired, self.protector = session, policy, desired, protector

    def hash(self, kind: str, value: str | None) -> str | None:
        return value_hash(self.protector, kind, value)

    def make(self, now: datetime, people: Iterable[str] | None = None) -> Plan:
        session = self.session
        plan = Plan()
        plan.departments, plan.department_batch = self._departments()
        resolve = Resolver(session)
        members = list(session.scalars(select(WeComMember)))
        scope: set[str] | None = None
        if people is not None:
            scope = {resolve(pid) for pid in people}
        wanted = self.desired.compute(session, None if scope is None else resolve.absorbed_into(scope))
        by_holder: dict[str, list[WeComMember]] = defaultdict(list)
        for member in members:
            by_holder[resolve(member.person_id)].append(member)
        holders = set(wanted) | set(by_holder)
        if scope is not None:
            holders &= scope
        conflicts = self._conflicts()
        taken = {m.userid.lower() for m in members}
        grace = timedelta(days=self.policy.leaver_grace_days)
        creates: list[MemberCall] = []
        for holder in sorted(holders):
            desired = wanted.get(holder)
            kept, others = choose_member(holder, by_holder.get(holder, []))
            for member in others:
                self._retire(plan, member, holder)
            if kept is None:
                if desired is not None and desired.active:
                    userid = userid_for(self.protector.hash_key, holder, taken)
                    taken.add(userid.lower())
                    plan.marks.append(Mark(userid, holder, {}, new=True))
                    call = self._create(plan, userid, holder, holder, desired, conflicts)
                    if call is not None:
                        creates.append(call)
                continue
            if kept.pending_job is not None:
                plan.pending += 1
                continue
            if not kept.in_corp:
                if desired is not None and desired.active:
                    call = self._create(plan, kept.userid, kept.person_id, holder, desired, conflicts)
                    if call is not None:
                        creates.append(call)
                continue
            self._update(plan, kept, holder, desired, conflicts, now, grace)
        plan.people = len(holders)
        if len(creates) >= self.policy.batch_threshold:
            plan.batch = creates
        else:
            plan.calls.extend(creates)
        order = {RETIRE: 0, DISABLE: 1, CREATE: 2, UPDATE: 3}
        plan.calls.sort(key=lambda call: order[call.kind])
        return plan

    def _departments(self) -> tuple[list[DepartmentCall], bool]:
        """The department calls, and whether they may go as one batch: a first sync (the broker has pushed no
        department yet, so every policy department is a creation) of at least `DEPARTMENT_BATCH_MIN`."""
        recorded = {d.id: d for d in self.session.scalars(select(WeComDepartment))}
        calls = []
        for department in self.policy.departments:
            known = recorded.get(department.id)
            if known is None or not known.in_corp:
                calls.append(DepartmentCall(department.id, department.name, department.parent, department.order, False))
            elif (known.name, known.parent_id, known.order) != (department.name, department.parent, department.order):
                calls.append(DepartmentCall(department.id, department.name, department.parent, department.order, True))
        first = not any(d.in_corp for d in recorded.values())
        return calls, first and len(calls) >= DEPARTMENT_BATCH_MIN

    def _conflicts(self) -> dict[tuple[str, str], str | None]:
        rows = self.session.execute(select(WeComConflict.userid, WeComConflict.field, WeComConflict.value_hash))  # type: ignore[call-overload]
        return {(userid, name): value for userid, name, value in rows}

    def _held_back(
        self, conflicts: dict[tuple[str, str], str | None], userid: str, name: str, hashed: str | None
    ) -> bool:
        """A value that already failed as taken or invalid is not pushed again until it changes."""
        key = (userid, name)
        return key in conflicts and conflicts[key] == hashed

    def _create_parts(
        self, userid: str, desired: Desired, conflicts: dict[tuple[str, str], str | None]
    ) -> tuple[dict[str, Any], dict[str, Any]] | None:
        if not desired.name or not desired.departments:
            return None
        mobile_hash, email_hash = self.hash("mobile", desired.mobile), self.hash("email", desired.email)
        payload: dict[str, Any] = {
            "userid": userid,
            "name": desired.name,
            "department": list(desired.departments),
            "main_department": desired.departments[0],
            "enable": 1,
            "to_invite": self.policy.invite_on_create,
        }
        record: dict[str, Any] = {
            "name": desired.name,
            "departments": list(desired.departments),
            "enabled": True,
            "retired": False,
            "inactive_since": None,
            "mobile_hash": None,
            "email_hash": None,
        }
        if desired.mobile and not self._held_back(conflicts, userid, "mobile", mobile_hash):
            payload["mobile"], record["mobile_hash"] = desired.mobile, mobile_hash
        if desired.email and not self._held_back(conflicts, userid, "email", email_hash):
            payload["email"], record["email_hash"] = desired.email, email_hash
        if "mobile" not in payload and "email" not in payload:
            return None
        return payload, record

    def _create(
        self,
        plan: Plan,
        userid: str,
        owner: str,
        holder: str,
        desired: Desired,
        conflicts: dict[tuple[str, str], str | None],
    ) -> MemberCall | None:
        if (userid, "userid") in conflicts:  # a stranger holds this userid: the helpdesk decides
            plan.skipped["userid held by another member"] += 1
            return None
        parts = self._create_parts(userid, desired, conflicts)
        if parts is None:
            plan.skipped["no name" if not desired.name else "no usable mobile or email"] += 1
            return None
        return MemberCall(CREATE, userid, owner, holder, parts[0], parts[1])

    def _retire(self, plan: Plan, member: WeComMember, holder: str) -> None:
        if member.in_corp and (member.enabled or member.mobile_hash or member.email_hash):
            payload = {"userid": member.userid, "enable": 0, "mobile": "", "email": ""}
            record = {"enabled": False, "retired": True, "mobile_hash": None, "email_hash": None}
            plan.calls.append(MemberCall(RETIRE, member.userid, member.person_id, holder, payload, record))
        elif not member.retired:
            plan.marks.append(Mark(member.userid, member.person_id, {"retired": True}))

    def _update(
        self,
        plan: Plan,
        member: WeComMember,
        holder: str,
        desired: Desired | None,
        conflicts: dict[tuple[str, str], str | None],
        now: datetime,
        grace: timedelta,
    ) -> None:
        payload: dict[str, Any] = {"userid": member.userid}
        record: dict[str, Any] = {}
        if desired is None or not desired.active:
            if not member.enabled:
                return
            if member.inactive_since is None:
                plan.marks.append(Mark(member.userid, member.person_id, {"inactive_since": now}))
                plan.waiting += 1
            elif now - member.inactive_since >= grace:
                payload["enable"], record["enabled"] = 0, False
                plan.calls.append(MemberCall(DISABLE, member.userid, member.person_id, holder, payload, record))
            else:
                plan.waiting += 1
            return
        if member.inactive_since is not None:
            record["inactive_since"] = None
        if not member.enabled or member.retired:
            payload["enable"] = 1
            record.update(enabled=True, retired=False)
        if desired.name and desired.name != member.name:
            payload["name"] = record["name"] = desired.name
        if desired.departments and list(desired.departments) != list(member.departments):
            payload["department"] = record["departments"] = list(desired.departments)
            payload["main_department"] = desired.departments[0]
        for kind, value, recorded in (
            ("mobile", desired.mobile, member.mobile_hash),
            ("email", desired.email, member.email_hash),
        ):
            hashed = self.hash(kind, value)
            unchanged = (
                value is not None
                and recorded is not None
                and self.protector.hash_matches(recorded, value, f"wecom_{kind}")
            )  # under any hash key version: a key rotation re-sends nothing
            if value and not unchanged and not self._held_back(conflicts, member.userid, kind, hashed):
                payload[kind], record[f"{kind}_hash"] = value, hashed
        if len(payload) == 1:
            if record:  # only the grace period ends: no call
                plan.marks.append(Mark(member.userid, member.person_id, record))
            return
        parts = self._create_parts(member.userid, desired, conflicts)
        call = MemberCall(UPDATE, member.userid, member.person_id, holder, payload, record)
        if parts is not None:
            call.create_payload, call.create_record = parts
        plan.calls.append(call)
