"""The match-wide pass after online tracking: join the pieces of one player, fill short gaps.

Online tracking (`activities.track.pitch_tracker`) closes a track a second or two after it
last saw its player: occlusions in a crowd, a missed detection streak at the far touchline, a
player hidden by the seam. The same player then comes back under a new identity. With the
whole match tracked, each fragment's end can be compared with every later fragment's start:

* a join must be physically possible: the start lies within ``reach_m + max_speed_mps * gap``
  of where the ended fragment was heading (its last velocity, damped over the gap);
* the kit must agree (Lab distance of the fragments' colours);
* fragments never overlap in time once joined (each end and each start is used once, and a
  join goes forward in time only).

Candidate joins are taken cheapest first (greedy on a cost of distance over reach plus kit
difference). Joined identities take the id of their earliest fragment. Gaps up to
``interpolate_s`` are then filled linearly, so distance and heatmaps do not lose the metres run
while unseen; longer gaps stay gaps (the player may have left the picture). Identities still
shorter than ``min_length_s`` after joining are dropped: on a football pitch nobody appears for
half a second, so those are false detections (a shadow, a fan's head at the fence). So are
people who stand beyond the lines all along (`drop_bystanders`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from polyvision.geometry.pitch import PITCH_LENGTH_M, PITCH_WIDTH_M

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class LinkSettings:
    """Tuning of `link_tracks`.

    Attributes:
        max_gap_s: fragments further apart in time are not joined.
        reach_m: radius of a join with no gap...
        max_speed_mps: ...grown by this speed per second of gap.
        colour_scale: Lab distance counted as one unit of kit difference.
        max_colour: kit difference (in ``colour_scale`` units) beyond which no join is made.
        velocity_frames: frames at a fragment's end used to estimate where it was heading.
        interpolate_s: gaps within an identity up to this long are filled linearly.
        min_length_s: identities seen for less than this are dropped.
    """

    max_gap_s: float = 20.0
    reach_m: float = 4.0
    max_speed_mps: float = 6.0
    colour_scale: float = 20.0
    max_colour: float = 1.5
    velocity_frames: int = 10
    interpolate_s: float = 0.4
    min_length_s: float = 3.0


@dataclass
class TrackRows:
    """Track points of a whole match, one row per (frame, identity).

    Attributes:
        frame: ``[R]`` match frame.
        track_id: ``[R]`` identity.
        xy: ``[R, 2]`` pitch metres.
        interpolated: ``[R]`` True for rows filled in a gap.
    """

    frame: I64
    track_id: I64
    xy: F64
    interpolated: npt.NDArray[np.bool_]

    @classmethod
    def of(cls, frame: npt.ArrayLike, track_id: npt.ArrayLike, xy: npt.ArrayLike) -> TrackRows:
        f = np.asarray(frame, np.int64).reshape(-1)
        return cls(
            frame=f,
            track_id=np.asarray(track_id, np.int64).reshape(-1),
            xy=np.asarray(xy, np.float64).reshape(-1, 2),
            interpolated=np.zeros(len(f), np.bool_),
        )


@dataclass
class _Fragment:
    track_id: int
    first: int
    last: int
    start_xy: F64
    end_xy: F64
    end_velocity: F64
    lab: F64


def _fragments(rows: TrackRows, colours: dict[int, F64], settings: LinkSettings) -> list[_Fragment]:
    order = np.lexsort((rows.frame, rows.track_id))
    ids = rows.track_id[order]
    frames = rows.frame[order]
    xy = rows.xy[order]
    starts = np.flatnonzero(np.r_[True, ids[1:] != ids[:-1]])
    ends = np.r_[starts[1:], len(ids)]
    out: list[_Fragment] = []
    for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
        tail = slice(max(a, b - settings.velocity_frames), b)
        span = frames[tail][-1] - frames[tail][0]
        velocity = (xy[tail][-1] - xy[tail][0]) / span if span > 0 else np.zeros(2)
        track = int(ids[a])
        out.append(
            _Fragment(
                track_id=track,
                first=int(frames[a]),
                last=int(frames[b - 1]),
                start_xy=xy[a],
                end_xy=xy[b - 1],
                end_velocity=velocity,  # metres per frame
                lab=colours.get(track, np.full(3, np.nan)),
            )
        )
    return out


def link_tracks(
    rows: TrackRows,
    colours: dict[int, F64],
    fps: float,
    settings: LinkSettings | None = None,
) -> tuple[TrackRows, dict[int, int]]:
    """Join fragments of one player, fill short gaps, drop stubs (see the module docstring).

    Args:
        rows: the online tracker's points of the whole match.
        colours: identity → mean torso Lab colour (missing or NaN: kit unknown, not compared).
        fps: frames per second of the match.
        settings: tuning; the defaults are measured on synthetic matches.

    Returns:
        New rows sorted by frame then identity, and each fragment's identity (the earliest
        fragment's id of its chain).
    """
    s = settings or LinkSettings()
    if not len(rows.frame):
        return rows, {}
    fragments = _fragments(rows, colours, s)
    max_gap = round(s.max_gap_s * fps)
    first = np.array([f.first for f in fragments], np.int64)
    start_xy = np.array([f.start_xy for f in fragments], np.float64).reshape(-1, 2)
    start_lab = np.array([f.lab for f in fragments], np.float64).reshape(-1, 3)
    by_first = np.argsort(first, kind="stable")
    sorted_first = first[by_first]
    candidates: list[tuple[float, int, int]] = []
    for i, end in enumerate(fragments):
        lo = np.searchsorted(sorted_first, end.last, side="right")
        hi = np.searchsorted(sorted_first, end.last + max_gap, side="right")
        later = by_first[lo:hi]
        if not len(later):
            continue
        gap = (first[later] - end.last).astype(np.float64)
        # Heading on for at most a second, then the player may have stopped or turned.
        expected = end.end_xy + end.end_velocity * np.minimum(gap, fps)[:, None]
        distance = np.linalg.norm(start_xy[later] - expected, axis=1)
        reach = s.reach_m + s.max_speed_mps * gap / fps
        kit = np.linalg.norm(start_lab[later] - end.lab, axis=1) / s.colour_scale
        known = np.isfinite(kit)
        fits = (distance <= reach) & ~(known & (kit > s.max_colour))
        cost = distance / reach + np.where(known, kit, 0.5)
        for j, c in zip(later[fits].tolist(), cost[fits].tolist(), strict=True):
            candidates.append((c, i, j))
    candidates.sort()
    successor: dict[int, int] = {}
    predecessor: dict[int, int] = {}
    for _, i, j in candidates:
        if i in successor or j in predecessor:
            continue
        successor[i] = j
        predecessor[j] = i
    root = list(range(len(fragments)))
    for i in range(len(fragments)):
        if i in predecessor:
            continue
        k = i
        while k in successor:
            k = successor[k]
            root[k] = i
    new_id = {f.track_id: fragments[root[n]].track_id for n, f in enumerate(fragments)}
    ids = np.array([new_id[int(t)] for t in rows.track_id], np.int64)
    joined = TrackRows(rows.frame.copy(), ids, rows.xy.copy(), rows.interpolated.copy())
    filled = interpolate_gaps(joined, round(s.interpolate_s * fps))
    # A clip shorter than a few stubs' length keeps identities seen for half of it.
    span = int(rows.frame.max() - rows.frame.min()) + 1
    kept = drop_short(filled, min(round(s.min_length_s * fps), span // 2))
    return drop_bystanders(kept, fps), new_id


def interpolate_gaps(rows: TrackRows, max_gap_frames: int) -> TrackRows:
    """Fill each identity's gaps of at most ``max_gap_frames`` missing frames linearly."""
    if not len(rows.frame) or max_gap_frames <= 0:
        return _sorted(rows)
    order = np.lexsort((rows.frame, rows.track_id))
    ids, frames, xy = rows.track_id[order], rows.frame[order], rows.xy[order]
    same = ids[1:] == ids[:-1]
    step = frames[1:] - frames[:-1]
    gaps = np.flatnonzero(same & (step > 1) & (step <= max_gap_frames + 1))
    new_frames: list[I64] = [rows.frame]
    new_ids: list[I64] = [rows.track_id]
    new_xy: list[F64] = [rows.xy]
    new_flags: list[npt.NDArray[np.bool_]] = [rows.interpolated]
    for g in gaps.tolist():
        missing = np.arange(frames[g] + 1, frames[g + 1])
        t = (missing - frames[g]) / (frames[g + 1] - frames[g])
        new_frames.append(missing)
        new_ids.append(np.full(len(missing), ids[g]))
        new_xy.append(xy[g] + t[:, None] * (xy[g + 1] - xy[g]))
        new_flags.append(np.ones(len(missing), np.bool_))
    return _sorted(
        TrackRows(
            np.concatenate(new_frames),
            np.concatenate(new_ids),
            np.concatenate(new_xy),
            np.concatenate(new_flags),
        )
    )


