"""Reading the track stage's output: the ``track_points`` of a match revision, as later stages
(analyze, vcam) see it."""

from __future__ import annotations

from polyvision.stage import MatchScoped
from polyvision.storage.analytics import AnalyticsStore


def track_points_digest(analytics: AnalyticsStore, scope: MatchScoped, columns: str) -> str:
    """A digest of a match revision's ``track_points`` over ``columns`` (comma-separated).

    The row count and the sum of the rows' hashes: it does not depend on the row order.
    """
    rows = analytics.query_numpy(
        f"SELECT count() AS n, sum(cityHash64({columns})) AS h "
        "FROM track_points "
        "WHERE organization_id = {org:String} AND match_id = {match:String} "
        "AND revision = {revision:UInt32}",
        {"org": scope.organization_id, "match": scope.match_id, "revision": scope.revision},
    )
    return f"{int(rows['n'][0])}:{int(rows['h'][0])}"
