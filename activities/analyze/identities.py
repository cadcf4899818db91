"""Players as identities: fragments of one person joined, and the analyst's corrections applied.

The track stage already joins the fragments it can (`activities.track.linking`), but a player
hidden for longer than its window, or in a crowd, still comes back as a new track. Figures per
player must not split such a player in two, so the analysis joins again, more loosely and per
team only: a fragment that ends and a later fragment of the same team that starts within
``max_gap_s``, at a distance a player can cover in the gap (``reach_m`` plus ``max_speed_mps``
times the gap), are one person. Candidates are taken cheapest first (distance over the allowed
distance, plus the gap over ``max_gap_s``); each fragment's end and start is used once, so an
identity's fragments never overlap in time.

The analyst has the last word (`IdentityOverrides`): two identities merged are one; identities
given the same roster player are one. Every figure is computed per identity after that, so the
figures follow the corrections. An identity's id is its smallest track id: stable across runs
and unchanged by the joining of later fragments.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from polyvision.roles import ROLE_REFEREE

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

#: Longest time a player may be unseen and still be joined (seconds).
MAX_GAP_S = 15.0
#: Fastest average speed over a gap (m/s): a sprint held for the whole gap is unlikely.
MAX_SPEED_MPS = 7.0
#: Distance allowed on top of the speed for the positions' error (metres).
REACH_M = 3.0
#: Points at each end of a fragment whose median is its end position (robust to one bad point).
END_POINTS = 5
#: A track unseen for longer than this (seconds) is cut there and its pieces joined again on
#: their own merits: the tracker's long bridges are where it swaps players.
SPLIT_GAP_S = 1.0
#: Piece ``k`` of track ``t`` is fragment ``t + k * PIECE_STRIDE`` (the first piece keeps the
#: track's id), so identity ids stay track ids wherever the tracker was right.
PIECE_STRIDE = 1_000_000


@dataclass(frozen=True)
class IdentityOverrides:
    """The analyst's corrections, applied after the automatic joining.

    Attributes:
        merges: Pairs of identity (or track) ids that are the same person.
        roster: Identity (or track) id to a roster player id; identities given the same roster
            player are merged.
    """

    merges: Sequence[tuple[int, int]] = ()
    roster: Mapping[int, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> IdentityOverrides:
        """From ``{"merges": [[a, b], ...], "roster": {"identity": "player", ...}}``."""
        merges_raw = data.get("merges", [])
        roster_raw = data.get("roster", {})
        if not isinstance(merges_raw, list) or not isinstance(roster_raw, dict):
            raise ValueError("overrides: merges must be a list and roster an object")
        merges = [(int(a), int(b)) for a, b in merges_raw]
        roster = {int(k): str(v) for k, v in roster_raw.items()}
        return cls(merges=merges, roster=roster)


@dataclass(frozen=True)
class Identities:
    """Which identity each track belongs to.

    Attributes:
        of_track: Fragment id to identity id (fragments: the tracks cut at their long gaps,
            `PIECE_STRIDE`).
        team: Identity id to its team (the team most of its points have; -1 unknown).
        role: Identity id to its role code (likewise).
        player: Identity id to its roster player, where the analyst gave one.
        point_identity: The identity of each input point, in input order.
    """

    of_track: dict[int, int]
    team: dict[int, int]
    role: dict[int, int]
    player: dict[int, str]
    point_identity: I64 = field(default_factory=lambda: np.zeros(0, np.int64))

    def tracks_of(self, identity: int) -> tuple[int, ...]:
        """The tracker's track ids that the identity is made of."""
        return tuple(
            sorted({f % PIECE_STRIDE for f, owner in self.of_track.items() if owner == identity})
        )

    def is_player(self, identity: int) -> bool:
        """Whether the identity is a player of a team (not a referee, not unknown)."""
        return self.team.get(identity, -1) in (0, 1) and self.role.get(identity) != ROLE_REFEREE


@dataclass(frozen=True)
class _Fragment:
    track: int
    team: int
    role: int
    first: int
    last: int
    start_xy: F64
    end_xy: F64


class _UnionFind:
    def __init__(self, items: Sequence[int]) -> None:
        self.parent = {item: item for item in items}

    def find(self, item: int) -> int:
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            # The smaller id is the root: an identity is named after its first-numbered track.
            self.parent[max(ra, rb)] = min(ra, rb)


def _mode(values: I64) -> int:
    uniques, counts = np.unique(values, return_counts=True)
    return int(uniques[np.argmax(counts)])


def _fragments(frame: I64, track_id: I64, team: I64, role: I64, x: F64, y: F64) -> list[_Fragment]:
    order = np.lexsort((frame, track_id))
    starts = np.flatnonzero(np.diff(track_id[order])) + 1
    fragments = []
    for block in np.split(order, starts):
        if block.size == 0:
            continue
        finite = block[np.isfinite(x[block]) & np.isfinite(y[block])]
        xy = np.column_stack([x[finite], y[finite]])
        head = xy[:END_POINTS] if len(xy) else np.full((1, 2), np.nan)
        tail = xy[-END_POINTS:] if len(xy) else np.full((1, 2), np.nan)
        fragments.append(
            _Fragment(
                track=int(track_id[block[0]]),
                team=_mode(team[block]),
                role=_mode(role[block]),
                first=int(frame[block].min()),
                last=int(frame[block].max()),
                start_xy=np.median(head, axis=0),
                end_xy=np.median(tail, axis=0),
            )
        )
    return fragments


