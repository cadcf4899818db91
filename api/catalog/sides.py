"""A match's side settings as the API takes them: which kit is home, and the operator's override.

The track stage splits players into two kits; which of them is the home team comes from these
settings (`activities.track.sides`): the shirt colours, or which goal home defends in the first
minutes. Both may be given when the match is created or uploaded; an operator may change them,
and swap home and away outright, later (``PATCH .../sides``), with no reprocessing: the
analytics routes apply the difference at read time (`api.routes.analytics`).
"""

from __future__ import annotations

from typing import Annotated, Self

from pydantic import BaseModel, Field, StrictBool, StringConstraints, model_validator

from activities.track.sides import HEX_COLOUR, SideSettings
from polyvision.storage.metadata.models import Match

SAME_KITS = "The home and away kits need different colours."

KitColour = Annotated[
    str,
    StringConstraints(pattern=HEX_COLOUR.pattern, to_lower=True),
    Field(
        description="Shirt colour as #rrggbb (stored in lower case).",
        examples=["#c8102e"],
    ),
]
"""A shirt colour: ``#rrggbb``, either case; anything else is a 422."""

HomeStartsLeft = Annotated[
    StrictBool | None,
    Field(
        description="Whether the home team defends the goal at pitch x = 0 (the left one in "
        "the panorama) in the first minutes; used when no kit colour decides."
    ),
]


def kits_problem(home: str | None, away: str | None) -> str | None:
    """Why two kit colours cannot stand together, or None: the same colour for both sides
    would tell the kits apart by nothing."""
    if home is not None and away is not None and home.lower() == away.lower():
        return SAME_KITS
    return None


class KitSettings(BaseModel):
    """The side settings a new match may carry (created by hand or by its upload)."""

    home_kit_colour: KitColour | None = None
    away_kit_colour: KitColour | None = None
    home_starts_left: HomeStartsLeft = None

    @model_validator(mode="after")
    def _different_kits(self) -> Self:
        problem = kits_problem(self.home_kit_colour, self.away_kit_colour)
        if problem is not None:
            raise ValueError(problem)
        return self


def side_settings(match: Match) -> SideSettings:
    """The match's settings as the track stage and the read-time swap take them."""
    return SideSettings(
        home_kit_colour=match.home_kit_colour,
        away_kit_colour=match.away_kit_colour,
        home_starts_left=match.home_starts_left,
        teams_swapped=match.teams_swapped,
    )
