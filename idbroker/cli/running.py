"""What every data command shares: who is acting, one transaction, expected errors as one clear line."""

from __future__ import annotations

import getpass
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlmodel import Session

from idbroker.cli.db import database_errors, fail, open_engine
from idbroker.config import MissingKeyError
from idbroker.db import bulk_connection
from idbroker.directory.queries import PersonNotFound
from idbroker.linking.merge import MergeRefused
from idbroker.memory import cycle_collector_paused
from idbroker.policy import PolicyError
from idbroker.sources.importer import MassDeactivation
from idbroker.sources.mapping import MappingError
from idbroker.sources.tables import UnreadableFile

EXPECTED = (
    UnreadableFile,
    MappingError,
    PolicyError,
    MissingKeyError,
    MergeRefused,
    PersonNotFound,
    MassDeactivation,
)


def cli_actor() -> str:
    return f"cli:{getpass.getuser()}"


@contextmanager
def transaction(*, bulk: bool = False) -> Iterator[Session]:
    """One unit of work on the configured database; any failure rolls everything back.

    `bulk` (import, link): on SQLite, foreign keys are checked once before the commit (`db.bulk_connection`), and
    Python's cycle collector is paused (`memory.cycle_collector_paused`)."""
    engine = open_engine()
    try:
        with (
            cycle_collector_paused() if bulk else nullcontext(),
            database_errors(engine),
            bulk_connection(engine) if bulk else nullcontext(engine) as bind,
            Session(bind, expire_on_commit=False) as session,
        ):
            try:
                yield session
                session.commit()
            except EXPECTED as exc:
                session.rollback()
                raise fail(f"{exc}\nnothing was changed") from None
            except BaseException:
                session.rollback()
                raise
    finally:
        engine.dispose()


def progress_bar(description: str) -> Progress:
    return Progress(TextColumn(description), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), transient=False)


@contextmanager
def counted(description: str, unit: str, every: int = 4096) -> Iterator[Callable[[int], None]]:
    """A progress bar for work counted in many small units (rows, records): the callback moves the bar every
    `every` units — moving it costs more than importing a row — and once more at the end."""
    pending = 0
    with progress_bar(description) as bar:
        task = bar.add_task(unit, total=None)

        def advance(count: int) -> None:
            nonlocal pending
            pending += count
            if pending >= every:
                bar.advance(task, pending)
                pending = 0

        yield advance
        bar.advance(task, pending)
