"""The panorama of the two-camera rig: a virtual cylindrical camera (the maps that fill it are
`activities.stitch.maps`'s).

The virtual camera stands at the midpoint of the two real camera centres. Its image is a
cylinder with a vertical axis (world ``z``): column ``u`` is an azimuth, row ``v`` the tangent of
an elevation, so vertical world lines (players, goal posts) stay vertical and the pitch bows into
the familiar panoramic "smile". With ``az`` measured in the pitch frame (counter-clockwise from
``+x``) and pixel centres at integer coordinates (the rig's convention)::

    az(u)     = heading_rad - (u - cu) / focal_px
    tan(e)(v) = (cv - v) / focal_px

and the ray of pixel ``(u, v)`` is ``(cos az, sin az, tan e)`` from ``center``. The azimuth
decreases to the right because the cameras stand beyond the near touchline (``y < 0``) looking
towards ``+y``: the left goal is on the left of the image.

Geometry of the stitch. The virtual centre is about a metre from each real centre, so a single
panorama ray meets different scene points depending on depth; the maps therefore fix a surface
onto which each panorama ray is cast before being projected into the real cameras:

* the ground plane ``z = 0`` up to a far wall -- every point of the pitch (lines, spots, players'
  feet) lands exactly where `pitch_to_panorama` says, in both source images, so the seam has no
  ghosting on the grass and the tracker can map foot points through the panorama exactly;
* a vertical wall ``y = far_wall_y_m`` behind the far touchline (where stands usually are), and a
  point at a great distance for rays that meet neither (above the horizon, looking sideways).
  The surface is continuous (the floor ends where the wall starts), so the maps have no tears.

Points off that surface (a player's head, the crowd in front of or behind the wall) show a small
parallax between the two cameras; it only matters inside the narrow blend band along the seam,
which `activities.stitch.seam` routes around moving players. For the synthetic rig (cameras 2 m
apart, 13 m up) the head of a player on the halfway line is about 0.3 m apart on the ground in
the two cameras, ~5 px in the 2838-pixel panorama of 1920-pixel sources; the feet coincide.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from polyvision.geometry import Rig, image_to_pitch

Float64Array = npt.NDArray[np.float64]

PANORAMA_VERSION = 1

# The panorama's size: two 3856x2180 cameras give a 5700x1669 panorama (the product's reference
# rig), other cameras proportionally (see `panorama_size`).
REFERENCE_SOURCE_SIZE = (3856, 2180)
REFERENCE_PANORAMA_SIZE = (5700, 1669)
# Distance along a ray used for rays that meet neither the ground nor the wall: far enough that
# the 2 m between the real cameras shifts it by well under a pixel.
_FAR_DISTANCE_M = 1.0e4


class PanoramaError(ValueError):
    """A panorama model is malformed, or the rig cannot give one."""


@dataclass(frozen=True)
class PanoramaModel:
    """The virtual cylindrical camera of the panorama (see the module docstring for the maps).

    Attributes:
        width: Panorama width in pixels (even).
        height: Panorama height in pixels (even).
        center: ``(x, y, z)`` of the virtual camera in the pitch frame, metres.
        heading_rad: Azimuth (pitch frame, counter-clockwise from ``+x``) of column ``cu``.
        focal_px: Pixels per radian of azimuth, and per unit of ``tan(elevation)``.
        cu: Column of ``heading_rad``.
        cv: Row of the horizon (elevation 0); above the image when the panorama looks down.
        far_wall_y_m: ``y`` of the vertical wall that rays above the pitch are cast onto.
        pitch_length_m: Length of the pitch (``x``), from the rig.
        pitch_width_m: Width of the pitch (``y``), from the rig.
        version: Format version; only `PANORAMA_VERSION` is understood.
    """

    width: int
    height: int
    center: tuple[float, float, float]
    heading_rad: float
    focal_px: float
    cu: float
    cv: float
    far_wall_y_m: float
    pitch_length_m: float
    pitch_width_m: float
    version: int = PANORAMA_VERSION

    def __post_init__(self) -> None:
        if self.version != PANORAMA_VERSION:
            raise PanoramaError(f"unknown panorama version {self.version!r}")
        if self.width <= 0 or self.height <= 0 or self.width % 2 or self.height % 2:
            raise PanoramaError(f"size must be positive and even, got {self.width}x{self.height}")
        center = tuple(float(v) for v in self.center)
        if len(center) != 3:
            raise PanoramaError("center must be (x, y, z)")
        object.__setattr__(self, "center", center)
        numbers = (*center, self.heading_rad, self.focal_px, self.cu, self.cv, self.far_wall_y_m)
        if not all(math.isfinite(v) for v in numbers):
            raise PanoramaError("panorama parameters must be finite")
        if self.focal_px <= 0:
            raise PanoramaError("focal_px must be positive")
        if center[2] <= 0:
            raise PanoramaError("the virtual camera must be above the ground")

    def to_dict(self) -> dict[str, Any]:
        """The model as plain JSON-compatible values."""
        data = asdict(self)
        data["center"] = list(self.center)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> PanoramaModel:
        """Build a model from `to_dict`'s output.

        Raises:
            PanoramaError: A field is missing, unknown or malformed.
        """
        if not isinstance(data, dict):
            raise PanoramaError("panorama model must be an object")
        if data.get("version") != PANORAMA_VERSION:
            raise PanoramaError(f"unknown panorama version {data.get('version')!r}")
        try:
            return cls(
                width=int(data["width"]),
                height=int(data["height"]),
                center=tuple(float(v) for v in data["center"]),  # type: ignore[arg-type]
                heading_rad=float(data["heading_rad"]),
                focal_px=float(data["focal_px"]),
                cu=float(data["cu"]),
                cv=float(data["cv"]),
                far_wall_y_m=float(data["far_wall_y_m"]),
                pitch_length_m=float(data["pitch_length_m"]),
                pitch_width_m=float(data["pitch_width_m"]),
                version=int(data["version"]),
            )
        except (KeyError, TypeError, ValueError) as error:
            raise PanoramaError(f"malformed panorama model: {error!r}") from error

    def to_json(self) -> str:
        """The model as JSON text (floats written exactly, so the round trip is lossless)."""
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> PanoramaModel:
        """Parse `to_json`'s output.

        Raises:
            PanoramaError: The text is not JSON or the model is malformed.
        """
        try:
            data = json.loads(text)
        except json.JSONDecodeError as error:
            raise PanoramaError(f"panorama model is not valid JSON: {error}") from error
        return cls.from_dict(data)


def _wrap(angle: Float64Array) -> Float64Array:
    """Angles wrapped to ``(-pi, pi]``."""
    return np.asarray(np.pi - np.mod(np.pi - angle, 2 * np.pi), dtype=np.float64)


def _even_down(value: int) -> int:
    return max(2, value - value % 2)


def panorama_size(source_width: float, source_height: float, scale: float = 1.0) -> tuple[int, int]:
    """The panorama's ``(width, height)`` for sources of a size, proportional to the reference.

    The reference rig's two 3856x2180 cameras give the 5700x1669 panorama; other sizes scale each
    dimension by the same ratio (``round(5700 / 3856 * width * scale)``, likewise the height).
    H.264 in 4:2:0 needs even dimensions, so an odd result loses its last pixel: 5700x1669 is
    encoded as 5700x1668 (one row of the stand less), 3072x1728 cameras give 4540x1322.

    Raises:
        PanoramaError: A size or ``scale`` is not positive.
    """
    if not (source_width > 0 and source_height > 0 and scale > 0):
        raise PanoramaError(f"bad source size {source_width}x{source_height} or scale {scale}")
    (ref_w, ref_h), (pano_w, pano_h) = REFERENCE_SOURCE_SIZE, REFERENCE_PANORAMA_SIZE
    width = round(pano_w / ref_w * source_width * scale)
    height = round(pano_h / ref_h * source_height * scale)
    return _even_down(width), _even_down(height)


def _lowest_seen_tan(rig: Rig, center: Float64Array) -> float:
    """The smallest ``tan(elevation)``, seen from ``center``, of the ground along the bottom edge
    of either camera's image (``-inf`` when neither bottom edge sees the ground)."""
    lowest = -math.inf
    values = []
    for camera in (rig.cameras["left"], rig.cameras["right"]):
        width, height = camera.image_size
        edge = np.column_stack([np.linspace(0, width - 1, 65), np.full(65, height - 1.0)])
        ground = image_to_pitch(camera, edge)
        ground = ground[np.isfinite(ground).all(axis=1)]
        distance = np.hypot(ground[:, 0] - center[0], ground[:, 1] - center[1])
        values.append(-center[2] / distance[distance > 0])
    seen = np.concatenate(values)
    return float(seen.min()) if len(seen) else lowest


