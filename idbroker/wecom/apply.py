"""Applying a plan: every change recorded the moment WeChat Work accepted it, so a killed sync resumes.

Every member call is recorded as soon as it succeeds (the outcomes that arrive together, in one short
transaction); a sync killed halfway leaves the recorded state as far as it got, and the next sync plans only
what is left. A call that reached WeChat Work but was not recorded yet is made again, harmlessly: an update
is idempotent, and a create that finds its userid taken (60102) adopts the member after checking it is the
same person (same name: WeChat Work no longer shows the contacts secret a member's mobile or email) and then
pushes the rest.
A batch job is recorded as soon as it is submitted and waited for again after a restart, never resubmitted.

Departments before members. A first sync of many departments sends the whole policy tree as one
`batch/replaceparty` file — but only when `department/simplelist` shows that the corp holds no department
outside that file (a new corp holds only its root): replaceparty makes the corp's tree the file's, deleting
what the file leaves out, so where the file covers the whole tree it can only create, and rename or move the
departments whose ids the policy claims — what the calls one by one would do too. Otherwise (a corp with
departments of its own, or a broker that has pushed departments before) one `department/create|update` each.
No member call goes out before the department job has finished; a killed sync waits for that job again.

Reconciled rather than failing the run: 60102 (adopt, or report a stranger holding the userid), 60111 (the
member vanished: create it again), 60104/60106 (a mobile or email another member holds: retried once
after the rest of the run — a retirement may have freed it — then pushed without that field and reported
for the helpdesk, never forced), 60103/60105 (a value WeChat Work refuses: pushed without it, reported).
"""

from __future__ import annotations

import csv
import io
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, delete, insert, select, update
from sqlmodel import Session

from idbroker.audit.chain import append as audit
from idbroker.clock import utcnow
from idbroker.config import Settings
from idbroker.directory.protect import Protector
from idbroker.wecom import errors
from idbroker.wecom.client import WeComClient
from idbroker.wecom.desired import DesiredState
from idbroker.wecom.errors import WeComError
from idbroker.wecom.plan import CREATE, DISABLE, RETIRE, UPDATE, DepartmentCall, MemberCall, Plan, Planner
from idbroker.wecom.policy import ROOT_DEPARTMENT, WeComPolicy, load_wecom_policy
from idbroker.wecom.state import WeComBatch, WeComConflict, WeComDepartment, WeComMember

log = logging.getLogger("idbroker.wecom")

Progress = Callable[[int], None]
MEMBERS = WeComMember.__table__  # type: ignore[attr-defined]
BATCH_FILE_BYTES = 15 * 1024 * 1024  # media/upload takes up to 20 MB
CSV_HEADER = ("姓名", "帐号", "手机号", "邮箱", "所在部门")
PARTY_CSV_HEADER = ("部门名称", "部门ID", "父部门ID", "排序")  # batch/replaceparty (path/90982)
CONFLICT_FIELDS = {
    errors.MOBILE_EXISTS: ("mobile", "taken"),
    errors.EMAIL_EXISTS: ("email", "taken"),
    errors.BAD_MOBILE: ("mobile", "invalid"),
    errors.BAD_EMAIL: ("email", "invalid"),
}
_NEW_MEMBER = {  # a member row whose userid is reserved, nothing pushed yet
    "in_corp": False,
    "pending_job": None,
    "name": None,
    "departments": [],
    "mobile_hash": None,
    "email_hash": None,
    "enabled": True,
    "retired": False,
    "inactive_since": None,
    "followed": False,
    "follow_changed_at": None,
    "invited_at": None,
    "pushed_at": None,
}
RESULTS = {CREATE: "created", UPDATE: "updated", RETIRE: "retired", DISABLE: "disabled"}


@dataclass
class Outcome:
    call: MemberCall
    result: str  # created | updated | retired | disabled | adopted | gone | conflict | deferred | failed
    record: dict[str, Any] = field(default_factory=dict)
    conflicts: list[tuple[str, str, str | None]] = field(default_factory=list)  # (field, reason, value hash)
    sent: set[str] = field(default_factory=set)  # userid / mobile / email accepted: their conflicts are over
    error: str | None = None


@dataclass
class SyncReport:
    counts: Counter[str] = field(default_factory=Counter)
    calls: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)  # userid: error code — never a value
    batch_jobs: list[str] = field(default_factory=list)
    unfinished_batches: list[str] = field(default_factory=list)

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


