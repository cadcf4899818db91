"""The encode stage's light contracts: what crosses the Temporal boundary, and nothing heavy.

Workflows, the API and tests import these without PyAV. The fields are recorded in workflow
histories: never change them without a replay plan.

The published layout (names relative to the revision's ``hls/`` folder, or a view's
``hls/views/{view}/``) is written once here, so the packager, the index stage (which catalogues
it) and the delivery API (which hands out its URLs) agree on it::

    master.m3u8                    HLS master: a variant and an I-frame stream per rendition
    manifest.mpd                   DASH MPD (static): the same segments, one Representation each
    {rendition}/media.m3u8         the rendition's HLS media playlist (version 7, EXT-X-MAP)
    {rendition}/iframes.m3u8       its I-frame playlist (byte ranges into the same segments)
    {rendition}/init.mp4           its CMAF initialisation segment
    {rendition}/seg_00000.m4s ...  its CMAF media segments, shared by HLS and DASH
    thumbnails.vtt                 WebVTT index of the thumbnail sprites (``#xywh=``)
    thumbnails/sprite-000.jpg ...  thumbnail sprites (JPEG grids)
    poster.jpg                     the poster image
    panorama/master.m3u8           the panorama's own HLS master (one variant) ...
    panorama/manifest.mpd          ... and DASH MPD, its segments beside them
    minimap/master.m3u8            the minimap (the match from above) the same way ...
    minimap/manifest.mpd           ... with its DASH MPD

A package made without renditions (`PackageInput.chunk_renditions` empty: runs recorded before
the ladder) keeps the single-rendition layout: ``master.m3u8``, ``media.m3u8``, ``init.mp4``
and ``seg_*.m4s`` directly in the folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from activities.vcam.contracts import RenditionChunk
from polyvision.artifacts import HLS_MASTER_PLAYLIST, HLS_STAGE, artifact_key

VIEWS_FOLDER = "views"
"""Folder (in the revision's ``hls/`` and ``encode/``) holding one sub-folder per re-rendered
view (``hls/views/{view}/master.m3u8``): inside ``hls/``, so a playback grant for the
revision's rendition covers its views too, and the match's own package never touches them."""

MASTER_PLAYLIST = HLS_MASTER_PLAYLIST
"""The HLS entry point of a package (and of its panorama folder)."""
MEDIA_PLAYLIST = "media.m3u8"
"""A rendition's HLS media playlist."""
IFRAME_PLAYLIST = "iframes.m3u8"
"""A rendition's HLS I-frame playlist."""
DASH_MANIFEST = "manifest.mpd"
"""The DASH entry point of a package (and of its panorama folder)."""
THUMBNAILS_VTT = "thumbnails.vtt"
"""The WebVTT index of the thumbnail sprites."""
THUMBNAILS_FOLDER = "thumbnails"
"""Folder of the thumbnail sprites."""
POSTER = "poster.jpg"
"""The poster image."""
PANORAMA_FOLDER = "panorama"
"""Folder (in the revision's ``hls/``) of the panorama's own package."""
MINIMAP_FOLDER = "minimap"
"""Folder (in the revision's ``hls/``) of the minimap's own package."""

RESERVED_NAMES = frozenset({VIEWS_FOLDER, PANORAMA_FOLDER, MINIMAP_FOLDER, THUMBNAILS_FOLDER})
"""Folder names a rendition may not have: they hold other parts of the package."""


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
        chunk_video_keys: Object keys of the chunks' H.264 MP4s, in playback order; what is
            packaged when ``chunk_renditions`` is empty (one rendition, the old layout).
        view: Name of a re-rendered view: published under ``hls/views/{view}/`` (manifest in
            ``encode/views/{view}/``); empty for the match's own rendition (``hls/``).
        chunk_renditions: Per chunk in playback order, its renditions top first
            (`activities.vcam.contracts.VcamRenderOutput.renditions`); every chunk lists the
            same renditions. Empty: ``chunk_video_keys`` is packaged as one rendition.
        panorama_chunk_keys: Object keys of the stitch stage's panorama chunk MP4s in playback
            order, packaged as their own stream under ``hls/panorama/``; empty: none. Ignored
            for a view (the panorama is the revision's, not the view's).
        segment_seconds: None: one segment per chunk. Otherwise chunks are also cut at
            keyframes (common to every rendition) into segments of at least this length.
        minimap_chunk_keys: Object keys of the minimap's chunk MP4s in playback order
            (`activities.minimap`), packaged as their own stream under ``hls/minimap/``;
            empty: none. Ignored for a view.
    """

    organization_id: str
    match_id: str
    revision: int
    chunk_video_keys: list[str]
    view: str = ""
    chunk_renditions: list[list[RenditionChunk]] = field(default_factory=list)
    panorama_chunk_keys: list[str] = field(default_factory=list)
    segment_seconds: float | None = None
    minimap_chunk_keys: list[str] = field(default_factory=list)


@dataclass
class PackagedRendition:
    """One published rendition, as the master playlist and the MPD announce it.

    Attributes:
        name: The rendition's name (its folder).
        width: Pixels.
        height: Pixels.
        codecs: RFC 6381 codec string (``avc1.640028``).
        bandwidth: Peak segment bit rate, bit/s (HLS ``BANDWIDTH``).
        average_bandwidth: Mean bit rate, bit/s (HLS ``AVERAGE-BANDWIDTH``).
        media_key: Object key of its media playlist.
    """

    name: str
    width: int
    height: int
    codecs: str
    bandwidth: int
    average_bandwidth: int
    media_key: str


@dataclass
class PackageOutput:
    """The published package.

    Attributes:
        master_key: Object key of ``master.m3u8``, the entry point for viewers.
        media_key: Object key of the (top rendition's) media playlist.
        segments: Number of media segments (of each rendition).
        duration_s: Total duration in seconds.
        manifest_key: Where the manifest is.
        from_manifest: True when an earlier attempt's manifest answered.
        dash_key: Object key of the DASH MPD; empty for a package without renditions.
        thumbnails_key: Object key of the thumbnails' WebVTT index; empty when none.
        poster_key: Object key of the poster; empty when none.
        panorama_master_key: Object key of the panorama's HLS master; empty when none.
        panorama_dash_key: Object key of the panorama's DASH MPD; empty when none.
        renditions: The renditions, top first; empty for a package without renditions.
        minimap_master_key: Object key of the minimap's HLS master; empty when none.
        minimap_dash_key: Object key of the minimap's DASH MPD; empty when none.
    """

    master_key: str
    media_key: str
    segments: int
    duration_s: float
    manifest_key: str
    from_manifest: bool = False
    dash_key: str = ""
    thumbnails_key: str = ""
    poster_key: str = ""
    panorama_master_key: str = ""
    panorama_dash_key: str = ""
    renditions: list[PackagedRendition] = field(default_factory=list)
    minimap_master_key: str = ""
    minimap_dash_key: str = ""
