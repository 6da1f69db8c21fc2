"""apps, pseudonyms, consents, OIDC codes and tokens (issue 4)

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

String = sqlmodel.sql.sqltypes.AutoString
Time = sqlmodel.sql.sqltypes.UTCDateTime


def upgrade() -> None:
    op.create_table(
        "app",
        sa.Column("client_id", String(length=64), nullable=False),
        sa.Column("name", String(length=128), nullable=False),
        sa.Column("kind", String(length=16), nullable=False),
        sa.Column("secret_hash", String(length=255), nullable=True),
        sa.Column("redirect_uris", sa.JSON(), nullable=False),
        sa.Column("post_logout_redirect_uris", sa.JSON(), nullable=False),
        sa.Column("sector", String(length=255), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", Time(), nullable=False),
        sa.Column("updated_at", Time(), nullable=False),
        sa.Column("secret_rotated_at", Time(), nullable=True),
        sa.PrimaryKeyConstraint("client_id"),
    )
    with op.batch_alter_table("app", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_app_sector"), ["sector"], unique=False)

    op.create_table(
        "oidc_signing_key",
        sa.Column("kid", String(length=64), nullable=False),
        sa.Column("alg", String(length=16), nullable=False),
        sa.Column("private_key_cipher", String(), nullable=False),
        sa.Column("public_jwk", sa.JSON(), nullable=False),
        sa.Column("created_at", Time(), nullable=False),
        sa.Column("retired_at", Time(), nullable=True),
        sa.Column("expires_at", Time(), nullable=True),
        sa.PrimaryKeyConstraint("kid"),
    )
    op.create_table(
        "app_consent",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("person_id", String(length=32), nullable=False),
        sa.Column("client_id", String(length=64), nullable=False),
        sa.Column("claims", sa.JSON(), nullable=False),
        sa.Column("purpose_digest", String(length=64), nullable=False),
        sa.Column("granted_at", Time(), nullable=False),
        sa.Column("withdrawn_at", Time(), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["app.client_id"]),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("app_consent", schema=None) as batch_op:
        batch_op.create_index("ix_app_consent_person_app", ["person_id", "client_id"], unique=False)

    op.create_table(
        "oidc_grant",
        sa.Column("id", String(length=32), nullable=False),
        sa.Column("client_id", String(length=64), nullable=False),
        sa.Column("person_id", String(length=32), nullable=False),
        sa.Column("scope", String(length=512), nullable=False),
        sa.Column("auth_time", Time(), nullable=False),
        sa.Column("session_id", String(length=64), nullable=True),
        sa.Column("created_at", Time(), nullable=False),
        sa.Column("revoked_at", Time(), nullable=True),
        sa.Column("revoked_reason", String(length=64), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["app.client_id"]),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("oidc_grant", schema=None) as batch_op:
        batch_op.create_index("ix_oidc_grant_person_app", ["person_id", "client_id"], unique=False)

    op.create_table(
        "pseudonym",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sector", String(length=255), nullable=False),
        sa.Column("value", String(length=64), nullable=False),
        sa.Column("person_id", String(length=32), nullable=False),
        sa.Column("key_version", String(length=8), nullable=False),
        sa.Column("created_at", Time(), nullable=False),
        sa.ForeignKeyConstraint(["person_id"], ["person.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("sector", "person_id", name="uq_pseudonym_sector_person"),
        sa.UniqueConstraint("sector", "value", name="uq_pseudonym_sector_value"),
    )
    with op.batch_alter_table("pseudonym", schema=None) as batch_op:
        batch_op.create_index("ix_pseudonym_person", ["person_id"], unique=False)

    op.create_table(
        "oidc_code",
        sa.Column("digest", String(length=64), nullable=False),
        sa.Column("grant_id", String(length=32), nullable=False),
        sa.Column("client_id", String(length=64), nullable=False),
        sa.Column("redirect_uri", String(length=2048), nullable=False),
        sa.Column("nonce", String(length=512), nullable=True),
        sa.Column("code_challenge", String(length=128), nullable=True),
        sa.Column("code_challenge_method", String(length=8), nullable=True),
        sa.Column("created_at", Time(), nullable=False),
        sa.Column("expires_at", Time(), nullable=False),
        sa.Column("used_at", Time(), nullable=True),
        sa.ForeignKeyConstraint(["grant_id"], ["oidc_grant.id"]),
        sa.PrimaryKeyConstraint("digest"),
    )
    with op.batch_alter_table("oidc_code", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_oidc_code_grant_id"), ["grant_id"], unique=False)

    op.create_table(
        "oidc_token",
        sa.Column("digest", String(length=64), nullable=False),
        sa.Column("kind", String(length=8), nullable=False),
        sa.Column("client_id", String(length=64), nullable=False),
        sa.Column("grant_id", String(length=32), nullable=True),
        sa.Column("scope", String(length=512), nullable=False),
        sa.Column("created_at", Time(), nullable=False),
        sa.Column("expires_at", Time(), nullable=False),
        sa.Column("used_at", Time(), nullable=True),
        sa.Column("revoked_at", Time(), nullable=True),
        sa.ForeignKeyConstraint(["client_id"], ["app.client_id"]),
        sa.ForeignKeyConstraint(["grant_id"], ["oidc_grant.id"]),
        sa.PrimaryKeyConstraint("digest"),
    )
    with op.batch_alter_table("oidc_token", schema=None) as batch_op:
        batch_op.create_index("ix_oidc_token_grant", ["grant_id"], unique=False)


def downgrade() -> None:
    for table, indexes in (
        ("oidc_token", ["ix_oidc_token_grant"]),
        ("oidc_code", ["ix_oidc_code_grant_id"]),
        ("pseudonym", ["ix_pseudonym_person"]),
        ("oidc_grant", ["ix_oidc_grant_person_app"]),
        ("app_consent", ["ix_app_consent_person_app"]),
        ("oidc_signing_key", []),
        ("app", ["ix_app_sector"]),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            for index in indexes:
                batch_op.drop_index(index)
        op.drop_table(table)
