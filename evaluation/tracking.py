"""Tracking scores in pitch space, and the per-pair metrics built on the track-to-truth matching.

MOTA, IDF1 and HOTA come from TrackEval (``trackeval`` 1.3.0, the HOTA authors' reference code),
which provides all three from one similarity definition; we only build its per-frame input. The
similarity is TrackEval's own Euclidean convention for ground-plane tracking (MOT15-3D):
``sim = max(0, 1 - d / zero_distance)`` with a match at ``sim >= 0.5``. We set
``zero_distance = 2 * match_threshold_m`` so that a truth person and a track match for CLEAR
(MOTA) and Identity (IDF1) when they are at most ``match_threshold_m`` apart; HOTA averages over
similarity thresholds 0.05..0.95, i.e. over distances up to ``2 * match_threshold_m``.

The default threshold is 1.0 m: a player's torso is about 0.5 m across and players rarely stand
closer than 1 m to each other, so within 1 m a track is unambiguously on that player, and the
homography error of a well-calibrated broadcast rig is well under it.

TrackEval does not expose which track it matched to which truth person per frame, so the matched
pairs used for position error, distance covered and team accuracy come from py-motmetrics'
``MOTAccumulator`` (1.4.0), fed the same gated distances. Its CLEAR matching (keep last frame's
pairs while they stay within the gate, then Hungarian on distance) is the one TrackEval's CLEAR
uses, so the pairs are those MOTA counted; the tests check that both libraries agree on MOTA.
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter
from dataclasses import dataclass

import motmetrics as mm
import numpy as np
import numpy.typing as npt

# TrackEval is installed without its plotting/COCO extras (see the Makefile); its package init
# prints a note about the dataset loaders it then skips, which would pollute the CLI's output.
with contextlib.redirect_stdout(io.StringIO()):
    from trackeval.metrics import CLEAR, HOTA, Identity

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]


@dataclass
class PitchSequence:
    """Truth people and tracks grouped by frame, with their pitch distances.

    Attributes:
        frames: ``[T]`` sorted frames that have a truth person or a track.
        truth_rows: Per frame, indices of the truth rows in that frame.
        track_rows: Per frame, indices of the track rows in that frame.
        truth_ids: Per frame, the truth identities (same order as ``truth_rows``).
        track_ids: Per frame, the track identities.
        distances: Per frame, ``[n_truth, n_track]`` distances in metres.
    """

    frames: IntArray
    truth_rows: list[IntArray]
    track_rows: list[IntArray]
    truth_ids: list[IntArray]
    track_ids: list[IntArray]
    distances: list[FloatArray]


def _group(frames: npt.NDArray[np.integer], timeline: IntArray) -> list[IntArray]:
    order = np.argsort(frames, kind="stable")
    starts = np.searchsorted(frames[order], timeline, "left")
    ends = np.searchsorted(frames[order], timeline, "right")
    return [order[a:b].astype(np.int64) for a, b in zip(starts, ends, strict=True)]


def build_sequence(
    truth_frame: npt.NDArray[np.integer],
    truth_id: npt.NDArray[np.integer],
    truth_xy: npt.NDArray[np.floating],
    track_frame: npt.NDArray[np.integer],
    track_id: npt.NDArray[np.integer],
    track_xy: npt.NDArray[np.floating],
) -> PitchSequence:
    """Group truth people and tracks by frame and measure every truth-track distance.

    Raises:
        ValueError: An identity appears twice in one frame.
    """
    timeline = np.union1d(truth_frame, track_frame).astype(np.int64)
    truth_rows, track_rows = _group(truth_frame, timeline), _group(track_frame, timeline)
    seq = PitchSequence(timeline, truth_rows, track_rows, [], [], [])
    for frame, t_rows, k_rows in zip(timeline, truth_rows, track_rows, strict=True):
        t_ids = truth_id[t_rows].astype(np.int64)
        k_ids = track_id[k_rows].astype(np.int64)
        if len(np.unique(t_ids)) != len(t_ids) or len(np.unique(k_ids)) != len(k_ids):
            raise ValueError(f"frame {frame}: an identity appears twice")
        a = np.asarray(truth_xy[t_rows], dtype=np.float64)
        b = np.asarray(track_xy[k_rows], dtype=np.float64)
        seq.truth_ids.append(t_ids)
        seq.track_ids.append(k_ids)
        seq.distances.append(np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2))
    return seq


@dataclass(frozen=True)
class TrackingScores:
    """CLEAR, Identity and HOTA scores from TrackEval (summary values as TrackEval reports them:
    HOTA, DetA, AssA and LocA are means over its 19 similarity thresholds)."""

    mota: float
    idf1: float
    hota: float
    deta: float
    assa: float
    loca: float
    tp: int
    fp: int
    fn: int
    id_switches: int
    idtp: int
    idfp: int
    idfn: int
    match_threshold_m: float


def _similarity(distances: FloatArray, match_threshold_m: float) -> FloatArray:
    # TrackEval's Euclidean similarity (datasets._BaseDataset._calculate_euclidean_similarity),
    # written out so we need not call a private method; 0.5 lands on the match threshold.
    sim: FloatArray = np.maximum(0.0, 1.0 - distances / (2.0 * match_threshold_m))
    return sim


def tracking_scores(seq: PitchSequence, match_threshold_m: float = 1.0) -> TrackingScores:
    """MOTA, IDF1 and HOTA of the tracks against the truth people, computed by TrackEval."""
    all_truth = np.concatenate([np.zeros(0, np.int64), *seq.truth_ids])
    all_track = np.concatenate([np.zeros(0, np.int64), *seq.track_ids])
    truth_unique, track_unique = np.unique(all_truth), np.unique(all_track)
    # TrackEval wants identities numbered 0..n-1 over the sequence.
    data = {
        "num_timesteps": len(seq.frames),
        "num_gt_ids": len(truth_unique),
        "num_tracker_ids": len(track_unique),
        "num_gt_dets": len(all_truth),
        "num_tracker_dets": len(all_track),
        "gt_ids": [np.searchsorted(truth_unique, ids) for ids in seq.truth_ids],
        "tracker_ids": [np.searchsorted(track_unique, ids) for ids in seq.track_ids],
        "similarity_scores": [_similarity(d, match_threshold_m) for d in seq.distances],
    }
    quiet = {"THRESHOLD": 0.5, "PRINT_CONFIG": False}
    clear = CLEAR(quiet).eval_sequence(data)
    identity = Identity(quiet).eval_sequence(data)
    hota = HOTA().eval_sequence(data)
    return TrackingScores(
        mota=float(clear["MOTA"]),
        idf1=float(identity["IDF1"]),
        hota=float(np.mean(hota["HOTA"])),
        deta=float(np.mean(hota["DetA"])),
        assa=float(np.mean(hota["AssA"])),
        loca=float(np.mean(hota["LocA"])),
        tp=int(clear["CLR_TP"]),
        fp=int(clear["CLR_FP"]),
        fn=int(clear["CLR_FN"]),
        id_switches=int(clear["IDSW"]),
        idtp=int(identity["IDTP"]),
        idfp=int(identity["IDFP"]),
        idfn=int(identity["IDFN"]),
        match_threshold_m=match_threshold_m,
    )


@dataclass
class MatchedPairs:
    """Truth-track pairs matched per frame; row ``i`` is one pair.

    Attributes:
        frame: ``[P]`` frame.
        truth_id: ``[P]`` truth identity.
        track_id: ``[P]`` track identity.
        truth_row: ``[P]`` index of the truth row.
        track_row: ``[P]`` index of the track row.
        distance_m: ``[P]`` distance between them, metres.
    """

    frame: IntArray
    truth_id: IntArray
    track_id: IntArray
    truth_row: IntArray
    track_row: IntArray
    distance_m: FloatArray


def _rows_of(
    rows: list[IntArray], ids: list[IntArray], t_index: IntArray, wanted: IntArray
) -> IntArray:
    """The row of identity ``wanted[i]`` in timestep ``t_index[i]``, for every ``i``."""
    found = [rows[t][ids[t] == i][0] for t, i in zip(t_index, wanted, strict=True)]
    return np.array(found, dtype=np.int64)


def match_pairs(seq: PitchSequence, match_threshold_m: float = 1.0) -> MatchedPairs:
    """The per-frame CLEAR matching of tracks to truth people, from py-motmetrics."""
    acc = mm.MOTAccumulator(auto_id=False)
    for t, frame in enumerate(seq.frames):
        gated = np.where(seq.distances[t] <= match_threshold_m, seq.distances[t], np.nan)
        acc.update(seq.truth_ids[t], seq.track_ids[t], gated, frameid=int(frame))
    events = acc.mot_events
    # MATCH and SWITCH rows are the pairs of a frame; TRANSFER/ASCEND/MIGRATE repeat them.
    events = events[events["Type"].isin(["MATCH", "SWITCH"])]
    frames = events.index.get_level_values(0).to_numpy(dtype=np.int64)
    truth_ids = events["OId"].to_numpy(dtype=np.int64)
    track_ids = events["HId"].to_numpy(dtype=np.int64)
    t_index = np.searchsorted(seq.frames, frames)
    truth_rows = _rows_of(seq.truth_rows, seq.truth_ids, t_index, truth_ids)
    track_rows = _rows_of(seq.track_rows, seq.track_ids, t_index, track_ids)
    return MatchedPairs(
        frame=frames,
        truth_id=truth_ids,
        track_id=track_ids,
        truth_row=truth_rows,
        track_row=track_rows,
        distance_m=events["D"].to_numpy(dtype=np.float64),
    )


def mean_position_error(pairs: MatchedPairs) -> float | None:
    """Mean distance in metres over matched pairs (None without pairs).

    Only matched pairs count, so the error is conditioned on being within the match threshold;
    misses show up in MOTA and recall instead.
    """
    return float(np.mean(pairs.distance_m)) if len(pairs.distance_m) else None


def path_length(frame: npt.NDArray[np.integer], xy: npt.NDArray[np.floating]) -> float:
    """Length in metres of the path through ``xy`` taken in frame order.

    Steps join consecutive rows, so a gap in the frames is bridged by a straight line.
    """
    points = np.asarray(xy, dtype=np.float64)[np.argsort(frame, kind="stable")]
    return float(np.linalg.norm(np.diff(points, axis=0), axis=1).sum())


@dataclass(frozen=True)
class PlayerDistance:
    """Distance covered by one truth player and by the track matched to them most often."""

    truth_id: int
    truth_m: float
    track_id: int | None
    track_m: float | None

    @property
    def abs_error_m(self) -> float | None:
        return None if self.track_m is None else abs(self.track_m - self.truth_m)

    @property
    def rel_error(self) -> float | None:
        if self.abs_error_m is None or self.truth_m == 0.0:
            return None
        return self.abs_error_m / self.truth_m


@dataclass(frozen=True)
class DistanceScores:
    """Per-player distance-covered comparison; means are over players that have a value."""

    players: list[PlayerDistance]

    @property
    def unmatched_players(self) -> int:
        return sum(p.track_id is None for p in self.players)

    @property
    def mean_abs_error_m(self) -> float | None:
        errors = [p.abs_error_m for p in self.players if p.abs_error_m is not None]
        return float(np.mean(errors)) if errors else None

    @property
    def mean_rel_error(self) -> float | None:
        errors = [p.rel_error for p in self.players if p.rel_error is not None]
        return float(np.mean(errors)) if errors else None


def distance_covered(
    pairs: MatchedPairs,
    truth_frame: npt.NDArray[np.integer],
    truth_id: npt.NDArray[np.integer],
    truth_xy: npt.NDArray[np.floating],
    track_frame: npt.NDArray[np.integer],
    track_id: npt.NDArray[np.integer],
    track_xy: npt.NDArray[np.floating],
) -> DistanceScores:
    """Compare each truth player's distance covered with that of their majority-matched track.

    The majority track is the one matched to the player in the most frames (ties go to the lower
    track id); its distance is its whole path, as analytics would report it per track, so a track
    that later drifts to another player, or a player split over several tracks, shows as error.
    Players never matched have no track and are left out of the means.

    Args:
        pairs: The matching from `match_pairs`.
        truth_frame: Frames of the truth rows to score (pass players only).
        truth_id: Identities of those rows.
        truth_xy: ``[N, 2]`` pitch positions of those rows.
        track_frame: Frames of all track rows.
        track_id: Identities of all track rows.
        track_xy: ``[M, 2]`` pitch positions of all track rows.
    """
    players = []
    for pid in np.unique(truth_id):
        mine = truth_id == pid
        truth_m = path_length(truth_frame[mine], truth_xy[mine])
        counts = Counter(pairs.track_id[pairs.truth_id == pid].tolist())
        if not counts:
            players.append(PlayerDistance(int(pid), truth_m, None, None))
            continue
        best = min(counts, key=lambda k: (-counts[k], k))
        theirs = track_id == best
        track_m = path_length(track_frame[theirs], track_xy[theirs])
        players.append(PlayerDistance(int(pid), truth_m, int(best), track_m))
    return DistanceScores(players)


def team_accuracy(
    pairs: MatchedPairs, truth_team: npt.NDArray[np.str_], track_team: npt.NDArray[np.str_]
) -> float | None:
    """Share of matched pairs whose track team equals the truth team (None without pairs).

    A track labelled ``unknown`` (or null) counts as wrong: the pipeline did not assign the team,
    and scoring it as right or dropping it would reward abstaining. The referee's track is right
    when its team reads ``referee``, which the export writes for every track of role referee.
    """
    if not len(pairs.frame):
        return None
    return float(np.mean(truth_team[pairs.truth_row] == track_team[pairs.track_row]))


@dataclass(frozen=True)
class PositionError:
    """Signed and absolute position error over matched pairs, error = track minus truth.

    The signed mean is the systematic part (a homography offset, boxes' foot points taken too
    high or low) that averaging more frames would not remove; ``bias_m`` is its length, the
    issue's "mean position bias" figure. The median shows whether a few far pairs drive the mean.

    Attributes:
        pairs: Matched pairs behind the figures.
        mean_m: Mean error magnitude (the same figure as `mean_position_error`).
        mean_x_m: Mean signed error along the pitch x axis.
        mean_y_m: Mean signed error along the pitch y axis.
        median_x_m: Median signed error along x.
        median_y_m: Median signed error along y.
    """

    pairs: int
    mean_m: float
    mean_x_m: float
    mean_y_m: float
    median_x_m: float
    median_y_m: float

    @property
    def bias_m(self) -> float:
        """Length of the mean error vector: the mean position bias."""
        return float(np.hypot(self.mean_x_m, self.mean_y_m))


def position_error(
    pairs: MatchedPairs, truth_xy: npt.NDArray[np.floating], track_xy: npt.NDArray[np.floating]
) -> PositionError | None:
    """Mean and median of the track-minus-truth vectors over matched pairs (None without pairs).

    Args:
        pairs: The matching from `match_pairs`.
        truth_xy: ``[N, 2]`` truth positions its ``truth_row`` indexes.
        track_xy: ``[M, 2]`` track positions its ``track_row`` indexes.
    """
    if not len(pairs.frame):
        return None
    track = np.asarray(track_xy, dtype=np.float64)[pairs.track_row]
    errors = track - np.asarray(truth_xy, dtype=np.float64)[pairs.truth_row]
    mean, median = errors.mean(axis=0), np.median(errors, axis=0)
    return PositionError(
        pairs=len(errors),
        mean_m=float(np.linalg.norm(errors, axis=1).mean()),
        mean_x_m=float(mean[0]),
        mean_y_m=float(mean[1]),
        median_x_m=float(median[0]),
        median_y_m=float(median[1]),
    )


@dataclass(frozen=True)
class IdentityCounts:
    """How many track identities the tracker spent per true person.

    One means one track per person for the whole clip; more means fragmented or spurious
    tracks (IDF1 weighs those by frames, this counts them).

    Attributes:
        truth_people: Distinct truth people (players, goalkeepers, referee; not the ball).
        track_ids: Distinct track ids in the results.
        matched_track_ids: Distinct track ids matched to some truth person at least once, so
            without tracks on nobody (spectators, the ball, ghosts).
    """

    truth_people: int
    track_ids: int
    matched_track_ids: int

    @property
    def ids_per_person(self) -> float | None:
        """Track ids per truth person (None without truth people)."""
        return self.track_ids / self.truth_people if self.truth_people else None

    @property
    def matched_ids_per_person(self) -> float | None:
        """Matched track ids per truth person (None without truth people)."""
        return self.matched_track_ids / self.truth_people if self.truth_people else None


def identity_counts(
    pairs: MatchedPairs, truth_id: npt.NDArray[np.integer], track_id: npt.NDArray[np.integer]
) -> IdentityCounts:
    """Count the distinct truth people and track ids (pass people-only truth ids)."""
    return IdentityCounts(
        truth_people=len(np.unique(truth_id)),
        track_ids=len(np.unique(track_id)),
        matched_track_ids=len(np.unique(pairs.track_id)),
    )


REFEREE_GROUP = "referee"
UNKNOWN_GROUP = "unknown"
GROUPS = ("home-player", "home-goalkeeper", "away-player", "away-goalkeeper", REFEREE_GROUP)
"""The (team, role) groups of the people on the pitch; the referee's group has no team."""
_SIDES = ("home", "away")
_ROLE_GROUP = {"outfield": "player", "goalkeeper": "goalkeeper"}


