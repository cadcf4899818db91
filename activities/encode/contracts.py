"""The encode stage's light contracts: what crosses the Temporal boundary, and nothing heavy.

Workflows and tests import these without PyAV. The fields are recorded in workflow histories:
never change them without a replay plan.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class PackageInput:
    """Package a match's rendered chunks.

    Attributes:
        organization_id: Tenant of the match.
        match_id: The match.
        revision: Processing revision.
        chunk_video_keys: Object keys of the chunks' H.264 MP4s, in playback order.
    """

    organization_id: str
    match_id: str
    revision: int
    chunk_video_keys: list[str]


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
