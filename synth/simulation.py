"""A simple, plausible football match: 22 players, a referee and a ball on a 105 x 68 m pitch.

The simulation is a fixed-step loop (one step per output frame). Each step:

1. the player on the ball decides (keep dribbling, pass, shoot) and may be tackled;
2. every player and the referee picks a target (a formation anchor that shifts with the ball, the
   ball itself when pressing or chasing, the pass destination when receiving, the restart spot);
3. all of them steer towards their targets at once (numpy over agents) with bounded speed,
   acceleration and turning rate, and a separation force so they do not overlap;
4. the ball is carried (dribble), or flies and rolls (gravity, bounces, rolling friction);
5. the ball may be controlled by a player, or leave the pitch (out of play, then a restart).

Everything random comes from one ``numpy.random.default_rng(seed)`` drawn in a fixed order, so the
same arguments give bit-identical arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from polyvision.geometry.pitch import BALL_RADIUS_M, PITCH_LENGTH_M, PITCH_WIDTH_M
from synth.sim_roster import (
    AGENT_COUNT,
    FORMATION_433,
    FORMATION_442,
    PLAYERS_PER_TEAM,
    make_agents,
)
from synth.types import Simulation

F64 = npt.NDArray[np.float64]

GRAVITY_MPS2 = 9.81
MAX_PLAYER_SPEED_MPS = 9.0
MAX_ACCEL_MPS2 = 4.0
# Players brake a little below their acceleration limit when arriving, so the limit is never hit
# by the arrival profile alone and separation/turning still have headroom.
ARRIVE_DECEL_MPS2 = 3.0
ROLL_DECEL_MPS2 = 1.2
BOUNCE_RESTITUTION = 0.55
BOUNCE_FRICTION = 0.65
# Below this vertical speed a bounce is not worth simulating: the ball just rolls.
MIN_BOUNCE_MPS = 1.2
SEPARATION_RADIUS_M = 1.0
SEPARATION_GAIN_MPS = 8.0
CONTROL_RADIUS_M = 1.0
KEEPER_REACH_M = 1.8
TACKLE_RADIUS_M = 1.3
GOAL_HALF_WIDTH_M = 7.32 / 2
CROSSBAR_M = 2.44
MARGIN_M = 3.0
# Players are kept a little inside the margin so the hard clamp (which would break the
# acceleration bound) is only a backstop.
TARGET_MARGIN_M = 2.0
WALL_M = 2.5
WALL_DECEL_MPS2 = 2.5

_N = 2 * PLAYERS_PER_TEAM + 1  # players and referee; player index k is agent id k + 1
_REF = _N - 1
_KEEPERS = (0, PLAYERS_PER_TEAM)
_L = PITCH_LENGTH_M
_W = PITCH_WIDTH_M
_R = BALL_RADIUS_M
_TEAM_NAMES = ("home", "away")


@dataclass
class _Pass:
    receiver: int
    target: F64


@dataclass
class _Restart:
    kind: str  # "throw-in", "corner", "goal kick", "kick-off"
    team: int
    spot: F64
    stand: F64
    taker: int
    ready_at: float


def _unit(v: F64) -> F64:
    n = float(np.hypot(v[0], v[1]))
    return v / n if n > 1e-9 else np.zeros(2)


def _wrap(a: F64) -> F64:
    return (a + np.pi) % (2 * np.pi) - np.pi


class _Match:
    """Mutable match state; only `simulate` drives it, so the public API stays pure."""

    def __init__(self, fps: float, rng: np.random.Generator) -> None:
        self.fps = fps
        self.dt = 1.0 / fps
        self.rng = rng
        self.frame = 0
        self.t = 0.0
        self.events: list[tuple[int, str]] = []

        self.team = np.array([0] * PLAYERS_PER_TEAM + [1] * PLAYERS_PER_TEAM + [2])
        self.direction = np.array([1.0, -1.0])  # home attacks +x, away attacks -x
        self.formation = np.array([FORMATION_442, FORMATION_433], dtype=np.float64)
        self.vmax = np.concatenate([rng.uniform(8.0, 9.0, _N - 1), [7.5]])

        self.p = np.zeros((_N, 2))
        self.v = np.zeros((_N, 2))
        self.heading = np.zeros(_N)
        self.stride = rng.uniform(0, 2 * np.pi, _N)
        self.cooldown = np.zeros(_N)
        self.wander = np.zeros((_N, 2))
        self.wander_target = np.zeros((_N, 2))
        self.wander_next = rng.uniform(0.0, 3.0, _N)

        self.ball_p = np.array([_L / 2, _W / 2, _R])
        self.ball_v = np.zeros(3)
        self.ball_heading = 0.0
        self.ball_spin = 0.0
        self.ball_teleported = False
        self.ball_v_out = np.zeros(3)

        self.in_play = True
        self.possessor = -1
        self.set_piece: str | None = None
        self.hold_until = 0.0
        self.dribble_speed = 4.0
        self.dribble_drift = 0.0
        self.dribble_run = 0.0
        self.dribble_aim = np.zeros(2)
        self.deflect: str | None = None
        self.pass_: _Pass | None = None
        self.shot_team = -1
        self.last_touch = 0
        self.control_team = -1
        self.restart: _Restart | None = None

        self._kick_off_positions(0)
        taker = 9  # home number 10
        self.p[taker] = [_L / 2 - 0.6, _W / 2]
        self._start_restart(
            _Restart("kick-off", 0, self.ball_p[:2].copy(), self.p[taker].copy(), taker, 0.0)
        )
        self.heading = np.arctan2(self.ball_p[1] - self.p[:, 1], self.ball_p[0] - self.p[:, 0])

    # ---------------------------------------------------------------- geometry helpers

    def _to_attack(self, team: int, xy: F64) -> F64:
        """Pitch coordinates to the team's attack frame (own goal at x = 0); an involution."""
        return xy if team == 0 else np.array([_L, _W]) - xy

    def _goal_x(self, team: int) -> float:
        """x of the goal line the team defends."""
        return 0.0 if team == 0 else _L

    def _number(self, k: int) -> int:
        return k % PLAYERS_PER_TEAM + 1

    def _who(self, k: int) -> str:
        return f"{_TEAM_NAMES[int(self.team[k])]} {self._number(k)}"

    def _event(self, text: str) -> None:
        self.events.append((self.frame, text))

    def _kick_off_positions(self, kicking_team: int) -> None:
        for team in (0, 1):
            base = self.formation[team].copy()
            base[:, 0] = np.minimum(base[:, 0] * 0.9, 50.0)
            if team != kicking_team:
                # The defending side keeps out of the centre circle.
                base[:, 0] = np.minimum(base[:, 0], 42.0)
            sl = slice(team * PLAYERS_PER_TEAM, (team + 1) * PLAYERS_PER_TEAM)
            self.p[sl] = base if team == 0 else np.array([_L, _W]) - base
        self.p[_REF] = [_L / 2 - 8.0, _W / 2 + 12.0]

    # ---------------------------------------------------------------- team shape

    def _anchors(self, team: int, focus: F64) -> F64:
        """Formation positions for one team given the ball (or restart spot) and who attacks."""
        bx, by = self._to_attack(team, focus)
        base = self.formation[team]
        kick_off = self.restart is not None and self.restart.kind == "kick-off"
        if self.control_team == team:
            bias, stretch, width, gain = 9.0, 1.3, 1.0, 0.7
        elif self.control_team == 1 - team:
            bias, stretch, width, gain = -5.0, 0.8, 0.78, 0.62
        else:
            bias, stretch, width, gain = 0.0, 0.95, 0.9, 0.62
        # The side on the ball pushes up and spreads out; the other drops and compacts.
        centre = 42.0 + gain * (bx - _L / 2) + bias
        out = np.empty((PLAYERS_PER_TEAM, 2))
        out[:, 0] = centre + (base[:, 0] - 42.0) * stretch
        out[:, 1] = _W / 2 + (base[:, 1] - _W / 2) * width + 0.3 * (by - _W / 2)
        out[:, 0] = np.clip(out[:, 0], 3.0, 101.0)
        out[:, 1] = np.clip(out[:, 1], 2.0, _W - 2.0)
        if kick_off:
            out[:, 0] = np.minimum(out[:, 0], 50.0)
        # The goalkeeper comes off the line as play moves away, and follows the ball across.
        out[0, 0] = float(np.clip(2.0 + 0.12 * bx, 2.0, 14.0))
        out[0, 1] = float(np.clip(_W / 2 + 0.2 * (by - _W / 2), 29.0, 39.0))
        return out if team == 0 else np.array([_L, _W]) - out

    def _update_wander(self) -> None:
        """Slowly varying personal offsets so players are never parked exactly on the anchors."""
        due = np.flatnonzero(self.wander_next <= self.t)
        for k in due:  # fixed index order: the draws do not depend on anything unordered
            self.wander_target[k] = self.rng.normal(0.0, 3.0, 2)
            self.wander_next[k] = self.t + self.rng.uniform(2.0, 5.0)
        self.wander += (self.wander_target - self.wander) * (1.0 - math.exp(-self.dt / 1.5))

    # ---------------------------------------------------------------- decisions

    def _nearest(self, candidates: npt.NDArray[np.int_], point: F64) -> tuple[int, float]:
        d = np.hypot(*(self.p[candidates] - point).T)
        i = int(np.argmin(d))
        return int(candidates[i]), float(d[i])

    def _outfield(self, team: int) -> npt.NDArray[np.int_]:
        return np.arange(team * PLAYERS_PER_TEAM + 1, (team + 1) * PLAYERS_PER_TEAM)

    def _team(self, team: int) -> npt.NDArray[np.int_]:
        return np.arange(team * PLAYERS_PER_TEAM, (team + 1) * PLAYERS_PER_TEAM)

    def _choose_receiver(self, k: int, max_dist: float = 60.0, long: bool = False) -> int:
        """Score every teammate (progress, space, distance) with some noise and pick the best."""
        team = int(self.team[k])
        mates = self._outfield(team)
        mates = mates[mates != k]
        opps = self._team(1 - team)
        ball = self.ball_p[:2]
        dest = self.p[mates] + 0.6 * self.v[mates]
        seg = dest - ball
        dist = np.hypot(seg[:, 0], seg[:, 1])
        progress = (dest[:, 0] - ball[0]) * self.direction[team]
        # Distance from each opponent to each pass line: how open the lane is.
        rel = self.p[opps][None, :, :] - ball
        s = np.clip(
            np.einsum("mok,mk->mo", rel, seg) / np.maximum(dist**2, 1e-9)[:, None], 0.0, 1.0
        )
        closest = rel - s[:, :, None] * seg[:, None, :]
        lane = np.min(np.hypot(closest[..., 0], closest[..., 1]), axis=1)
        score = (
            0.1 * progress
            + 0.15 * np.minimum(lane, 8.0)
            - 0.03 * np.maximum(dist - 28.0, 0.0)
            - 2.0 * (dist < 6.0)
            - 100.0 * (dist > max_dist)
            + (0.04 * dist if long else 0.0)
            + self.rng.gumbel(0.0, 0.6, len(mates))
        )
        return int(mates[int(np.argmax(score))])

    def _kick_ground(self, target: F64) -> None:
        to = target - self.ball_p[:2]
        d = float(np.hypot(*to))
        # Enough pace to arrive at a receivable 5-7 m/s after rolling friction.
        end = self.rng.uniform(5.0, 7.0)
        speed = min(math.sqrt(end * end + 2 * ROLL_DECEL_MPS2 * d), 24.0)
        # From the keeper's hands (z > radius) the ball drops and bounces before it rolls.
        self.ball_v = np.array([*(_unit(to) * speed), 0.0])

    def _kick_lofted(self, target: F64, angle_deg: tuple[float, float]) -> None:
        to = target - self.ball_p[:2]
        d = max(float(np.hypot(*to)), 1.0)
        theta = math.radians(self.rng.uniform(*angle_deg))
        # Range of a projectile on flat ground (no drag): d = v^2 sin(2 theta) / g.
        speed = min(math.sqrt(GRAVITY_MPS2 * d / math.sin(2 * theta)), 32.0)
        self.ball_v = np.array([*(_unit(to) * speed * math.cos(theta)), speed * math.sin(theta)])

    def _release_ball(self, k: int) -> None:
        self.possessor = -1
        self.set_piece = None
        self.cooldown[k] = self.t + 0.5
        self.last_touch = int(self.team[k])
        self.control_team = int(self.team[k])

    def _pass(self, k: int, receiver: int, lofted: bool, angles: tuple[float, float]) -> None:
        lead = self.p[receiver] + 0.8 * self.v[receiver]
        d = float(np.hypot(*(lead - self.ball_p[:2])))
        # Passes are not perfect: the error grows with distance and can put the ball out.
        lead = np.clip(lead, 1.0, [_L - 1.0, _W - 1.0])
        target = lead + self.rng.normal(0.0, 0.5 + 0.03 * d, 2)
        if lofted:
            self._kick_lofted(target, angles)
        else:
            self._kick_ground(target)
        kind = "lofted" if lofted else "ground"
        self._event(f"pass {self._who(k)}->{self._number(receiver)} {kind}")
        self._release_ball(k)
        self.pass_ = _Pass(receiver, np.clip(target, -1.0, [_L + 1.0, _W + 1.0]))
        self.shot_team = -1

    def _shoot(self, k: int) -> None:
        team = int(self.team[k])
        goal_x = self._goal_x(1 - team)
        target_y = _W / 2 + self.rng.uniform(-5.2, 5.2)
        height = self.rng.uniform(0.2, 2.9)
        to = np.array([goal_x, target_y]) - self.ball_p[:2]
        d = max(float(np.hypot(*to)), 1.0)
        horizontal = self.rng.uniform(17.0, 25.0)
        flight = d / horizontal
        vz = (height - self.ball_p[2] + 0.5 * GRAVITY_MPS2 * flight**2) / flight
        self.ball_v = np.array([*(_unit(to) * horizontal), vz])
        self._event(f"shot {self._who(k)}")
        self._release_ball(k)
        self.pass_ = None
        self.shot_team = team

    def _decide(self, k: int) -> None:
        """The player on the ball lets it go: a set-piece delivery, a shot or a pass."""
        team = int(self.team[k])
        kind = self.set_piece
        attack = self._to_attack(team, self.ball_p[:2])
        if kind == "throw-in":
            self._pass(k, self._choose_receiver(k, max_dist=22.0), True, (25.0, 35.0))
        elif kind == "corner":
            spot = self._to_attack(
                team, np.array([_L - self.rng.uniform(6.0, 14.0), _W / 2 + self.rng.normal(0, 5)])
            )
            receiver, _ = self._nearest(self._outfield(team), spot)
            self._pass(k, receiver, True, (25.0, 35.0))
        elif kind == "kick-off":
            receiver, _ = self._nearest(self._outfield(team)[self._outfield(team) != k], self.p[k])
            self._pass(k, receiver, False, (0.0, 0.0))
        elif k in _KEEPERS:
            long = self.rng.random() < 0.5
            self._pass(k, self._choose_receiver(k, long=long), long, (30.0, 42.0))
        else:
            goal_d = math.hypot(_L - attack[0], _W / 2 - attack[1])
            if goal_d < 32.0 and self.rng.random() < min((32.0 - goal_d) / 16.0, 0.85):
                self._shoot(k)
                return
            receiver = self._choose_receiver(k)
            d = float(np.hypot(*(self.p[receiver] - self.ball_p[:2])))
            lofted = self.rng.random() < (0.75 if d > 25.0 else 0.2)
            self._pass(k, receiver, lofted, (20.0, 40.0))

    def _possessor_step(self) -> None:
        k = self.possessor
        team = int(self.team[k])
        if self.deflect is not None:
            # A touch, not control: the ball was with the player for one frame only.
            speed = float(np.hypot(*self.ball_v[:2]))
            if self.deflect == "parry":
                inward = self.direction[team]
                side = 1.0 if self.ball_p[1] >= _W / 2 else -1.0
                vx = inward * self.rng.uniform(-1.0, 4.0)
                vy = side * self.rng.uniform(4.0, 9.0)
            else:
                angle = math.atan2(self.ball_v[1], self.ball_v[0]) + self.rng.normal(0.0, 0.8)
                speed *= self.rng.uniform(0.3, 0.7)
                vx, vy = speed * math.cos(angle), speed * math.sin(angle)
            self.ball_v = np.array([vx, vy, self.rng.uniform(0.5, 4.0)])
            self.deflect = None
            self._release_ball(k)
            self.control_team = -1
            self.pass_ = None
            return
        if self.set_piece is None:
            opps = self._team(1 - team)
            d = np.hypot(*(self.p[opps] - self.p[k]).T)
            close = int(np.count_nonzero(d < TACKLE_RADIUS_M))
            if close and self.rng.random() < 1.0 - math.exp(-1.5 * close * self.dt):
                tackler = int(opps[int(np.argmin(d))])
                away = _unit(self.ball_p[:2] - self.p[tackler])
                angle = math.atan2(away[1], away[0]) + self.rng.normal(0.0, 0.7)
                speed = self.rng.uniform(3.0, 7.0)
                self.ball_v = np.array([speed * math.cos(angle), speed * math.sin(angle), 0.0])
                self._event(f"tackle {self._who(tackler)} on {self._who(k)}")
                self.possessor = -1
                self.cooldown[k] = self.t + 0.8
                self.last_touch = 1 - team
                self.control_team = -1
                self.pass_ = None
                return
            if float(d.min()) < 3.0 and self.rng.random() < 1.0 - math.exp(-1.2 * self.dt):
                self.hold_until = min(self.hold_until, self.t)  # under pressure: get rid of it
            if self._to_attack(team, self.ball_p[:2])[0] > _L - 8.0:
                self.hold_until = min(self.hold_until, self.t)
        if self.t >= self.hold_until:
            self._decide(k)

    def _gain(self, k: int, announce: bool = True) -> None:
        team = int(self.team[k])
        previous = self.pass_
        if announce and (team != self.last_touch or self.control_team != team):
            if k in _KEEPERS and self.shot_team == 1 - team:
                self._event(f"save {self._who(k)}")
            elif previous is not None or self.shot_team >= 0:
                self._event(f"interception {self._who(k)}")
            else:
                self._event(f"recovery {self._who(k)}")
        # Some saves are parried rather than held: the keeper touches the ball this frame and
        # pushes it wide on the next, which is where corners come from.
        parry = k in _KEEPERS and self.shot_team == 1 - team and self.rng.random() < 0.45
        self.deflect = "parry" if parry else None
        self.possessor = k
        self.set_piece = None
        keeper = k in _KEEPERS
        self.hold_until = self.t + (
            self.rng.uniform(1.0, 2.0) if keeper else self.rng.uniform(0.4, 2.8)
        )
        self.dribble_speed = self.rng.uniform(3.0, 6.5)
        self.dribble_drift = self.rng.normal(0.0, 0.4)
        self.dribble_run = 0.0
        self.last_touch = team
        self.control_team = team
        self.pass_ = None
        self.shot_team = -1

    # ---------------------------------------------------------------- restarts

    def _out_of_play(self) -> None:
        x, y, z = self.ball_p
        restart: _Restart
        if y < -_R or y > _W + _R:
            self._event("out of play touchline")
            team = 1 - self.last_touch
            line = 0.0 if y < 0 else _W
            spot = np.array([float(np.clip(x, 1.0, _L - 1.0)), line])
            stand = spot + np.array([0.0, -0.6 if line == 0.0 else 0.6])
            taker, _ = self._nearest(self._outfield(team), spot)
            delay = self.rng.uniform(1.5, 3.0)
            restart = _Restart("throw-in", team, spot, stand, taker, self.t + delay)
        else:
            defending = 0 if x < _L / 2 else 1
            goal_x = self._goal_x(defending)
            inward = 1.0 if defending == 0 else -1.0
            if abs(y - _W / 2) < GOAL_HALF_WIDTH_M - _R and z < CROSSBAR_M - _R:
                self._event(f"goal {_TEAM_NAMES[1 - defending]}")
                spot = np.array([_L / 2, _W / 2])
                taker = defending * PLAYERS_PER_TEAM + 9
                stand = spot - [0.6 * inward, 0.0]
                restart = _Restart("kick-off", defending, spot, stand, taker, self.t + 5.0)
            else:
                self._event("out of play goal line")
                if self.last_touch == defending:
                    team = 1 - defending
                    spot = np.array([goal_x, 0.0 if y < _W / 2 else _W])
                    stand = spot + np.array([-0.7 * inward, -0.7 if spot[1] == 0.0 else 0.7])
                    taker, _ = self._nearest(self._outfield(team), spot)
                    delay = self.rng.uniform(3.0, 5.0)
                    restart = _Restart("corner", team, spot, stand, taker, self.t + delay)
                else:
                    side = 5.0 if y > _W / 2 else -5.0
                    spot = np.array([goal_x + 5.5 * inward, _W / 2 + side])
                    stand = spot - [inward, 0.0]
                    taker = defending * PLAYERS_PER_TEAM
                    delay = self.rng.uniform(3.0, 5.0)
                    restart = _Restart("goal kick", defending, spot, stand, taker, self.t + delay)
        self.in_play = False
        self.possessor = -1
        self.pass_ = None
        self.shot_team = -1
        self.control_team = restart.team
        self.restart = restart

    def _start_restart(self, restart: _Restart) -> None:
        self.restart = None
        self.ball_p = np.array([*restart.spot, _R])
        self.ball_v = np.zeros(3)
        self.ball_teleported = True
        self.in_play = True
        self.possessor = restart.taker
        self.set_piece = restart.kind
        self.hold_until = self.t + self.rng.uniform(0.6, 1.2)
        self.last_touch = restart.team
        self.control_team = restart.team
        self._event(f"{restart.kind} {_TEAM_NAMES[restart.team]}")

    def _restart_step(self) -> None:
        r = self.restart
        assert r is not None
        near = float(np.hypot(*(self.p[r.taker] - r.stand))) < 1.0
        if (self.t >= r.ready_at and near) or self.t >= r.ready_at + 10.0:
            self._start_restart(r)

    # ---------------------------------------------------------------- targets

    def _ball_at(self, tau: float) -> F64:
        """Where a free ball will be (pitch plane) in ``tau`` seconds: flight, then rolling."""
        xy = self.ball_p[:2].copy()
        v = self.ball_v[:2].copy()
        z, vz = float(self.ball_p[2]), float(self.ball_v[2])
        if z > _R + 1e-9 or vz > 0.0:
            # Time to come down to the radius height: z + vz t - g t^2 / 2 = R.
            land = (vz + math.sqrt(vz * vz + 2 * GRAVITY_MPS2 * max(z - _R, 0.0))) / GRAVITY_MPS2
            if tau <= land:
                return np.asarray(xy + v * tau, dtype=np.float64)
            xy = xy + v * land
            v = v * BOUNCE_FRICTION
            tau -= land
        speed = float(np.hypot(*v))
        if speed < 1e-9:
            return xy
        rolling = min(tau, speed / ROLL_DECEL_MPS2)
        return np.asarray(
            xy + v / speed * (speed * rolling - 0.5 * ROLL_DECEL_MPS2 * rolling**2),
            dtype=np.float64,
        )

    def _controllable_in(self) -> float:
        """Seconds until a ball in the air is low enough to be controlled (0 if it already is)."""
        z, vz = float(self.ball_p[2]), float(self.ball_v[2])
        if z < 1.0 and vz <= 0.0:
            return 0.0
        return (vz + math.sqrt(vz * vz + 2 * GRAVITY_MPS2 * max(z - 1.0, 0.0))) / GRAVITY_MPS2

    def _intercept(self, k: int, run_speed: float) -> F64:
        """A point where player ``k`` running at ``run_speed`` can meet the free ball."""
        earliest = self._controllable_in()
        point = self.ball_p[:2]
        for _ in range(3):  # a fixed-point iteration on the time to get there converges quickly
            tau = max(float(np.hypot(*(point - self.p[k]))) / run_speed, earliest)
            point = self._ball_at(min(tau, 3.0))
        return np.asarray(np.clip(point, 0.0, [_L, _W]), dtype=np.float64)

    def _targets(self) -> tuple[F64, F64, F64]:
        """Every agent's target point, speed cap and speed floor (chasers do not dawdle)."""
        ball = self.ball_p[:2]
        focus = self.restart.spot if self.restart is not None else ball
        target = np.empty((_N, 2))
        for team in (0, 1):
            target[self._team(team)] = self._anchors(team, focus)
        target[:-1] += self.wander[:-1] * (np.arange(_N - 1) % PLAYERS_PER_TEAM != 0)[:, None]
        dist = np.hypot(*(target - self.p).T)
        # Jog back into shape; only run when far out of position.
        cap = np.where(
            dist < 10.0, np.minimum(0.5 * dist, 5.0), np.minimum(5.0 + 0.2 * (dist - 10.0), 7.0)
        )
        floor = np.zeros(_N)
        ball_speed = float(np.hypot(*self.ball_v[:2]))

        if self.in_play and self.possessor >= 0:
            k = self.possessor
            team = int(self.team[k])
            if self.set_piece is not None or k in _KEEPERS:
                target[k], cap[k] = self.p[k], 0.0
            else:
                target[k], cap[k] = self._dribble_target(k), self.dribble_speed
                self.dribble_aim = _unit(target[k] - self.p[k])
                # Nearest defender presses goal-side, the next one covers.
                opps = self._outfield(1 - team)
                order = opps[np.argsort(np.hypot(*(self.p[opps] - ball).T), kind="stable")]
                own_goal = np.array([self._goal_x(1 - team), _W / 2])
                target[order[0]] = ball + 0.8 * _unit(own_goal - ball)
                cap[order[0]], floor[order[0]] = 7.0, ball_speed
                target[order[1]] = ball + 9.0 * _unit(own_goal - ball)
                cap[order[1]] = 6.0
        elif self.in_play:
            # Loose ball or pass on its way: the receiver runs onto it and the nearest player of
            # each other side goes for it.
            chasers: list[int] = []
            if self.pass_ is not None:
                chasers.append(self.pass_.receiver)
            for team in (0, 1):
                if self.pass_ is not None and self.team[self.pass_.receiver] == team:
                    continue
                if self.shot_team == team:
                    continue
                chasers.append(self._nearest(self._outfield(team), ball)[0])
            for k in chasers:
                target[k], cap[k] = self._intercept(k, 7.0), 8.0
                floor[k] = min(ball_speed + 2.0, 8.0)
            for team in (0, 1):
                keeper = _KEEPERS[team]
                goal_x = self._goal_x(team)
                if self.shot_team == 1 - team and abs(self.ball_v[0]) > 1.0:
                    # Shot on the way: step across to where it will cross the goal line.
                    t_line = (goal_x - ball[0]) / self.ball_v[0]
                    if t_line > 0:
                        y_line = ball[1] + self.ball_v[1] * t_line
                        y_line = float(np.clip(y_line, _W / 2 - 3.5, _W / 2 + 3.5))
                        target[keeper] = [goal_x + (1.0 if team == 0 else -1.0), y_line]
                        cap[keeper], floor[keeper] = 8.0, 4.0
                elif (
                    abs(ball[0] - goal_x) < 16.5
                    and abs(ball[1] - _W / 2) < 20.0
                    and ball_speed < 12.0
                ):
                    target[keeper], cap[keeper] = self._intercept(keeper, 6.0), 7.0
        elif self.restart is not None:
            target[self.restart.taker] = self.restart.stand
            cap[self.restart.taker] = 7.0

        target[_REF], cap[_REF] = self._referee_target(focus)
        target[:, 0] = np.clip(target[:, 0], -TARGET_MARGIN_M, _L + TARGET_MARGIN_M)
        target[:, 1] = np.clip(target[:, 1], -TARGET_MARGIN_M, _W + TARGET_MARGIN_M)
        # Goalkeepers never leave the area around their goal.
        target[0, 0] = min(target[0, 0], 16.0)
        target[PLAYERS_PER_TEAM, 0] = max(target[PLAYERS_PER_TEAM, 0], _L - 16.0)
        return target, cap, np.minimum(floor, cap)

    def _dribble_target(self, k: int) -> F64:
        team = int(self.team[k])
        forward = self.direction[team]
        heading = np.array([forward, self.dribble_drift])
        opps = self._team(1 - team)
        opp, d = self._nearest(opps, self.p[k])
        if d < 7.0:
            heading = heading + 1.6 * (1.0 - d / 7.0) * _unit(self.p[k] - self.p[opp])
        y = float(self.p[k, 1])
        # Stay away from the touchlines and turn inside near the goal line.
        heading[1] += max(0.0, (8.0 - y) / 8.0) - max(0.0, (y - (_W - 8.0)) / 8.0)
        if self._to_attack(team, self.p[k])[0] > _L - 20.0:
            heading[0] *= 0.3
            heading[1] += 0.8 * np.sign(_W / 2 - y)
        return np.asarray(self.p[k] + 6.0 * _unit(heading), dtype=np.float64)

    def _referee_target(self, focus: F64) -> tuple[F64, float]:
        # The referee runs the classic diagonal, keeping 12-20 m from play.
        a, b = np.array([15.0, 56.0]), np.array([90.0, 12.0])
        ab = b - a
        s = float(np.clip(np.dot(focus - a, ab) / np.dot(ab, ab), 0.0, 1.0))
        q = a + s * ab
        off = q - focus
        d = float(np.hypot(*off))
        if d < 14.0:
            normal = np.array([ab[1], -ab[0]]) / float(np.hypot(*ab))
            q = focus + (off / d if d > 1e-6 else normal) * 14.0
        dist = float(np.hypot(*(q - self.p[_REF])))
        return q, min(0.6 * dist, 7.0)

    # ---------------------------------------------------------------- motion

    def _move_players(self, target: F64, cap: F64, floor: F64) -> None:
        dt = self.dt
        to = target - self.p
        dist = np.hypot(to[:, 0], to[:, 1])
        arrive = np.sqrt(2.0 * ARRIVE_DECEL_MPS2 * np.maximum(dist - 0.15, 0.0))
        speed = np.minimum(np.maximum(np.minimum(cap, arrive), floor), self.vmax)
        desired = to / np.maximum(dist, 1e-9)[:, None] * speed[:, None]

        diff = self.p[:, None, :] - self.p[None, :, :]
        d = np.hypot(diff[..., 0], diff[..., 1])
        np.fill_diagonal(d, np.inf)
        w = np.clip((SEPARATION_RADIUS_M - d) / SEPARATION_RADIUS_M, 0.0, 1.0) ** 2
        desired += SEPARATION_GAIN_MPS * np.sum(
            diff / np.maximum(d, 1e-6)[..., None] * w[..., None], axis=1
        )

        # Soft walls just inside the margin: no one heads for the boards faster than they could
        # still stop (braking at WALL_DECEL_MPS2, below the acceleration limit).
        room_lo = np.maximum(self.p + WALL_M, 0.0)
        room_hi = np.maximum(np.array([_L + WALL_M, _W + WALL_M]) - self.p, 0.0)
        lo = -np.sqrt(2.0 * WALL_DECEL_MPS2 * room_lo)
        hi = np.sqrt(2.0 * WALL_DECEL_MPS2 * room_hi)
        desired = np.clip(desired, lo, hi)

        # Braking for a wall comes first; what is left of the acceleration budget steers towards
        # the desired velocity. Both end points lie inside the allowed box, so the result does
        # too, and the total change never exceeds MAX_ACCEL_MPS2 * dt. The acceleration bound
        # also bounds the turning rate: at speed s a player turns at most MAX_ACCEL_MPS2 / s
        # rad/s (4 rad/s jogging at 1 m/s, under 0.5 rad/s at a sprint).
        budget = MAX_ACCEL_MPS2 * dt
        brake = np.clip(self.v, lo, hi) - self.v
        nb = np.hypot(brake[:, 0], brake[:, 1])
        brake *= np.minimum(1.0, budget / np.maximum(nb, 1e-12))[:, None]
        rest = desired - (self.v + brake)
        nr = np.hypot(rest[:, 0], rest[:, 1])
        left = np.maximum(budget - np.minimum(nb, budget), 0.0)
        v_new = self.v + brake + rest * np.minimum(1.0, left / np.maximum(nr, 1e-12))[:, None]

        mag = np.hypot(v_new[:, 0], v_new[:, 1])
        v_new *= np.minimum(1.0, self.vmax / np.maximum(mag, 1e-12))[:, None]
        p_new = self.p + v_new * dt
        p_new[:, 0] = np.clip(p_new[:, 0], -MARGIN_M + 0.2, _L + MARGIN_M - 0.2)
        p_new[:, 1] = np.clip(p_new[:, 1], -MARGIN_M + 0.2, _W + MARGIN_M - 0.2)
        self.v = (p_new - self.p) / dt
        self.p = p_new

    def _move_ball(self) -> None:
        dt = self.dt
        old = self.ball_p.copy()
        if self.ball_teleported:
            pass
        elif self.possessor >= 0:
            k = self.possessor
            if self.set_piece is not None:
                pass  # the ball waits on the spot
            else:
                mv = self.v[k]
                speed = float(np.hypot(*mv))
                # The ball is played towards where the player wants to go, not only where they
                # are running, so a receiver heading for the touchline first turns the ball inside.
                facing = np.array([math.cos(self.heading[k]), math.sin(self.heading[k])])
                face = _unit((mv / speed if speed > 0.3 else facing) + self.dribble_aim)
                if not face.any():
                    face = facing
                self.dribble_run += speed * dt
                # A touch pushes the ball ~1 m ahead; the player then closes in to ~0.5 m.
                ahead = 0.5 if k in _KEEPERS else 1.0 - 0.45 * ((self.dribble_run / 4.0) % 1.0)
                goal = self.p[k] + face * ahead
                z_goal = 1.0 if k in _KEEPERS else _R
                gain = 1.0 - math.exp(-dt / 0.12)
                xy = self.ball_p[:2] + mv * dt
                xy = xy + (goal - xy) * gain
                z = self.ball_p[2] + (z_goal - self.ball_p[2]) * gain
                self.ball_p = np.array([xy[0], xy[1], z])
            self.ball_v = (self.ball_p - old) / dt
        else:
            v = self.ball_v
            airborne = self.ball_p[2] > _R + 1e-9 or v[2] > 0.0
            if airborne:
                v[2] -= GRAVITY_MPS2 * dt
            else:
                speed = float(np.hypot(v[0], v[1]))
                decel = ROLL_DECEL_MPS2 + (0.0 if self.in_play else 4.0)
                v[:2] *= max(0.0, speed - decel * dt) / speed if speed > 1e-9 else 0.0
            # Semi-implicit Euler: z then has an exact second difference of -g dt^2 in flight.
            self.ball_p = self.ball_p + v * dt
            if self.ball_p[2] < _R:
                self.ball_p[2] = _R
                v[2] = (
                    -BOUNCE_RESTITUTION * v[2]
                    if -v[2] * BOUNCE_RESTITUTION > MIN_BOUNCE_MPS
                    else 0.0
                )
                v[:2] *= BOUNCE_FRICTION
            if not self.in_play:
                # Advertising boards and the goal nets stop a dead ball inside the margin.
                lo, hi = -MARGIN_M + 0.5, np.array([_L + MARGIN_M - 0.5, _W + MARGIN_M - 0.5])
                for i in (0, 1):
                    if self.ball_p[i] < lo or self.ball_p[i] > hi[i]:
                        self.ball_p[i] = float(np.clip(self.ball_p[i], lo, hi[i]))
                        v[i] = 0.0
        # Reported velocity is what the ball did over the last frame (bounces and carries
        # included), except when it was put on a restart spot.
        self.ball_v_out = np.zeros(3) if self.ball_teleported else (self.ball_p - old) / dt
        moved = self.ball_p[:2] - old[:2]
        dist = float(np.hypot(*moved))
        if dist > 1e-6:
            self.ball_heading = math.atan2(moved[1], moved[0])
        # The ball's "stride" is its rolling angle: distance over radius.
        self.ball_spin = (self.ball_spin + dist / _R) % (2 * np.pi)

    def _ball_checks(self) -> None:
        x, y, _ = self.ball_p
        if x < -_R or x > _L + _R or y < -_R or y > _W + _R:
            self._out_of_play()
            return
        if self.possessor >= 0 or self.ball_p[2] > 2.6:
            return
        d = np.hypot(*(self.p[:-1] - self.ball_p[:2]).T)
        z = self.ball_p[2]
        reach = np.full(_N - 1, CONTROL_RADIUS_M)
        height = np.full(_N - 1, 0.6)
        for team in (0, 1):
            keeper = _KEEPERS[team]
            if abs(self.p[keeper, 0] - self._goal_x(team)) < 16.5:
                reach[keeper], height[keeper] = KEEPER_REACH_M, 2.5
        if self.pass_ is not None:
            # The intended receiver is expecting it: chest and stretch control.
            reach[self.pass_.receiver] = max(reach[self.pass_.receiver], 1.4)
            height[self.pass_.receiver] = 1.2
        eligible = (d < reach) & (z < height) & (self.cooldown[:-1] <= self.t)
        if not eligible.any():
            return
        if self.pass_ is not None and eligible[self.pass_.receiver]:
            self._gain(self.pass_.receiver)
            return
        speed = float(np.hypot(*self.ball_v[:2]))
        for k in np.flatnonzero(eligible)[np.argsort(d[eligible], kind="stable")]:
            # Per-second chance to get a touch on a ball one did not expect: easy when it is slow,
            # rare when it is fizzing past.
            rate = 20.0 if k in _KEEPERS else (12.0 if speed < 4.0 else 5.0 if speed < 8.0 else 1.5)
            if self.rng.random() < 1.0 - math.exp(-rate * self.dt):
                self._gain(int(k))
                return
            # A shot or a hard pass that is not controlled may still be blocked.
            if speed > 12.0 and k not in _KEEPERS and self.rng.random() < 0.12:
                self._gain(int(k), announce=False)
                self._event(f"block {self._who(int(k))}")
                self.deflect = "block"
                return

    def _animate(self) -> None:
        speed = np.hypot(self.v[:, 0], self.v[:, 1])
        facing = np.where(
            speed > 0.7,
            np.arctan2(self.v[:, 1], self.v[:, 0]),
            np.arctan2(self.ball_p[1] - self.p[:, 1], self.ball_p[0] - self.p[:, 0]),
        )
        turn = _wrap(facing - self.heading)
        # Smoothed (0.15 s time constant) and rate-limited, so bodies do not snap round.
        step = np.clip(turn * (1.0 - math.exp(-self.dt / 0.15)), -7.0 * self.dt, 7.0 * self.dt)
        self.heading = _wrap(self.heading + step)
        stride_length = 1.8 + 0.4 * np.minimum(speed / MAX_PLAYER_SPEED_MPS, 1.0)
        self.stride = (self.stride + 2 * np.pi * speed * self.dt / stride_length) % (2 * np.pi)

    # ---------------------------------------------------------------- step

    def step(self, frame: int) -> None:
        self.frame = frame
        self.t = frame * self.dt
        self.ball_teleported = False
        self._update_wander()
        if self.in_play and self.possessor >= 0:
            self._possessor_step()
        elif not self.in_play:
            self._restart_step()
        self._move_players(*self._targets())
        self._move_ball()
        if self.in_play:
            self._ball_checks()
        self._animate()