def person_groups(team: npt.NDArray[np.str_], role: npt.NDArray[np.str_]) -> npt.NDArray[np.str_]:
    """The group of each (team, role) name pair: one of `GROUPS`, or `UNKNOWN_GROUP`.

    Used for the truth and for the tracks alike. The referee is ``referee`` when either the role
    or the team says so, and the other label is then ignored: the referee belongs to neither
    side, so a referee track's team code (the track stage writes -1, but a colour clustering may
    put the referee's kit on a side) says nothing about it. Results without roles (older files)
    still score their referee tracks through a ``referee`` team. A home or away person needs a
    known role, and a player or goalkeeper a known side; anything else is ``unknown``.
    """
    team, role = np.asarray(team, dtype=np.str_), np.asarray(role, dtype=np.str_)
    width = max(len(g) for g in (*GROUPS, UNKNOWN_GROUP))
    out = np.full(team.shape, UNKNOWN_GROUP, dtype=f"<U{width}")
    for side in _SIDES:
        for role_name, group in _ROLE_GROUP.items():
            out[(team == side) & (role == role_name)] = f"{side}-{group}"
    out[(team == REFEREE_GROUP) | (role == REFEREE_GROUP)] = REFEREE_GROUP
    return out


@dataclass(frozen=True)
class GroupAccuracy:
    """Team-and-role labels of the matched pairs: truth group against track group.

    Attributes:
        confusion: Truth group → track group → matched pairs, for every group of `GROUPS`
            (truth) and every group plus `UNKNOWN_GROUP` (track); zeros included, so the table
            always has the same shape. Pairs whose truth person has no group are left out.
    """

    confusion: dict[str, dict[str, int]]

    @property
    def pairs(self) -> int:
        """Matched pairs scored."""
        return sum(sum(row.values()) for row in self.confusion.values())

    @property
    def accuracy(self) -> float | None:
        """Share of scored pairs whose track group equals the truth's (None without pairs)."""
        total = self.pairs
        right = sum(row[group] for group, row in self.confusion.items())
        return right / total if total else None

    def group_pairs(self, group: str) -> int:
        """Matched pairs of truth people in ``group``."""
        return sum(self.confusion[group].values())

    def group_accuracy(self, group: str) -> float | None:
        """Share of ``group``'s pairs labelled ``group`` (its recall; None without pairs)."""
        total = self.group_pairs(group)
        return self.confusion[group][group] / total if total else None


def group_accuracy(
    pairs: MatchedPairs,
    truth_team: npt.NDArray[np.str_],
    truth_role: npt.NDArray[np.str_],
    track_team: npt.NDArray[np.str_],
    track_role: npt.NDArray[np.str_],
) -> GroupAccuracy:
    """Tabulate truth group against track group (`person_groups`) over the matched pairs.

    A track with an unknown team or role is in `UNKNOWN_GROUP` and so counts as wrong, as in
    `team_accuracy`: abstaining must not score better than guessing.
    """
    truth = person_groups(truth_team[pairs.truth_row], truth_role[pairs.truth_row])
    track = person_groups(track_team[pairs.track_row], track_role[pairs.track_row])
    columns = (*GROUPS, UNKNOWN_GROUP)
    confusion = {
        t: {k: int(np.count_nonzero((truth == t) & (track == k))) for k in columns} for t in GROUPS
    }
    return GroupAccuracy(confusion)