def panorama_model_from_rig(
    rig: Rig,
    scale: float = 1.0,
    *,
    margin_m: float = 4.0,
    near_margin_m: float = 2.0,
    stand_height_m: float = 6.0,
    far_wall_distance_m: float = 10.0,
) -> PanoramaModel:
    """The panorama covering the rig's pitch, sized from the source images.

    The azimuth range spans the pitch from ``margin_m`` behind the left goal line to ``margin_m``
    behind the right one (the default shows the goals, 2 m deep, whole); the elevation range spans
    from ``near_margin_m`` in front of the near touchline (or the lowest ground the cameras see,
    if higher) to at least ``stand_height_m`` up the far wall, so players on the far touchline
    and the bottom of the stand are in. The size is
    `panorama_size` of the sources (5700x1668 for 3856x2180 cameras); the focal length is the
    largest that fits both ranges in it, so the pitch fills the panorama in one dimension: spare
    columns widen the side margins evenly, spare rows show more of the stand above. Pixels are
    square at the horizon.

    Args:
        rig: The calibrated rig; its "left" and "right" cameras are used.
        scale: Size relative to the default (0.5: half the width and height).
        margin_m: Ground margin behind the goal lines and the far touchline, metres.
        near_margin_m: Ground margin in front of the near touchline, metres. Kept small: the
            cylinder stretches the steep rays down to the near side, which would otherwise take
            many rows for little pitch.
        stand_height_m: Height up the far wall that the top row reaches at least (at the wall's
            far ends; more in the middle, which is nearer), metres.
        far_wall_distance_m: Distance of the far wall behind the far touchline, metres.

    Returns:
        The model.

    Raises:
        PanoramaError: ``scale`` is not positive, or the cameras do not stand above the ground
            beyond the near touchline (``y < 0``), the only placement the range search handles.
    """
    if not scale > 0:
        raise PanoramaError(f"scale must be positive, got {scale}")
    left, right = rig.cameras["left"], rig.cameras["right"]
    center = (left.center + right.center) / 2
    cx, cy, cz = (float(v) for v in center)
    if cz <= 0:
        raise PanoramaError("the cameras must be above the ground")
    length, width = rig.pitch_length_m, rig.pitch_width_m
    if cy >= 0:
        raise PanoramaError("the cameras must stand beyond the near touchline (y < 0)")
    # The near margin stops a metre in front of the cameras: ground behind them is not wanted.
    near_y = max(-near_margin_m, cy + 1.0)
    far_wall_y = width + far_wall_distance_m
    xs = np.linspace(-margin_m, length + margin_m, 721)
    # Outline of the covered ground: near edge, far edge, and both ends.
    ys = np.linspace(near_y, width + margin_m, 241)
    outline = np.concatenate(
        [
            np.stack([xs, np.full_like(xs, near_y)], axis=1),
            np.stack([xs, np.full_like(xs, width + margin_m)], axis=1),
            np.stack([np.full_like(ys, -margin_m), ys], axis=1),
            np.stack([np.full_like(ys, length + margin_m), ys], axis=1),
        ]
    )
    dx, dy = outline[:, 0] - cx, outline[:, 1] - cy
    distance = np.hypot(dx, dy)
    reference = math.atan2(width / 2 - cy, length / 2 - cx)
    relative = _wrap(np.arctan2(dy, dx) - reference)
    az_min, az_max = float(relative.min()), float(relative.max())
    # Lowest row: the steepest ray down to the covered ground; top row: the wall's top edge
    # (``stand_height_m`` high at the far wall) over the pitch's length.
    tan_min = float((-cz / distance).min())
    # ...but no lower than the lowest ground either camera sees: rows below it would be black.
    tan_min = max(tan_min, _lowest_seen_tan(rig, center))
    wall_distance = np.hypot(xs - cx, far_wall_y - cy)
    tan_max = float(((stand_height_m - cz) / wall_distance).max())
    source_width = (left.image_size[0] + right.image_size[0]) / 2
    source_height = (left.image_size[1] + right.image_size[1]) / 2
    pano_width, pano_height = panorama_size(source_width, source_height, scale)
    focal = min(pano_width / (az_max - az_min), pano_height / (tan_max - tan_min))
    # The azimuth range is centred; spare rows go to the top (the stand, seen by the cameras),
    # not below the lowest ground the cameras see.
    tan_max = tan_min + pano_height / focal
    return PanoramaModel(
        width=pano_width,
        height=pano_height,
        center=(cx, cy, cz),
        heading_rad=float(reference + (az_min + az_max) / 2),
        focal_px=focal,
        cu=(pano_width - 1) / 2,
        # Row -0.5 (the top edge) is tan_max, row H - 0.5 (the bottom edge) tan_min.
        cv=(pano_height - 1) / 2 + focal * (tan_max + tan_min) / 2,
        far_wall_y_m=far_wall_y,
        pitch_length_m=length,
        pitch_width_m=width,
    )


