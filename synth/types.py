"""The data the synthetic-match generator passes between its parts.

Pitch frame (shared with `rig.json` and the ground truth): metres, origin at the corner of the
near touchline and the left goal line, ``x`` along the near touchline (0..105), ``y`` towards the
far touchline (0..68), ``z`` up. The cameras stand beyond the near touchline (``y < 0``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

import numpy as np
import numpy.typing as npt

RGB = tuple[int, int, int]


class Team(StrEnum):
    home = "home"
    away = "away"
    referee = "referee"
    ball = "ball"


class Role(StrEnum):
    goalkeeper = "goalkeeper"
    outfield = "outfield"
    referee = "referee"
    ball = "ball"


@dataclass(frozen=True)
class Kit:
    """Colours of one agent's clothes, RGB 0..255."""

    shirt: RGB
    shorts: RGB
    socks: RGB


@dataclass(frozen=True)
class Agent:
    """One simulated object: a player, the referee or the ball.

    Attributes:
        id: Stable identity used in the ground truth (the ball is id 0).
        team: Which side it belongs to.
        role: Goalkeeper, outfield player, referee or ball.
        number: Shirt number (0 for the referee and the ball).
        kit: Clothes colours (the ball's kit is ignored).
        skin: Skin colour, RGB.
        height_m: Standing height in metres (the ball's diameter for the ball).
    """

    id: int
    team: Team
    role: Role
    number: int
    kit: Kit
    skin: RGB
    height_m: float


FloatArray = npt.NDArray[np.float32]


@dataclass
class Simulation:
    """The state of every agent at every frame.

    Attributes:
        fps: Frames per second.
        agents: The agents; row ``i`` of every array below is ``agents[i]``.
        position: ``[F, N, 3]`` metres in the pitch frame; players have ``z = 0`` (feet on the
            ground), the ball's ``z`` is its centre height above the ground.
        velocity: ``[F, N, 3]`` metres per second.
        heading: ``[F, N]`` radians, the direction the agent faces in the pitch plane
            (0 = +x, pi/2 = +y).
        stride_phase: ``[F, N]`` radians; advances with distance run, drives the leg swing.
        in_play: ``[F]`` whether the ball is in play.
        possession: ``[F]`` id of the agent controlling the ball, or -1.
        seed: The seed the simulation was run with.
    """

    fps: float
    agents: list[Agent]
    position: FloatArray
    velocity: FloatArray
    heading: FloatArray
    stride_phase: FloatArray
    in_play: npt.NDArray[np.bool_]
    possession: npt.NDArray[np.int16]
    seed: int = 0
    events: list[tuple[int, str]] = field(default_factory=list)
    """(frame, description) of notable moments: passes, shots, ball out of play, restarts."""

    def __post_init__(self) -> None:
        frames, count = self.position.shape[:2]
        if self.position.shape != (frames, count, 3) or self.velocity.shape != (frames, count, 3):
            raise ValueError("position and velocity must be [F, N, 3]")
        if len(self.agents) != count:
            raise ValueError(f"{len(self.agents)} agents for {count} rows")
        for name in ("heading", "stride_phase"):
            if getattr(self, name).shape != (frames, count):
                raise ValueError(f"{name} must be [F, N]")
        if self.in_play.shape != (frames,) or self.possession.shape != (frames,):
            raise ValueError("in_play and possession must be [F]")
        if [agent.id for agent in self.agents].count(0) != 1 or self.agents[
            self.ball_index
        ].role is not Role.ball:
            raise ValueError("exactly one ball, with id 0")

    @property
    def frame_count(self) -> int:
        return int(self.position.shape[0])

    @property
    def ball_index(self) -> int:
        return next(i for i, agent in enumerate(self.agents) if agent.role is Role.ball)