class Applier:
    def __init__(
        self,
        engine: Engine,
        client: WeComClient,
        policy: WeComPolicy,
        *,
        concurrency: int,
        progress: Progress | None = None,
        batch_poll: tuple[float, float] = (1.0, 10.0),
        batch_timeout: float = 1800.0,
        sleep: Callable[[float], None] = time.sleep,
        callback: dict[str, str] | None = None,
    ) -> None:
        self.engine, self.client, self.policy = engine, client, policy
        self.callback = callback  # where WeChat Work pushes batch_job_result (the broker's callback URL)
        self.concurrency = concurrency
        self.progress = progress or (lambda _n: None)
        self.batch_poll, self.batch_timeout, self.sleep = batch_poll, batch_timeout, sleep
        self.report = SyncReport()
        self._conflicted: set[str] = set()  # userids with an open conflict (their rows are deleted on success)
        self._departments_pending = False  # a batch/replaceparty job has not finished: no member may go yet

    # --- the plan -------------------------------------------------------------------------------------

    def apply(self, plan: Plan) -> SyncReport:
        with Session(self.engine) as session:
            self._conflicted = set(session.scalars(select(WeComConflict.userid)))  # type: ignore[call-overload]
        self._marks(plan)
        if not self._departments(plan):
            return self.report
        if plan.batch:
            self._batch(plan.batch)
        deferred: list[MemberCall] = []
        for phase in ((RETIRE, DISABLE), (CREATE,), (UPDATE,)):
            deferred += self._run([call for call in plan.calls if call.kind in phase], final=False)
        self._run(deferred, final=True)
        return self.report

    def _marks(self, plan: Plan) -> None:
        """Record what needs no call — new members' userids, grace periods, retirements — in one transaction."""
        if not plan.marks:
            return
        now = utcnow()
        new = [
            {**_NEW_MEMBER, "userid": mark.userid, "person_id": mark.owner, "created_at": now}
            for mark in plan.marks
            if mark.new
        ]
        with Session(self.engine) as session:
            for start in range(0, len(new), 5000):
                session.execute(insert(MEMBERS), new[start : start + 5000])
            for mark in plan.marks:
                if mark.values:
                    session.execute(update(MEMBERS).where(MEMBERS.c.userid == mark.userid).values(**mark.values))
            session.commit()

    # --- departments ----------------------------------------------------------------------------------

    def _departments(self, plan: Plan) -> bool:
        """Create or update the plan's departments; False while they cannot all be in place (a replaceparty job
        still running), so that no member is placed in a department that does not exist yet."""
        if self._departments_pending:
            return False
        calls = plan.departments
        if not calls:
            return True
        existing = self.client.department_ids() if any(not c.update for c in calls) else {}
        if plan.department_batch and replace_is_safe(existing, calls):
            if not self._replace_departments(calls):
                return False
            with Session(self.engine) as session:
                placed = set(session.scalars(select(WeComDepartment.id).where(WeComDepartment.in_corp)))  # type: ignore[call-overload, arg-type]
            calls = [call for call in calls if call.id not in placed]
            if not calls:
                return True
            existing = self.client.department_ids()  # the job left some out: those go one by one
        for call in calls:
            if call.update or call.id in existing:
                self.client.update_department(call.id, call.name, call.parent, call.order)
            else:
                self.client.create_department(call.id, call.name, call.parent, call.order)
            with Session(self.engine) as session:
                row = session.get(WeComDepartment, call.id) or WeComDepartment(
                    id=call.id, name=call.name, parent_id=call.parent
                )
                row.name, row.parent_id, row.order = call.name, call.parent, call.order
                row.in_corp, row.pushed_at = True, utcnow()
                session.add(row)
                session.commit()
            self.report.counts["departments"] += 1
        return True

    def _replace_departments(self, calls: list[DepartmentCall]) -> bool:
        """One media/upload + batch/replaceparty for the whole tree; the job is recorded (with the departments it
        writes) the moment it is submitted and waited for — again after a restart, never resubmitted."""
        media_id = self.client.upload_file("departments.csv", departments_csv(calls))
        jobid = self.client.replace_departments(media_id, callback=self.callback)
        with Session(self.engine) as session:
            session.add(WeComBatch(jobid=jobid, members=0))
            for call in calls:
                row = session.get(WeComDepartment, call.id) or WeComDepartment(
                    id=call.id, name=call.name, parent_id=call.parent
                )
                row.name, row.parent_id, row.order = call.name, call.parent, call.order
                session.add(row)
            session.commit()
        self.report.batch_jobs.append(jobid)
        return self.wait_for_batch(jobid, fresh=True)

    # --- one call at a time, many at once -------------------------------------------------------------

    def _run(self, calls: list[MemberCall], *, final: bool) -> list[MemberCall]:
        """Run `calls` concurrently (under the cap), recording outcomes as they arrive — whatever has arrived
        together is recorded in one short transaction, so the record trails WeChat Work by moments, not by
        a run; returns the calls deferred to the end of the run."""
        deferred: list[MemberCall] = []
        if not calls:
            return deferred
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(calls))) as pool:
            pending = {pool.submit(self._execute, call, final) for call in calls}
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                outcomes = [future.result() for future in done]
                deferred += [o.call for o in outcomes if o.result == "deferred"]
                arrived = [o for o in outcomes if o.result != "deferred"]
                self._record(arrived)
                self.progress(len(arrived))
        return deferred

    def _execute(self, call: MemberCall, final: bool) -> Outcome:
        try:
            if call.kind == CREATE:
                return self._create(call, call.payload, call.record, final)
            return self._push(call, "update", call.payload, call.record, final, RESULTS[call.kind])
        except WeComError as exc:
            if exc.errcode == errors.USERID_NOT_FOUND:
                if call.create_payload is not None and call.create_record is not None:
                    return self._create(call, call.create_payload, call.create_record, final)
                return Outcome(
                    call, "gone", {"in_corp": False, **{k: v for k, v in call.record.items() if k == "retired"}}
                )
            return self._failed(call, exc)

    def _failed(self, call: MemberCall, exc: WeComError) -> Outcome:
        return Outcome(call, "failed", error=f"{exc.api} {exc.errcode}")

    def _create(self, call: MemberCall, payload: dict[str, Any], record: dict[str, Any], final: bool) -> Outcome:
        try:
            return self._push(call, "create", payload, record, final, "created")
        except WeComError as exc:
            if exc.errcode != errors.USERID_EXISTS:
                raise
        found = self.client.get_user(call.userid)
        if found.get("name") != payload.get("name"):
            # Someone else holds this userid: report it, never take the member over.
            return Outcome(call, "conflict", conflicts=[("userid", "taken", None)])
        adopt = {k: v for k, v in payload.items() if k != "to_invite"}
        return self._push(call, "update", adopt, record, final, "adopted")

    def _push(
        self, call: MemberCall, api: str, payload: dict[str, Any], record: dict[str, Any], final: bool, result: str
    ) -> Outcome:
        """Send `payload`; a taken or refused mobile/email is deferred once, then dropped and reported."""
        conflicts: list[tuple[str, str, str | None]] = []
        payload, record = dict(payload), dict(record)
        while True:
            try:
                if api == "create":
                    self.client.create_user(payload)
                else:
                    self.client.update_user(payload)
            except WeComError as exc:
                if exc.errcode not in CONFLICT_FIELDS:
                    raise
                name, reason = CONFLICT_FIELDS[exc.errcode]
                if reason == "taken" and not final:
                    return Outcome(call, "deferred")
                conflicts.append((name, reason, record.get(f"{name}_hash")))
                payload.pop(name, None)
                if api == "create":
                    record[f"{name}_hash"] = None  # nothing pushed
                else:
                    record.pop(f"{name}_hash", None)  # what was pushed before stays
                if api == "create" and "mobile" not in payload and "email" not in payload:
                    return Outcome(call, "conflict", conflicts=conflicts)
                if api == "update" and len(payload) == 1:
                    return Outcome(call, "conflict", record={**record, "in_corp": True}, conflicts=conflicts)
                continue
            sent = {"userid"} if api == "create" or result == "adopted" else set()
            sent |= set(payload) & {"mobile", "email"}
            return Outcome(call, result, record={**record, "in_corp": True}, conflicts=conflicts, sent=sent)

    def _record(self, outcomes: list[Outcome]) -> None:
        """Outcomes that arrived together, in one short transaction (every member row exists already:
        `_marks` reserved each new userid before the calls)."""
        now = utcnow()
        by_columns: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        for outcome in outcomes:
            if outcome.record:
                by_columns[tuple(sorted(outcome.record))].append(
                    {"u": outcome.call.userid, **outcome.record, "pushed_at": now}
                )
        with Session(self.engine) as session:
            for rows in by_columns.values():  # one executemany per set of columns: few statements, however many rows
                session.execute(update(MEMBERS).where(MEMBERS.c.userid == bindparam("u")), rows)
            for outcome in outcomes:
                call = outcome.call
                self.report.counts[outcome.result] += 1
                if outcome.result == "failed":
                    self.report.failures.append(f"{call.userid}: {outcome.error}")
                if outcome.sent and call.userid in self._conflicted:
                    _resolve_conflicts(session, call.userid, outcome.sent)
                for name, reason, hashed in outcome.conflicts:
                    _report_conflict(session, call, name, reason, hashed)
                    self._conflicted.add(call.userid)
                    self.report.counts[f"conflict_{name}"] += 1
            session.commit()

    # --- batch jobs -----------------------------------------------------------------------------------

    def _batch(self, calls: list[MemberCall]) -> None:
        for chunk in _chunks(calls):
            media_id = self.client.upload_file("members.csv", members_csv(chunk))
            jobid = self.client.sync_users(media_id, to_invite=self.policy.invite_on_create, callback=self.callback)
            with Session(self.engine) as session:
                session.add(WeComBatch(jobid=jobid, members=len(chunk)))
                rows = [{"u": call.userid, "pending_job": jobid, **_pending_values(call.record)} for call in chunk]
                session.execute(
                    update(MEMBERS)
                    .where(MEMBERS.c.userid == bindparam("u"))
                    .execution_options(synchronize_session=False),
                    rows,
                )
                session.commit()
            self.report.batch_jobs.append(jobid)
            self.wait_for_batch(jobid, fresh=True)

    def resume_batches(self) -> None:
        """Wait for the batch jobs an earlier (perhaps killed) sync submitted; never submit them again."""
        with Session(self.engine) as session:
            jobids = list(session.scalars(select(WeComBatch.jobid).where(WeComBatch.state == "submitted")))  # type: ignore[call-overload]
        for jobid in jobids:
            self.wait_for_batch(jobid)

    def wait_for_batch(self, jobid: str, *, fresh: bool = False) -> bool:
        """Poll batch/getresult until the job has finished (or is unknown: lost) and record it; False if it still
        runs after `batch_timeout`. A job just submitted is first looked at one poll interval later (no job
        ends at once), or as soon as its batch_job_result callback arrives."""
        delay, ceiling = self.batch_poll
        started = time.monotonic()
        if fresh:
            self._sleep_until_callback(jobid, delay)
            delay = min(ceiling, delay * 2)
        while True:
            try:
                result = self.client.batch_result(jobid)
            except WeComError as exc:
                if exc.errcode == errors.BUSY:
                    raise
                self._lose_batch(jobid, exc)
                return True
            departments = result.get("type") == "replace_party"
            if int(result.get("status", 0)) == 3:
                if departments:
                    self._finish_department_batch(jobid, result.get("result") or [])
                else:
                    self._finish_batch(jobid, result.get("result") or [])
                return True
            if time.monotonic() - started > self.batch_timeout:
                self.report.unfinished_batches.append(jobid)
                self._departments_pending |= departments
                return False
            self._sleep_until_callback(jobid, delay)
            delay = min(ceiling, delay * 2)

    def _sleep_until_callback(self, jobid: str, delay: float) -> None:
        """Wait `delay` seconds, or less if the batch_job_result callback arrives meanwhile."""
        deadline = time.monotonic() + delay
        while (left := deadline - time.monotonic()) > 0:
            self.sleep(min(0.25, left))
            with Session(self.engine) as session:
                batch = session.get(WeComBatch, jobid)
                if batch is not None and batch.callback_at is not None:
                    return

    def _finish_batch(self, jobid: str, results: list[dict[str, Any]]) -> None:
        """Record a finished job: its members are in the corp, but for those it reports (or leaves out) as failed."""
        codes = {str(item.get("userid", "")).lower(): int(item.get("errcode", 0)) for item in results}
        now = utcnow()
        with Session(self.engine) as session:
            pending = session.execute(
                select(MEMBERS.c.userid, MEMBERS.c.person_id, MEMBERS.c.mobile_hash, MEMBERS.c.email_hash).where(
                    MEMBERS.c.pending_job == jobid
                )
            ).all()
            failed = [row for row in pending if codes.get(row.userid.lower()) != 0]
            for row in failed:
                code = codes.get(row.userid.lower())
                if code in CONFLICT_FIELDS:
                    name, reason = CONFLICT_FIELDS[code]
                    hashed = row.mobile_hash if name == "mobile" else row.email_hash
                    _report_conflict_row(session, row.userid, row.person_id, name, reason, hashed)
                    self.report.counts[f"conflict_{name}"] += 1
                session.execute(
                    update(MEMBERS)
                    .where(MEMBERS.c.userid == row.userid)
                    .values(
                        pending_job=None, in_corp=False, name=None, departments=[], mobile_hash=None, email_hash=None
                    )
                )
            session.execute(
                update(MEMBERS)
                .where(MEMBERS.c.pending_job == jobid)
                .values(pending_job=None, in_corp=True, pushed_at=now)
            )
            batch = session.get(WeComBatch, jobid)
            if batch is not None:
                batch.state, batch.finished_at, batch.failures = "done", now, len(failed)
                session.add(batch)
            session.commit()
        self.report.counts["created"] += len(pending) - len(failed)
        self.report.counts["batch_failed"] += len(failed)
        self.progress(len(pending))

    def _finish_department_batch(self, jobid: str, results: list[dict[str, Any]]) -> None:
        """Record a finished replaceparty job: each department it reports done is in the corp. One it reports as
        failed, or does not report, stays unrecorded: the calls one by one take it up."""
        done = {int(item.get("partyid") or 0) for item in results if int(item.get("errcode", 0)) == 0}
        failed = [item for item in results if int(item.get("errcode", 0)) != 0]
        now = utcnow()
        with Session(self.engine) as session:
            placed = 0
            if done:
                placed = session.execute(
                    update(WeComDepartment)
                    .where(WeComDepartment.id.in_(sorted(done)))  # type: ignore[attr-defined]
                    .values(in_corp=True, pushed_at=now)
                ).rowcount  # type: ignore[attr-defined]
            batch = session.get(WeComBatch, jobid)
            if batch is not None:
                batch.state, batch.finished_at, batch.failures = "done", now, len(failed)
                session.add(batch)
            session.commit()
        self.report.counts["departments"] += placed
        for item in failed:
            self.report.counts["department_failed"] += 1
            self.report.failures.append(f"department {item.get('partyid')}: batch/replaceparty {item.get('errcode')}")

    def _lose_batch(self, jobid: str, exc: WeComError) -> None:
        log.warning(
            "batch job %s is unknown to WeChat Work (%s): its members will be created again", jobid, exc.errcode
        )
        with Session(self.engine) as session:
            session.execute(
                update(MEMBERS).where(MEMBERS.c.pending_job == jobid).values(pending_job=None, in_corp=False)
            )
            batch = session.get(WeComBatch, jobid)
            if batch is not None:
                batch.state, batch.finished_at = "lost", utcnow()
                session.add(batch)
            session.commit()


