"""The end of the track stage: the whole match's identities joined, gaps filled, kits and roles.

`finish_tracks` is pure: the activity reads every chunk's online track points back, calls it,
and rewrites each chunk's slice with its answer; an offline run (benchmarks, `polyvision eval`
experiments) calls it on the points it kept in memory. Same input, same answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from activities.track.cleave import CleaveSettings, split_on_kit_change
from activities.track.kits import IdentitySummary, Kits, KitSettings, assign_kits
from activities.track.linking import LinkSettings, TrackRows, link_tracks
from activities.track.teams import ColourAccumulator, team_column

F64 = npt.NDArray[np.float64]


@dataclass
class FinishedTracks:
    """The match's final track points and what each identity is.

    Attributes:
        rows: Points after joining, gap filling and dropping stubs.
        team: ``[R]`` outfield cluster per row (0, 1; -1 referee or unknown).
        role: ``[R]`` role code per row (`polyvision.roles`).
        kits: Per identity team and role, with the clusters' colours and mean positions.
    """

    rows: TrackRows
    team: npt.NDArray[np.int8]
    role: npt.NDArray[np.int8]
    kits: Kits


def finish_tracks(
    rows: TrackRows,
    colours: ColourAccumulator,
    fps: float,
    *,
    link: LinkSettings | None = None,
    kit: KitSettings | None = None,
    lab: npt.NDArray[np.float64] | None = None,
    cleave: CleaveSettings | None = None,
) -> FinishedTracks:
    """Cut identities where their kit changes, join fragments, fill gaps, drop stubs, then
    give every identity its team and role.

    ``lab`` (``[R, 3]``, each row's torso colour) enables the cut (`activities.track.cleave`);
    the identities' colours then come from the rows, not from ``colours``.
    """
    if lab is not None and len(lab) == len(rows.frame):
        rows = split_on_kit_change(rows, lab, fps, cleave)
        colours = ColourAccumulator()
        colours.add_chunk(rows.track_id, lab)
    ids, lab, _ = colours.colours()
    by_track = {int(t): lab[i] for i, t in enumerate(ids.tolist())}
    linked, joined_of = link_tracks(rows, by_track, fps, link)
    # Colour samples follow their fragment into the joined identity.
    merged = ColourAccumulator()
    for track, entry in colours.sums.items():
        target = joined_of.get(track)
        if target is None:
            continue
        into = merged.sums.setdefault(target, [0.0, 0.0, 0.0, 0.0])
        for k in range(4):
            into[k] += entry[k]
    summary = _summary(linked, merged)
    kits = assign_kits(summary, kit)
    team = team_column(linked.track_id, kits.team)
    role = team_column(linked.track_id, kits.role)
    return FinishedTracks(linked, team, role, kits)


def _summary(rows: TrackRows, colours: ColourAccumulator) -> IdentitySummary:
    ids, inverse = np.unique(rows.track_id, return_inverse=True)
    observed = np.bincount(inverse, weights=~rows.interpolated, minlength=len(ids))
    seen = np.bincount(inverse, minlength=len(ids))
    mean_x = np.bincount(inverse, weights=rows.xy[:, 0], minlength=len(ids)) / np.maximum(seen, 1)
    lab = np.full((len(ids), 3), np.nan)
    samples = np.zeros(len(ids), np.int64)
    for i, t in enumerate(ids.tolist()):
        entry = colours.sums.get(int(t))
        if entry and entry[0] > 0:
            samples[i] = int(entry[0])
            lab[i] = np.array(entry[1:4]) / entry[0]
    return IdentitySummary(ids.astype(np.int64), lab, samples, observed.astype(np.int64), mean_x)
