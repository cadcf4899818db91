"""Split an identity where its kit changes: the online tracker followed the wrong player.

When two players cross and one of them is missed for a few frames, the tracker can carry on
with the other: the identity then runs on another player's path. Positions alone cannot show
it, but the kit often can: a track that was red for twenty seconds and is blue for the next
ten is two players. Each point's torso colour is assigned to the nearer of the two outfield
kits; a majority over a sliding window smooths the many noisy samples of far players; runs of
the other kit lasting at least ``min_run_s`` cut the identity, and each part gets an identity
of its own (the match-wide linking may then join it to the right player's other fragments).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from activities.track.linking import TrackRows, identity_rows
from activities.track.teams import assign_teams

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

_L_WEIGHT = 0.5  # as in `activities.track.teams`: lightness changes with the light, not the kit


@dataclass(frozen=True)
class CleaveSettings:
    """Tuning of `split_on_kit_change`.

    Attributes:
        window_s: the sliding majority's window.
        min_run_s: a run of the other kit this long cuts the identity.
    """

    window_s: float = 2.0
    min_run_s: float = 10.0


def kit_centroids(track_id: I64, lab: F64) -> F64 | None:
    """The two outfield kits' colours ``[2, 3]`` from per-point samples, None if unclear."""
    finite = np.isfinite(lab).all(axis=1)
    ids = np.unique(track_id[finite])
    if len(ids) < 4:
        return None
    samples = lab[finite]
    groups = identity_rows(track_id[finite])
    medians = np.array([np.median(samples[g], axis=0) for g in groups])
    counts = np.array([len(g) for g in groups])
    teams = assign_teams(ids, medians, counts)
    labels = np.array([teams[int(t)] for t in ids])
    if not ((labels == 0).any() and (labels == 1).any()):
        return None
    return np.array([np.median(medians[labels == k], axis=0) for k in (0, 1)])


def split_on_kit_change(
    rows: TrackRows, lab: F64, fps: float, settings: CleaveSettings | None = None
) -> TrackRows:
    """Rows with identities cut where their kit changes (see the module docstring).

    Args:
        rows: the online tracker's points.
        lab: ``[R, 3]`` torso colour of each row's detection (NaN: none).
        fps: frames per second.
        settings: tuning.

    Returns:
        The same rows; the parts after a cut carry new identities above every existing one.
    """
    s = settings or CleaveSettings()
    centroids = kit_centroids(rows.track_id, lab)
    if centroids is None or not len(rows.frame):
        return rows
    weight = np.array([_L_WEIGHT, 1.0, 1.0])
    distance = np.linalg.norm((lab[:, None, :] - centroids[None]) * weight, axis=2)
    kit = np.where(np.isfinite(distance).all(axis=1), np.argmin(distance, axis=1), -1)
    window = max(1, round(s.window_s * fps))
    min_run = max(1, round(s.min_run_s * fps))
    new_ids = rows.track_id.copy()
    next_id = int(rows.track_id.max()) + 1
    for mine in identity_rows(rows.track_id):
        mine = mine[np.argsort(rows.frame[mine], kind="stable")]
        smooth = _majority(kit[mine], window)
        cuts = _cuts(smooth, min_run)
        for start in cuts:
            new_ids[mine[start:]] = next_id
            next_id += 1
    return TrackRows(rows.frame, new_ids, rows.xy, rows.interpolated)


def _majority(kit: I64, window: int) -> I64:
    """Per point, the kit most samples within ``window`` points around it have (-1: none)."""
    ones = np.convolve((kit == 1).astype(np.float64), np.ones(window), mode="same")
    zeros = np.convolve((kit == 0).astype(np.float64), np.ones(window), mode="same")
    return np.where(ones + zeros == 0, -1, (ones > zeros).astype(np.int64))


def _cuts(smooth: I64, min_run: int) -> list[int]:
    """Indices where a run of one kit at least ``min_run`` long follows one of the other."""
    known = np.flatnonzero(smooth >= 0)
    if not len(known):
        return []
    labels = smooth[known]
    change = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    bounds = np.r_[0, change, len(labels)]
    runs = [
        (int(bounds[i]), int(bounds[i + 1]), int(labels[bounds[i]])) for i in range(len(bounds) - 1)
    ]
    long_runs = [r for r in runs if r[1] - r[0] >= min_run]
    cuts: list[int] = []
    for previous, current in itertools.pairwise(long_runs):
        if current[2] != previous[2]:
            cuts.append(int(known[current[0]]))
    return cuts
