"""The analyst's corrections of a match's tracked identities, resolved: raw id to served player.

An analyst merges two identities of a match revision (``source`` becomes ``target``) and names
identities after roster players (`polyvision.storage.metadata.models.IdentityMerge`,
`IdentityAssignment`). `build_identity_map` turns both into one mapping:

1. merge chains resolve to their end (``a -> b -> c``: ``a`` and ``b`` are ``c``); a cycle is
   refused (`IdentityCycleError`: the routes refuse the merge that would close one);
2. a merged group has at most one roster player, whichever member it was given to; two
   different players in one group are refused (`IdentityConflictError`);
3. groups given the same roster player are one person too (as the analyze stage treats them,
   `activities.analyze.identities`): they share the smallest of their ids.

Pure and standard-library only: the routes check a write by building the map with it, and
the figures route serves every row under the id the map gives it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field


class IdentityCycleError(ValueError):
    """Merges that lead back to where they started.

    Attributes:
        cycle: The identities of the cycle, in merge order from its smallest id.
    """

    def __init__(self, cycle: tuple[int, ...]) -> None:
        self.cycle = cycle
        path = " -> ".join(str(identity) for identity in (*cycle, cycle[0]))
        super().__init__(f"The merges would form a cycle: {path}.")


class IdentityConflictError(ValueError):
    """One merged group named after two different roster players.

    Attributes:
        identity: The group's canonical identity.
        players: The two players.
    """

    def __init__(self, identity: int, players: tuple[uuid.UUID, uuid.UUID]) -> None:
        self.identity = identity
        self.players = players
        super().__init__(
            f"Identity {identity} would be two roster players at once; "
            "remove one player's assignment first."
        )


@dataclass(frozen=True)
class IdentityMap:
    """Where each raw identity id of a match revision goes.

    Ids the corrections never mention map to themselves, with no player.

    Attributes:
        canonical: Raw id to the id it is served under (only the ids that change).
        players: Served id to its roster player.
    """

    canonical: Mapping[int, int] = field(default_factory=dict)
    players: Mapping[int, uuid.UUID] = field(default_factory=dict)

    def resolve(self, identity: int) -> int:
        """The id ``identity`` is served under."""
        return self.canonical.get(identity, identity)

    def player(self, identity: int) -> uuid.UUID | None:
        """The roster player of raw ``identity`` (through its merges), if any."""
        return self.players.get(self.resolve(identity))

    def members(self, identities: Iterable[int]) -> dict[int, list[int]]:
        """``identities`` grouped by the id each is served under (members sorted)."""
        groups: dict[int, list[int]] = {}
        for identity in sorted(set(identities)):
            groups.setdefault(self.resolve(identity), []).append(identity)
        return groups


def _chain_end(identity: int, targets: Mapping[int, int]) -> int:
    seen: list[int] = []
    current = identity
    while current in targets:
        if current in seen:
            cycle = seen[seen.index(current) :]
            start = cycle.index(min(cycle))
            raise IdentityCycleError(tuple(cycle[start:] + cycle[:start]))
        seen.append(current)
        current = targets[current]
    return current


def build_identity_map(
    merges: Iterable[tuple[int, int]], assignments: Mapping[int, uuid.UUID]
) -> IdentityMap:
    """Resolve a match revision's merges and roster assignments.

    Args:
        merges: ``(source, target)`` pairs: ``source`` becomes ``target``. Each source is
            merged at most once (the catalog's unique constraint); a pair merging an id into
            itself is ignored.
        assignments: Raw identity id to the roster player it was named after.

    Raises:
        IdentityCycleError: The merges form a cycle.
        IdentityConflictError: A merged group holds two different roster players.
        ValueError: An identity is merged into two different targets.
    """
    targets: dict[int, int] = {}
    for source, target in merges:
        if source == target:
            continue
        if targets.setdefault(source, target) != target:
            raise ValueError(f"Identity {source} is merged into two identities.")
    mentioned = set(targets) | set(targets.values()) | set(assignments)
    end = {identity: _chain_end(identity, targets) for identity in mentioned}

    group_player: dict[int, uuid.UUID] = {}
    for identity in sorted(assignments):
        player = assignments[identity]
        group = end[identity]
        known = group_player.setdefault(group, player)
        if known != player:
            raise IdentityConflictError(group, (known, player))

    # Groups named after the same player are one, under the smallest of their ids.
    player_group: dict[uuid.UUID, int] = {}
    for group in sorted(group_player):
        player_group.setdefault(group_player[group], group)
    served = {
        group: player_group[player] for group, player in group_player.items()
    }  # group -> served id
    canonical: dict[int, int] = {}
    for identity in mentioned:
        final = served.get(end[identity], end[identity])
        if final != identity:
            canonical[identity] = final
    players = {served_id: player for player, served_id in player_group.items()}
    return IdentityMap(canonical=canonical, players=players)


def overrides_document(
    merges: Iterable[tuple[int, int]], assignments: Mapping[int, uuid.UUID]
) -> dict[str, object]:
    """The corrections in the analyze stage's overrides format
    (`activities.analyze.identities.IdentityOverrides.from_json`), for a reprocess that should
    apply them: ``{"merges": [[a, b], ...], "roster": {"identity": "player id", ...}}``."""
    return {
        "merges": sorted([source, target] for source, target in merges if source != target),
        "roster": {str(identity): str(player) for identity, player in sorted(assignments.items())},
    }
