"""Who takes part in a simulated match: the agents, their kits and the teams' formations.

Row ``i`` of every simulation array is agent ``i``: the ball (id 0), the home team (ids 1..11, id 1
the goalkeeper), the away team (ids 12..22, id 12 the goalkeeper) and the referee (id 23).
"""

from __future__ import annotations

import numpy as np

from polyvision.geometry.pitch import BALL_RADIUS_M
from synth.types import RGB, Agent, Kit, Role, Team

PLAYERS_PER_TEAM = 11
AGENT_COUNT = 2 + 2 * PLAYERS_PER_TEAM
REFEREE_ID = AGENT_COUNT - 1

# Kits are picked to contrast with grass green and with each other, so that a colour-based team
# classifier (and a human looking at a frame) can tell the five groups apart.
HOME_KIT = Kit(shirt=(200, 25, 35), shorts=(245, 245, 245), socks=(200, 25, 35))
AWAY_KIT = Kit(shirt=(30, 75, 205), shorts=(240, 240, 240), socks=(30, 75, 205))
HOME_GOALKEEPER_KIT = Kit(shirt=(245, 215, 25), shorts=(25, 25, 25), socks=(245, 215, 25))
AWAY_GOALKEEPER_KIT = Kit(shirt=(255, 130, 10), shorts=(255, 130, 10), socks=(25, 25, 25))
REFEREE_KIT = Kit(shirt=(15, 15, 15), shorts=(15, 15, 15), socks=(15, 15, 15))
BALL_KIT = Kit(shirt=(250, 250, 250), shorts=(250, 250, 250), socks=(250, 250, 250))

SKIN_TONES: tuple[RGB, ...] = (
    (255, 220, 177),
    (241, 194, 125),
    (224, 172, 105),
    (198, 134, 66),
    (141, 85, 36),
    (92, 58, 35),
)

# Formations in a team's "attack frame": own goal line at x = 0, attacking towards x = 105, in
# shirt-number order (1 goalkeeper, 2-5 defenders, then midfielders, then forwards). These are the
# positions with the ball at the centre spot; the simulation shifts and stretches them with play.
FORMATION_442: tuple[tuple[float, float], ...] = (
    (4.0, 34.0),
    (31.0, 9.0),
    (27.0, 25.0),
    (27.0, 43.0),
    (31.0, 59.0),
    (45.0, 10.0),
    (42.0, 27.0),
    (42.0, 41.0),
    (45.0, 58.0),
    (56.0, 28.0),
    (56.0, 40.0),
)
FORMATION_433: tuple[tuple[float, float], ...] = (
    (4.0, 34.0),
    (31.0, 9.0),
    (27.0, 25.0),
    (27.0, 43.0),
    (31.0, 59.0),
    (43.0, 20.0),
    (40.0, 34.0),
    (43.0, 48.0),
    (56.0, 11.0),
    (58.0, 34.0),
    (56.0, 57.0),
)


def make_agents(rng: np.random.Generator) -> list[Agent]:
    """Build the ball, both teams and the referee.

    Args:
        rng: Source of the per-player skin tones and heights (drawn in agent order, so the roster
            is a deterministic function of the generator's state).

    Returns:
        The agents in row order: ball, home 1..11, away 1..11, referee.
    """
    agents = [
        Agent(
            id=0,
            team=Team.ball,
            role=Role.ball,
            number=0,
            kit=BALL_KIT,
            skin=(250, 250, 250),
            height_m=2 * BALL_RADIUS_M,
        )
    ]
    for team, kit, keeper_kit, first_id in (
        (Team.home, HOME_KIT, HOME_GOALKEEPER_KIT, 1),
        (Team.away, AWAY_KIT, AWAY_GOALKEEPER_KIT, 1 + PLAYERS_PER_TEAM),
    ):
        for number in range(1, PLAYERS_PER_TEAM + 1):
            keeper = number == 1
            skin = SKIN_TONES[int(rng.integers(len(SKIN_TONES)))]
            # Goalkeepers tend to be the tallest players on the pitch.
            height = float(rng.uniform(1.84, 1.95) if keeper else rng.uniform(1.70, 1.93))
            agents.append(
                Agent(
                    id=first_id + number - 1,
                    team=team,
                    role=Role.goalkeeper if keeper else Role.outfield,
                    number=number,
                    kit=keeper_kit if keeper else kit,
                    skin=skin,
                    height_m=round(height, 3),
                )
            )
    agents.append(
        Agent(
            id=REFEREE_ID,
            team=Team.referee,
            role=Role.referee,
            number=0,
            kit=REFEREE_KIT,
            skin=SKIN_TONES[int(rng.integers(len(SKIN_TONES)))],
            height_m=round(float(rng.uniform(1.72, 1.88)), 3),
        )
    )
    return agents
