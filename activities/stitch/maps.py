"""The stitch's lookup table: where every panorama pixel samples each camera.

Built once per rig and panorama (`build_stitch_maps`, in the stage's ``prepare`` step), stored as
one compressed object next to the panorama model (`StitchMaps.to_bytes`), and loaded by every
chunk. Each camera's table covers the whole panorama in OpenCV's fixed-point remap format
(``cv2.convertMaps(..., cv2.CV_16SC2)``):

* ``map1`` ``int16 [H, W, 2]``: the integer source pixel ``(x, y)`` (the top-left of the bilinear
  2x2 footprint);
* ``map2`` ``uint16 [H, W]``: the fraction, ``32 * fy + fx`` in 1/32 pixels (an index into
  OpenCV's bilinear table);
* ``(-16, -16)`` in ``map1`` (and 0 in ``map2``) where the camera does not see the panorama pixel:
  far enough outside the image that ``cv2.remap`` with a constant border paints it black. A
  pixel is seen by a camera exactly where ``map1`` has ``x >= 0`` and ``y >= 0``.

The panorama's rays are cast onto the stitch surface (`activities.stitch.panorama`: the ground,
a far wall, far away) and the surface points projected into each camera with its lens.

Storage. The tables are smooth, so along a row the combined coordinate ``32 * map1 + fraction``
(1/32 pixel units) changes by a few units per pixel: the object stores those row differences
(``int32``, so the jumps at the edge of the seen region fit too), which deflate packs several
times tighter than the tables themselves; loading reverses it exactly.
"""

from __future__ import annotations

import hashlib
import io
import math
import zipfile
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from activities.stitch.panorama import (
    PanoramaModel,
    _rays,
    _surface_points,
    _wrap,
)
from polyvision.geometry import CameraModel, Rig, project

Float32Array = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]
Int16Array = npt.NDArray[np.int16]
UInt16Array = npt.NDArray[np.uint16]
Int32Array = npt.NDArray[np.int32]

MAPS_VERSION = 1
"""Format of `StitchMaps.to_bytes`; bumped when the stored layout or the maps' meaning changes."""

MAPS_FILE = "stitch-maps.npz"
"""Name of the stored tables inside the revision's stitch folder."""

OUTSIDE_PX = -16
"""``map1`` coordinate of panorama pixels a camera does not see."""

# Rows of the map grid cast and projected at once while building the maps (bounds memory).
_ROW_BLOCK = 64
# Spacing in panorama pixels of the grid the maps are projected on (see `_camera_float_maps`).
_MAP_STEP = 4
# Projections further out than this are clamped: far outside every image, and exact in float32.
_CLAMP_PX = 1.0e5
# OpenCV's fixed-point remap: 1/32 pixel (INTER_BITS = 5).
_SUBPIXELS = 32


class StitchMapsError(ValueError):
    """Stored stitch maps are malformed, of another version, or for another rig or panorama."""


def maps_identity(rig_json: str, model_json: str) -> str:
    """What the stored maps were built from: a digest of the rig, the panorama and the format."""
    digest = hashlib.sha256()
    for part in (f"maps-{MAPS_VERSION}", rig_json, model_json):
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


