"""audit checkpoints and privacy-officer state (issue 6)

Revision ID: 0007
Revises: 0006

- `audit_event` gains retention-safe hashing (format v2: salts, removed leaves, the details digest), the
  `app` and `purpose` search columns, retention bookkeeping, and the indexes the privacy console's
  searches need: time, and (column, seq) for subject, actor, action, app and purpose, replacing 0001's
  single-column indexes, so a filtered search, newest first, is a short backward walk of one index.
- Existing events keep their v1 hash untouched (a migration never rewrites history); their `app` and
  `purpose` columns are filled from their details. Retention leaves v1 events whole.
- On PostgreSQL the append-only trigger keeps refusing DELETE and TRUNCATE, and refuses UPDATE except the
  one deliberate path retention takes: inside a transaction that ran
  `SELECT set_config('idbroker.audit_retention', 'on', true)`, an UPDATE may change only what is outside
  the hash (details, their salts, removed leaves, search columns, retention bookkeeping) — never seq, time,
  actor, action, subject, the links or the digest. Retention itself appends an `audit.retention` event.
- `audit_checkpoint` (signed heads) and `merge_approval` (four eyes on merges) are new.
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY_V1 = (
    "CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_event is append-only'; END $$"
)
APPEND_ONLY_WITH_RETENTION = """
CREATE OR REPLACE FUNCTION audit_event_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE'
     AND current_setting('idbroker.audit_retention', true) = 'on'
     AND NEW.seq = OLD.seq AND NEW.at = OLD.at AND NEW.actor = OLD.actor AND NEW.action = OLD.action
     AND NEW.subject IS NOT DISTINCT FROM OLD.subject
     AND NEW.prev_hash = OLD.prev_hash AND NEW.hash = OLD.hash
     AND NEW.details_digest IS NOT DISTINCT FROM OLD.details_digest THEN
    RETURN NEW;
  END IF;
  RAISE EXCEPTION 'audit_event is append-only';
END $$
"""


def _fill_search_columns() -> None:
    """Copy details["app"] and details["purpose"] of existing events into their new search columns."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT seq, details FROM audit_event WHERE details LIKE :app OR details LIKE :purpose").bindparams(
            app='%"app"%', purpose='%"purpose"%'
        )
    ).all()
    if bind.dialect.name == "postgresql" and rows:
        bind.execute(sa.text("SELECT set_config('idbroker.audit_retention', 'on', true)"))
    for seq, details in rows:
        values = json.loads(details)
        app, purpose = values.get("app"), values.get("purpose")
        bind.execute(
            sa.text("UPDATE audit_event SET app = :app, purpose = :purpose WHERE seq = :seq").bindparams(
                app=app if isinstance(app, str) else None,
                purpose=purpose if isinstance(purpose, str) else None,
                seq=seq,
            )
        )
    if bind.dialect.name == "postgresql" and rows:
        bind.execute(sa.text("SELECT set_config('idbroker.audit_retention', 'off', true)"))


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("details_salts", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("details_removed", sqlmodel.sql.sqltypes.AutoString(), nullable=True))
        batch_op.add_column(sa.Column("details_digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("app", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))
        batch_op.add_column(sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))
        batch_op.add_column(sa.Column("retention_level", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(sa.Column("reduced_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_audit_event_at"), ["at"], unique=False)
        # One column then seq: a filtered search, newest first, walks one index backwards (see the model).
        for column in ("subject", "actor", "action"):
            batch_op.drop_index(f"ix_audit_event_{column}")
        for column in ("subject", "actor", "action", "app", "purpose"):
            batch_op.create_index(f"ix_audit_event_{column}_seq", [column, "seq"], unique=False)
        batch_op.create_index("ix_audit_event_retention", ["retention_level", "seq"], unique=False)
    if postgres:
        op.execute(APPEND_ONLY_WITH_RETENTION)
    _fill_search_columns()

    op.create_table(
        "audit_checkpoint",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("key_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("public_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("signature", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("audit_checkpoint", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_audit_checkpoint_seq"), ["seq"], unique=False)

    op.create_table(
        "merge_approval",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("candidate_id", sa.Integer(), nullable=False),
        sa.Column("requested_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("requested_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
        sa.Column("rule", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("decided_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("decided_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("decision_reason", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True),
        sa.ForeignKeyConstraint(["candidate_id"], ["merge_candidate.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("merge_approval", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_merge_approval_candidate_id"), ["candidate_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_merge_approval_state"), ["state"], unique=False)


def downgrade() -> None:
    """Back to 0006. Events written in format v2 cannot be verified by 0006's code: downgrade only a copy."""
    with op.batch_alter_table("merge_approval", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_merge_approval_state"))
        batch_op.drop_index(batch_op.f("ix_merge_approval_candidate_id"))
    op.drop_table("merge_approval")
    with op.batch_alter_table("audit_checkpoint", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_checkpoint_seq"))
    op.drop_table("audit_checkpoint")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(APPEND_ONLY_V1)
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index("ix_audit_event_retention")
        for column in ("subject", "actor", "action", "app", "purpose"):
            batch_op.drop_index(f"ix_audit_event_{column}_seq")
        for column in ("subject", "actor", "action"):
            batch_op.create_index(f"ix_audit_event_{column}", [column], unique=False)
        batch_op.drop_index(batch_op.f("ix_audit_event_at"))
        batch_op.drop_column("reduced_at")
        batch_op.drop_column("retention_level")
        batch_op.drop_column("purpose")
        batch_op.drop_column("app")
        batch_op.drop_column("details_digest")
        batch_op.drop_column("details_removed")
        batch_op.drop_column("details_salts")
