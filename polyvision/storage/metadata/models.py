"""Metadata tables: organizations, users, devices, matches and what hangs off them.

The table classes are the schema (the target of the migrations). Where the API returns a row
as it is, a `…Public` model beside its table is that response body (never a secret or a hash),
and a `…Base` holds the fields the two share. Request bodies, and responses shaped differently
from a row, live with their routes (`api.routes.*`, `api.ingest.schemas`), which add examples
and validation the tables do not need.

Every tenant-owned table carries an indexed `organization_id`; queries are always scoped by it.
Datetimes are timezone-aware and come back in UTC on SQLite and PostgreSQL alike
(SQLModel maps `datetime` to its `UTCDateTime` type).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import StrEnum

import sqlalchemy as sa
from pydantic import AwareDatetime, computed_field
from sqlalchemy.orm import registry
from sqlmodel import Field, SQLModel

# Explicit constraint names keep migrations stable across backends and let SQLite batch
# operations (which recreate tables) find constraints by name.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SHA256_HEX = r"^[0-9a-f]{64}$"


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def _enum(enum_cls: type[StrEnum]) -> sa.Enum:
    # Stored as VARCHAR of the enum *values*: adding a value later needs no ALTER TYPE on
    # PostgreSQL and the same migration runs on SQLite. Length leaves room for new values.
    return sa.Enum(
        enum_cls,
        native_enum=False,
        length=32,
        values_callable=lambda members: [member.value for member in members],
        validate_strings=True,
    )


class MetadataModel(
    SQLModel, registry=registry(metadata=sa.MetaData(naming_convention=NAMING_CONVENTION))
):
    """Root of all metadata models; owns `MetadataModel.metadata`, the target of migrations."""


metadata = MetadataModel.metadata


# --- enums -------------------------------------------------------------------------------


class Role(StrEnum):
    """A member's role in an organization, most privileged first."""

    owner = "owner"
    admin = "admin"
    analyst = "analyst"
    viewer = "viewer"


class DeviceStatus(StrEnum):
    active = "active"
    revoked = "revoked"


class MatchStatus(StrEnum):
    created = "created"
    uploading = "uploading"
    processing = "processing"
    ready = "ready"
    failed = "failed"
    cancelled = "cancelled"
    # Past its organization's retention: objects and analytics rows removed, the row kept.
    expired = "expired"


class UploadStatus(StrEnum):
    created = "created"
    uploading = "uploading"
    # One completion request holds the session while it assembles and verifies the files.
    completing = "completing"
    completed = "completed"
    failed = "failed"
    aborted = "aborted"


class AssetKind(StrEnum):
    recording_left = "recording_left"
    recording_right = "recording_right"
    panorama = "panorama"
    vcam = "vcam"
    hls = "hls"
    dash = "dash"
    manifest = "manifest"
    heatmap = "heatmap"
    thumbnail = "thumbnail"


# --- organizations -----------------------------------------------------------------------


class OrganizationBase(MetadataModel):
    name: str = Field(min_length=1, max_length=200)
    slug: str = Field(
        min_length=1,
        max_length=64,
        unique=True,
        schema_extra={"pattern": r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$"},
    )


#: Days a match's data (objects and analytics rows) is kept after the match was created, unless
#: its organization says otherwise; and the most an organization may ask for (the analytics
#: tables' TTL backstop and the Temporal namespace's retention match it: `workflows.retention`).
DEFAULT_RETENTION_DAYS = 90
MAX_RETENTION_DAYS = 90


class Organization(OrganizationBase, table=True):
    __tablename__ = "organizations"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)
    # How long its matches' data is kept (the daily retention schedule, migration 0011).
    retention_days: int = Field(
        default=DEFAULT_RETENTION_DAYS,
        ge=1,
        le=MAX_RETENTION_DAYS,
        sa_column_kwargs={"server_default": str(DEFAULT_RETENTION_DAYS)},
    )


class OrganizationPublic(OrganizationBase):
    id: uuid.UUID
    created_at: datetime
    retention_days: int = DEFAULT_RETENTION_DAYS


# --- users and memberships ---------------------------------------------------------------


class UserBase(MetadataModel):
    # Callers store e-mail addresses lower-cased; uniqueness is then case-insensitive.
    email: str = Field(min_length=3, max_length=320, unique=True)
    full_name: str | None = Field(default=None, max_length=200)


class User(UserBase, table=True):
    __tablename__ = "users"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    password_hash: str = Field(max_length=255)
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow)
    # Set when the owner of the address followed a verification link; None: unverified.
    email_verified_at: datetime | None = None


class UserPublic(UserBase):
    id: uuid.UUID
    is_active: bool
    created_at: datetime
    email_verified_at: datetime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def email_verified(self) -> bool:
        return self.email_verified_at is not None


