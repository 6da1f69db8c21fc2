"""The migrations are the schema: they match the models exactly, and go down to nothing and back up."""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, inspect, text

from idbroker.audit.chain import GENESIS_HASH
from idbroker.migrate import current_revision, downgrade, head_revision, upgrade
from idbroker.models import metadata


def schema_differences(engine: Engine) -> list[Any]:
    """What autogenerate would write into a new migration (the options of migrations/env.py)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "target_metadata": metadata})
        return compare_metadata(context, metadata)


def audit_triggers(engine: Engine) -> set[str]:
    if engine.dialect.name != "postgresql":
        return set()
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_event'::regclass AND NOT tgisinternal")
        )
        return {row[0] for row in rows}


def test_the_migrated_database_matches_the_models(engine: Engine) -> None:
    assert current_revision(engine) == head_revision()
    differences = schema_differences(engine)
    assert differences == [], (
        "the models and the migrations differ; write a migration for this change "
        f"(alembic revision --autogenerate): {differences}"
    )


def test_the_audit_log_starts_with_its_head_row(engine: Engine) -> None:
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT id, seq, hash FROM audit_head")).all()
    assert [tuple(row) for row in rows] == [(1, 0, GENESIS_HASH)]
    if engine.dialect.name == "postgresql":
        assert audit_triggers(engine) == {"audit_event_append_only", "audit_event_no_truncate"}


def test_downgrade_to_base_and_upgrade_again(engine: Engine) -> None:
    downgrade(engine, "base")
    assert current_revision(engine) is None
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}

    upgrade(engine)
    assert current_revision(engine) == head_revision()
    assert set(metadata.tables) <= set(inspect(engine).get_table_names())
    assert schema_differences(engine) == []
    with engine.connect() as connection:
        assert connection.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).one() == (
            0,
            GENESIS_HASH,
        )
    if engine.dialect.name == "postgresql":
        assert audit_triggers(engine) == {"audit_event_append_only", "audit_event_no_truncate"}
