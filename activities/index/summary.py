"""The match summary (``summary.json``): every figure the stages reported, and where things are."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

from activities.index.assets import PublishedAsset
from activities.index.contracts import IndexInput

SUMMARY_VERSION = 1


def summary_document(
    input: IndexInput, summary_key: str, published: Sequence[PublishedAsset] = ()
) -> dict[str, object]:
    """The ``summary.json`` body: every input figure, the duration and the artifact keys.

    ``published`` adds the keys of the package's other entry points (DASH MPD, thumbnails,
    poster, panorama) under their roles. No timestamp: the same inputs give the same bytes,
    whichever attempt writes them.
    """
    body: dict[str, object] = {"version": SUMMARY_VERSION, **asdict(input)}
    body["duration_s"] = duration_s(input)
    keys = {
        "summary": summary_key,
        "hls_master": input.hls_master_key,
        "heatmaps": input.heatmaps_key,
    }
    for asset in published:
        if asset.role not in keys and asset.role != "thumbnail_sprite":
            keys[asset.role] = asset.key
    body["keys"] = keys
    return body


def duration_s(input: IndexInput) -> float:
    """The match's duration in seconds (0 for an unknown frame rate)."""
    return input.frames / input.fps if input.fps > 0 else 0.0