def replace_is_safe(corp: dict[int, int], calls: list[DepartmentCall]) -> bool:
    """Whether batch/replaceparty with these departments leaves alone everything the broker did not put there:
    the corp (id → parent, from department/simplelist) holds no department but its root and those of the file."""
    return set(corp) - {ROOT_DEPARTMENT} <= {call.id for call in calls}


def departments_csv(calls: Iterable[DepartmentCall]) -> bytes:
    """The batch/replaceparty file (UTF-8 CSV; parents listed before their children, as the policy lists them)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PARTY_CSV_HEADER)
    for call in calls:
        writer.writerow([call.name, call.id, call.parent, call.order])
    return out.getvalue().encode("utf-8")


def _pending_values(record: dict[str, Any]) -> dict[str, Any]:
    keys = ("name", "departments", "mobile_hash", "email_hash", "enabled", "retired", "inactive_since")
    return {key: record.get(key) for key in keys if key in record}


def _chunks(calls: list[MemberCall]) -> Iterable[list[MemberCall]]:
    chunk: list[MemberCall] = []
    size = 0
    for call in calls:
        row = len(members_csv([call], header=False))
        if chunk and size + row > BATCH_FILE_BYTES:
            yield chunk
            chunk, size = [], 0
        chunk.append(call)
        size += row
    if chunk:
        yield chunk


def members_csv(calls: Iterable[MemberCall], *, header: bool = True) -> bytes:
    """The batch/syncuser file (UTF-8 CSV; departments as ids separated by semicolons, path/91130)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if header:
        writer.writerow(CSV_HEADER)
    for call in calls:
        p = call.payload
        departments = ";".join(str(d) for d in p["department"])
        writer.writerow([p["name"], p["userid"], p.get("mobile", ""), p.get("email", ""), departments])
    return out.getvalue().encode("utf-8")


