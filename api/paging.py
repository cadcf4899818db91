"""Offset paging parameters shared by the list routes.

Every paging parameter has an upper bound: an unbounded ``int`` reaches the database as is,
and one past 64 bits makes the driver raise (a 500) instead of the 422 a bad parameter gets.
The bound on ``offset`` is far past any list an organization has (members, devices, codes);
a client paging further is told so by a 422 problem, not by an overflow.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

MAX_OFFSET = 100_000
"""The largest ``offset`` a list route accepts."""

Offset = Annotated[
    int, Query(ge=0, le=MAX_OFFSET, description=f"Items to skip (at most {MAX_OFFSET}).")
]
