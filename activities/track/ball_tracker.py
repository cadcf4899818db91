"""The match ball through a whole match, in pitch metres, from per-frame ball candidates.

A frame's candidates are mostly not the ball: line fragments, socks, heads, spare balls, noise.
One frame cannot tell them apart; a second of them can: the match ball moves like a ball, and
the track stage sees the whole match at once. So the tracker works offline, in four steps:

1. **Tracklets.** Candidates whose grass point is within ``flight_margin_m`` of the lines are
   linked frame to frame *in the image*, where a ball's path is smooth whether it rolls or flies
   (the grass point of a lofted ball races away and back), by a constant-velocity predictor with
   a gate that grows with speed, allowing a few missed frames. Each tracklet is a short
   hypothesis "this is one object moving like this".
2. **One chain.** Every tracklet gets a weight: the evidence of its candidates (score above a
   floor counts for, below against), more for movement; long still tracklets (a pitch spot, a
   line crossing, a ball left lying) and still ones beyond ``margin_m`` (spare balls) get
   nothing. The chain of tracklets, one after another in time and reachable from each other at
   a ball's speed, with the greatest total weight is found by dynamic programming (weighted
   interval scheduling; a gap costs its length and the distance between where the next tracklet
   starts and where the ball would be had it kept going or stopped), so one ball is kept for the
   match, never two at once.
3. **Bridging.** Gaps between consecutive tracklets up to ``bridge_s`` long are filled by linear
   interpolation on the grass (horizontal motion is uniform in flight too); longer gaps, and
   gaps with an out-of-play end, say "not visible".
4. **Flights and play.** The chain's sightings are searched for ballistic flights
   (`activities.track.ball_flight`): where one is found, the ball's ground point and height come
   from the fitted path in 3D, not from where its image meets the grass. The ball is in play
   while it is inside the lines (with a small tolerance), and an unseen ball near a line is not
   said to be in play.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from activities.stitch.panorama import PanoramaModel, panorama_to_pitch
from activities.track.ball_flight import FlightSettings, find_flights
from activities.track.ball_track import BallTrack
from polyvision.geometry.pitch import BALL_RADIUS_M

Float64Array = npt.NDArray[np.float64]
Int64Array = npt.NDArray[np.int64]

GRAVITY_MPS2 = 9.81


@dataclass(frozen=True)
class BallTrackerSettings:
    """Knobs of the ball tracker (defaults measured on the synthetic seeds, see the issue note).

    Attributes:
        pitch_length_m: Pitch length (``x``).
        pitch_width_m: Pitch width (``y``).
        margin_m: A still object farther than this outside the lines is not the match ball (a
            spare ball, the crowd): the match ball out of play stops within a few metres.
        flight_margin_m: Candidates whose grass point is farther out than this are ignored;
            between the two margins only moving tracklets count (a lofted ball's grass point
            lies far beyond it).
        gate_px: Association radius around the prediction at rest, panorama pixels.
        gate_per_px: How much the radius grows per pixel per frame of the tracklet's speed.
        first_gate_px: Radius around a tracklet's only sighting (no speed known yet): a kicked
            ball moves tens of pixels a frame.
        max_missed: Frames a tracklet may go without a candidate before it ends.
        score_floor: A candidate's score counts as evidence above this, against below it.
        moving_bonus: Extra weight per frame of a tracklet that moves.
        static_after_s: A tracklet still for longer than this is scenery: its weight is cut.
        max_px_per_frame: Fastest the ball's image may travel between two tracklets.
        bridge_s: Longest gap between two tracklets filled by interpolation.
        gap_penalty: Weight lost per second of gap in the chain (prefers dense chains).
        jump_penalty: Weight lost per pixel between where a tracklet's motion says the ball
            would be and where the next one starts (over the square root of the gap).
        in_play_tolerance_m: The ball is out of play this far beyond a line.
        unseen_line_margin_m: A ball bridged or extrapolated (not seen) this close to a line is
            not said to be in play.
    """

    pitch_length_m: float = 105.0
    pitch_width_m: float = 68.0
    margin_m: float = 4.0
    flight_margin_m: float = 12.0
    gate_px: float = 4.0
    gate_per_px: float = 0.5
    first_gate_px: float = 25.0
    max_missed: int = 3
    score_floor: float = 0.5
    moving_bonus: float = 0.3
    static_after_s: float = 6.0
    max_px_per_frame: float = 30.0
    bridge_s: float = 2.0
    gap_penalty: float = 0.5
    jump_penalty: float = 0.15
    in_play_tolerance_m: float = 0.3
    unseen_line_margin_m: float = 3.0


@dataclass(frozen=True)
class BallCandidates:
    """Ball candidates of a match, in pitch metres; row ``i`` is one candidate.

    Attributes:
        frame: ``[N]`` match frame index.
        uv: ``[N, 2]`` panorama pixel of the candidate's centre.
        score: ``[N]`` 0..1 how ball-like the candidate looks.
    """

    frame: Int64Array
    uv: Float64Array
    score: Float64Array

    def __post_init__(self) -> None:
        n = self.frame.shape[0]
        if self.uv.shape != (n, 2) or self.score.shape != (n,):
            raise ValueError("candidates: frame [N], uv [N, 2] and score [N] must agree")


@dataclass
class _Tracklet:
    frames: list[int] = field(default_factory=list)
    members: list[int] = field(default_factory=list)
    points: list[Float64Array] = field(default_factory=list)
    scores: list[float] = field(default_factory=list)
    velocity: Float64Array = field(default_factory=lambda: np.zeros(2))

    @property
    def last_frame(self) -> int:
        return self.frames[-1]

    def predict(self, frame: int) -> Float64Array:
        return self.points[-1] + self.velocity * (frame - self.last_frame)

    def add(self, frame: int, point: Float64Array, score: float, member: int) -> None:
        if self.frames:
            measured = (point - self.points[-1]) / (frame - self.last_frame)
            # Alpha-beta style: the ball's velocity changes at kicks, so it is not over-smoothed.
            self.velocity = self.velocity + 0.6 * (measured - self.velocity)
        self.frames.append(frame)
        self.members.append(member)
        self.points.append(point)
        self.scores.append(score)


def _link(
    frame: Int64Array, uv: Float64Array, score_in: Float64Array, s: BallTrackerSettings
) -> list[_Tracklet]:
    """Tracklets from candidates, frame by frame (greedy by distance within each gate).

    Linked in the image, where a ball's path is smooth whether it rolls or flies (the grass
    point of a lofted ball races away and back); a tracklet's members index the input arrays.
    """
    order = np.argsort(frame, kind="stable")
    frames = frame[order]
    xy = uv[order]
    score = score_in[order]
    bounds = np.flatnonzero(np.diff(frames)) + 1
    starts = np.concatenate([[0], bounds])
    ends = np.concatenate([bounds, [len(frames)]])
    active: list[_Tracklet] = []
    done: list[_Tracklet] = []
    for lo, hi in zip(starts, ends, strict=True):
        if lo == hi:
            continue
        current = int(frames[lo])
        still = [t for t in active if current - t.last_frame <= s.max_missed + 1]
        done.extend(t for t in active if current - t.last_frame > s.max_missed + 1)
        active = still
        points = xy[lo:hi]
        taken = np.zeros(hi - lo, np.bool_)
        if active:
            predicted = np.array([t.predict(current) for t in active])
            speeds = np.array([float(np.hypot(*t.velocity)) for t in active])
            gaps = np.array([current - t.last_frame for t in active])
            gate = (s.gate_px + s.gate_per_px * speeds) * np.sqrt(gaps)
            fresh = np.array([len(t.frames) == 1 for t in active])
            gate[fresh] = s.first_gate_px * gaps[fresh]
            dist = np.hypot(
                predicted[:, None, 0] - points[None, :, 0],
                predicted[:, None, 1] - points[None, :, 1],
            )
            dist[dist > gate[:, None]] = np.inf
            # Greedy on the smallest distances: cheap, and with gates this small it rarely
            # differs from an optimal assignment.
            for flat in np.argsort(dist, axis=None):
                ti, ci = np.unravel_index(flat, dist.shape)
                if not np.isfinite(dist[ti, ci]):
                    break
                if taken[ci] or active[ti].last_frame == current:
                    continue
                active[ti].add(current, points[ci], float(score[lo + ci]), int(order[lo + ci]))
                taken[ci] = True
        for ci in np.flatnonzero(~taken):
            tracklet = _Tracklet()
            tracklet.add(current, points[ci], float(score[lo + ci]), int(order[lo + ci]))
            active.append(tracklet)
    done.extend(active)
    return done


@dataclass(frozen=True)
class _Scored:
    first: int
    last: int
    start_xy: Float64Array
    end_xy: Float64Array
    end_velocity: Float64Array
    weight: float
    index: int


def _weight(t: _Tracklet, ground: Float64Array, fps: float, s: BallTrackerSettings) -> float:
    scores = np.asarray(t.scores)
    evidence = float(np.sum(scores - s.score_floor))
    points = np.asarray(t.points)
    duration_s = (t.frames[-1] - t.frames[0]) / fps
    extent = float(np.ptp(points, axis=0).max()) if len(points) > 1 else 0.0
    # Moving: the image travels over five frames, not jitters from one to the next.
    span = min(5, len(points) - 1)
    travel = np.hypot(*(points[span:] - points[:-span]).T) if span > 0 else np.zeros(0)
    moving = int(np.sum(travel > 2.5))
    weight = evidence + s.moving_bonus * moving
    if duration_s > s.static_after_s and extent < 3.0:
        weight = min(weight, 0.0)  # scenery: a spot, a line crossing, a ball left lying
    off = ~_near_pitch(ground[np.asarray(t.members)], s.margin_m, s)
    if off.mean() > 0.5 and moving < 0.5 * len(t.frames):
        weight = min(weight, 0.0)  # standing beyond the margin: a spare ball, not the match's
    return weight


def _chain(
    tracklets: list[_Tracklet], ground: Float64Array, fps: float, s: BallTrackerSettings
) -> list[int]:
    """Indices of the heaviest chain of compatible tracklets, in time order."""
    scored = [
        _Scored(
            t.frames[0],
            t.frames[-1],
            t.points[0],
            t.points[-1],
            t.velocity,
            _weight(t, ground, fps, s),
            i,
        )
        for i, t in enumerate(tracklets)
    ]
    scored = [c for c in scored if c.weight > 0]
    if not scored:
        return []
    scored.sort(key=lambda c: (c.first, c.last))
    lasts = np.array([c.last for c in scored])
    best = np.zeros(len(scored))
    back = np.full(len(scored), -1, np.int64)
    window = round(max(s.bridge_s, 4.0) * fps)
    by_end = np.argsort(lasts, kind="stable")
    sorted_lasts = lasts[by_end]
    # Beyond the window any earlier tracklet can reach this one (the ball crosses the pitch in
    # a few seconds): the best chain that ended that long ago, folded in as the window moves.
    folded, long_best, long_arg = 0, 0.0, -1
    for j, c in enumerate(scored):
        best[j] = c.weight
        horizon = c.first - window
        while folded < len(by_end) and sorted_lasts[folded] < horizon:
            i = int(by_end[folded])
            if best[i] > long_best:
                long_best, long_arg = float(best[i]), i
            folded += 1
        if long_arg >= 0 and long_best - s.gap_penalty * window / fps > 0:
            best[j] = c.weight + long_best - s.gap_penalty * window / fps
            back[j] = long_arg
        lo = int(np.searchsorted(sorted_lasts, horizon, side="left"))
        hi = int(np.searchsorted(sorted_lasts, c.first, side="left"))
        for i in by_end[lo:hi]:
            if best[i] <= 0:
                continue
            prev = scored[i]
            gap = c.first - prev.last
            gap_s = gap / fps
            reach = s.max_px_per_frame * gap + 10.0
            if float(np.hypot(*(c.start_xy - prev.end_xy))) > reach:
                continue
            # Unseen, the ball either kept going, or was stopped within half a second (a
            # player, a keeper): the nearer of the two is where the next tracklet should start.
            kept_going = prev.end_xy + prev.end_velocity * gap
            kept_short = prev.end_xy + prev.end_velocity * min(gap, 12)
            miss = min(
                float(np.hypot(*(c.start_xy - kept_going))),
                float(np.hypot(*(c.start_xy - kept_short))),
            )
            jump = miss / np.sqrt(gap)
            total = best[i] + c.weight - s.gap_penalty * gap_s - s.jump_penalty * jump
            if total > best[j]:
                best[j] = total
                back[j] = i
    j = int(np.argmax(best))
    chain: list[int] = []
    while j >= 0:
        chain.append(scored[j].index)
        j = int(back[j])
    chain.reverse()
    return chain


def track_ball(
    candidates: BallCandidates,
    model: PanoramaModel,
    first_frame: int,
    frames: int,
    fps: float,
    settings: BallTrackerSettings | None = None,
    flight_settings: FlightSettings | None = None,
) -> BallTrack:
    """The match ball at every frame of ``[first_frame, first_frame + frames)``."""
    s = settings or BallTrackerSettings()
    track = BallTrack.not_seen(first_frame, frames)
    ground_all = panorama_to_pitch(model, candidates.uv, BALL_RADIUS_M)
    inside = _near_pitch(ground_all, s.flight_margin_m, s) & (candidates.frame >= first_frame)
    inside &= candidates.frame < first_frame + frames
    frame = candidates.frame[inside]
    uv = candidates.uv[inside]
    ground = ground_all[inside]
    if len(frame) == 0:
        return track
    tracklets = _link(frame, uv, candidates.score[inside], s)
    chain = [tracklets[i] for i in _chain(tracklets, ground, fps, s)]
    xy, z, visible, observed, confidence = (
        track.xy.copy(),
        track.z.copy(),
        track.visible.copy(),
        track.observed.copy(),
        track.confidence.copy(),
    )
    previous: _Tracklet | None = None
    for tracklet in chain:
        rows = np.asarray(tracklet.frames) - first_frame
        points = ground[np.asarray(tracklet.members)]
        conf = float(np.clip(np.mean(tracklet.scores), 0.0, 1.0))
        # Inside a tracklet, missed frames are filled too (at most max_missed of them).
        full = np.arange(rows[0], rows[-1] + 1)
        xy[full, 0] = np.interp(full, rows, points[:, 0])
        xy[full, 1] = np.interp(full, rows, points[:, 1])
        z[full] = BALL_RADIUS_M
        visible[full] = True
        observed[rows] = True
        confidence[full] = conf
        if previous is not None:
            _bridge(previous, tracklet, ground, first_frame, fps, s, xy, z, visible, confidence)
        previous = tracklet
    if chain:
        members = np.concatenate([np.asarray(t.members, np.int64) for t in chain])
        for flight in find_flights(
            model, frame[members], uv[members], ground[members], fps, flight_settings
        ):
            span = np.arange(
                max(flight.first, first_frame), min(flight.last, first_frame + frames - 1) + 1
            )
            position = flight.at(span, fps)
            rows = span - first_frame
            xy[rows] = position[:, :2]
            z[rows] = position[:, 2]
            visible[rows] = True
    # Unseen near a line, the ball may as well have crossed it: in play is not claimed there.
    near_line = ~_inside_lines(xy, s, -s.unseen_line_margin_m)
    in_play = visible & _inside_lines(xy, s) & (observed | ~near_line)
    return BallTrack(track.frame, xy, z, visible, observed, in_play, confidence)


def _bridge(
    before: _Tracklet,
    after: _Tracklet,
    ground: Float64Array,
    first_frame: int,
    fps: float,
    s: BallTrackerSettings,
    xy: Float64Array,
    z: Float64Array,
    visible: npt.NDArray[np.bool_],
    confidence: Float64Array,
) -> None:
    gap = after.frames[0] - before.last_frame
    if gap <= 1 or gap > s.bridge_s * fps:
        return
    a, b = before.last_frame - first_frame, after.frames[0] - first_frame
    inner = np.arange(a + 1, b)
    frac = (inner - a) / (b - a)
    start, end = ground[before.members[-1]], ground[after.members[0]]
    if not (_inside_lines(start[None], s)[0] and _inside_lines(end[None], s)[0]):
        return  # out of play at one end: the ball was fetched or replaced, not carried
    xy[inner] = start + frac[:, None] * (end - start)
    duration = (b - a) / fps
    ground_speed = float(np.hypot(*(end - start))) / duration
    if ground_speed > 8.0 and duration > 0.4:
        # Too fast to have been carried or rolled behind players: in the air, on a parabola
        # that leaves and lands at the two ends.
        t = frac * duration
        z[inner] = BALL_RADIUS_M + 0.5 * GRAVITY_MPS2 * t * (duration - t)
    else:
        z[inner] = BALL_RADIUS_M
    visible[inner] = True
    confidence[inner] = 0.5 * min(float(np.mean(before.scores)), float(np.mean(after.scores)))


def _near_pitch(xy: Float64Array, m: float, s: BallTrackerSettings) -> npt.NDArray[np.bool_]:
    return (
        np.isfinite(xy).all(axis=1)
        & (xy[:, 0] >= -m)
        & (xy[:, 0] <= s.pitch_length_m + m)
        & (xy[:, 1] >= -m)
        & (xy[:, 1] <= s.pitch_width_m + m)
    )


def _inside_lines(
    xy: Float64Array, s: BallTrackerSettings, tolerance_m: float | None = None
) -> npt.NDArray[np.bool_]:
    tol = s.in_play_tolerance_m if tolerance_m is None else tolerance_m
    with np.errstate(invalid="ignore"):
        return (
            (xy[:, 0] >= -tol)
            & (xy[:, 0] <= s.pitch_length_m + tol)
            & (xy[:, 1] >= -tol)
            & (xy[:, 1] <= s.pitch_width_m + tol)
        )