def drop_short(rows: TrackRows, min_frames: int) -> TrackRows:
    """Drop identities observed (not interpolated) in fewer than ``min_frames`` frames."""
    observed = rows.track_id[~rows.interpolated]
    ids, counts = np.unique(observed, return_counts=True)
    keep = np.isin(rows.track_id, ids[counts >= min_frames])
    return TrackRows(rows.frame[keep], rows.track_id[keep], rows.xy[keep], rows.interpolated[keep])


def _sorted(rows: TrackRows) -> TrackRows:
    order = np.lexsort((rows.track_id, rows.frame))
    return TrackRows(
        rows.frame[order], rows.track_id[order], rows.xy[order], rows.interpolated[order]
    )


def identity_rows(track_id: npt.NDArray[np.int64]) -> list[I64]:
    """Each identity's row indices in frame order of the rows given (one sort, not a scan of
    every row per identity: a 90-minute match has millions of rows)."""
    order = np.argsort(track_id, kind="stable")
    bounds = np.flatnonzero(np.diff(track_id[order])) + 1
    return [group.astype(np.int64) for group in np.split(order, bounds)] if len(order) else []


def drop_bystanders(
    rows: TrackRows,
    fps: float,
    outside_m: float = 0.5,
    extent_m: float = 3.0,
    still_m: float = 1.0,
    still_s: float = 8.0,
) -> TrackRows:
    """Drop identities that stand outside the lines all their life: substitutes, staff, ball
    kids by the touchline. Their median position lies more than ``outside_m`` beyond a line
    and they never cover more than ``extent_m``; or they stand on a line (within a metre of
    it), moving less than ``still_m`` for at least ``still_s``, which no player in the game
    does. An assistant referee runs along the line and a player taking a throw-in comes back
    in, so both stay."""
    if not len(rows.frame):
        return rows
    keep = np.ones(len(rows.frame), np.bool_)
    for mine in identity_rows(rows.track_id):
        xy = rows.xy[mine]
        x, y = np.median(xy, axis=0)
        beyond = max(-x, x - PITCH_LENGTH_M, -y, y - PITCH_WIDTH_M)
        extent = float(np.max(np.ptp(xy, axis=0)))
        life_s = (int(rows.frame[mine].max()) - int(rows.frame[mine].min()) + 1) / fps
        standing_by = beyond > -1.0 and extent < still_m and life_s >= still_s
        if (beyond > outside_m and extent < extent_m) or standing_by:
            keep[mine] = False
    return TrackRows(rows.frame[keep], rows.track_id[keep], rows.xy[keep], rows.interpolated[keep])
