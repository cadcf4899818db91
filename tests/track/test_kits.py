"""Teams and roles per identity: two kits, goalkeepers by their goal, the referee."""

from __future__ import annotations

import numpy as np

from activities.track.kits import IdentitySummary, assign_kits
from polyvision.roles import ROLE_GOALKEEPER, ROLE_PLAYER, ROLE_REFEREE, ROLE_UNKNOWN

RED = (120.0, 180.0, 160.0)
BLUE = (90.0, 140.0, 90.0)
YELLOW = (220.0, 120.0, 200.0)
GREEN_GK = (150.0, 80.0, 170.0)
BLACK = (30.0, 128.0, 128.0)


def test_players_keepers_and_the_referee_each_get_their_group() -> None:
    rng = np.random.default_rng(0)
    rows: list[tuple[tuple[float, float, float], float]] = []
    rows += [(RED, x) for x in rng.uniform(20, 60, 10)]  # red plays on the left half
    rows += [(BLUE, x) for x in rng.uniform(45, 85, 10)]
    rows += [(YELLOW, 4.0), (GREEN_GK, 101.0), (BLACK, 50.0)]
    lab = np.array([c for c, _ in rows]) + rng.normal(0, 2, (len(rows), 3))
    ids = np.arange(1, len(rows) + 1)
    summary = IdentitySummary(
        track_id=ids,
        lab=lab,
        samples=np.full(len(rows), 50),
        frames=np.full(len(rows), 100),
        mean_x=np.array([x for _, x in rows]),
    )
    kits = assign_kits(summary)
    red_team = kits.team[1]
    blue_team = kits.team[11]
    assert {red_team, blue_team} == {0, 1}
    assert all(kits.team[i] == red_team and kits.role[i] == ROLE_PLAYER for i in range(1, 11))
    assert all(kits.team[i] == blue_team for i in range(11, 21))
    assert kits.role[21] == ROLE_GOALKEEPER and kits.team[21] == red_team  # left goal: red's
    assert kits.role[22] == ROLE_GOALKEEPER and kits.team[22] == blue_team
    assert kits.role[23] == ROLE_REFEREE and kits.team[23] == -1
    assert kits.cluster_mean_x[red_team] < kits.cluster_mean_x[blue_team]


def test_an_identity_with_too_few_colour_samples_stays_unknown() -> None:
    summary = IdentitySummary(
        track_id=np.array([1, 2, 3, 4, 5]),
        lab=np.array([RED, RED, BLUE, BLUE, BLACK], float),
        samples=np.array([50, 50, 50, 50, 2]),
        frames=np.array([100, 100, 100, 100, 5]),
        mean_x=np.array([30.0, 40.0, 60.0, 70.0, 50.0]),
    )
    kits = assign_kits(summary)
    assert kits.team[5] == -1 and kits.role[5] == ROLE_UNKNOWN
