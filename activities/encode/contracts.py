"""The encode stage's light contracts: what crosses the Temporal boundary, and nothing heavy.

Workflows and tests import these without PyAV. The fields are recorded in workflow histories:
never change them without a replay plan.
"""

from __future__ import annotations

from dataclasses import dataclass

from polyvision.artifacts import HLS_STAGE, artifact_key

VIEWS_FOLDER = "views"
"""Folder (in the revision's ``hls/`` and ``encode/``) holding one sub-folder per re-rendered
view (``hls/views/{view}/master.m3u8``): inside ``hls/``, so a playback grant for the
revision's rendition covers its views too, and the match's own package never touches them."""


def view_hls_folder(organization_id: str, match_id: str, revision: int, view: str) -> str:
    """The key prefix (ending in ``/``) where a view's HLS package is published; the
    revision's own ``hls/`` folder for ``view=""``."""
    parts = (VIEWS_FOLDER, view, "") if view else ("",)
    return artifact_key(organization_id, match_id, revision, HLS_STAGE, *parts)


@dataclass
class PackageInput:
    """Package a match's rendered chunks.

    Attributes:
        organization_id: Tenant of the match.
        match_id: The match.
        revision: Processing revision.
        chunk_video_keys: Object keys of the chunks' H.264 MP4s, in playback order.
        view: Name of a re-rendered view: published under ``hls/views/{view}/`` (manifest in
            ``encode/views/{view}/``); empty for the match's own rendition (``hls/``).
    """

    organization_id: str
    match_id: str
    revision: int
    chunk_video_keys: list[str]
    view: str = ""


@dataclass
class PackageOutput:
    """The published rendition.

    Attributes:
        master_key: Object key of ``master.m3u8``, the entry point for viewers.
        media_key: Object key of ``media.m3u8``.
        segments: Number of media segments.
        duration_s: Total duration in seconds.
        manifest_key: Where the manifest is.
        from_manifest: True when an earlier attempt's manifest answered.
    """

    master_key: str
    media_key: str
    segments: int
    duration_s: float
    manifest_key: str
    from_manifest: bool = False
