"""Team and role codes of tracked people, defined once for everyone who reads or writes them.

The track stage stores them as ``Int8`` in the analytics table ``track_points`` (columns
``team`` and ``role``), and `polyvision eval` turns them back into the names of the synthetic
ground truth (`synth.types.Team` and `synth.types.Role` values) to score them. Both sides import
this module, so it stays standard-library only and free of the heavier packages.

Codes are small integers, not enums, because they travel as numpy and Arrow ``int8`` columns;
``-1`` means "not assigned" in both, which is also the columns' database default (rows written
before a stage assigned them).
"""

from __future__ import annotations

from typing import Final

UNKNOWN: Final = "unknown"
"""The name of an unassigned code (and of any code this module does not know)."""

# -- teams ---------------------------------------------------------------------------------------

TEAM_UNKNOWN: Final = -1
"""No team: not assigned yet, or the referee or the ball (they belong to neither side)."""
TEAM_AWAY: Final = 0
TEAM_HOME: Final = 1

# `activities/track/teams.py` labels the bluer kit 0, and in `polyvision synth` matches the away
# side plays in blue; a real match needs the kit-to-side mapping from the catalog instead.
TEAM_NAMES: Final[dict[int, str]] = {TEAM_AWAY: "away", TEAM_HOME: "home"}
"""Code → name, as in the synthetic truth's ``team`` column; unknown codes are absent."""

# -- roles ---------------------------------------------------------------------------------------

ROLE_UNKNOWN: Final = -1
"""No role assigned (also the ball, which is not a person)."""
ROLE_PLAYER: Final = 0
"""An outfield player."""
ROLE_GOALKEEPER: Final = 1
ROLE_REFEREE: Final = 2

# The names are the synthetic truth's ``role`` values, so evaluation compares strings directly.
ROLE_NAMES: Final[dict[int, str]] = {
    ROLE_PLAYER: "outfield",
    ROLE_GOALKEEPER: "goalkeeper",
    ROLE_REFEREE: "referee",
}
"""Code → name, as in the synthetic truth's ``role`` column; unknown codes are absent."""


def team_name(code: int) -> str:
    """The name of a team code; ``"unknown"`` for -1 and for any code not in `TEAM_NAMES`."""
    return TEAM_NAMES.get(int(code), UNKNOWN)


def role_name(code: int) -> str:
    """The name of a role code; ``"unknown"`` for -1 and for any code not in `ROLE_NAMES`."""
    return ROLE_NAMES.get(int(code), UNKNOWN)


def team_code(name: str) -> int:
    """The code of a team name; `TEAM_UNKNOWN` for any other name (``referee``, ``ball``)."""
    return next((code for code, known in TEAM_NAMES.items() if known == name), TEAM_UNKNOWN)


def role_code(name: str) -> int:
    """The code of a role name; `ROLE_UNKNOWN` for any other name (``ball``, ``unknown``)."""
    return next((code for code, known in ROLE_NAMES.items() if known == name), ROLE_UNKNOWN)
