"""Team rosters, and the analyst's naming and merging of a match's tracked identities.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 09:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "roster_players",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("shirt_number", sa.Integer(), nullable=True),
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["created_by"],
            ["users.id"],
            name=op.f("fk_roster_players_created_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_roster_players_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["team_id"],
            ["teams.id"],
            name=op.f("fk_roster_players_team_id_teams"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_roster_players")),
        sa.UniqueConstraint(
            "team_id", "shirt_number", name=op.f("uq_roster_players_team_id_shirt_number")
        ),
    )
    with op.batch_alter_table("roster_players", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_roster_players_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_roster_players_team_id"), ["team_id"], unique=False)

    op.create_table(
        "identity_assignments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("match_id", sa.Uuid(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("identity_id", sa.BigInteger(), nullable=False),
        sa.Column("player_id", sa.Uuid(), nullable=False),
        sa.Column("assigned_by", sa.Uuid(), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["assigned_by"],
            ["users.id"],
            name=op.f("fk_identity_assignments_assigned_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["match_id"],
            ["matches.id"],
            name=op.f("fk_identity_assignments_match_id_matches"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_identity_assignments_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["player_id"],
            ["roster_players.id"],
            name=op.f("fk_identity_assignments_player_id_roster_players"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_assignments")),
        sa.UniqueConstraint(
            "match_id",
            "revision",
            "identity_id",
            name=op.f("uq_identity_assignments_match_id_revision_identity_id"),
        ),
    )
    with op.batch_alter_table("identity_assignments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_assignments_organization_id"), ["organization_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_identity_assignments_player_id"), ["player_id"], unique=False
        )

    op.create_table(
        "identity_merges",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organization_id", sa.Uuid(), nullable=False),
        sa.Column("match_id", sa.Uuid(), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("source_identity_id", sa.BigInteger(), nullable=False),
        sa.Column("target_identity_id", sa.BigInteger(), nullable=False),
        sa.Column("merged_by", sa.Uuid(), nullable=True),
        sa.Column("merged_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "source_identity_id <> target_identity_id", name=op.f("ck_identity_merges_not_itself")
        ),
        sa.ForeignKeyConstraint(
            ["match_id"],
            ["matches.id"],
            name=op.f("fk_identity_merges_match_id_matches"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["merged_by"],
            ["users.id"],
            name=op.f("fk_identity_merges_merged_by_users"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_identity_merges_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_identity_merges")),
        sa.UniqueConstraint(
            "match_id",
            "revision",
            "source_identity_id",
            name=op.f("uq_identity_merges_match_id_revision_source_identity_id"),
        ),
    )
    with op.batch_alter_table("identity_merges", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_merges_organization_id"), ["organization_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("identity_merges", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_merges_organization_id"))

    op.drop_table("identity_merges")
    with op.batch_alter_table("identity_assignments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_identity_assignments_player_id"))
        batch_op.drop_index(batch_op.f("ix_identity_assignments_organization_id"))

    op.drop_table("identity_assignments")
    with op.batch_alter_table("roster_players", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_roster_players_team_id"))
        batch_op.drop_index(batch_op.f("ix_roster_players_organization_id"))

    op.drop_table("roster_players")
