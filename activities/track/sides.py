"""Which kit is the home team: the track stage's two kit clusters mapped to home and away.

The track stage splits the outfield players into two kits by colour (clusters 0 and 1,
`activities.track.teams`), but a cluster's number says nothing about which real team wears it.
The catalog knows more, and three rules use it, the first that can decide wins:

1. ``kit_colour``: the shirt colours given for the match (hex ``#rrggbb``). Each given colour is
   converted to Lab and the assignment (cluster 0 home and 1 away, or the reverse) with the
   smaller total colour distance wins. One colour is enough; both count when both are given.
2. ``starting_side``: which goal the home team defends in the first minutes. Its players stand
   nearer their own goal on average, so the cluster with the smaller mean pitch ``x`` over those
   minutes is the one defending the goal at ``x = 0``.
3. ``default``: cluster 1 is home and cluster 0 away, the convention before this module
   (`polyvision.roles.TEAM_NAMES`), so matches without settings keep their old codes.

The operator's override (``teams_swapped``) is applied last, whatever rule decided, so an
operator corrects a wrong answer of any rule in one place.

The decision is recorded per revision next to the track stage's outputs (`SidesRecord`, in
``track/sides.json``): what the stage saw (each cluster's colour and mean ``x``), the settings it
used and the answer. An operator who changes the settings after processing needs no reprocess:
`served_swap` decides again from the recorded clusters with the settings as they are now, and
the API swaps the stored team codes at read time when the answers differ.

Standard library and numpy only: the API imports this module (the read-time swap).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt

__all__ = [
    "DEFAULT_SIDES",
    "HEX_COLOUR",
    "KITS",
    "SIDES_ARTIFACT",
    "TEAM_CODES",
    "KitCluster",
    "Rule",
    "Side",
    "SideAssignment",
    "SideSettings",
    "SidesRecord",
    "assign_sides",
    "hex_to_lab8",
    "hex_to_rgb",
    "lab8_from_lab",
    "rgb_to_lab8",
    "served_swap",
]

Side = Literal["home", "away"]
Rule = Literal["kit_colour", "starting_side", "default"]

KITS: Final = (0, 1)
"""The kit clusters the track stage finds (goalkeepers and referees are neither)."""

TEAM_CODES: Final[dict[Side, int]] = {"home": 1, "away": 0}
"""Side → the team code stored in ``track_points.team`` (-1: unknown; `polyvision.roles`)."""

DEFAULT_SIDES: Final[dict[int, Side]] = {0: "away", 1: "home"}
"""Cluster → side when nothing decides: the codes stored before sides were assigned."""

SIDES_ARTIFACT: Final = "sides.json"
"""The record's file name in the track stage's folder of a revision."""

RECORD_VERSION: Final = 1

HEX_COLOUR: Final = re.compile(r"^#[0-9a-fA-F]{6}$")
"""A shirt colour as the catalog takes it: ``#rrggbb``."""

L_WEIGHT: Final = 0.5
"""Weight of lightness against chroma in colour distances, as in `activities.track.teams`:
shade, sun and exposure move a shirt's lightness along the pitch far more than its hue."""


# --- colour ------------------------------------------------------------------------------

# OpenCV's sRGB → XYZ (D65) matrix and white point (imgproc/src/color_lab.cpp), so that a
# colour typed in the catalog lands where cv2.cvtColor puts the same pixel.
_RGB_TO_XYZ: Final = np.array(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ]
)
_WHITE_D65: Final = np.array([0.950456, 1.0, 1.088754])
_EPSILON: Final = 0.008856  # (6/29)^3, where CIE's f(t) turns from linear to cube root


