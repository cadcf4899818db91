"""What a revision published, as the catalog's assets: found in the object store by layout.

The encode stage publishes its package under the folder of the HLS master playlist
(`activities.encode.contracts` draws the layout); the analyze stage writes the heatmaps. Each
entry point a viewer or an application fetches becomes one asset row: the HLS master
(``hls``), the DASH MPD (``dash``), the thumbnails' WebVTT index, its sprites and the poster
(``thumbnail``), the panorama's HLS master and MPD (``panorama``), the minimap's HLS master
and MPD (``hls``, ``dash``) and the heatmaps (``heatmap``). Segments and per-rendition
playlists are not catalogued: the manifests name them, and a match has thousands.

Only what exists is registered, so a package made before the ladder (no MPD, thumbnails or
panorama) gets its HLS master and nothing it lacks.
"""

from __future__ import annotations

from dataclasses import dataclass

from activities.encode.contracts import (
    DASH_MANIFEST,
    MASTER_PLAYLIST,
    MINIMAP_FOLDER,
    PANORAMA_FOLDER,
    POSTER,
    THUMBNAILS_FOLDER,
    THUMBNAILS_VTT,
)
from activities.index.contracts import IndexInput
from polyvision.storage.metadata.models import AssetKind
from polyvision.storage.objects import ObjectNotFound, ObjectStore


@dataclass(frozen=True)
class PublishedAsset:
    """One published object, as its asset row records it.

    Attributes:
        role: What it is to a player (``hls_master``, ``dash_manifest``, ``thumbnails``,
            ``thumbnail_sprite``, ``poster``, ``panorama_master``, ``panorama_dash``,
            ``minimap_master``, ``minimap_dash``, ``heatmaps``); the summary's key for the
            single ones.
        kind: The catalog's asset kind.
        key: Object key.
        size: Bytes.
        sha256: Its digest, where the store recorded one.
        content_type: Its media type, where the store recorded one.
    """

    role: str
    kind: AssetKind
    key: str
    size: int
    sha256: str | None
    content_type: str | None


async def published_assets(objects: ObjectStore, input: IndexInput) -> list[PublishedAsset]:
    """The revision's published entry points that exist, in a fixed order."""
    folder = input.hls_master_key.removesuffix(MASTER_PLAYLIST)
    candidates = [("hls_master", AssetKind.hls, input.hls_master_key)]
    if folder != input.hls_master_key:  # the package's layout is only known beside its master
        candidates += [
            ("dash_manifest", AssetKind.dash, folder + DASH_MANIFEST),
            ("thumbnails", AssetKind.thumbnail, folder + THUMBNAILS_VTT),
            ("poster", AssetKind.thumbnail, folder + POSTER),
            ("panorama_master", AssetKind.panorama, f"{folder}{PANORAMA_FOLDER}/{MASTER_PLAYLIST}"),
            ("panorama_dash", AssetKind.panorama, f"{folder}{PANORAMA_FOLDER}/{DASH_MANIFEST}"),
            ("minimap_master", AssetKind.hls, f"{folder}{MINIMAP_FOLDER}/{MASTER_PLAYLIST}"),
            ("minimap_dash", AssetKind.dash, f"{folder}{MINIMAP_FOLDER}/{DASH_MANIFEST}"),
        ]
        sprites = sorted(
            [info.key async for info in objects.list_prefix(f"{folder}{THUMBNAILS_FOLDER}/")]
        )
        candidates += [("thumbnail_sprite", AssetKind.thumbnail, key) for key in sprites]
    candidates.append(("heatmaps", AssetKind.heatmap, input.heatmaps_key))
    found = []
    for role, kind, key in candidates:
        try:
            info = await objects.stat(key)
        except ObjectNotFound:
            continue
        found.append(PublishedAsset(role, kind, key, info.size, info.sha256, info.content_type))
    return found