def _resolve_conflicts(session: Session, userid: str, fields: set[str]) -> None:
    if fields:
        session.execute(
            delete(WeComConflict).where(WeComConflict.userid == userid, WeComConflict.field.in_(sorted(fields)))  # type: ignore[attr-defined]
        )


def _report_conflict(session: Session, call: MemberCall, name: str, reason: str, hashed: str | None) -> None:
    _report_conflict_row(session, call.userid, call.holder, name, reason, hashed)


def _report_conflict_row(
    session: Session, userid: str, person_id: str, name: str, reason: str, hashed: str | None
) -> None:
    row = session.scalars(
        select(WeComConflict).where(WeComConflict.userid == userid, WeComConflict.field == name)  # type: ignore[arg-type]
    ).first() or WeComConflict(userid=userid, person_id=person_id, field=name, reason=reason)
    row.person_id, row.reason, row.value_hash, row.at = person_id, reason, hashed, utcnow()
    session.add(row)


# --- a whole sync -------------------------------------------------------------------------------------


def batch_callback(settings: Settings) -> dict[str, str] | None:
    """The broker's own callback (its URL, Token and EncodingAESKey), for WeChat Work to push batch_job_result
    to — so a waiting sync reads the result as soon as the job ends; None when callbacks are not configured."""
    token, key = settings.wecom_callback_token, settings.wecom_encoding_aes_key
    if token is None or key is None:
        return None
    url = settings.public_url.rstrip("/") + "/wecom/callback"
    return {"url": url, "token": token.get_secret_value(), "encodingaeskey": key.get_secret_value()}


