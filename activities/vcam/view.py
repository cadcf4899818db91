"""The rectilinear view a virtual camera shows, cut from the cylindrical panorama.

A path row ``(cx, cy, width)`` (panorama pixels, `activities.vcam.plan.VcamPath`) is read as a
pinhole camera standing at the panorama's centre:

* it turns to the azimuth of column ``cx`` and tilts to the elevation of row ``cy``
  (``tan e0 = (cv - cy) / focal``);
* its horizontal field of view is ``width / focal`` radians (so ``width`` is the span a level
  view covers on the panorama; tilted down, its centre row sweeps a wider azimuth, which the
  planner accounts for through :func:`view_extents` and the exact footprints);
* its image is ``out_w x out_h`` with square pixels and pixel centres at integer coordinates.

Output pixel ``(i, j)`` looks along ``d = (x, y cos e0 - sin e0, y sin e0 + cos e0)`` (right,
down, forward) with ``x = (i - (out_w - 1) / 2) / fv``, ``y = (j - (out_h - 1) / 2) / fv`` and
``fv = (out_w / 2) / tan(hfov / 2)``, and samples the panorama at::

    u = cx + focal * atan2(d_x, d_z)
    v = cv + focal * d_y / hypot(d_x, d_z)

Vertical lines stay vertical (the camera does not roll) and straight lines on the pitch stay
straight, unlike a crop of the panorama, where the touchlines bow. The native renderer
(`native` ``vcam_render``) evaluates the same formula; :func:`view_maps` is its NumPy
reference and :func:`render_view_remap` the ``cv2.remap`` peer it is benchmarked against.

Because the view is a pinhole camera, its footprint on the (flat) ground is exactly the quad
of its four corners' ground points (:func:`view_corners`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import cv2
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from activities.stitch.panorama import PanoramaModel

__all__ = [
    "GEOMETRY_METADATA_KEY",
    "ViewGeometry",
    "footprint_areas",
    "geometry_of",
    "render_view_remap",
    "view_corners",
    "view_edge_points",
    "view_extents",
    "view_maps",
    "with_geometry",
]

Float64Array = npt.NDArray[np.float64]
Float32Array = npt.NDArray[np.float32]

MAX_HFOV_RAD = math.radians(150.0)
"""Widest horizontal field of view a view may have; wider windows are narrowed to it (a
pinhole camera's image grows without bound towards 180 degrees)."""


@dataclass(frozen=True)
class ViewGeometry:
    """The panorama's cylinder as the views need it: pixels per radian and the horizon row.

    Attributes:
        focal_px: Panorama pixels per radian of azimuth and per unit of ``tan(elevation)``.
        cv: Panorama row of the horizon (elevation 0).
        width: Panorama width in pixels.
        height: Panorama height in pixels.
    """

    focal_px: float
    cv: float
    width: int
    height: int

    @classmethod
    def of(cls, model: PanoramaModel) -> ViewGeometry:
        return cls(float(model.focal_px), float(model.cv), int(model.width), int(model.height))


def _view_rays(
    geometry: ViewGeometry,
    cy: Float64Array,
    width: Float64Array,
    out_size: tuple[int, int],
    ij: Float64Array,
) -> tuple[Float64Array, Float64Array]:
    """Offsets ``(u - cx, v)`` in the panorama of view pixels ``ij`` ``[P, 2]`` for ``F``
    views (``cy``, ``width``: ``[F]``): two ``[F, P]`` arrays."""
    out_w, out_h = out_size
    f = geometry.focal_px
    hfov = np.minimum(np.asarray(width, np.float64) / f, MAX_HFOV_RAD)
    fv = (out_w / 2.0) / np.tan(hfov / 2.0)
    e0 = np.arctan((geometry.cv - np.asarray(cy, np.float64)) / f)
    x = (ij[None, :, 0] - (out_w - 1) / 2.0) / fv[:, None]
    y = (ij[None, :, 1] - (out_h - 1) / 2.0) / fv[:, None]
    cos_e, sin_e = np.cos(e0)[:, None], np.sin(e0)[:, None]
    dy = y * cos_e - sin_e
    dz = y * sin_e + cos_e
    du = f * np.arctan2(x, dz)
    v = geometry.cv + f * dy / np.hypot(x, dz)
    return du, v


def view_maps(
    geometry: ViewGeometry, cx: float, cy: float, width: float, out_size: tuple[int, int]
) -> tuple[Float32Array, Float32Array]:
    """``cv2.remap`` maps ``(map_x, map_y)``, each ``[out_h, out_w]`` float32, of one view."""
    out_w, out_h = out_size
    if out_w <= 0 or out_h <= 0 or width <= 0:
        raise ValueError("out_size and width must be positive")
    jj, ii = np.mgrid[0:out_h, 0:out_w].astype(np.float64)
    ij = np.column_stack([ii.ravel(), jj.ravel()])
    du, v = _view_rays(geometry, np.array([cy]), np.array([width]), out_size, ij)
    map_x = (cx + du[0]).reshape(out_h, out_w).astype(np.float32)
    map_y = v[0].reshape(out_h, out_w).astype(np.float32)
    return map_x, map_y


def render_view_remap(
    panorama_bgr: npt.NDArray[np.uint8],
    geometry: ViewGeometry,
    cx: float,
    cy: float,
    width: float,
    out_size: tuple[int, int],
) -> npt.NDArray[np.uint8]:
    """One view by ``cv2.remap`` (bilinear, edges replicated) with maps from :func:`view_maps`."""
    map_x, map_y = view_maps(geometry, cx, cy, width, out_size)
    view = cv2.remap(panorama_bgr, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(view, np.uint8)


def view_edge_points(out_size: tuple[int, int], per_edge: int = 8) -> Float64Array:
    """``[4 * per_edge, 2]`` view-pixel points around the image border (pixel edges), clockwise
    from the top-left corner; the first of each edge's points is a corner."""
    out_w, out_h = out_size
    left, right, top, bottom = -0.5, out_w - 0.5, -0.5, out_h - 0.5
    t = np.arange(per_edge, dtype=np.float64) / per_edge
    edges = [
        np.column_stack([left + t * (right - left), np.full(per_edge, top)]),
        np.column_stack([np.full(per_edge, right), top + t * (bottom - top)]),
        np.column_stack([right - t * (right - left), np.full(per_edge, bottom)]),
        np.column_stack([np.full(per_edge, left), bottom - t * (bottom - top)]),
    ]
    return np.concatenate(edges)


def view_corners(
    geometry: ViewGeometry,
    cx: npt.ArrayLike,
    cy: npt.ArrayLike,
    width: npt.ArrayLike,
    out_size: tuple[int, int] = (1920, 1080),
) -> Float64Array:
    """``[F, 4, 2]`` panorama pixels of each view's corners: top-left, top-right, bottom-right,
    bottom-left (the order ``vcam.parquet`` quads use)."""
    corners = view_edge_points(out_size, per_edge=1)
    cx_arr = np.atleast_1d(np.asarray(cx, np.float64))
    du, v = _view_rays(
        geometry,
        np.atleast_1d(np.asarray(cy, np.float64)),
        np.atleast_1d(np.asarray(width, np.float64)),
        out_size,
        corners,
    )
    return np.stack([cx_arr[:, None] + du, v], axis=-1)


def view_extents(
    geometry: ViewGeometry,
    cy: npt.ArrayLike,
    width: npt.ArrayLike,
    out_size: tuple[int, int] = (1920, 1080),
) -> tuple[Float64Array, Float64Array, Float64Array]:
    """How far each view reaches in the panorama: ``(half_width, top, bottom)`` ``[F]`` where
    the view spans columns ``cx ± half_width`` and rows ``top .. bottom`` (sampled along its
    border; the border's extreme points lie on it, since the mapping is monotonic along
    each edge's direction)."""
    border = view_edge_points(out_size, per_edge=16)
    du, v = _view_rays(
        geometry,
        np.atleast_1d(np.asarray(cy, np.float64)),
        np.atleast_1d(np.asarray(width, np.float64)),
        out_size,
        border,
    )
    return np.abs(du).max(axis=1), v.min(axis=1), v.max(axis=1)


GEOMETRY_METADATA_KEY = b"polyvision.view_geometry"
"""Parquet schema metadata key under which a path table carries its :class:`ViewGeometry`, so a
stored path alone says how to render it (paths stored before views have none: crops)."""


def with_geometry(table: pa.Table, geometry: ViewGeometry) -> pa.Table:
    """``table`` with ``geometry`` in its schema metadata (see :data:`GEOMETRY_METADATA_KEY`)."""
    metadata = dict(table.schema.metadata or {})
    metadata[GEOMETRY_METADATA_KEY] = json.dumps(asdict(geometry), sort_keys=True).encode()
    return table.replace_schema_metadata(metadata)


def geometry_of(table: pa.Table) -> ViewGeometry | None:
    """The :class:`ViewGeometry` a path table carries, or None (a path planned as crops).

    Raises:
        ValueError: The metadata is there but malformed.
    """
    raw = (table.schema.metadata or {}).get(GEOMETRY_METADATA_KEY)
    if raw is None:
        return None
    try:
        data = json.loads(raw)
        geometry = ViewGeometry(
            focal_px=float(data["focal_px"]),
            cv=float(data["cv"]),
            width=int(data["width"]),
            height=int(data["height"]),
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"malformed view geometry in the path table: {exc}") from exc
    if not (math.isfinite(geometry.focal_px) and geometry.focal_px > 0):
        raise ValueError("the path table's view geometry needs a positive focal length")
    return geometry


def footprint_areas(quads: npt.ArrayLike) -> Float64Array:
    """``[F]`` areas (shoelace) of ground quads ``[F, 4, 2]``; NaN where a corner has no ground
    point (above the horizon)."""
    q = np.asarray(quads, np.float64)
    x, y = q[..., 0], q[..., 1]
    twice = np.sum(x * np.roll(y, -1, axis=-1) - y * np.roll(x, -1, axis=-1), axis=-1)
    return np.asarray(0.5 * np.abs(twice), np.float64)
