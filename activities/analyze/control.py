"""Who controls the ball, frame by frame, from a noisy and gappy ball track; passes and events.

The ball track loses the ball for seconds at a time, jumps now and then to a false candidate,
and a pass in flight passes within reach of other players. Possession read frame by frame from
"the player nearest the ball" flickers between teams on every such error. So:

* **Out of play with hysteresis.** The ball is out of play once it has been reported off the
  pitch (visible and not ``in_play``) for ``out_s`` running, and back in play once reported
  on it for ``in_s`` running (an *out of play* and a *restart* event).
  Frames with the ball unseen keep the state: the ball does not leave the pitch unseen often
  enough to guess otherwise. Out-of-play frames count for nobody.
* **Control needs time.** A frame is a *touch* of a player when the ball is seen, low (under
  ``low_m``), slow (under ``flight_mps``: a ball in flight belongs to nobody yet) and within
  ``control_m`` of that player, the nearest player of either team. A player takes control after
  ``gain_s`` of touches in a row (frames without a touch by anyone, up to ``miss_s``, do not
  break the run), and keeps it until another player takes it.
* **Possession is carried.** A team has the ball from the first touch of a control of one of
  its players until the first touch of the next control by the other team, through short gaps
  in the ball track and passes in flight; out of play ends it. Through a gap longer than
  ``lost_s`` nobody has it: who does is a guess, and carrying the last team through would
  bias the share towards it.

Events follow from the sequence of controls: a *pass* is the ball going from one player to a
different player of the same team (completed), or from a player who then loses the ball to the
other team or out of play after it travelled at least ``pass_min_m`` (not completed); a
*possession change* is a control by the other team.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from activities.track.ball_track import BallTrack

I64 = npt.NDArray[np.int64]
F64 = npt.NDArray[np.float64]

NOBODY = -1
"""Possession code of a frame nobody has the ball in (and of out-of-play frames)."""

PASS = "pass"
POSSESSION_CHANGE = "possession_change"
OUT_OF_PLAY = "out_of_play"
RESTART = "restart"
EVENT_KINDS = (PASS, POSSESSION_CHANGE, OUT_OF_PLAY, RESTART)


@dataclass(frozen=True)
class ControlSettings:
    """Tuning of `ball_control`; see the module docstring. Durations are in seconds and
    rounded to whole frames (at least one).

    Tuned on synthetic seeds other than the benchmark's (`bench.analytics_accuracy`): a
    control radius of 1.5 m and 0.2 s of touches; a wider radius or shorter time lets passes
    in flight and a jumpy ball track hand the ball to whoever it passes.
    """

    control_m: float = 1.5
    low_m: float = 1.5
    flight_mps: float = 12.0
    gain_s: float = 0.2
    miss_s: float = 0.12
    # A lofted ball's ground point falls beyond a line for a few frames now and then; a ball
    # played out stays out for seconds.
    out_s: float = 0.4
    in_s: float = 0.16
    pass_min_m: float = 3.0
    lost_s: float = 2.0

    def frames(self, seconds: float, fps: float) -> int:
        """A duration in whole frames, at least one."""
        return max(1, round(seconds * fps))


@dataclass(frozen=True)
class Control:
    """One player's spell on the ball.

    Attributes:
        identity: The player.
        team: The player's team.
        start: First frame of the touches that gave control.
        end: Last frame touched before someone else took control (or play stopped).
        start_xy: The ball at ``start``.
        end_xy: The ball at ``end``.
        spell: Number of the in-play spell it belongs to (restarts start a new one).
        out_xy: Where the ball was last seen when play stopped during this control (None:
            another player took control).
    """

    identity: int
    team: int
    start: int
    end: int
    start_xy: tuple[float, float]
    end_xy: tuple[float, float]
    spell: int
    out_xy: tuple[float, float] | None = None


@dataclass(frozen=True)
class MatchEvent:
    """A pass, possession change, out of play or restart.

    Attributes:
        frame: When (a pass: when it was played).
        kind: One of `EVENT_KINDS`.
        team: The team playing the pass, gaining the ball, or (out of play) the last in
            possession; -1 unknown.
        from_identity: The passer or the player who lost the ball; -1 none.
        to_identity: The receiver or the player who won the ball; -1 none.
        xy: Where (the ball).
        to_xy: Where the ball was received (passes and possession changes), else ``xy``.
        completed: A pass that reached a teammate.
    """

    frame: int
    kind: str
    team: int
    from_identity: int
    to_identity: int
    xy: tuple[float, float]
    to_xy: tuple[float, float]
    completed: bool


@dataclass(frozen=True)
class BallControl:
    """The ball's story over the match.

    Attributes:
        frame: ``[N]`` the ball track's frames.
        in_play: ``[N]`` the ball in play (with hysteresis).
        possession: ``[N]`` team in possession (0, 1) or `NOBODY`.
        controls: The players' spells on the ball, in time order.
        events: Passes, possession changes, out of play and restarts, in time order.
    """

    frame: I64
    in_play: npt.NDArray[np.bool_]
    possession: npt.NDArray[np.int8]
    controls: list[Control]
    events: list[MatchEvent]


def in_play_with_hysteresis(
    ball: BallTrack, out_frames: int, in_frames: int, low_m: float = 1.5
) -> npt.NDArray[np.bool_]:
    """Per frame, whether the ball is in play: a state that changes after a run of evidence.

    Only a low ball (under ``low_m``, or of unknown height) off the pitch is evidence of play
    stopped: a lofted ball's ground point is where the tracker is least sure, and a ball in
    the air over the line comes down (or is lost) before play stops.
    """
    seen = np.asarray(ball.visible, np.bool_) & np.isfinite(ball.xy).all(axis=1)
    low = ~(np.asarray(ball.z, np.float64) >= low_m)  # NaN height counts as low
    on = seen & np.asarray(ball.in_play, np.bool_)
    off = seen & low & ~np.asarray(ball.in_play, np.bool_)
    state = np.ones(len(ball), np.bool_)
    current = True
    run_start = 0
    run = 0
    for i in range(len(ball)):
        evidence_against = off[i] if current else on[i]
        evidence_for = on[i] if current else off[i]
        if evidence_against:
            if run == 0:
                run_start = i
            run += 1
            if run >= (out_frames if current else in_frames):
                current = not current
                state[run_start : i + 1] = current
                run = 0
                continue
        elif evidence_for:
            run = 0
        state[i] = current
    return state


def _ball_speed(ball: BallTrack, in_play: npt.NDArray[np.bool_], fps: float) -> F64:
    """Ball speed over ground (m/s) by central differences over 2 frames either side; NaN where
    the ball is not seen in play on both sides (a restart moves the ball, nobody kicks it)."""
    xy = np.where((ball.visible & in_play)[:, None], ball.xy, np.nan)
    speed = np.full(len(ball), np.nan)
    if len(ball) > 4:
        step = np.hypot(*(xy[4:] - xy[:-4]).T) * fps / 4.0
        speed[2:-2] = step
    return speed


def nearest_player(
    ball: BallTrack,
    frame: npt.ArrayLike,
    identity: npt.ArrayLike,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
) -> tuple[I64, F64]:
    """Per ball frame, the nearest of the given player points to the ball and its distance
    (-1 and inf where the ball is not seen or no player is there)."""
    frames = np.asarray(frame, np.int64)
    ids = np.asarray(identity, np.int64)
    px = np.asarray(x, np.float64)
    py = np.asarray(y, np.float64)
    n = len(ball)
    nearest = np.full(n, -1, np.int64)
    distance = np.full(n, np.inf)
    if n == 0 or frames.size == 0:
        return nearest, distance
    at = frames - int(ball.frame[0])
    inside = (at >= 0) & (at < n)
    at, ids, px, py = at[inside], ids[inside], px[inside], py[inside]
    with np.errstate(invalid="ignore"):
        d = np.hypot(px - ball.xy[at, 0], py - ball.xy[at, 1])
    d = np.where(np.isfinite(d), d, np.inf)
    # Sort by (frame, distance): the first row of each frame is its nearest player.
    order = np.lexsort((d, at))
    at_sorted = at[order]
    first = np.concatenate([[True], at_sorted[1:] != at_sorted[:-1]])
    chosen = order[first]
    nearest[at[chosen]] = ids[chosen]
    distance[at[chosen]] = d[chosen]
    nearest[~np.isfinite(distance)] = -1
    return nearest, distance


def ball_control(
    ball: BallTrack,
    frame: npt.ArrayLike,
    identity: npt.ArrayLike,
    team: npt.ArrayLike,
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    fps: float,
    settings: ControlSettings | None = None,
) -> BallControl:
    """Possession per frame, the players' spells on the ball and the match events.

    Args:
        ball: The ball at every frame of the match.
        frame: Frame of each player point (players of teams 0 and 1 only: referees and
            unknown people must be left out by the caller).
        identity: Identity of each point.
        team: Team of each point (0 or 1).
        x: Pitch x of each point, metres (smoothed positions work best).
        y: Pitch y of each point, metres.
        fps: Frames per second.
        settings: Tuning; the defaults when None.
    """
    s = settings or ControlSettings()
    n = len(ball)
    ids = np.asarray(identity, np.int64)
    teams = np.asarray(team, np.int64)
    team_of = dict(zip(ids.tolist(), teams.tolist(), strict=True))
    in_play = in_play_with_hysteresis(ball, s.frames(s.out_s, fps), s.frames(s.in_s, fps), s.low_m)
    gain_frames = s.frames(s.gain_s, fps)
    miss_frames = s.frames(s.miss_s, fps)
    nearest, distance = nearest_player(ball, frame, ids, x, y)
    height = np.nan_to_num(np.asarray(ball.z, np.float64), nan=0.0)
    speed = _ball_speed(ball, in_play, fps)
    slow = ~(speed > s.flight_mps)  # NaN (speed unknown) counts as slow
    touch = np.where(
        in_play & ball.visible & (distance <= s.control_m) & (height < s.low_m) & slow,
        nearest,
        -1,
    )
    possession = np.full(n, NOBODY, np.int8)
    controls: list[Control] = []
    events: list[MatchEvent] = []
    xy = ball.xy

    def ball_at(i: int) -> tuple[float, float]:
        return (float(xy[i, 0]), float(xy[i, 1]))

    current = -1  # identity in control
    current_start = current_end = 0
    pending = -1
    pending_start = pending_count = misses = 0
    spell = 0
    last_team = NOBODY

    def close_control(out_xy: tuple[float, float] | None = None) -> None:
        if current >= 0:
            controls.append(
                Control(
                    current,
                    team_of[current],
                    current_start,
                    current_end,
                    ball_at(current_start),
                    ball_at(current_end),
                    spell,
                    out_xy,
                )
            )

    for i in range(n):
        if not in_play[i]:
            if i > 0 and in_play[i - 1]:
                where = _last_seen(xy, ball.visible, i)
                close_control(where)
                events.append(
                    MatchEvent(
                        int(ball.frame[i]),
                        OUT_OF_PLAY,
                        last_team,
                        current,
                        -1,
                        where,
                        where,
                        False,
                    )
                )
                current, pending, pending_count, misses = -1, -1, 0, 0
                spell += 1
            continue
        if i > 0 and not in_play[i - 1]:
            events.append(
                MatchEvent(
                    int(ball.frame[i]), RESTART, NOBODY, -1, -1, ball_at(i), ball_at(i), False
                )
            )
        who = int(touch[i])
        if who < 0:
            misses += 1
            if misses > miss_frames:
                pending, pending_count = -1, 0
        elif who == current:
            current_end = i
            pending, pending_count, misses = -1, 0, 0
        else:
            if who == pending:
                pending_count += 1
            else:
                pending, pending_start, pending_count = who, i, 1
            misses = 0
            if pending_count >= gain_frames:
                close_control()
                current, current_start, current_end = pending, pending_start, i
                team_now = team_of[current]
                # Possession is the new team's from its first touch.
                possession[pending_start : i + 1] = team_now
                last_team = team_now
                pending, pending_count = -1, 0
                continue
        possession[i] = last_team if current >= 0 else NOBODY
    close_control()
    possession[~in_play] = NOBODY
    _forget_long_losses(
        possession, ball.visible, s.frames(s.lost_s, fps) if np.isfinite(s.lost_s) else n + 1
    )
    events.extend(_control_events(controls, ball, s))
    events.sort(key=lambda e: (e.frame, EVENT_KINDS.index(e.kind)))
    return BallControl(
        frame=np.asarray(ball.frame, np.int64),
        in_play=in_play,
        possession=possession,
        controls=controls,
        events=events,
    )


def _forget_long_losses(
    possession: npt.NDArray[np.int8], visible: npt.NDArray[np.bool_], longest: int
) -> None:
    """Nobody's possession through runs of more than ``longest`` frames without the ball:
    who has it then is a guess, and carrying the last team through would bias the share."""
    hidden = ~np.asarray(visible, np.bool_)
    edges = np.flatnonzero(np.diff(np.concatenate([[0], hidden.astype(np.int8), [0]])))
    for start, end in zip(edges[::2], edges[1::2], strict=True):
        if end - start > longest:
            possession[start:end] = NOBODY


def _last_seen(xy: F64, visible: npt.NDArray[np.bool_], i: int) -> tuple[float, float]:
    seen = np.flatnonzero(visible[: i + 1] & np.isfinite(xy[: i + 1]).all(axis=1))
    if seen.size == 0:
        return (float("nan"), float("nan"))
    j = int(seen[-1])
    return (float(xy[j, 0]), float(xy[j, 1]))


def _control_events(
    controls: list[Control], ball: BallTrack, s: ControlSettings
) -> list[MatchEvent]:
    """Passes and possession changes from consecutive controls."""
    events: list[MatchEvent] = []
    frames = ball.frame
    for a in controls:
        if a.out_xy is None:
            continue
        # Play stopped during this control: a ball that travelled was played out (a pass or a
        # shot that reached nobody); one that did not was a throw or a foul, not a pass.
        out = float(np.hypot(a.out_xy[0] - a.end_xy[0], a.out_xy[1] - a.end_xy[1]))
        if out >= s.pass_min_m:
            events.append(
                MatchEvent(
                    int(frames[a.end]), PASS, a.team, a.identity, -1, a.end_xy, a.out_xy, False
                )
            )
    for a, b in itertools.pairwise(controls):
        if a.spell != b.spell:
            continue
        travelled = float(np.hypot(b.start_xy[0] - a.end_xy[0], b.start_xy[1] - a.end_xy[1]))
        if a.team == b.team:
            if a.identity != b.identity and travelled >= s.pass_min_m:
                events.append(
                    MatchEvent(
                        int(frames[a.end]),
                        PASS,
                        a.team,
                        a.identity,
                        b.identity,
                        a.end_xy,
                        b.start_xy,
                        True,
                    )
                )
            continue
        if travelled >= s.pass_min_m:
            events.append(
                MatchEvent(
                    int(frames[a.end]),
                    PASS,
                    a.team,
                    a.identity,
                    b.identity,
                    a.end_xy,
                    b.start_xy,
                    False,
                )
            )
        events.append(
            MatchEvent(
                int(frames[b.start]),
                POSSESSION_CHANGE,
                b.team,
                a.identity,
                b.identity,
                a.end_xy,
                b.start_xy,
                False,
            )
        )
    return events
