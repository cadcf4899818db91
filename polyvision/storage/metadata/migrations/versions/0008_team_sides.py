"""Which kit is home: a match's shirt colours, starting side and the operator's swap override.

Existing matches get no colours, no starting side and no override: their analytics keep the
codes they were processed with (cluster 1 home, cluster 0 away).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 10:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("matches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("home_kit_colour", sa.String(length=7), nullable=True))
        batch_op.add_column(sa.Column("away_kit_colour", sa.String(length=7), nullable=True))
        batch_op.add_column(sa.Column("home_starts_left", sa.Boolean(), nullable=True))
        batch_op.add_column(
            sa.Column("teams_swapped", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("matches", schema=None) as batch_op:
        batch_op.drop_column("teams_swapped")
        batch_op.drop_column("home_starts_left")
        batch_op.drop_column("away_kit_colour")
        batch_op.drop_column("home_kit_colour")