class Membership(MetadataModel, table=True):
    __tablename__ = "memberships"
    # The unique constraint's index (user_id first) also serves "my organizations".
    __table_args__ = (sa.UniqueConstraint("user_id", "organization_id"),)

    role: Role = Field(default=Role.viewer, sa_type=_enum(Role))
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE")
    organization_id: uuid.UUID = Field(
        foreign_key="organizations.id", ondelete="CASCADE", index=True
    )
    created_at: datetime = Field(default_factory=utcnow)


# --- devices -----------------------------------------------------------------------------


class DeviceBase(MetadataModel):
    name: str = Field(min_length=1, max_length=200)


class Device(DeviceBase, table=True):
    __tablename__ = "devices"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    organization_id: uuid.UUID = Field(
        foreign_key="organizations.id", ondelete="CASCADE", index=True
    )
    # Unique so a signature identifies exactly one device.
    public_key: str = Field(max_length=64, unique=True)
    status: DeviceStatus = Field(default=DeviceStatus.active, sa_type=_enum(DeviceStatus))
    provisioned_at: datetime = Field(default_factory=utcnow)
    revoked_at: datetime | None = None


class DevicePublic(DeviceBase):
    id: uuid.UUID
    organization_id: uuid.UUID
    public_key: str
    status: DeviceStatus
    provisioned_at: datetime
    revoked_at: datetime | None