@dataclass
class Sync:
    """Everything one sync needs, read once: settings, policy, the desired-state reader (and, to call, a client)."""

    engine: Engine
    settings: Settings
    policy: WeComPolicy
    protector: Protector
    desired: DesiredState
    client: WeComClient | None = None

    @classmethod
    def open(cls, engine: Engine, settings: Settings, client: WeComClient | None = None) -> Sync:
        policy = load_wecom_policy(settings.policies_dir)
        return cls(
            engine=engine,
            settings=settings,
            policy=policy,
            protector=Protector.from_settings(settings),
            desired=DesiredState(policy, settings.policies_dir),
            client=client,
        )

    def plan(self, *, now: datetime | None = None, people: Iterable[str] | None = None) -> Plan:
        """What a sync would do — read from the database only, never a call."""
        with Session(self.engine) as session:
            return Planner(session, self.policy, self.desired, self.protector).make(now or utcnow(), people)

    def connect(self) -> WeComClient:
        if self.client is None:
            self.client = WeComClient(self.settings, self.engine)
        return self.client

    def run(
        self,
        *,
        actor: str,
        now: datetime | None = None,
        people: Iterable[str] | None = None,
        progress: Progress | None = None,
        on_plan: Callable[[Plan], None] | None = None,
    ) -> SyncReport:
        """Finish earlier batch jobs, plan, apply; members a batch could not create get a second, one-by-one pass."""
        client = self.connect()
        applier = Applier(
            self.engine,
            client,
            self.policy,
            concurrency=self.settings.wecom_concurrency,
            progress=progress,
            callback=batch_callback(self.settings),
        )
        applier.resume_batches()
        plan = self.plan(now=now, people=people)
        if on_plan is not None:
            on_plan(plan)
        report = applier.apply(plan)
        if plan.batch and report.counts["batch_failed"]:
            retry = self.plan(now=now, people={call.holder for call in plan.batch})
            retry.calls, retry.batch = retry.calls + retry.batch, []
            applier.apply(retry)
        report.calls = Counter(client.calls)
        with Session(self.engine) as session:
            audit(
                session,
                actor=actor,
                action="wecom.sync",
                details={
                    "scope": "all" if people is None else "changed",
                    "people": plan.people,
                    "counts": dict(sorted(report.counts.items())),
                    "calls": report.total_calls,
                    "batch_jobs": report.batch_jobs,
                },
            )
            session.commit()
        return report
