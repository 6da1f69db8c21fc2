"""WeChat Work members, sync state and callbacks (issue 5)

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "wecom_batch",
        sa.Column("jobid", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("members", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("submitted_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("callback_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("jobid"),
    )
    op.create_table(
        "wecom_callback",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("digest", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("received_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("encrypt", sa.Text(), nullable=False),
        sa.Column("processed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("outcome", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("digest"),
    )
    with op.batch_alter_table("wecom_callback", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wecom_callback_processed_at"), ["processed_at"], unique=False)

    op.create_table(
        "wecom_cursor",
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "wecom_department",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=False),
        sa.Column("order", sa.Integer(), nullable=False),
        sa.Column("in_corp", sa.Boolean(), nullable=False),
        sa.Column("pushed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "wecom_token",
        sa.Column("cache_key", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("token_cipher", sqlmodel.sql.sqltypes.AutoString(length=1024), nullable=True),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("fetched_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("fetches", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("cache_key"),
    )
    op.create_table(
        "wecom_conflict",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("userid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("person_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("field", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("value_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("userid", "field", name="uq_wecom_conflict_userid_field"),
    )
    with op.batch_alter_table("wecom_conflict", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wecom_conflict_userid"), ["userid"], unique=False)

    op.create_table(
        "wecom_member",
        sa.Column("userid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("person_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("in_corp", sa.Boolean(), nullable=False),
        sa.Column("pending_job", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("departments", sa.JSON(), nullable=False),
        sa.Column("mobile_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("email_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("retired", sa.Boolean(), nullable=False),
        sa.Column("inactive_since", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("followed", sa.Boolean(), nullable=False),
        sa.Column("follow_changed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("invited_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("pushed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
        ),
        sa.PrimaryKeyConstraint("userid"),
        sa.UniqueConstraint("person_id"),
    )
    with op.batch_alter_table("wecom_member", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wecom_member_pending_job"), ["pending_job"], unique=False)

    op.create_table(
        "wecom_member_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("callback_id", sa.Integer(), nullable=False),
        sa.Column("userid", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("known", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["callback_id"],
            ["wecom_callback.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("callback_id"),
    )
    with op.batch_alter_table("wecom_member_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_wecom_member_event_userid"), ["userid"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("wecom_member_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wecom_member_event_userid"))

    op.drop_table("wecom_member_event")
    with op.batch_alter_table("wecom_member", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wecom_member_pending_job"))

    op.drop_table("wecom_member")
    with op.batch_alter_table("wecom_conflict", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wecom_conflict_userid"))

    op.drop_table("wecom_conflict")
    op.drop_table("wecom_token")
    op.drop_table("wecom_department")
    op.drop_table("wecom_cursor")
    with op.batch_alter_table("wecom_callback", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_wecom_callback_processed_at"))

    op.drop_table("wecom_callback")
    op.drop_table("wecom_batch")
