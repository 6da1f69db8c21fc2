"""What every data command shares: who is acting, one transaction, expected errors as one clear line."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlmodel import Session

from idbroker.cli.db import database_errors, fail, open_engine
from idbroker.config import MissingKeyError
from idbroker.directory.queries import PersonNotFound
from idbroker.linking.merge import MergeRefused
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
def transaction() -> Iterator[Session]:
    """One unit of work on the configured database; any failure rolls everything back."""
    engine = open_engine()
    try:
        with database_errors(engine), Session(engine, expire_on_commit=False) as session:
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