def link_identities(
    frame: npt.ArrayLike,
    track_id: npt.ArrayLike,
    team: npt.ArrayLike,
    role: npt.ArrayLike | None,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    fps: float,
    overrides: IdentityOverrides | None = None,
    *,
    max_gap_s: float = MAX_GAP_S,
    max_speed_mps: float = MAX_SPEED_MPS,
    reach_m: float = REACH_M,
    split_gap_s: float = SPLIT_GAP_S,
) -> Identities:
    """Join the fragments of one player of a team into identities, then apply ``overrides``.

    Args:
        frame: Frame of each point.
        track_id: Track of each point.
        team: Team of each point (0, 1; -1 unknown or referee): never joined across teams.
        role: Role code of each point (`polyvision.roles`); None: all unknown. Referees are
            never joined automatically.
        x: Pitch x of each point (metres).
        y: Pitch y of each point (metres).
        fps: Frames per second.
        overrides: The analyst's merges and roster; None: none.
        max_gap_s: Longest gap between two fragments that are joined.
        max_speed_mps: Average speed over the gap that a player can keep.
        reach_m: Distance allowed on top of the speed for the positions' error.
        split_gap_s: Tracks are cut where unseen for longer than this before joining.

    Returns:
        The identities; every point of the input has one.
    """
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    frames = np.asarray(frame, dtype=np.int64)
    tracks = np.asarray(track_id, dtype=np.int64)
    teams = np.asarray(team, dtype=np.int64)
    roles = (
        np.full(frames.shape, -1, np.int64) if role is None else np.asarray(role, dtype=np.int64)
    )
    xs = np.asarray(x, dtype=np.float64)
    ys = np.asarray(y, dtype=np.float64)
    tracks = split_tracks(frames, tracks, fps, split_gap_s)
    fragments = _fragments(frames, tracks, teams, roles, xs, ys)
    by_track = {f.track: f for f in fragments}
    joins = _automatic_joins(fragments, fps, max_gap_s, max_speed_mps, reach_m)
    union = _UnionFind([f.track for f in fragments])
    for a, b in joins:
        union.union(a, b)
    player: dict[int, str] = {}
    if overrides is not None:
        known = set(by_track)
        for a, b in overrides.merges:
            if a in known and b in known:
                union.union(a, b)
        by_player: dict[str, int] = {}
        for ident, name in sorted(overrides.roster.items()):
            if ident not in known:
                continue
            if name in by_player:
                union.union(by_player[name], ident)
            else:
                by_player[name] = ident
        for ident, name in overrides.roster.items():
            if ident in known:
                player[union.find(ident)] = name
    of_track = {f.track: union.find(f.track) for f in fragments}
    uniques, inverse = np.unique(tracks, return_inverse=True)
    point_identity = np.array([of_track[int(t)] for t in uniques], dtype=np.int64)[inverse]
    # Team and role by the points' majority over the whole identity (one pass over the points,
    # grouped by identity: a match has millions of them).
    team_of: dict[int, int] = {}
    role_of: dict[int, int] = {}
    order = np.argsort(point_identity, kind="stable")
    bounds = np.flatnonzero(np.diff(point_identity[order])) + 1
    for block in np.split(order, bounds):
        if block.size:
            ident = int(point_identity[block[0]])
            team_of[ident] = _mode(teams[block])
            role_of[ident] = _mode(roles[block])
    return Identities(
        of_track=of_track,
        team=team_of,
        role=role_of,
        player=player,
        point_identity=point_identity,
    )


def split_tracks(frame: I64, track_id: I64, fps: float, split_gap_s: float) -> I64:
    """Each point's fragment: its track, cut where the track is unseen for over ``split_gap_s``
    (see `PIECE_STRIDE`)."""
    out = track_id.copy()
    order = np.lexsort((frame, track_id))
    same = np.diff(track_id[order]) == 0
    cut = same & (np.diff(frame[order]) > split_gap_s * fps)
    # Piece number within the track: cuts counted since the track's first point.
    cuts = np.concatenate([[0], np.cumsum(cut)])
    starts = np.concatenate([[True], ~same])
    base = np.maximum.accumulate(np.where(starts, cuts, 0))
    out[order] = track_id[order] + (cuts - base) * PIECE_STRIDE
    return out


def _automatic_joins(
    fragments: list[_Fragment],
    fps: float,
    max_gap_s: float,
    max_speed_mps: float,
    reach_m: float,
) -> list[tuple[int, int]]:
    """Greedy, cheapest first: (ended fragment, later fragment) pairs of one team."""
    candidates: list[tuple[float, int, int]] = []
    by_start = sorted(fragments, key=lambda f: f.first)
    firsts = [f.first for f in by_start]
    max_gap_frames = max_gap_s * fps
    for a in fragments:
        if a.team not in (0, 1) or a.role == ROLE_REFEREE or not np.isfinite(a.end_xy).all():
            continue
        # Only the fragments starting within the gap after ``a`` ends: a long match has
        # thousands of fragments, and most pairs are far apart in time.
        lo = bisect.bisect_right(firsts, a.last)
        hi = bisect.bisect_right(firsts, a.last + max_gap_frames)
        for b in by_start[lo:hi]:
            if b.team != a.team or b.role == ROLE_REFEREE:
                continue
            gap_s = (b.first - a.last) / fps
            if not np.isfinite(b.start_xy).all():
                continue
            allowed = reach_m + max_speed_mps * gap_s
            distance = float(np.hypot(*(b.start_xy - a.end_xy)))
            if distance <= allowed:
                candidates.append((distance / allowed + gap_s / max_gap_s, a.track, b.track))
    candidates.sort()
    ended: set[int] = set()
    started: set[int] = set()
    joins = []
    for _, a_track, b_track in candidates:
        if a_track in ended or b_track in started:
            continue
        ended.add(a_track)
        started.add(b_track)
        joins.append((a_track, b_track))
    return joins
