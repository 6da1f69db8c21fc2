"""Grouped transactions for the apps' hot routes: userinfo and the REST API's resolve.

Each of those requests is one release — token, policy, pseudonym, claims and one audit event — and apps call
them thousands of times a second. Run one by one, most of a request's cost is the transaction around the
release (a session, `BEGIN`, `COMMIT`) and two thread hand-overs. `GroupWriter` has one thread per process
take every request waiting (up to `max_batch`), run each request's work in order in *one* transaction,
commit once, and only then answer them all, in one hand-over to the event loop (the pattern of the WeChat
Work callback intake, `idbroker.wecom.callbacks.intake`).

What stays true: each release's policy check, pseudonym and audit event are in the transaction that is
committed before its answer leaves (invariant 2); the audit chain is appended in the order the writer runs the
work, under the same head lock as every other append; on SQLite the writer takes the process's writer lock
(`idbroker.web.routers.oidc._one_writer`) like every other transaction, and durability is the database's own.

The group is set-based: its statements do not grow with the number of requests. A request names what its work
will read (`ahead`: its bearer token, the pseudonym it resolves); before any work runs, `read_ahead`
(`idbroker.release.people.read_ahead`) reads all the group's tokens with their grants and apps in one statement,
their pseudonyms in one and their people (state, pseudonym, record columns) in one, and each work takes what was
read for it (`idbroker.db.take_ahead`) — nothing read ahead outlives the group's transaction. The works' audit
events are appended at the end, all at once, in the order the works ran (`idbroker.audit.chain.appending_later`:
one read of the locked head, one multi-row insert, one move of the head). About five statements and a commit
per group, whatever its size, where each request alone made three or four.

Work must not open a transaction of its own (on SQLite it would wait for the group's, which holds the write
lock): what it needs made once, like the provider's signing key, the route makes before it queues the work
(`idbroker.web.routers.oidc.provider_ready`), since the group's reads ahead begin its transaction before any work.

A request's work may end in a refusal it raises *before* writing anything (`OAuthError`, `HTTPException`:
an unknown token, a policy that forbids, no consent); the group goes on. Any other exception means the work
may have written half of something: the whole group is rolled back and every request of it is run again
alone, each in its own transaction, so one failure never takes another request's release with it. A failed
commit fails the whole group (each request gets the error; nothing of it was released).

On SQLite and PostgreSQL alike. On SQLite every transaction of the process takes turns behind one writer lock
anyway and a statement is a function call. On PostgreSQL a statement is a round trip, which one thread makes in
turn; separate transactions on a pool of threads overlap their round trips instead, but measured here they cost
two to four times the CPU per request (every round trip a GIL hand-over, a pool checkout with its ping, a
`BEGIN` and a `COMMIT` per request) and answered half as many requests (`bench/RESULTS.md`, issue 4). Across
several server processes the groups take turns at the audit head row, each for the length of its group (two
groups storing the same new pseudonyms can deadlock; PostgreSQL ends one of them with an error, and its requests
then run alone as after any other failure). Each request's work runs in its own request's context (its log
request id).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import queue
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlmodel import Session
from starlette.exceptions import HTTPException

from idbroker.audit.chain import appending_later
from idbroker.db import forget_ahead
from idbroker.oidc.rfc6749.errors import OAuthError

log = logging.getLogger("idbroker.web")
T = TypeVar("T")
Work = Callable[[Session], Any]
REFUSALS = (OAuthError, HTTPException)  # raised before the work writes anything: the group goes on


@dataclass(eq=False)
class _Job:
    work: Work
    future: asyncio.Future[Any]
    context: contextvars.Context
    ahead: Any = None
    value: Any = None
    error: BaseException | None = field(default=None)


class GroupWriter:
    """One writer thread per engine; `run` (from a coroutine) queues work and awaits its committed result."""

    def __init__(
        self,
        engine: Engine,
        lock: Callable[[Engine], AbstractContextManager[None]],
        *,
        max_batch: int = 64,
        read_ahead: Callable[[Session, list[Any]], None] | None = None,
    ) -> None:
        self.engine, self.lock, self.max_batch, self.read_ahead = engine, lock, max_batch, read_ahead
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()

    async def run(self, work: Callable[[Session], T], ahead: Any = None) -> T:
        """Run `work(session)` in the next group's transaction; its value once committed, or its exception.
        `ahead` (when not None) names what the work will read, for the group's `read_ahead`."""
        if self._thread is None:
            self._start()
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put(_Job(work, future, contextvars.copy_context(), ahead))
        return await future

    def close(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout=10)
            self._thread = None

    def _start(self) -> None:
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._serve, name="idbroker-grouped", daemon=True)
                self._thread.start()

    def _serve(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            while len(group) < self.max_batch:
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    self._queue.put(None)  # stop after this group
                    break
                group.append(job)
            try:
                self._run_group(group)
            except Exception as exc:  # the database failed: nothing of the group was committed
                log.warning("a group of %d requests could not commit: %s", len(group), type(exc).__name__)
                for job in group:
                    job.value = None
                    if not isinstance(job.error, REFUSALS):
                        job.error = exc
            _settle(group)

    def _run_group(self, group: list[_Job]) -> None:
        with self.lock(self.engine), Session(self.engine, expire_on_commit=False) as session:
            failed = None
            try:
                with appending_later(session):  # the group's audit events: one append at the end
                    wanted = [job.ahead for job in group if job.ahead is not None]
                    if wanted and self.read_ahead is not None:
                        self.read_ahead(session, wanted)
                    for job in group:
                        try:
                            job.value = job.context.run(job.work, session)
                        except REFUSALS as exc:
                            job.error = exc
            except Exception as exc:
                session.rollback()
                failed = exc
            finally:
                forget_ahead(session)
            if failed is None:
                session.commit()
                return
        # a request's work failed midway: nothing of this group was kept; each runs again on its own
        log.info("a grouped transaction was rolled back (%s): %d requests run alone", type(failed).__name__, len(group))
        for job in group:
            job.value, job.error = None, None
            try:
                job.value = job.context.run(self.alone, job.work)
            except Exception as exc:
                job.error = exc

    def alone(self, work: Callable[[Session], T]) -> T:
        """`work` in a transaction of its own: committed, also after a refusal (what it did before refusing is
        kept, as `idbroker.web.routers.oidc.unit` does), rolled back after any other failure."""
        with self.lock(self.engine), Session(self.engine, expire_on_commit=False) as session:
            try:
                value = work(session)
            except REFUSALS:
                session.commit()
                raise
            except BaseException:
                session.rollback()
                raise
            session.commit()
            return value


def _settle(group: list[_Job]) -> None:
    """Hand the results to their event loops: one call per loop, not one per request."""
    by_loop: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
    for job in group:
        by_loop.setdefault(job.future.get_loop(), []).append(job)
    for loop, jobs in by_loop.items():
        with contextlib.suppress(RuntimeError):  # that loop is closed: nobody waits any more
            loop.call_soon_threadsafe(_resolve, jobs)


def _resolve(jobs: list[_Job]) -> None:
    for job in jobs:
        if job.future.done():  # the request went away (its client hung up)
            continue
        if job.error is not None:
            job.future.set_exception(job.error)
        else:
            job.future.set_result(job.value)
