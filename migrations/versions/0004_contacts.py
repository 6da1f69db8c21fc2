"""contact points, verification and deliveries (issue 3)

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "contact_cursor",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "contact_point",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("value", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=False),
        sa.Column("phone_type", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("verified_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("verified_method", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("verified_flow_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("chosen_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("confirmed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("confirmed_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("confirmed_reason", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("removed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("removed_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("updated_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("person_id", "kind", "value", name="uq_contact_point_person_kind_value"),
    )
    op.create_index("ix_contact_point_kind_value", "contact_point", ["kind", "value"], unique=False)
    op.create_index(op.f("ix_contact_point_person_id"), "contact_point", ["person_id"], unique=False)
    op.create_table(
        "message_delivery",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("provider", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True),
        sa.Column("template", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("recipient_cipher", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
        sa.Column("recipient_hint", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("params_cipher", sqlmodel.sql.sqltypes.AutoString(length=2048), nullable=True),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("lease_until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("provider_ref", sqlmodel.sql.sqltypes.AutoString(length=128), nullable=True),
        sa.Column("last_error", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("report", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("fallback", sa.Boolean(), nullable=False),
        sa.Column("fallback_of", sa.Integer(), nullable=True),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("sent_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("delivered_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("failed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["fallback_of"],
            ["message_delivery.id"],
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_message_delivery_channel_created", "message_delivery", ["channel", "created_at"], unique=False)
    op.create_index(op.f("ix_message_delivery_person_id"), "message_delivery", ["person_id"], unique=False)
    op.create_table(
        "contact_claim",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("source", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("source_record_id", sa.Integer(), nullable=True),
        sa.Column("actor", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("reason", sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
        sa.Column("current", sa.Boolean(), nullable=False),
        sa.Column("listed", sa.Boolean(), nullable=False),
        sa.Column("first_said", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("last_said", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("until", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact_point.id"],
        ),
        sa.ForeignKeyConstraint(
            ["source_record_id"],
            ["source_record.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_contact_claim_contact_id"), "contact_claim", ["contact_id"], unique=False)
    op.create_index(op.f("ix_contact_claim_source_record_id"), "contact_claim", ["source_record_id"], unique=False)
    op.create_table(
        "primary_choice",
        sa.Column("person_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=True),
        sa.Column("value", sqlmodel.sql.sqltypes.AutoString(length=254), nullable=True),
        sa.Column("verified", sa.Boolean(), nullable=False),
        sa.Column("rule", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
        sa.Column("explanation", sa.JSON(), nullable=False),
        sa.Column("computed_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["contact_id"],
            ["contact_point.id"],
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
        ),
        sa.PrimaryKeyConstraint("person_id", "kind"),
    )
    op.create_table(
        "update_link",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("person_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("created_by", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("used_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("session_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("session_expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["message_delivery.id"],
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("session_hash"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index(op.f("ix_update_link_person_id"), "update_link", ["person_id"], unique=False)
    op.create_table(
        "verification_flow",
        sa.Column("id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("person_id", sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
        sa.Column("purpose", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("channel", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("method", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column("target_cipher", sqlmodel.sql.sqltypes.AutoString(length=512), nullable=False),
        sa.Column("target_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("block_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("ip_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("code_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("link_hash", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("wrong_tries", sa.Integer(), nullable=False),
        sa.Column("created_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("expires_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=False),
        sa.Column("finished_at", sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["message_delivery.id"],
        ),
        sa.ForeignKeyConstraint(
            ["person_id"],
            ["person.id"],
        ),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("link_hash"),
    )
    op.create_index(
        "ix_verification_flow_block_created", "verification_flow", ["block_hash", "created_at"], unique=False
    )
    op.create_index("ix_verification_flow_ip_created", "verification_flow", ["ip_hash", "created_at"], unique=False)
    op.create_index(
        "ix_verification_flow_person_created", "verification_flow", ["person_id", "created_at"], unique=False
    )
    op.create_index(
        "ix_verification_flow_target_created", "verification_flow", ["target_hash", "created_at"], unique=False
    )
    cursor = sa.table("contact_cursor", sa.column("id", sa.Integer()), sa.column("event_id", sa.Integer()))
    op.bulk_insert(cursor, [{"id": 1, "event_id": 0}])


def downgrade() -> None:
    op.drop_index("ix_verification_flow_target_created", table_name="verification_flow")
    op.drop_index("ix_verification_flow_person_created", table_name="verification_flow")
    op.drop_index("ix_verification_flow_ip_created", table_name="verification_flow")
    op.drop_index("ix_verification_flow_block_created", table_name="verification_flow")
    op.drop_table("verification_flow")
    op.drop_index(op.f("ix_update_link_person_id"), table_name="update_link")
    op.drop_table("update_link")
    op.drop_table("primary_choice")
    op.drop_index(op.f("ix_contact_claim_source_record_id"), table_name="contact_claim")
    op.drop_index(op.f("ix_contact_claim_contact_id"), table_name="contact_claim")
    op.drop_table("contact_claim")
    op.drop_index(op.f("ix_message_delivery_person_id"), table_name="message_delivery")
    op.drop_index("ix_message_delivery_channel_created", table_name="message_delivery")
    op.drop_table("message_delivery")
    op.drop_index(op.f("ix_contact_point_person_id"), table_name="contact_point")
    op.drop_index("ix_contact_point_kind_value", table_name="contact_point")
    op.drop_table("contact_point")
    op.drop_table("contact_cursor")
