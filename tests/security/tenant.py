"""Organization A with one real object per kind of path id, for the tests that walk the whole
OpenAPI document (the BOLA matrix and the fuzzer): their calls must reach real rows, or every
answer would be a 404 and nothing behind it would be tested.
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import FastAPI

from polyvision.storage.metadata.models import Match, MatchStatus, Role, RosterPlayer, Team
from tests.api.factories import Factory, TestDevice, TestOrg

ORG_PARAM = "org_id"


@dataclass
class Tenant:
    """Organization A: its members and one real object per path parameter kind."""

    org: TestOrg
    ids: dict[str, str]  # path parameter name -> the id of A's object of that kind
    secrets: list[str]  # strings of A that must never reach another tenant
    device: TestDevice | None = None  # A's device, which can mint its own tokens

    def url(self, path: str) -> str:
        """``path`` (an OpenAPI path template) with A's ids in its parameters."""
        return path.format(**self.ids)


async def tenant_with_objects(app: FastAPI, factory: Factory) -> Tenant:
    """A fresh organization with a member of each role, a second viewer (the member routes act
    on it, so no call demotes or removes the caller), a device, a team with a player and a
    published match."""
    org = await factory.org()
    target = await factory.user()
    await factory.add_member(org.id, target.id, Role.viewer)
    device = await factory.device(org.id, name="a-secret-edge-box")
    team = Team(organization_id=org.id, name="A Secret Team")
    async with app.state.sessions() as session:
        session.add(team)
        await session.commit()
        player = RosterPlayer(
            organization_id=org.id, team_id=team.id, name="A Secret Player", shirt_number=7
        )
        match = Match(
            organization_id=org.id,
            title="A secret match",
            status=MatchStatus.ready,
            revision=1,
            published_revision=1,
            home_team_id=team.id,
        )
        session.add_all([player, match])
        await session.commit()
        ids = {
            ORG_PARAM: str(org.id),
            "match_id": str(match.id),
            "team_id": str(team.id),
            "player_id": str(player.id),
            "device_id": str(device.id),
            "user_id": str(target.id),
            "identity_id": "1",
            "team": "1",
        }
    secrets = [
        org.slug,
        str(match.id),
        str(team.id),
        str(player.id),
        str(device.id),
        target.email,
        "A Secret Team",
        "A secret match",
        "A Secret Player",
        "a-secret-edge-box",
    ]
    return Tenant(org=org, ids=ids, secrets=secrets, device=device)
