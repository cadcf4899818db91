"""Team assignment from kit colour: two clusters of tracks' torso colours, outliers unknown.

Every person detection carries the median CIE Lab colour of its torso band (detect stage,
`activities.detect.colour`). The track stage summarises each track's samples into one colour
(`ColourAccumulator`) and `assign_teams` splits the tracks into the two outfield kits:

* Only tracks with at least ``min_samples`` colour samples take part: a short track's colour is
  too uncertain (and is often a false positive or an occluded fragment).
* Features are ``(L * l_weight, a, b)``: the chroma ``a, b`` separates kits best, lightness is
  kept at half weight because shade and exposure change it along the pitch.
* Two-means, deterministic (no random start): the tracks are split at the weighted median of
  their projection on the principal axis, then Lloyd iterations with *trimming*: a track
  farther from its nearest centroid than ``max(min_radius, spread * median distance)`` of that
  cluster is an outlier and does not move the centroids. Goalkeepers (their own kits), the
  referee, and tracks with a mixed colour (two players merged) end up there: team -1.
  Every track is weighted by its sample count, so long, well-observed tracks dominate.
* Labels: team 0 is the cluster whose centroid has the smaller ``b*`` (the bluer kit), team 1
  the other (ties: smaller ``a*``). A fixed axis, so the label of a kit does not depend on which
  tracks happened to be seen first; which real team (home or away) a label is must come from
  elsewhere (e.g. the kit colours registered for the match).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "UNKNOWN",
    "ColourAccumulator",
    "assign_teams",
    "chunk_track_colours",
    "team_column",
]

UNKNOWN = -1

F64 = npt.NDArray[np.float64]


def assign_teams(
    track_ids: npt.ArrayLike,
    lab_per_track: npt.ArrayLike,
    counts: npt.ArrayLike,
    *,
    min_samples: int = 10,
    l_weight: float = 0.5,
    spread: float = 3.0,
    min_radius: float = 12.0,
    max_iterations: int = 50,
) -> dict[int, int]:
    """Split tracks into two teams by their torso colour.

    Args:
        track_ids: ``[T]`` track ids.
        lab_per_track: ``[T, 3]`` each track's torso colour ``L, a, b`` (NaN: unknown).
        counts: ``[T]`` colour samples behind each track's colour.
        min_samples: tracks with fewer samples get -1.
        l_weight: weight of ``L`` against ``a, b`` in the distance.
        spread: a track is an outlier beyond this many times its cluster's median distance...
        min_radius: ...but never within this Lab distance of the centroid.
        max_iterations: cap on the Lloyd iterations.

    Returns:
        Track id → team: 0, 1, or -1 (outlier, too few samples, or fewer than two teams'
        worth of tracks). Deterministic: the same inputs give the same answer.
    """
    ids = np.asarray(track_ids, np.int64).reshape(-1)
    lab = np.asarray(lab_per_track, np.float64).reshape(-1, 3)
    weight = np.asarray(counts, np.float64).reshape(-1)
    if not len(ids) == len(lab) == len(weight):
        raise ValueError("track_ids, lab_per_track and counts must have the same length")
    teams = np.full(len(ids), UNKNOWN, np.int64)
    usable = np.flatnonzero(np.isfinite(lab).all(axis=1) & (weight >= max(min_samples, 1)))
    if len(usable) >= 2:
        features = lab[usable] * np.array([l_weight, 1.0, 1.0])
        label = _trimmed_two_means(
            features, weight[usable], spread, min_radius, max_iterations, lab[usable]
        )
        teams[usable] = label
    return {int(track): int(team) for track, team in zip(ids, teams, strict=True)}


def _weighted_median(values: F64, weight: F64) -> float:
    order = np.argsort(values, kind="stable")
    cumulative = np.cumsum(weight[order])
    return float(values[order][np.searchsorted(cumulative, cumulative[-1] / 2.0)])


def _trimmed_two_means(
    x: F64, w: F64, spread: float, min_radius: float, max_iterations: int, lab: F64
) -> npt.NDArray[np.int64]:
    """Labels 0/1/-1 of the rows of ``x`` (see the module docstring)."""
    centre = (x * w[:, None]).sum(axis=0) / w.sum()
    centred = x - centre
    # Principal axis of the weighted scatter; its sign fixed so the split is reproducible.
    _, vectors = np.linalg.eigh((centred * w[:, None]).T @ centred)
    axis = vectors[:, -1]
    axis = axis if axis[np.argmax(np.abs(axis))] > 0 else -axis
    projection = centred @ axis
    cut = _weighted_median(projection, w)
    side = (projection > cut).astype(np.int64)
    if side.min() == side.max():  # all tracks the same colour: no two teams to tell apart
        return np.full(len(x), UNKNOWN, np.int64)
    centroids = np.stack([_mean(x[side == k], w[side == k]) for k in (0, 1)])
    label = side
    for _ in range(max_iterations):
        distance = np.linalg.norm(x[:, None, :] - centroids[None, :, :], axis=2)
        nearest = np.argmin(distance, axis=1)
        near = distance[np.arange(len(x)), nearest]
        new_label = nearest.copy()
        for k in (0, 1):
            members = nearest == k
            if members.any():
                radius = max(min_radius, spread * float(np.median(near[members])))
                new_label[members & (near > radius)] = UNKNOWN
        if np.array_equal(new_label, label):
            break
        label = new_label
        for k in (0, 1):
            members = label == k
            if members.any():
                centroids[k] = _mean(x[members], w[members])
    if not ((label == 0).any() and (label == 1).any()):
        return np.full(len(x), UNKNOWN, np.int64)
    # Fixed-axis labels: team 0 has the smaller mean b* (then a*) of its members' colours.
    means = [_mean(lab[label == k], w[label == k]) for k in (0, 1)]
    if (means[1][2], means[1][1]) < (means[0][2], means[0][1]):
        label = np.where(label == UNKNOWN, UNKNOWN, 1 - label)
    return np.asarray(label, np.int64)


def _mean(x: F64, w: F64) -> F64:
    return np.asarray((x * w[:, None]).sum(axis=0) / w.sum(), np.float64)


def chunk_track_colours(
    track_id: npt.ArrayLike, lab: npt.ArrayLike
) -> tuple[npt.NDArray[np.int64], F64, npt.NDArray[np.int64]]:
    """Per track, the median colour and the sample count of one chunk's samples.

    Args:
        track_id: ``[S]`` the track of each colour sample.
        lab: ``[S, 3]`` the samples; rows with a NaN are ignored.

    Returns:
        Sorted unique track ids ``[T]``, their median ``L, a, b`` ``[T, 3]`` and counts ``[T]``.
    """
    ids = np.asarray(track_id, np.int64).reshape(-1)
    values = np.asarray(lab, np.float64).reshape(-1, 3)
    keep = np.isfinite(values).all(axis=1)
    ids, values = ids[keep], values[keep]
    order = np.argsort(ids, kind="stable")
    ids, values = ids[order], values[order]
    unique, starts, counts = np.unique(ids, return_index=True, return_counts=True)
    medians = np.empty((len(unique), 3), np.float64)
    for row, (start, count) in enumerate(zip(starts, counts, strict=True)):
        medians[row] = np.median(values[start : start + count], axis=0)
    return unique.astype(np.int64), medians, counts.astype(np.int64)


@dataclass
class ColourAccumulator:
    """Each track's colour over the chunks seen so far, in constant space per track.

    A chunk contributes its per-track median (robust to the odd occluded or mis-cropped frame)
    weighted by its sample count; the track's colour is the weighted mean of its chunk medians.
    The state is plain JSON-able data (:meth:`to_state`), exact across a round trip, so it rides
    in the track activity's heartbeat details and a resumed attempt ends with the same teams.
    """

    sums: dict[int, list[float]] = field(default_factory=dict)
    """Track id → ``[samples, samples * L, samples * a, samples * b]``."""

    def add_chunk(self, track_id: npt.ArrayLike, lab: npt.ArrayLike) -> None:
        """Fold in one chunk's colour samples (``[S]`` track ids, ``[S, 3]`` Lab)."""
        ids, medians, counts = chunk_track_colours(track_id, lab)
        for track, median, count in zip(ids.tolist(), medians, counts.tolist(), strict=True):
            entry = self.sums.setdefault(int(track), [0.0, 0.0, 0.0, 0.0])
            entry[0] += float(count)
            for channel in range(3):
                entry[1 + channel] += float(count) * float(median[channel])

    def colours(self) -> tuple[npt.NDArray[np.int64], F64, npt.NDArray[np.int64]]:
        """Sorted track ids ``[T]``, their colours ``[T, 3]`` and sample counts ``[T]``."""
        ids = np.array(sorted(self.sums), np.int64)
        table = np.array([self.sums[int(t)] for t in ids], np.float64).reshape(-1, 4)
        counts = table[:, 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            lab = table[:, 1:] / counts[:, None]
        return ids, lab, counts.astype(np.int64)

    def teams(self, **options: Any) -> dict[int, int]:
        """`assign_teams` over the accumulated colours."""
        ids, lab, counts = self.colours()
        return assign_teams(ids, lab, counts, **options)

    def to_state(self) -> list[list[float]]:
        """``[[track_id, samples, sum L, sum a, sum b], ...]`` sorted by track id."""
        return [[float(track), *self.sums[track]] for track in sorted(self.sums)]

    @classmethod
    def from_state(cls, state: Iterable[Iterable[float]]) -> ColourAccumulator:
        """Inverse of :meth:`to_state`."""
        sums: dict[int, list[float]] = {}
        for row in state:
            values = [float(v) for v in row]
            sums[int(values[0])] = values[1:5]
        return cls(sums)


def team_column(track_id: npt.ArrayLike, teams: Mapping[int, int]) -> npt.NDArray[np.int8]:
    """The team of each row's track (-1 for tracks without one)."""
    ids = np.asarray(track_id, np.int64).reshape(-1)
    if not teams or not len(ids):
        return np.full(len(ids), UNKNOWN, np.int8)
    known = np.array(sorted(teams), np.int64)
    values = np.array([teams[int(t)] for t in known], np.int8)
    position = np.clip(np.searchsorted(known, ids), 0, len(known) - 1)
    found = known[position] == ids
    return np.where(found, values[position], np.int8(UNKNOWN)).astype(np.int8)
