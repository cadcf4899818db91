"""The published revision of a match: what viewers and analytics read while a newer revision
is being processed. Matches already ready publish their current revision.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 17:50:03.185549
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("matches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("published_revision", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE matches SET published_revision = revision WHERE status = 'ready' AND revision >= 1"
    )


def downgrade() -> None:
    with op.batch_alter_table("matches", schema=None) as batch_op:
        batch_op.drop_column("published_revision")
