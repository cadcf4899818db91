"""Opaque keyset-pagination cursors: where the previous page ended, for which query.

A cursor is base64url JSON holding the last row's sort value and id (and its relevance, for
the relevance sort), the sort, and a short fingerprint of the filters. It is not signed: it can
only move the start of a page inside the caller's own, organization-scoped results, so
tampering reveals nothing. The fingerprint makes a cursor used with other filters or another
sort fail loudly instead of skipping rows.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

CURSOR_VERSION = 1

RELEVANCE_SORT = "relevance"
"""The sort whose cursors hold a relevance beside the kickoff (`MatchSort.relevance`)."""


class InvalidCursor(ValueError):
    """The cursor is malformed, or belongs to another sort or other filters."""


@dataclass(frozen=True)
class PageKey:
    """The position after which the next page starts.

    Attributes:
        sort: The sort the page was listed with.
        value: The last row's value of the sort column (None: the row had none).
        id: The last row's id, the tie-breaker of every sort.
        fingerprint: `MatchFilters.fingerprint` of the query the page belongs to.
        rank: The last row's search relevance, for the ``relevance`` sort (None otherwise).
    """

    sort: str
    value: datetime | str | None
    id: uuid.UUID
    fingerprint: str
    rank: int | None = None


def _encode_value(value: datetime | str | None) -> tuple[str, str | None]:
    if value is None:
        return "null", None
    if isinstance(value, datetime):
        return "datetime", value.isoformat()
    return "text", value


def _decode_value(kind: Any, text: Any) -> datetime | str | None:
    if kind == "null":
        return None
    if not isinstance(text, str):
        raise InvalidCursor("The cursor is malformed.")
    if kind == "text":
        return text
    if kind == "datetime":
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise InvalidCursor("The cursor is malformed.") from exc
        if parsed.utcoffset() is None:
            raise InvalidCursor("The cursor is malformed.")
        return parsed
    raise InvalidCursor("The cursor is malformed.")


def encode_cursor(key: PageKey) -> str:
    """The opaque text of ``key``."""
    kind, text = _encode_value(key.value)
    body: dict[str, Any] = {
        "v": CURSOR_VERSION,
        "s": key.sort,
        "t": kind,
        "k": text,
        "i": key.id.hex,
        "f": key.fingerprint,
    }
    if key.rank is not None:
        body["r"] = key.rank
    raw = json.dumps(body, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(text: str, *, sort: str, fingerprint: str) -> PageKey:
    """Parse a cursor and check it belongs to the query being listed.

    Args:
        text: The cursor as the client sent it.
        sort: The sort of the current request.
        fingerprint: The fingerprint of the current request's filters.

    Raises:
        InvalidCursor: malformed, or made for another sort or other filters.
    """
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        body = json.loads(raw)
    except (binascii.Error, ValueError) as exc:
        raise InvalidCursor("The cursor is malformed.") from exc
    if not isinstance(body, dict) or body.get("v") != CURSOR_VERSION:
        raise InvalidCursor("The cursor is malformed.")
    try:
        row_id = uuid.UUID(hex=str(body["i"]))
    except (KeyError, ValueError) as exc:
        raise InvalidCursor("The cursor is malformed.") from exc
    if body.get("s") != sort or body.get("f") != fingerprint:
        raise InvalidCursor("The cursor belongs to another sort or other filters.")
    # The value is compared with the sort's column: a text for a date column (an edited
    # cursor) would reach the database driver as the wrong type.
    allowed = {"text"} if sort.lstrip("-") == "title" else {"datetime", "null"}
    if body.get("t") not in allowed:
        raise InvalidCursor("The cursor is malformed.")
    # The relevance sort's cursor holds the last row's relevance, a whole number.
    rank = body.get("r")
    if sort == RELEVANCE_SORT:
        if not isinstance(rank, int) or isinstance(rank, bool):
            raise InvalidCursor("The cursor is malformed.")
    elif rank is not None:
        raise InvalidCursor("The cursor is malformed.")
    return PageKey(
        sort=sort,
        value=_decode_value(body.get("t"), body.get("k")),
        id=row_id,
        fingerprint=fingerprint,
        rank=rank,
    )