def hex_to_rgb(colour: str) -> tuple[int, int, int]:
    """``#rrggbb`` (either case) → ``(r, g, b)`` in 0..255.

    Raises:
        ValueError: Not a ``#rrggbb`` colour.
    """
    if not HEX_COLOUR.match(colour):
        raise ValueError(f"not a #rrggbb colour: {colour!r}")
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def rgb_to_lab8(rgb: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """sRGB in 0..255 → CIELAB on OpenCV's 8-bit scale, unrounded.

    The scale is the one ``cv2.cvtColor(image_uint8, cv2.COLOR_RGB2Lab)`` gives: ``L * 255 / 100``
    and ``a + 128``, ``b + 128``, each in 0..255 (D65 white, OpenCV's own matrix). OpenCV rounds
    and works in fixed point with lookup tables; this stays in floating point, within two units
    of it (checked in the tests), far below the difference between two kits.

    Args:
        rgb: ``[..., 3]`` red, green, blue.

    Returns:
        ``[..., 3]`` ``L, a, b`` on the 8-bit scale.
    """
    linear = np.asarray(rgb, np.float64) / 255.0
    linear = np.where(linear <= 0.04045, linear / 12.92, ((linear + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ.T / _WHITE_D65
    f = np.where(xyz > _EPSILON, np.cbrt(xyz), 7.787 * xyz + 16.0 / 116.0)
    fx, fy, fz = f[..., 0], f[..., 1], f[..., 2]
    lightness = 116.0 * fy - 16.0
    return np.stack(
        [lightness * 255.0 / 100.0, 500.0 * (fx - fy) + 128.0, 200.0 * (fy - fz) + 128.0],
        axis=-1,
    )


def hex_to_lab8(colour: str) -> npt.NDArray[np.float64]:
    """A ``#rrggbb`` colour as ``[L, a, b]`` on OpenCV's 8-bit Lab scale (`rgb_to_lab8`).

    Raises:
        ValueError: Not a ``#rrggbb`` colour.
    """
    return rgb_to_lab8(hex_to_rgb(colour))


def lab8_from_lab(lab: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """CIELAB as OpenCV gives it for float images (``L`` 0..100, ``a, b`` about -128..127)
    → the 8-bit scale `KitCluster` takes. The detect stage's torso colours are on the float
    scale (`activities.detect.colour`)."""
    value = np.asarray(lab, np.float64)
    return np.stack(
        [value[..., 0] * 255.0 / 100.0, value[..., 1] + 128.0, value[..., 2] + 128.0], axis=-1
    )


def _lab_distance(lab8_a: npt.ArrayLike, lab8_b: npt.ArrayLike, l_weight: float) -> float:
    """Euclidean distance in true CIELAB units (lightness weighted) between two 8-bit Lab
    colours: on the 8-bit scale ``L`` is stretched 2.55 times, which would overweight it."""
    a, b = np.asarray(lab8_a, np.float64), np.asarray(lab8_b, np.float64)
    scale = np.array([100.0 / 255.0 * l_weight, 1.0, 1.0])
    return float(np.linalg.norm((a - b) * scale))


# --- the decision ------------------------------------------------------------------------


@dataclass(frozen=True)
class KitCluster:
    """What the track stage saw of one kit cluster.

    Attributes:
        lab: Mean shirt colour ``(L, a, b)`` on OpenCV's 8-bit Lab scale (`rgb_to_lab8`); NaN
            where unknown.
        mean_x: Mean pitch ``x`` in metres (0..105, 0 is the left goal) of the cluster's players
            over the first minutes; NaN where unknown.
    """

    lab: tuple[float, float, float]
    mean_x: float = math.nan

    @classmethod
    def from_float_lab(cls, lab: npt.ArrayLike, mean_x: float = math.nan) -> KitCluster:
        """A cluster from a colour on OpenCV's *float* Lab scale (``L`` 0..100, ``a, b`` about
        -128..127), the scale of the detect stage's torso colours: converted to the 8-bit
        scale with `lab8_from_lab`. Passing float Lab as ``lab`` directly would read a red
        shirt as green-blue."""
        lightness, a, b = (float(value) for value in lab8_from_lab(lab).reshape(3))
        return cls(lab=(lightness, a, b), mean_x=float(mean_x))

    @property
    def has_colour(self) -> bool:
        return all(math.isfinite(value) for value in self.lab)

    @property
    def has_position(self) -> bool:
        return math.isfinite(self.mean_x)


@dataclass(frozen=True)
class SideSettings:
    """The match's settings from the catalog (the same fields in `TrackInput`).

    Attributes:
        home_kit_colour: Home shirt colour ``#rrggbb``, if given.
        away_kit_colour: Away shirt colour ``#rrggbb``, if given.
        home_starts_left: Whether the home team defends the goal at ``x = 0`` in the first
            minutes, if known.
        teams_swapped: The operator's override: swap whatever the rules decide.

    Raises:
        ValueError: A colour that is not ``#rrggbb``.
    """

    home_kit_colour: str | None = None
    away_kit_colour: str | None = None
    home_starts_left: bool | None = None
    teams_swapped: bool = False

    def __post_init__(self) -> None:
        for colour in (self.home_kit_colour, self.away_kit_colour):
            if colour is not None:
                hex_to_rgb(colour)

    def kit_colours(self) -> dict[Side, str]:
        """The colours given, by side."""
        given: dict[Side, str | None] = {
            "home": self.home_kit_colour,
            "away": self.away_kit_colour,
        }
        return {side: colour for side, colour in given.items() if colour is not None}


@dataclass(frozen=True)
class SideAssignment:
    """Which side each kit cluster is, and why.

    Attributes:
        sides: Cluster (0 and 1) → ``"home"`` or ``"away"``, the override applied.
        rule: The rule that decided before the override.
        swapped: Whether the operator's override swapped the rule's answer.
    """

    sides: dict[int, Side]
    rule: Rule
    swapped: bool = False

    def team_codes(self) -> dict[int, int]:
        """Cluster → the team code to store (1 home, 0 away; `TEAM_CODES`)."""
        return {cluster: TEAM_CODES[side] for cluster, side in self.sides.items()}


def _swap(sides: Mapping[int, Side]) -> dict[int, Side]:
    return {cluster: "away" if side == "home" else "home" for cluster, side in sides.items()}


def _home_is(cluster: int) -> dict[int, Side]:
    return {cluster: "home", 1 - cluster: "away"}


def _by_kit_colour(
    clusters: Mapping[int, KitCluster], settings: SideSettings, l_weight: float
) -> dict[int, Side] | None:
    """The assignment closer to the given shirt colours; None when it cannot tell."""
    given = settings.kit_colours()
    if not given or not all(c in clusters and clusters[c].has_colour for c in KITS):
        return None
    targets = {side: hex_to_lab8(colour) for side, colour in given.items()}

    def cost(sides: Mapping[int, Side]) -> float:
        return math.fsum(
            _lab_distance(clusters[cluster].lab, targets[side], l_weight)
            for cluster, side in sides.items()
            if side in targets
        )

    home_0, home_1 = _home_is(0), _home_is(1)
    cost_0, cost_1 = cost(home_0), cost(home_1)
    if math.isclose(cost_0, cost_1, rel_tol=1e-9, abs_tol=1e-9):
        return None  # the colours sit half-way between the kits: no answer from them
    return home_0 if cost_0 < cost_1 else home_1


def _by_starting_side(
    clusters: Mapping[int, KitCluster], settings: SideSettings
) -> dict[int, Side] | None:
    """The cluster nearer the left goal is the one defending it; None when it cannot tell."""
    if settings.home_starts_left is None:
        return None
    if not all(c in clusters and clusters[c].has_position for c in KITS):
        return None
    x0, x1 = clusters[0].mean_x, clusters[1].mean_x
    if x0 == x1:
        return None
    left = 0 if x0 < x1 else 1
    return _home_is(left if settings.home_starts_left else 1 - left)


def assign_sides(
    clusters: Mapping[int, KitCluster], settings: SideSettings, *, l_weight: float = L_WEIGHT
) -> SideAssignment:
    """Map the two kit clusters to home and away.

    Args:
        clusters: Cluster id (0 or 1) → what the track stage saw of it; a missing cluster, or
            one without a colour or a position, leaves the rules that need it undecided.
        settings: The match's settings; ``teams_swapped`` is applied last.
        l_weight: Weight of lightness against chroma in colour distances.

    Returns:
        Both clusters' sides, the rule that decided (``kit_colour``, ``starting_side`` or
        ``default``, in that order of precedence) and whether the override swapped them.

    Raises:
        ValueError: A cluster id other than 0 or 1.
    """
    unknown = sorted(set(clusters) - set(KITS))
    if unknown:
        raise ValueError(f"kit clusters are 0 and 1, not {unknown}")
    rule: Rule = "default"
    sides = _by_kit_colour(clusters, settings, l_weight)
    if sides is not None:
        rule = "kit_colour"
    else:
        sides = _by_starting_side(clusters, settings)
        if sides is not None:
            rule = "starting_side"
        else:
            sides = dict(DEFAULT_SIDES)
    if settings.teams_swapped:
        sides = _swap(sides)
    return SideAssignment(
        sides=dict(sorted(sides.items())), rule=rule, swapped=settings.teams_swapped
    )


# --- the record and the read-time swap ---------------------------------------------------


def _finite_or_none(value: float) -> float | None:
    # JSON has no NaN; an unknown figure is null.
    return value if math.isfinite(value) else None


def _float(value: Any) -> float:
    return math.nan if value is None else float(value)


@dataclass(frozen=True)
class SidesRecord:
    """What the track stage decided for one revision, and from what (``track/sides.json``).

    Attributes:
        settings: The match's settings the stage was given.
        clusters: What it saw of each kit cluster.
        assignment: Its answer: the team codes it stored follow ``assignment.sides``.
    """

    settings: SideSettings
    clusters: dict[int, KitCluster]
    assignment: SideAssignment

    @classmethod
    def decide(cls, clusters: Mapping[int, KitCluster], settings: SideSettings) -> SidesRecord:
        """Decide with `assign_sides` and keep what the decision came from."""
        return cls(settings, dict(clusters), assign_sides(clusters, settings))

    def to_json(self) -> bytes:
        """The record as a small JSON document (unknown figures as null)."""
        document = {
            "version": RECORD_VERSION,
            "settings": {
                "home_kit_colour": self.settings.home_kit_colour,
                "away_kit_colour": self.settings.away_kit_colour,
                "home_starts_left": self.settings.home_starts_left,
                "teams_swapped": self.settings.teams_swapped,
            },
            "clusters": {
                str(cluster): {
                    "lab": [_finite_or_none(value) for value in kit.lab],
                    "mean_x": _finite_or_none(kit.mean_x),
                }
                for cluster, kit in sorted(self.clusters.items())
            },
            "sides": {str(cluster): side for cluster, side in self.assignment.sides.items()},
            "rule": self.assignment.rule,
            "swapped": self.assignment.swapped,
        }
        return json.dumps(document, sort_keys=True, allow_nan=False).encode()

    @classmethod
    def from_json(cls, body: bytes | str) -> SidesRecord:
        """Read `to_json`'s document back.

        Raises:
            ValueError: Not such a document (malformed, another version, a bad value).
        """
        try:
            document = json.loads(body)
            if document.get("version") != RECORD_VERSION:
                raise ValueError(f"unknown sides record version {document.get('version')!r}")
            settings = SideSettings(**document["settings"])
            clusters = {
                int(cluster): KitCluster(
                    lab=(
                        _float(kit["lab"][0]),
                        _float(kit["lab"][1]),
                        _float(kit["lab"][2]),
                    ),
                    mean_x=_float(kit["mean_x"]),
                )
                for cluster, kit in document["clusters"].items()
            }
            sides: dict[int, Side] = {}
            for cluster, side in document["sides"].items():
                if side not in TEAM_CODES:
                    raise ValueError(f"unknown side {side!r}")
                sides[int(cluster)] = side
            rule = document["rule"]
            if rule not in ("kit_colour", "starting_side", "default"):
                raise ValueError(f"unknown rule {rule!r}")
            assignment = SideAssignment(sides, rule, bool(document["swapped"]))
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            raise ValueError(f"not a sides record: {exc!r}") from exc
        if set(sides) != set(KITS):
            raise ValueError("a sides record names both clusters")
        return cls(settings, clusters, assignment)


def served_swap(record: SidesRecord | None, settings: SideSettings) -> bool:
    """Whether the stored team codes of a revision must be swapped to answer with ``settings``.

    Args:
        record: What the track stage decided for the revision; None for a revision processed
            before sides were assigned, whose codes follow `DEFAULT_SIDES`.
        settings: The match's settings now.

    Returns:
        True when deciding again from the recorded clusters with today's settings flips home
        and away; never when the settings are the ones the stage used (so a later change to
        the rules themselves cannot flip a revision nobody touched). Without a record only the
        override can be applied (nothing is known of the kits' colours or positions): True
        when ``teams_swapped`` is set.
    """
    if record is None:
        return settings.teams_swapped
    if settings == record.settings:
        return False
    now = assign_sides(record.clusters, settings)
    return now.sides != record.assignment.sides
