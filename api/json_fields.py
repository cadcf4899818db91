"""Field types that take only the JSON type and format the OpenAPI document gives them.

FastAPI validates bodies (after decoding the JSON) and parameters in pydantic's lax Python mode,
which would turn ``"teams_swapped": "0"`` into ``false``, ``"shirt_number": "7"`` into 7 and a
date-time of ``-71131620`` (a number, or a numeric query string) into 1967-09-30 as Unix time: a
client's mistake silently becomes a value the document says it cannot be. Body fields of those
types are strict instead: pydantic's ``StrictBool`` and ``StrictInt`` where JSON has the type,
and `TextDatetime` for date-times, which JSON and query strings write as text (``strict``
itself would refuse that text in Python mode).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AwareDatetime, BeforeValidator


def _not_a_number(value: object) -> object:
    if isinstance(value, int | float) or (isinstance(value, str) and _numeric(value)):
        raise ValueError("a date-time is RFC 3339 text (2025-05-17T15:30:00Z), not a number")
    return value


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


TextDatetime = Annotated[AwareDatetime, BeforeValidator(_not_a_number)]
"""A timezone-aware RFC 3339 date-time; a number, or text that is one (Unix time), is a 422."""
