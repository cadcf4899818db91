"""Upload sessions (object keys, multipart ids, idempotency key, failure reason) and the
jti of every accepted device token (replay protection).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 17:29:23.723993
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "device_token_uses",
        sa.Column("jti", sa.String(length=128), nullable=False),
        sa.Column("device_id", sa.Uuid(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_device_token_uses_device_id_devices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("jti", name=op.f("pk_device_token_uses")),
    )
    with op.batch_alter_table("device_token_uses", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_device_token_uses_device_id"), ["device_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_device_token_uses_expires_at"), ["expires_at"], unique=False
        )

    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("user_id", sa.Uuid(), nullable=True))
        batch_op.add_column(sa.Column("recorded_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("client_ref", sa.String(length=200), nullable=True))
        batch_op.add_column(
            sa.Column("part_size", sa.BigInteger(), nullable=False, server_default="8388608")
        )
        batch_op.add_column(sa.Column("left_key", sa.String(length=1024), nullable=True))
        batch_op.add_column(sa.Column("right_key", sa.String(length=1024), nullable=True))
        batch_op.add_column(sa.Column("rig_key", sa.String(length=1024), nullable=True))
        batch_op.add_column(sa.Column("left_upload_id", sa.String(length=1024), nullable=True))
        batch_op.add_column(sa.Column("right_upload_id", sa.String(length=1024), nullable=True))
        batch_op.add_column(sa.Column("error", sa.String(length=2000), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_uploads_organization_id_client_ref"), ["organization_id", "client_ref"]
        )
        batch_op.create_foreign_key(
            batch_op.f("fk_uploads_user_id_users"),
            "users",
            ["user_id"],
            ["id"],
            ondelete="SET NULL",
        )


def downgrade() -> None:
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_uploads_user_id_users"), type_="foreignkey")
        batch_op.drop_constraint(
            batch_op.f("uq_uploads_organization_id_client_ref"), type_="unique"
        )
        batch_op.drop_column("error")
        batch_op.drop_column("right_upload_id")
        batch_op.drop_column("left_upload_id")
        batch_op.drop_column("rig_key")
        batch_op.drop_column("right_key")
        batch_op.drop_column("left_key")
        batch_op.drop_column("part_size")
        batch_op.drop_column("client_ref")
        batch_op.drop_column("recorded_at")
        batch_op.drop_column("user_id")

    with op.batch_alter_table("device_token_uses", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_device_token_uses_expires_at"))
        batch_op.drop_index(batch_op.f("ix_device_token_uses_device_id"))

    op.drop_table("device_token_uses")
