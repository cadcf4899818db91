"""Teams and roles per identity: two outfield kits, the goalkeepers and the referee.

Once the match is tracked and its fragments joined (`activities.track.linking`), every
identity has a kit colour (mean torso Lab) and a place on the pitch over its life. Then:

1. The two outfield kits are the two big colour clusters (`assign_teams`: trimmed two-means
   weighted by samples); each identity is in one, or an outlier. Far players' kits are
   smeared with the grass, so a cluster is wide along some channels and tight along others:
   an identity is also an outlier when, in any Lab channel, it lies more than ``outlier_z``
   robust deviations (median absolute deviation) from its cluster's median. A goalkeeper's
   yellow among reds, or a referee's black among blues, is far out in one channel.
2. Outliers are grouped by colour (one goalkeeper or one referee may be several identities),
   and each group is placed by where it spent its time: a group that stays near one goal is
   that goal's goalkeeper, and belongs to the outfield kit whose players stand nearer that
   goal on average (a team's own half holds its goalkeeper); any other group is a referee
   (no team).
3. Identities with too few colour samples stay unknown: a guess would only add a wrong label.

Whole-life per identity on purpose: a player does not change team mid-match, so one label per
identity is both right and stable for the analytics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from activities.track.teams import assign_teams
from polyvision.geometry.pitch import PITCH_LENGTH_M
from polyvision.roles import (
    ROLE_GOALKEEPER,
    ROLE_PLAYER,
    ROLE_REFEREE,
    ROLE_UNKNOWN,
    TEAM_UNKNOWN,
)

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class KitSettings:
    """Tuning of `assign_kits`.

    Attributes:
        min_samples: identities with fewer colour samples stay unknown.
        group_colour: outliers closer than this Lab distance are one person-kind.
        goal_area_m: a group whose mean distance to a goal line is under this is a goalkeeper.
        outlier_z: robust deviations from its cluster's median, in any Lab channel, that make
            an identity an outlier of its cluster.
    """

    min_samples: int = 10
    group_colour: float = 18.0
    goal_area_m: float = 22.0
    outlier_z: float = 5.0


@dataclass(frozen=True)
class IdentitySummary:
    """What `assign_kits` needs of each identity, in parallel arrays.

    Attributes:
        track_id: ``[T]`` identities.
        lab: ``[T, 3]`` mean torso colour (NaN: none).
        samples: ``[T]`` colour samples behind ``lab``.
        frames: ``[T]`` frames the identity was seen in.
        mean_x: ``[T]`` mean pitch x (metres) over its life.
    """

    track_id: I64
    lab: F64
    samples: I64
    frames: I64
    mean_x: F64


@dataclass(frozen=True)
class Kits:
    """Team cluster (0, 1 or -1) and role code of every identity (`polyvision.roles`)."""

    team: dict[int, int]
    role: dict[int, int]
    cluster_lab: dict[int, tuple[float, float, float]]
    """Mean Lab colour of each outfield cluster (what the home/away mapping compares)."""
    cluster_mean_x: dict[int, float]
    """Mean pitch x of each outfield cluster's players over the whole match."""


def assign_kits(summary: IdentitySummary, settings: KitSettings | None = None) -> Kits:
    """Team and role of every identity (see the module docstring)."""
    s = settings or KitSettings()
    ids = summary.track_id
    cluster = assign_teams(ids, summary.lab, summary.samples, min_samples=s.min_samples)
    team = np.array([cluster[int(t)] for t in ids], np.int64)
    enough = summary.samples >= s.min_samples
    team[_channel_outliers(summary.lab, team, s.outlier_z)] = TEAM_UNKNOWN
    role = np.full(len(ids), ROLE_UNKNOWN, np.int64)
    role[(team >= 0) & enough] = ROLE_PLAYER
    cluster_lab: dict[int, tuple[float, float, float]] = {}
    cluster_x: dict[int, float] = {}
    for k in (0, 1):
        members = team == k
        weight = summary.frames[members].astype(np.float64)
        if weight.sum() > 0:
            lab = (summary.lab[members] * summary.samples[members, None]).sum(0)
            lab /= max(summary.samples[members].sum(), 1)
            cluster_lab[k] = (float(lab[0]), float(lab[1]), float(lab[2]))
            cluster_x[k] = float((summary.mean_x[members] * weight).sum() / weight.sum())
    outliers = np.flatnonzero((team < 0) & enough & np.isfinite(summary.lab).all(axis=1))
    for group in _colour_groups(summary.lab[outliers], s.group_colour):
        members = outliers[group]
        weight = summary.frames[members].astype(np.float64)
        mean_x = float((summary.mean_x[members] * weight).sum() / max(weight.sum(), 1.0))
        goal_x = 0.0 if mean_x < PITCH_LENGTH_M / 2 else PITCH_LENGTH_M
        if abs(mean_x - goal_x) > s.goal_area_m:
            role[members] = ROLE_REFEREE
            team[members] = TEAM_UNKNOWN
            continue
        role[members] = ROLE_GOALKEEPER
        team[members] = _defending(goal_x, cluster_x)
    return Kits(
        team={int(t): int(k) for t, k in zip(ids, team, strict=True)},
        role={int(t): int(r) for t, r in zip(ids, role, strict=True)},
        cluster_lab=cluster_lab,
        cluster_mean_x=cluster_x,
    )


def _defending(goal_x: float, cluster_x: dict[int, float]) -> int:
    """The outfield cluster defending the goal at ``goal_x``: on average, nearer to it."""
    if len(cluster_x) < 2:
        return TEAM_UNKNOWN
    return min(cluster_x, key=lambda k: abs(cluster_x[k] - goal_x))


def _colour_groups(lab: F64, radius: float) -> list[I64]:
    """Groups of rows linked by Lab distances under ``radius`` (single linkage)."""
    n = len(lab)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    if n:
        near = np.linalg.norm(lab[:, None, :] - lab[None, :, :], axis=2) < radius
        for i, j in zip(*np.nonzero(np.triu(near, 1)), strict=True):
            parent[find(int(i))] = find(int(j))
    roots = np.array([find(i) for i in range(n)], np.int64)
    return [np.flatnonzero(roots == r) for r in np.unique(roots)]


def _channel_outliers(lab: F64, team: I64, z_max: float) -> npt.NDArray[np.bool_]:
    """Members of a cluster further than ``z_max`` robust deviations from its median in any
    channel (the deviation floored at 2 Lab units, so a tight cluster keeps its members)."""
    out = np.zeros(len(team), np.bool_)
    for k in (0, 1):
        members = np.flatnonzero(team == k)
        if len(members) < 4:
            continue
        colours = lab[members]
        median = np.median(colours, axis=0)
        spread = np.maximum(1.4826 * np.median(np.abs(colours - median), axis=0), 2.0)
        out[members] = (np.abs(colours - median) / spread > z_max).any(axis=1)
    return out