def simulate(seconds: float, fps: float, seed: int) -> Simulation:
    """Simulate a stretch of a football match.

    Args:
        seconds: Duration to simulate; the result has ``round(seconds * fps)`` frames (at least 1).
        fps: Frames per second; the simulation steps once per frame.
        seed: Seed of the only random generator used, so equal arguments give identical arrays.

    Returns:
        Every agent's position, velocity, heading and stride phase at every frame, whether the
        ball is in play, who has it, and the notable events (passes, shots, restarts...).

    Raises:
        ValueError: If ``seconds`` or ``fps`` is not a positive finite number.
    """
    if not (math.isfinite(seconds) and seconds > 0 and math.isfinite(fps) and fps > 0):
        raise ValueError(f"seconds and fps must be positive, got {seconds} and {fps}")
    frames = max(1, round(seconds * fps))
    rng = np.random.default_rng(seed)
    agents = make_agents(rng)
    match = _Match(fps, rng)

    position = np.zeros((frames, AGENT_COUNT, 3))
    velocity = np.zeros((frames, AGENT_COUNT, 3))
    heading = np.zeros((frames, AGENT_COUNT))
    stride = np.zeros((frames, AGENT_COUNT))
    in_play = np.zeros(frames, dtype=np.bool_)
    possession = np.zeros(frames, dtype=np.int16)

    for f in range(frames):
        if f:
            match.step(f)
        position[f, 0] = match.ball_p
        velocity[f, 0] = match.ball_v_out
        position[f, 1:, :2] = match.p
        velocity[f, 1:, :2] = match.v
        heading[f, 0] = match.ball_heading
        heading[f, 1:] = match.heading
        stride[f, 0] = match.ball_spin
        stride[f, 1:] = match.stride
        in_play[f] = match.in_play
        possession[f] = match.possessor + 1 if match.possessor >= 0 else -1

    return Simulation(
        fps=float(fps),
        agents=agents,
        position=position.astype(np.float32),
        velocity=velocity.astype(np.float32),
        heading=heading.astype(np.float32),
        stride_phase=stride.astype(np.float32),
        in_play=in_play,
        possession=possession,
        seed=seed,
        events=match.events,
    )