def _rays(model: PanoramaModel, u: Float64Array, v: Float64Array) -> Float64Array:
    """Rays ``(cos az, sin az, tan e)`` (unit horizontal part) of columns ``u`` x rows ``v``."""
    az = model.heading_rad - (u - model.cu) / model.focal_px
    tan_e = (model.cv - v) / model.focal_px
    rays = np.empty((len(v), len(u), 3), np.float64)
    rays[..., 0] = np.cos(az)[None, :]
    rays[..., 1] = np.sin(az)[None, :]
    rays[..., 2] = tan_e[:, None]
    return rays


def panorama_rays(model: PanoramaModel) -> Float64Array:
    """World directions of every panorama pixel's ray, unit length, ``[H, W, 3]``.

    The rays start at ``model.center``.
    """
    u = np.arange(model.width, dtype=np.float64)
    v = np.arange(model.height, dtype=np.float64)
    rays = _rays(model, u, v)
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    return rays


def _surface_points(model: PanoramaModel, rays: Float64Array) -> Float64Array:
    """Where rays from the virtual centre meet the stitch surface (ground, far wall, far away)."""
    _, cy, cz = model.center
    with np.errstate(divide="ignore", invalid="ignore"):
        to_ground = np.where(rays[..., 2] < 0, -cz / rays[..., 2], np.inf)
        to_wall = np.where(rays[..., 1] > 0, (model.far_wall_y_m - cy) / rays[..., 1], np.inf)
    # The first surface the ray meets; the floor ends where the wall starts, so this is
    # continuous across the crease and the maps have no tear there.
    distance = np.minimum(np.minimum(to_ground, to_wall), _FAR_DISTANCE_M)
    return np.asarray(np.asarray(model.center) + distance[..., None] * rays, dtype=np.float64)


