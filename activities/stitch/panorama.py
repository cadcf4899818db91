"""The panorama of the two-camera rig: a virtual cylindrical camera and the maps that fill it.

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
parallax between the two cameras; it only matters inside the narrow blend band at the seam. For
the synthetic rig (cameras 2 m apart, 13 m up) the head of a player on the halfway line shows
twice, about 0.3 m apart on the ground, ~7 px in a panorama from 1920-pixel sources; the feet
coincide.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

import native
from polyvision.geometry import CameraModel, Rig, project

Float32Array = npt.NDArray[np.float32]
Float64Array = npt.NDArray[np.float64]
UInt8Array = npt.NDArray[np.uint8]
BoolArray = npt.NDArray[np.bool_]

PANORAMA_VERSION = 1

# Width of the panorama relative to one source image at scale 1: the two images overlap, and the
# cylinder spends fewer pixels per degree than the sources' centres, so a little under twice the
# source width keeps the pitch at about the sources' resolution.
_WIDTH_FACTOR = 1.9
# Distance along a ray used for rays that meet neither the ground nor the wall: far enough that
# the 2 m between the real cameras shifts it by well under a pixel.
_FAR_DISTANCE_M = 1.0e4
# Map value of panorama pixels a camera does not see: outside the image by more than the bilinear
# footprint, so cv2.remap's constant border paints them black.
_OUTSIDE_PX = -16.0
# Rows of the map grid cast and projected at once while building the maps (bounds memory).
_ROW_BLOCK = 64
# Spacing in panorama pixels of the grid the maps are projected on (see `_camera_float_maps`).
_MAP_STEP = 4
# Projections further out than this are clamped: far outside every image, and exact in float32.
_CLAMP_PX = 1.0e5


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


def _even(value: float) -> int:
    return max(2, 2 * round(value / 2))


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
    from ``near_margin_m`` in front of the near touchline to at least ``stand_height_m`` up the far
    wall, so players on the far touchline and the bottom of the stand are in. The width is
    ``1.9 * scale`` times the source width and the height follows from the same focal length, so
    pixels are square at the horizon.

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
    wall_distance = np.hypot(xs - cx, far_wall_y - cy)
    tan_max = float(((stand_height_m - cz) / wall_distance).max())
    source_width = (left.image_size[0] + right.image_size[0]) / 2
    pano_width = _even(_WIDTH_FACTOR * source_width * scale)
    focal = pano_width / (az_max - az_min)
    pano_height = _even(focal * (tan_max - tan_min))
    return PanoramaModel(
        width=pano_width,
        height=pano_height,
        center=(cx, cy, cz),
        heading_rad=float(reference + (az_min + az_max) / 2),
        focal_px=focal,
        cu=(pano_width - 1) / 2,
        # Row -0.5 (the top edge) is tan_max; the height was rounded, so centre the range.
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


def panorama_to_pitch(model: PanoramaModel, pixels: npt.ArrayLike) -> Float64Array:
    """Where the rays through panorama pixels meet the ground (``z = 0``).

    Args:
        model: The panorama.
        pixels: ``[N, 2]`` panorama pixel coordinates ``(u, v)``.

    Returns:
        ``[N, 2]`` pitch coordinates ``(x, y)`` in metres; NaN at or above the horizon.
    """
    pts = np.asarray(pixels, dtype=np.float64).reshape(-1, 2)
    az = model.heading_rad - (pts[:, 0] - model.cu) / model.focal_px
    tan_e = (model.cv - pts[:, 1]) / model.focal_px
    with np.errstate(divide="ignore", invalid="ignore"):
        distance = np.where(tan_e < 0, -model.center[2] / tan_e, np.nan)
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


def pitch_polygon(model: PanoramaModel, margin_m: float = 3.0) -> list[tuple[float, float]]:
    """The pitch outline plus ``margin_m``, at ground and head height, in panorama pixels.

    The convex hull of both rings, clipped to the image: where detection is worth running.
    """
    length, width = model.pitch_length_m, model.pitch_width_m
    xs = np.linspace(-margin_m, length + margin_m, 40)
    ys = np.linspace(-margin_m, width + margin_m, 20)
    outline = np.concatenate(
        [
            np.column_stack([xs, np.full_like(xs, -margin_m)]),
            np.column_stack([np.full_like(ys, length + margin_m), ys]),
            np.column_stack([xs[::-1], np.full_like(xs, width + margin_m)]),
            np.column_stack([np.full_like(ys, -margin_m), ys[::-1]]),
        ]
    )
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


@dataclass(frozen=True, eq=False)
class CameraMaps:
    """One source camera's fixed-point remap maps for a column range of the panorama.

    Attributes:
        map1: ``[H, w, 2]`` int16 integer source coordinates (``cv2.convertMaps``'s CV_16SC2).
        map2: ``[H, w]`` uint16 indices into OpenCV's bilinear interpolation table.
    """

    map1: npt.NDArray[np.int16]
    map2: npt.NDArray[np.uint16]

    def remap(self, image: UInt8Array, out: UInt8Array | None = None) -> UInt8Array:
        """Warp a source image into this column range (black where the camera does not see).

        Args:
            image: The source frame.
            out: Where to write the ``[H, w, 3]`` result, e.g. a column slice of the panorama
                (OpenCV writes through the strided view, which saves a copy); ``None``: a new
                array.
        """
        warped = cv2.remap(
            image,
            self.map1,
            self.map2,
            cv2.INTER_LINEAR,
            dst=out,
            borderMode=cv2.BORDER_CONSTANT,
        )
        return np.asarray(warped, dtype=np.uint8)


@dataclass(frozen=True, eq=False)
class StitchMaps:
    """Everything `stitch_frame` needs, built once per rig and panorama by `build_stitch_maps`.

    The panorama splits into three column ranges: ``[0, band_start)`` comes from the left camera
    alone, ``[band_end, W)`` from the right camera alone, and the band between them is warped from
    both and feathered. Warping only what each camera contributes saves about half the remap
    work of two full-panorama warps (the sources overlap only around the halfway line).

    Attributes:
        model: The panorama.
        source_sizes: ``(width, height)`` of the left and right source images.
        band_start: First column warped from both cameras.
        band_end: One past the last column warped from both cameras.
        left_only: Left camera maps of columns ``[0, band_start)``.
        right_only: Right camera maps of columns ``[band_end, W)``.
        left_band: Left camera maps of the band.
        right_band: Right camera maps of the band.
        band_weight: ``[H, band_end - band_start]`` float32 weight of the left image in the band.
        weight: ``[H, W]`` float32 weight of the left image over the whole panorama: 1 where only
            the left camera sees, 0 where only the right one does (and where neither does), a
            ramp across the seam in between.
        valid_left: ``[H, W]`` where the left camera sees the panorama pixel.
        valid_right: ``[H, W]`` where the right camera sees it.
        seam_u: Column of the seam (midway between the cameras' viewing directions).
    """

    model: PanoramaModel
    source_sizes: tuple[tuple[int, int], tuple[int, int]]
    band_start: int
    band_end: int
    left_only: CameraMaps
    right_only: CameraMaps
    left_band: CameraMaps
    right_band: CameraMaps
    band_weight: Float32Array
    weight: Float32Array
    valid_left: BoolArray
    valid_right: BoolArray
    seam_u: float

    @property
    def valid(self) -> BoolArray:
        """``[H, W]`` where at least one camera sees the panorama pixel."""
        return np.asarray(self.valid_left | self.valid_right)


def _camera_float_maps(
    model: PanoramaModel, camera: CameraModel
) -> tuple[Float32Array, Float32Array, BoolArray]:
    """Float source coordinates of every panorama pixel in one camera, and where they are valid.

    The surface points are projected on a grid every `_MAP_STEP` pixels and the coordinates
    interpolated bilinearly by ``cv2.resize`` (an integer ratio, so its sample positions fall
    exactly on the pixel centres, and float32 resize uses exact weights): projecting every pixel
    of a 4K panorama takes ~15 s, the grid ~1 s, and the maps are so smooth that interpolation
    moves a coordinate by a few thousandths of a pixel (tests bound it).
    """
    k = _MAP_STEP
    pad = 2 * k  # extra pixels on every side, cropped after resizing (resize clamps its edges)
    coarse_w = -(-(model.width + 2 * pad) // k)
    coarse_h = -(-(model.height + 2 * pad) // k)
    # Coarse sample i sits at extended pixel k*i + (k-1)/2, where cv2.resize assumes it.
    u = k * np.arange(coarse_w, dtype=np.float64) + (k - 1) / 2 - pad
    v = k * np.arange(coarse_h, dtype=np.float64) + (k - 1) / 2 - pad
    coarse = np.empty((coarse_h, coarse_w, 3), np.float32)
    for start in range(0, coarse_h, _ROW_BLOCK):
        rows = v[start : start + _ROW_BLOCK]
        points = _surface_points(model, _rays(model, u, rows))
        pixels, in_front = project(camera, points.reshape(-1, 3))
        # Clamp far-off projections so float32 keeps precision where it matters; behind the
        # camera the coordinates mean nothing and the in-front channel rules them out.
        pixels = np.clip(pixels, -_CLAMP_PX, _CLAMP_PX)
        block = coarse[start : start + len(rows)]
        block[..., :2] = pixels.reshape(len(rows), coarse_w, 2)
        block[..., 2] = in_front.reshape(len(rows), coarse_w)
    fine = cv2.resize(coarse, (coarse_w * k, coarse_h * k), interpolation=cv2.INTER_LINEAR)
    fine = fine[pad : pad + model.height, pad : pad + model.width]
    map_x, map_y = fine[..., 0], fine[..., 1]
    width, height = camera.image_size
    # Trusted only where every grid sample around the pixel is in front of the camera (the
    # interpolated flag is then exactly 1), and inside the image with pixel centres at integers:
    # beyond the outermost centres bilinear sampling would mix in the black border.
    valid = (
        (fine[..., 2] > 1 - 1e-6)
        & (map_x >= 0)
        & (map_x <= width - 1)
        & (map_y >= 0)
        & (map_y <= height - 1)
    )
    outside = np.float32(_OUTSIDE_PX)
    return (
        np.where(valid, map_x, outside).astype(np.float32),
        np.where(valid, map_y, outside).astype(np.float32),
        np.asarray(valid, dtype=np.bool_),
    )


def _optical_azimuth(camera: CameraModel) -> float:
    axis = camera.rotation[2]  # the camera's +z (viewing direction) in the pitch frame
    return math.atan2(float(axis[1]), float(axis[0]))


def _seam_weight(
    valid_left: BoolArray, valid_right: BoolArray, seam_u: float, half_width: float
) -> Float32Array:
    """Weight of the left image: a linear ramp across the seam, confined to the overlap.

    Row by row, the ramp (``2 * half_width`` wide, centred on ``seam_u``) is narrowed and shifted
    so that it lies inside the run of columns both cameras see, so the weight goes from 1 (left
    only) to 0 (right only) without a jump, monotonically, wherever the overlap allows it.
    """
    height, width = valid_left.shape
    both = valid_left & valid_right
    u = np.arange(width, dtype=np.float64)
    weight = np.empty((height, width), np.float32)
    for row in range(height):
        columns = np.flatnonzero(both[row])
        centre, half = seam_u, 0.5
        if len(columns):
            # Runs of consecutive columns seen by both; take the one nearest the seam.
            breaks = np.flatnonzero(np.diff(columns) > 1)
            starts = np.concatenate([columns[:1], columns[breaks + 1]])
            ends = np.concatenate([columns[breaks], columns[-1:]])
            gaps = np.maximum(np.maximum(starts - seam_u, seam_u - ends), 0)
            nearest = int(np.argmin(gaps))
            first, last = float(starts[nearest]), float(ends[nearest])
            half = max(0.5, min(half_width, (last - first) / 2))
            centre = min(max(seam_u, first + half), last - half) if last - first >= 1 else first
        weight[row] = np.clip((centre + half - u) / (2 * half), 0.0, 1.0)
    weight[valid_left & ~valid_right] = 1.0
    weight[valid_right & ~valid_left] = 0.0
    weight[~valid_left & ~valid_right] = 0.0
    return weight


def _fixed_point(map_x: Float32Array, map_y: Float32Array, columns: slice) -> CameraMaps:
    map1, map2 = cv2.convertMaps(
        np.ascontiguousarray(map_x[:, columns]),
        np.ascontiguousarray(map_y[:, columns]),
        cv2.CV_16SC2,
    )
    return CameraMaps(map1=np.asarray(map1, dtype=np.int16), map2=np.asarray(map2, dtype=np.uint16))


def build_stitch_maps(
    rig: Rig, model: PanoramaModel, *, blend_width_px: float | None = None
) -> StitchMaps:
    """Build the remap maps, validity masks and feather weights of the stitch.

    Every panorama ray is cast onto the stitch surface (ground plane, far wall; see the module
    docstring) and the surface point projected into each real camera with its lens distortion.

    Args:
        rig: The calibrated rig ("left" and "right" cameras).
        model: The panorama, usually from `panorama_model_from_rig`.
        blend_width_px: Width of the feather ramp across the seam; ``None``: 2 % of the
            panorama's width. The ramp narrows where the overlap is narrower. A narrow ramp
            limits the double images of players (parallax); a wide one hides exposure steps.

    Returns:
        The maps.
    """
    left, right = rig.cameras["left"], rig.cameras["right"]
    left_x, left_y, valid_left = _camera_float_maps(model, left)
    right_x, right_y, valid_right = _camera_float_maps(model, right)
    seam_az = (_optical_azimuth(left) + _optical_azimuth(right)) / 2
    if abs(_optical_azimuth(left) - _optical_azimuth(right)) > math.pi:
        seam_az += math.pi
    seam_u = model.cu + model.focal_px * float(_wrap(np.asarray(model.heading_rad - seam_az)))
    width = 0.02 * model.width if blend_width_px is None else blend_width_px
    weight = _seam_weight(valid_left, valid_right, seam_u, max(0.5, width / 2))
    # The band: from the first column the right camera contributes to, to the last column the
    # left one contributes to; outside it one warp fills the panorama.
    right_used = np.flatnonzero((valid_right & (weight < 1)).any(axis=0))
    left_used = np.flatnonzero((valid_left & (weight > 0)).any(axis=0))
    band_start = int(right_used[0]) if len(right_used) else model.width
    band_end = int(left_used[-1]) + 1 if len(left_used) else 0
    band_end = max(band_end, band_start)
    left_cols, band, right_cols = (
        slice(0, band_start),
        slice(band_start, band_end),
        slice(band_end, model.width),
    )
    return StitchMaps(
        model=model,
        source_sizes=(left.image_size, right.image_size),
        band_start=band_start,
        band_end=band_end,
        left_only=_fixed_point(left_x, left_y, left_cols),
        right_only=_fixed_point(right_x, right_y, right_cols),
        left_band=_fixed_point(left_x, left_y, band),
        right_band=_fixed_point(right_x, right_y, band),
        band_weight=np.ascontiguousarray(weight[:, band]),
        weight=weight,
        valid_left=valid_left,
        valid_right=valid_right,
        seam_u=seam_u,
    )


def stitch_frame(left_bgr: UInt8Array, right_bgr: UInt8Array, maps: StitchMaps) -> UInt8Array:
    """Stitch one pair of synchronised frames into the panorama.

    Args:
        left_bgr: ``[h, w, 3]`` uint8 frame of the left camera.
        right_bgr: ``[h, w, 3]`` uint8 frame of the right camera.
        maps: From `build_stitch_maps` for the same rig.

    Returns:
        ``[H, W, 3]`` uint8 panorama; black where neither camera sees.

    Raises:
        ValueError: A frame's size is not its camera's.
    """
    for name, frame, (w, h) in zip(
        ("left", "right"), (left_bgr, right_bgr), maps.source_sizes, strict=True
    ):
        if frame.shape != (h, w, 3):
            raise ValueError(f"{name} frame is {frame.shape}, expected {(h, w, 3)}")
    model = maps.model
    out = np.empty((model.height, model.width, 3), np.uint8)
    if maps.band_start > 0:
        maps.left_only.remap(left_bgr, out[:, : maps.band_start])
    if maps.band_end < model.width:
        maps.right_only.remap(right_bgr, out[:, maps.band_end :])
    if maps.band_end > maps.band_start:
        out[:, maps.band_start : maps.band_end] = native.feather_blend(
            maps.left_band.remap(left_bgr), maps.right_band.remap(right_bgr), maps.band_weight
        )
    return out