@dataclass(frozen=True, eq=False)
class StitchMaps:
    """Both cameras' fixed-point maps over the whole panorama (see the module docstring).

    Attributes:
        model: The panorama.
        source_sizes: ``(width, height)`` of the left and right source images.
        left_map1: ``int16 [H, W, 2]`` integer source coordinates in the left image.
        left_map2: ``uint16 [H, W]`` bilinear fraction indices for the left image.
        right_map1: The same for the right image.
        right_map2: The same for the right image.
        anchor_u: The geometric seam: the column midway between the cameras' viewing directions,
            where a seam goes when nothing tells it to go elsewhere.
        identity: `maps_identity` of the rig and panorama they were built from ("" if unknown).
    """

    model: PanoramaModel
    source_sizes: tuple[tuple[int, int], tuple[int, int]]
    left_map1: Int16Array
    left_map2: UInt16Array
    right_map1: Int16Array
    right_map2: UInt16Array
    anchor_u: float
    identity: str = ""

    def __post_init__(self) -> None:
        shape = (self.model.height, self.model.width)
        for name in ("left", "right"):
            map1, map2 = getattr(self, f"{name}_map1"), getattr(self, f"{name}_map2")
            if map1.dtype != np.int16 or map1.shape != (*shape, 2):
                raise StitchMapsError(f"{name}_map1 must be int16 {(*shape, 2)}, got {map1.shape}")
            if map2.dtype != np.uint16 or map2.shape != shape:
                raise StitchMapsError(f"{name}_map2 must be uint16 {shape}, got {map2.shape}")

    @property
    def height(self) -> int:
        return self.model.height

    @property
    def width(self) -> int:
        return self.model.width

    @cached_property
    def valid_left(self) -> BoolArray:
        """``[H, W]`` where the left camera sees the panorama pixel."""
        return _seen(self.left_map1)

    @cached_property
    def valid_right(self) -> BoolArray:
        """``[H, W]`` where the right camera sees the panorama pixel."""
        return _seen(self.right_map1)

    @cached_property
    def overlap(self) -> BoolArray:
        """``[H, W]`` where both cameras see the panorama pixel."""
        return np.asarray(self.valid_left & self.valid_right)

    @cached_property
    def overlap_columns(self) -> tuple[int, int]:
        """``[first, last + 1)`` of the columns where both cameras see some pixel."""
        columns = np.flatnonzero(self.overlap.any(axis=0))
        if len(columns) == 0:
            anchor = min(max(round(self.anchor_u), 0), self.width - 1)
            return anchor, anchor
        return int(columns[0]), int(columns[-1]) + 1

    @property
    def valid(self) -> BoolArray:
        """``[H, W]`` where at least one camera sees the panorama pixel."""
        return np.asarray(self.valid_left | self.valid_right)

    def remap(
        self, camera: str, image: npt.NDArray[np.uint8], columns: slice | None = None
    ) -> npt.NDArray[np.uint8]:
        """Warp one camera's frame into the panorama (or a column range of it), black where the
        camera does not see; ``cv2.remap`` bilinear with the fixed-point maps."""
        map1 = getattr(self, f"{camera}_map1")
        map2 = getattr(self, f"{camera}_map2")
        if columns is not None:
            map1, map2 = (
                np.ascontiguousarray(map1[:, columns]),
                np.ascontiguousarray(map2[:, columns]),
            )
        warped = cv2.remap(image, map1, map2, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
        return np.asarray(warped, dtype=np.uint8)

    def to_bytes(self) -> bytes:
        """The maps as one compressed ``.npz`` object (see the module docstring's storage)."""
        arrays: dict[str, Any] = {
            "version": np.asarray(MAPS_VERSION),
            "model": np.asarray(self.model.to_json()),
            "identity": np.asarray(self.identity),
            "source_sizes": np.asarray(self.source_sizes, dtype=np.int64),
            "anchor_u": np.asarray(self.anchor_u, dtype=np.float64),
        }
        for name in ("left", "right"):
            map1, map2 = getattr(self, f"{name}_map1"), getattr(self, f"{name}_map2")
            arrays[f"{name}_delta"] = _row_deltas(map1, map2)
        # np.savez_compressed's layout, written with a fixed timestamp: the same maps give the
        # same bytes.
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for name, array in arrays.items():
                info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                with archive.open(info, "w", force_zip64=True) as handle:
                    np.lib.format.write_array(handle, np.asanyarray(array), allow_pickle=False)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> StitchMaps:
        """Read `to_bytes`'s object.

        Raises:
            StitchMapsError: The object is not stored maps of this version.
        """
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as stored:
                version = int(stored["version"])
                if version != MAPS_VERSION:
                    raise StitchMapsError(f"stitch maps version {version}, expected {MAPS_VERSION}")
                model = PanoramaModel.from_json(str(stored["model"]))
                sizes = stored["source_sizes"].astype(int).tolist()
                left_map1, left_map2 = _from_row_deltas(stored["left_delta"])
                right_map1, right_map2 = _from_row_deltas(stored["right_delta"])
                return cls(
                    model=model,
                    source_sizes=((sizes[0][0], sizes[0][1]), (sizes[1][0], sizes[1][1])),
                    left_map1=left_map1,
                    left_map2=left_map2,
                    right_map1=right_map1,
                    right_map2=right_map2,
                    anchor_u=float(stored["anchor_u"]),
                    identity=str(stored["identity"]),
                )
        except StitchMapsError:
            raise
        except (
            OSError,
            EOFError,
            zipfile.BadZipFile,
            ValueError,
            KeyError,
            IndexError,
            TypeError,
        ) as error:
            raise StitchMapsError(f"malformed stitch maps: {error!r}") from error


def _seen(map1: Int16Array) -> BoolArray:
    return np.asarray((map1[..., 0] >= 0) & (map1[..., 1] >= 0))


def _row_deltas(map1: Int16Array, map2: UInt16Array) -> Int32Array:
    """``int32 [2, H, W]``: along each row, the differences of the 1/32-pixel coordinates ``x``
    and ``y`` (the first column holds the coordinate itself)."""
    frac = map2.astype(np.int32)
    coords = np.empty((2, *map2.shape), np.int32)
    coords[0] = map1[..., 0].astype(np.int32) * _SUBPIXELS + (frac & (_SUBPIXELS - 1))
    coords[1] = map1[..., 1].astype(np.int32) * _SUBPIXELS + (frac >> 5)
    return np.diff(coords, axis=2, prepend=0).astype(np.int32)


def _from_row_deltas(stored: npt.NDArray[Any]) -> tuple[Int16Array, UInt16Array]:
    if stored.dtype != np.int32 or stored.ndim != 3 or stored.shape[0] != 2:
        raise StitchMapsError(f"stored map deltas have shape {stored.shape} {stored.dtype}")
    coords = np.cumsum(stored, axis=2, dtype=np.int32)
    map1 = np.empty((*coords.shape[1:], 2), np.int16)
    map1[..., 0] = coords[0] >> 5  # an arithmetic shift: floor division, exact for negatives
    map1[..., 1] = coords[1] >> 5
    fx, fy = coords[0] & (_SUBPIXELS - 1), coords[1] & (_SUBPIXELS - 1)
    return map1, (fy * _SUBPIXELS + fx).astype(np.uint16)


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
    outside = np.float32(OUTSIDE_PX)
    return (
        np.where(valid, map_x, outside).astype(np.float32),
        np.where(valid, map_y, outside).astype(np.float32),
        np.asarray(valid, dtype=np.bool_),
    )


def _optical_azimuth(camera: CameraModel) -> float:
    axis = camera.rotation[2]  # the camera's +z (viewing direction) in the pitch frame
    return math.atan2(float(axis[1]), float(axis[0]))


def _fixed_point(map_x: Float32Array, map_y: Float32Array) -> tuple[Int16Array, UInt16Array]:
    map1, map2 = cv2.convertMaps(map_x, map_y, cv2.CV_16SC2)
    return np.asarray(map1, dtype=np.int16), np.asarray(map2, dtype=np.uint16)


def build_stitch_maps(rig: Rig, model: PanoramaModel, identity: str = "") -> StitchMaps:
    """Build both cameras' fixed-point maps over the whole panorama.

    Args:
        rig: The calibrated rig ("left" and "right" cameras).
        model: The panorama, usually from `panorama_model_from_rig`.
        identity: `maps_identity` of the rig and model as stored, recorded with the maps.

    Returns:
        The maps.
    """
    left, right = rig.cameras["left"], rig.cameras["right"]
    tables = []
    for camera in (left, right):
        map_x, map_y, _ = _camera_float_maps(model, camera)
        tables.append(_fixed_point(map_x, map_y))
    seam_az = (_optical_azimuth(left) + _optical_azimuth(right)) / 2
    if abs(_optical_azimuth(left) - _optical_azimuth(right)) > math.pi:
        seam_az += math.pi
    anchor_u = model.cu + model.focal_px * float(_wrap(np.asarray(model.heading_rad - seam_az)))
    return StitchMaps(
        model=model,
        source_sizes=(left.image_size, right.image_size),
        left_map1=tables[0][0],
        left_map2=tables[0][1],
        right_map1=tables[1][0],
        right_map2=tables[1][1],
        anchor_u=anchor_u,
        identity=identity,
    )