def panorama_to_pitch(
    model: PanoramaModel, pixels: npt.ArrayLike, height_m: float = 0.0
) -> Float64Array:
    """Where the rays through panorama pixels meet the ground (or the plane ``z = height_m``).

    Args:
        model: The panorama.
        pixels: ``[N, 2]`` panorama pixel coordinates ``(u, v)``.
        height_m: Height of the horizontal plane the rays are cut with (0: the ground; a
            person's height for the top of their box).

    Returns:
        ``[N, 2]`` pitch coordinates ``(x, y)`` in metres; NaN where the ray never meets the
        plane in front of the camera.
    """
    pts = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
    az = model.heading_rad - (pts[:, 0] - model.cu) / model.focal_px
    tan_e = (model.cv - pts[:, 1]) / model.focal_px
    drop = height_m - model.center[2]
    with np.errstate(divide="ignore", invalid="ignore"):
        distance = np.where(tan_e * drop > 0, drop / tan_e, np.nan)
    return np.stack(
        [model.center[0] + distance * np.cos(az), model.center[1] + distance * np.sin(az)], axis=1
    )


def pitch_to_panorama(model: PanoramaModel, points: npt.ArrayLike) -> Float64Array:
    """Panorama pixel coordinates of pitch-frame points.

    Args:
        model: The panorama.
        points: ``[N, 3]`` points in the pitch frame (metres), or ``[N, 2]`` ground points.

    Returns:
        ``[N, 2]`` pixel coordinates ``(u, v)`` (may lie outside the image); NaN for points
        straight above or below the virtual centre, whose azimuth is undefined.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim == 2 and pts.shape[1] == 2:
        pts = np.concatenate([pts, np.zeros((len(pts), 1))], axis=1)
    pts = pts.reshape(-1, 3)
    d = pts - np.asarray(model.center)
    horizontal = np.hypot(d[:, 0], d[:, 1])
    with np.errstate(divide="ignore", invalid="ignore"):
        tan_e = np.where(horizontal > 1e-9, d[:, 2] / horizontal, np.nan)
    az = np.arctan2(d[:, 1], d[:, 0])
    u = model.cu + model.focal_px * _wrap(model.heading_rad - az)
    v = model.cv - model.focal_px * tan_e
    return np.stack([np.where(np.isnan(tan_e), np.nan, u), v], axis=1)


def pitch_outline(model: PanoramaModel, margin_m: float, samples: int = 40) -> Float64Array:
    """``[N, 2]`` pitch coordinates (metres) around the pitch plus ``margin_m``, in order.

    ``samples`` points along each touchline, half as many along each goal line.
    """
    length, width = model.pitch_length_m, model.pitch_width_m
    xs = np.linspace(-margin_m, length + margin_m, samples)
    ys = np.linspace(-margin_m, width + margin_m, samples // 2)
    return np.concatenate(
        [
            np.column_stack([xs, np.full_like(xs, -margin_m)]),
            np.column_stack([np.full_like(ys, length + margin_m), ys]),
            np.column_stack([xs[::-1], np.full_like(xs, width + margin_m)]),
            np.column_stack([np.full_like(ys, -margin_m), ys[::-1]]),
        ]
    )


def pitch_polygon(model: PanoramaModel, margin_m: float = 3.0) -> list[tuple[float, float]]:
    """The pitch outline plus ``margin_m``, at ground and head height, in panorama pixels.

    The convex hull of both rings, clipped to the image: where detection is worth running.
    """
    outline = pitch_outline(model, margin_m)
    rings = [
        pitch_to_panorama(model, np.column_stack([outline, np.full(len(outline), z)]))
        for z in (0.0, 2.2)
    ]
    points = np.concatenate(rings)
    points = points[np.isfinite(points).all(axis=1)]
    points[:, 0] = np.clip(points[:, 0], 0, model.width - 1)
    points[:, 1] = np.clip(points[:, 1], 0, model.height - 1)
    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2)
    return [(float(x), float(y)) for x, y in hull]


def player_region_mask(
    model: PanoramaModel, margin_m: float = 3.0, height_m: float = 2.2, samples: int = 80
) -> npt.NDArray[np.bool_]:
    """``[H, W]`` True where a person standing on the pitch (plus ``margin_m``) can be seen.

    The region the outline sweeps from the grass up to ``height_m``: the ground ring, the ring
    at head height and the band between them along every side. Unlike `pitch_polygon`'s convex
    hull it follows a curved far touchline, so the stands above it are not in it.
    """
    outline = pitch_outline(model, margin_m, samples)
    ground = pitch_to_panorama(model, np.column_stack([outline, np.zeros(len(outline))]))
    head = pitch_to_panorama(model, np.column_stack([outline, np.full(len(outline), height_m)]))
    mask = np.zeros((model.height, model.width), np.uint8)
    seen = np.asarray(np.isfinite(ground).all(axis=1) & np.isfinite(head).all(axis=1), np.bool_)
    # 4 fractional bits: the projected outline is sub-pixel.
    fixed = [np.round(ring * 16).astype(np.int32) for ring in (ground, head)]
    for ring in fixed:
        if seen.sum() >= 3:
            cv2.fillPoly(mask, [ring[seen].reshape(-1, 1, 2)], 1, shift=4)
    count = len(outline)
    for i in range(count):
        j = (i + 1) % count
        if seen[i] and seen[j]:
            quad = np.stack([fixed[0][i], fixed[0][j], fixed[1][j], fixed[1][i]])
            cv2.fillConvexPoly(mask, quad.reshape(-1, 1, 2), 1, shift=4)
    return mask.astype(bool)
