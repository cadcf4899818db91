"""Who may do what in an organization: one table, read by every router.

| permission            | owner | admin | analyst | viewer |
|-----------------------|:-----:|:-----:|:-------:|:------:|
| view (catalog, streams, processing status) | x | x | x | x |
| read_analytics        |   x   |   x   |    x    |        |
| edit_catalog (matches, teams) | x | x | x |        |
| upload                |   x   |   x   |    x    |        |
| reprocess (and cancel)|   x   |   x   |         |        |
| assign_sides (which kit is home, the home/away override) | x | x | |        |
| manage_devices        |   x   |   x   |         |        |
| manage_members        |   x   |   x   |         |        |
| manage_organization (rename, delete) | x |  |       |        |

``assign_sides`` is an operator's: it changes what a processed match's analytics say (kit
colours, starting side, swapping home and away) without reprocessing. Analysts still give the
kit colours and starting side when they create or upload a match (``edit_catalog``, ``upload``).

Admins manage members below owner only: making, changing or removing an owner is for owners
(enforced by the organizations router), and an organization always keeps one owner.
"""

from __future__ import annotations

from enum import StrEnum

from polyvision.storage.metadata.models import Role


class Permission(StrEnum):
    view = "view"
    read_analytics = "read_analytics"
    edit_catalog = "edit_catalog"
    upload = "upload"
    reprocess = "reprocess"
    assign_sides = "assign_sides"
    manage_devices = "manage_devices"
    manage_members = "manage_members"
    manage_organization = "manage_organization"


_ANALYST = frozenset(
    {Permission.view, Permission.read_analytics, Permission.edit_catalog, Permission.upload}
)
_ADMIN = _ANALYST | {
    Permission.reprocess,
    Permission.assign_sides,
    Permission.manage_devices,
    Permission.manage_members,
}

ROLE_PERMISSIONS: dict[Role, frozenset[Permission]] = {
    Role.owner: frozenset(Permission),
    Role.admin: frozenset(_ADMIN),
    Role.analyst: _ANALYST,
    Role.viewer: frozenset({Permission.view}),
}


def allows(role: Role, permission: Permission) -> bool:
    """Whether a member with ``role`` holds ``permission``."""
    return permission in ROLE_PERMISSIONS[role]