class ProvisioningCode(MetadataModel, table=True):
    """A one-time code an operator hands to a device; only its hash is stored."""

    __tablename__ = "provisioning_codes"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    organization_id: uuid.UUID = Field(
        foreign_key="organizations.id", ondelete="CASCADE", index=True
    )
    code_hash: str = Field(max_length=128, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None
    # The device provisioned with this code, once used.
    device_id: uuid.UUID | None = Field(default=None, foreign_key="devices.id", ondelete="SET NULL")


class ProvisioningCodePublic(MetadataModel):
    id: uuid.UUID
    organization_id: uuid.UUID
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    device_id: uuid.UUID | None


# --- teams and matches -------------------------------------------------------------------


class TeamBase(MetadataModel):
    name: str = Field(min_length=1, max_length=200)


class Team(TeamBase, table=True):
    __tablename__ = "teams"
    __table_args__ = (sa.UniqueConstraint("organization_id", "name"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    organization_id: uuid.UUID = Field(
        foreign_key="organizations.id", ondelete="CASCADE", index=True
    )
    created_at: datetime = Field(default_factory=utcnow)


class TeamPublic(TeamBase):
    id: uuid.UUID
    organization_id: uuid.UUID
    created_at: datetime


class Match(MetadataModel, table=True):
    __tablename__ = "matches"

    title: str = Field(min_length=1, max_length=300)
    home_team_id: uuid.UUID | None = Field(
        default=None, foreign_key="teams.id", ondelete="SET NULL"
    )
    away_team_id: uuid.UUID | None = Field(
        default=None, foreign_key="teams.id", ondelete="SET NULL"
    )
    venue: str | None = Field(default=None, max_length=300)
    kickoff_at: AwareDatetime | None = None
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    organization_id: uuid.UUID = Field(
        foreign_key="organizations.id", ondelete="CASCADE", index=True
    )
    device_id: uuid.UUID | None = Field(default=None, foreign_key="devices.id", ondelete="SET NULL")
    status: MatchStatus = Field(default=MatchStatus.created, sa_type=_enum(MatchStatus))
    duration_s: float | None = Field(default=None, ge=0)
    # Bumped on every reprocess so outputs of an older run never overwrite a newer one.
    revision: int = Field(default=0, ge=0)
    # The newest revision whose outputs are complete (set by the index stage): what viewers
    # and analytics read, so a reprocess in progress never takes the published one away.
    published_revision: int | None = Field(default=None, ge=1)
    workflow_id: str | None = Field(default=None, max_length=200)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow, sa_column_kwargs={"onupdate": utcnow})
    # Which kit is home (`activities.track.sides`): shirt colours ``#rrggbb`` (lower case),
    # whether home defends the goal at pitch x = 0 in the first minutes, and the operator's
    # override that swaps whatever those decide. Passed to the track stage at the start of a
    # run; the API applies later changes to the served analytics at read time.
    home_kit_colour: str | None = Field(default=None, max_length=7)
    away_kit_colour: str | None = Field(default=None, max_length=7)
    home_starts_left: bool | None = None
    teams_swapped: bool = Field(default=False, sa_column_kwargs={"server_default": sa.false()})


# --- assets and uploads ------------------------------------------------------------------


class AssetBase(MetadataModel):
    kind: AssetKind = Field(sa_type=_enum(AssetKind))
    object_key: str = Field(min_length=1, max_length=1024, unique=True)
    # BIGINT: a 90-minute recording is far above 2 GiB.
    size_bytes: int = Field(ge=0, sa_type=sa.BigInteger)
    sha256: str | None = Field(default=None, max_length=64, schema_extra={"pattern": SHA256_HEX})
    content_type: str | None = Field(default=None, max_length=200)


class Asset(AssetBase, table=True):
    __tablename__ = "assets"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    organization_id: uuid.UUID = Field(
        foreign_key="organizations.id", ondelete="CASCADE", index=True
    )
    match_id: uuid.UUID = Field(foreign_key="matches.id", ondelete="CASCADE", index=True)
    created_at: datetime = Field(default_factory=utcnow)


class AssetPublic(AssetBase):
    id: uuid.UUID
    organization_id: uuid.UUID
    match_id: uuid.UUID
    created_at: datetime


class Upload(MetadataModel, table=True):
    """An upload session of a recording pair (left and right camera), opened by a device or
    a user; the sizes, checksums and frame counts are what the uploader declared up front."""

    __tablename__ = "uploads"
    # A retried "open session" from the same uploader finds its session by client_ref.
    __table_args__ = (sa.UniqueConstraint("organization_id", "client_ref"),)

    left_size: int = Field(ge=0, sa_type=sa.BigInteger)
    right_size: int = Field(ge=0, sa_type=sa.BigInteger)
    left_sha256: str = Field(max_length=64, schema_extra={"pattern": SHA256_HEX})
    right_sha256: str = Field(max_length=64, schema_extra={"pattern": SHA256_HEX})
    left_frames: int = Field(ge=0)
    right_frames: int = Field(ge=0)
    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    organization_id: uuid.UUID = Field(
        foreign_key="organizations.id", ondelete="CASCADE", index=True
    )
    match_id: uuid.UUID = Field(foreign_key="matches.id", ondelete="CASCADE", index=True)
    device_id: uuid.UUID | None = Field(default=None, foreign_key="devices.id", ondelete="SET NULL")
    # The user who opened the session when it was not a device.
    user_id: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    status: UploadStatus = Field(default=UploadStatus.created, sa_type=_enum(UploadStatus))
    started_at: datetime = Field(default_factory=utcnow)
    completed_at: datetime | None = None
    # When the recording started on the edge box (its clock).
    recorded_at: datetime | None = None
    # The uploader's own id for the recording pair (the edge spool's row id): idempotency key.
    client_ref: str | None = Field(default=None, max_length=200)
    part_size: int = Field(default=8 * 1024 * 1024, ge=1, sa_type=sa.BigInteger)
    left_key: str | None = Field(default=None, max_length=1024)
    right_key: str | None = Field(default=None, max_length=1024)
    rig_key: str | None = Field(default=None, max_length=1024)
    # Multipart upload ids of the object store, one per file.
    left_upload_id: str | None = Field(default=None, max_length=1024)
    right_upload_id: str | None = Field(default=None, max_length=1024)
    # Why the session failed (sizes, checksums, missing parts), shown to the uploader.
    error: str | None = Field(default=None, max_length=2000)


# Refresh tokens of the API's auth: only the SHA-256 of a token is stored; tokens that replace
# one another share a family_id, and a token presented twice revokes its whole family.
class RefreshToken(MetadataModel, table=True):
    __tablename__ = "refresh_tokens"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    family_id: uuid.UUID = Field(index=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", ondelete="CASCADE", index=True)
    token_hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    expires_at: datetime
    used_at: datetime | None = None
    revoked_at: datetime | None = None


# Device tokens are single-use: the jti of every accepted token is kept until the token expires,
# so a replayed token is refused even by another API replica (the primary key is the lock).
class DeviceTokenUse(MetadataModel, table=True):
    __tablename__ = "device_token_uses"

    jti: str = Field(max_length=128, primary_key=True)
    device_id: uuid.UUID = Field(foreign_key="devices.id", ondelete="CASCADE", index=True)
    expires_at: datetime = Field(index=True)
    used_at: datetime = Field(default_factory=utcnow)


# The RS256 keys that sign access tokens, shared by every API replica. The private key is
# encrypted at rest with a key derived from the server secret. `is_current` is true on the one
# signing key and NULL on retired ones: its unique constraint (NULLs are distinct) is what lets
# exactly one replica win a race to create the first key or to rotate.
class SigningKey(MetadataModel, table=True):
    __tablename__ = "signing_keys"

    kid: str = Field(max_length=64, primary_key=True)
    private_key: str = Field(sa_type=sa.Text)
    is_current: bool | None = Field(default=None, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
    retired_at: datetime | None = None


# --- detector models ---------------------------------------------------------------------


# The detector registry (`polyvision models`): one row per ONNX file in the object store, with
# what the detect stage needs to run it. Not tenant-owned: every organization's matches go
# through the same detector. `is_default` is true on the model the stage uses and NULL on the
# others: its unique constraint (NULLs are distinct) lets at most one row be the default, so two
# racing `set-default` calls cannot leave two.
class DetectorModel(MetadataModel, table=True):
    __tablename__ = "detector_models"
    __table_args__ = (sa.UniqueConstraint("name", "version"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    name: str = Field(max_length=64)
    version: str = Field(max_length=64)
    format: str = Field(default="onnx", max_length=16)
    # The output layout the backend decodes: "yolox" or "yolov8" (activities.detect.model_spec).
    decoder: str = Field(max_length=16)
    input_width: int = Field(ge=1)
    input_height: int = Field(ge=1)
    # Model class index (as a string: JSON object keys) to our class name, e.g.
    # {"0": "person", "32": "ball"}; several indices may name one class.
    class_map: dict[str, str] = Field(sa_type=sa.JSON)
    sha256: str = Field(max_length=64, schema_extra={"pattern": SHA256_HEX})
    size_bytes: int = Field(ge=0, sa_type=sa.BigInteger)
    object_key: str = Field(max_length=1024)
    is_default: bool | None = Field(default=None, unique=True)
    created_at: datetime = Field(default_factory=utcnow)


# --- rosters and tracked identities ------------------------------------------------------


class RosterPlayerBase(MetadataModel):
    name: str = Field(min_length=1, max_length=200)
    # NULL: no number given; two players of a team never share one (NULLs are distinct).
    shirt_number: int | None = Field(default=None, ge=0, le=999)


# A player on a team's roster: who an analyst names a tracked identity after.
class RosterPlayer(RosterPlayerBase, table=True):
    __tablename__ = "roster_players"
    __table_args__ = (sa.UniqueConstraint("team_id", "shirt_number"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    organization_id: uuid.UUID = Field(
        foreign_key="organizations.id", ondelete="CASCADE", index=True
    )
    team_id: uuid.UUID = Field(foreign_key="teams.id", ondelete="CASCADE", index=True)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow, sa_column_kwargs={"onupdate": utcnow})
    created_by: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")


class RosterPlayerPublic(RosterPlayerBase):
    id: uuid.UUID
    organization_id: uuid.UUID
    team_id: uuid.UUID
    created_at: datetime
    updated_at: datetime
    created_by: uuid.UUID | None


# An analyst's naming of a tracked identity (the analytics' integer identity id, per match and
# revision: ids are stable across runs but a reprocess may join tracks differently) after a
# roster player. One player per identity; deleting the player removes the naming.
class IdentityAssignment(MetadataModel, table=True):
    __tablename__ = "identity_assignments"
    __table_args__ = (sa.UniqueConstraint("match_id", "revision", "identity_id"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    organization_id: uuid.UUID = Field(
        foreign_key="organizations.id", ondelete="CASCADE", index=True
    )
    match_id: uuid.UUID = Field(foreign_key="matches.id", ondelete="CASCADE")
    revision: int = Field(ge=1)
    identity_id: int = Field(ge=0, sa_type=sa.BigInteger)
    player_id: uuid.UUID = Field(foreign_key="roster_players.id", ondelete="CASCADE", index=True)
    assigned_by: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    assigned_at: datetime = Field(default_factory=utcnow)


# An analyst's merge of two identities of a match revision: ``source`` becomes ``target``.
# Each identity is merged into at most one other; chains resolve to their end, and a merge
# that would close a cycle is refused before it is stored.
class IdentityMerge(MetadataModel, table=True):
    __tablename__ = "identity_merges"
    __table_args__ = (
        sa.UniqueConstraint("match_id", "revision", "source_identity_id"),
        sa.CheckConstraint("source_identity_id <> target_identity_id", name="not_itself"),
    )

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    organization_id: uuid.UUID = Field(
        foreign_key="organizations.id", ondelete="CASCADE", index=True
    )
    match_id: uuid.UUID = Field(foreign_key="matches.id", ondelete="CASCADE")
    revision: int = Field(ge=1)
    source_identity_id: int = Field(ge=0, sa_type=sa.BigInteger)
    target_identity_id: int = Field(ge=0, sa_type=sa.BigInteger)
    merged_by: uuid.UUID | None = Field(default=None, foreign_key="users.id", ondelete="SET NULL")
    merged_at: datetime = Field(default_factory=utcnow)
