"""On-disk formats of the synthetic ground truth and of a processed match's exported results.

Ground truth, one directory per match (written by the synthetic-match generator):

* ``truth.parquet``: one row per object per frame. Columns ``frame: int32``, ``id: int16``
  (the ball is id 0), ``team: string`` (home/away/referee/ball), ``role: string``
  (goalkeeper/outfield/referee/ball), ``x_m, y_m, z_m: float32`` in the pitch frame of
  `synth.types` and, per camera ``c`` (``left``, ``right``, later maybe others),
  ``{c}_x1, {c}_y1, {c}_x2, {c}_y2: float32`` (image box, pixels, ``x2 > x1``) and
  ``{c}_visible: bool``. Optional ``in_play: bool`` (read from the ball's rows). Extra columns
  are ignored.
* ``match.json``: at least ``{"fps": float, "frames": int, "size": [w, h], "seed": int}``.

Results, one directory per processed match (exported by the pipeline); every file is optional:

* ``detections.parquet``: ``frame: int32``, ``space: string`` (the image the boxes are in:
  ``left``, ``right``, later ``panorama``), ``class_id: int16`` (COCO: 0 person, 32 ball),
  ``score: float32``, ``x1, y1, x2, y2: float32`` pixels.
* ``tracks.parquet``: ``frame: int32``, ``track_id: int32``, ``team: string`` nullable
  (home/away/referee/unknown; null reads as unknown), optional ``role: string`` nullable
  (outfield/goalkeeper/referee/unknown, the truth's role names; null or a missing column read as
  unknown, so files written before tracks had roles still load), ``x_m, y_m: float32`` pitch
  positions of tracked people.
* ``vcam.parquet``: ``frame: int32`` and the virtual camera's view of the ground plane as a quad,
  ``x0_m, y0_m, ..., x3_m, y3_m: float32``, corners in order around the quad (either direction).
* ``ball.parquet``: the ball's track, one row per frame: ``frame: int32``, ``x_m, y_m: float32``
  (pitch metres of the grass under the ball's centre, NaN when not visible), ``z_m: float32``
  (the centre's height above the grass), ``visible: bool`` (a position is reported, seen or
  bridged), ``in_play: bool``. A frame without a row reports no ball.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from polyvision.roles import UNKNOWN

TRUTH_FILE = "truth.parquet"
MATCH_FILE = "match.json"
DETECTIONS_FILE = "detections.parquet"
TRACKS_FILE = "tracks.parquet"
VCAM_FILE = "vcam.parquet"
BALL_FILE = "ball.parquet"

PERSON_CLASS = 0
BALL_CLASS = 32
UNKNOWN_TEAM = UNKNOWN
UNKNOWN_ROLE = UNKNOWN

_TRUTH_REQUIRED = ("frame", "id", "team", "role", "x_m", "y_m", "z_m")
_BOX_SUFFIXES = ("x1", "y1", "x2", "y2")

DETECTIONS_SCHEMA = pa.schema(
    [
        ("frame", pa.int32()),
        ("space", pa.string()),
        ("class_id", pa.int16()),
        ("score", pa.float32()),
        ("x1", pa.float32()),
        ("y1", pa.float32()),
        ("x2", pa.float32()),
        ("y2", pa.float32()),
    ]
)
TRACKS_SCHEMA = pa.schema(
    [
        ("frame", pa.int32()),
        ("track_id", pa.int32()),
        ("team", pa.string()),
        ("role", pa.string()),
        ("x_m", pa.float32()),
        ("y_m", pa.float32()),
    ]
)
# `role` came later and is optional on read.
_TRACKS_REQUIRED = tuple(name for name in TRACKS_SCHEMA.names if name != "role")
VCAM_SCHEMA = pa.schema(
    [("frame", pa.int32())]
    + [(f"{axis}{corner}_m", pa.float32()) for corner in range(4) for axis in ("x", "y")]
)

BALL_SCHEMA = pa.schema(
    [
        ("frame", pa.int32()),
        ("x_m", pa.float32()),
        ("y_m", pa.float32()),
        ("z_m", pa.float32()),
        ("visible", pa.bool_()),
        ("in_play", pa.bool_()),
    ]
)

Int32Array = npt.NDArray[np.int32]
Float32Array = npt.NDArray[np.float32]
BoolArray = npt.NDArray[np.bool_]
StrArray = npt.NDArray[np.str_]


class FormatError(ValueError):
    """A truth or results file does not have the columns or shapes this module expects."""


def _same_length(name: str, length: int, **arrays: npt.NDArray[Any]) -> None:
    for key, array in arrays.items():
        if array.shape[0] != length:
            raise FormatError(f"{name}.{key} has {array.shape[0]} rows, expected {length}")


@dataclass
class Truth:
    """The ground truth of one synthetic match; row ``i`` of every array is one object at one frame.

    Attributes:
        fps: Frames per second.
        frames: Number of frames in the clip.
        size: Camera image size ``(width, height)`` in pixels.
        seed: The seed the match was generated with.
        frame: ``[N]`` frame index.
        id: ``[N]`` object identity (the ball is 0).
        team: ``[N]`` home/away/referee/ball.
        role: ``[N]`` goalkeeper/outfield/referee/ball.
        position: ``[N, 3]`` pitch metres.
        boxes: Per camera name, ``[N, 4]`` image boxes ``x1, y1, x2, y2``.
        visible: Per camera name, ``[N]`` whether the object is visible in that camera.
        in_play: ``[N]`` whether the ball is in play at that row's frame (all true when the
            truth has no ``in_play`` column).
        meta: The whole ``match.json``.
    """

    fps: float
    frames: int
    size: tuple[int, int]
    seed: int
    frame: Int32Array
    id: npt.NDArray[np.int16]
    team: StrArray
    role: StrArray
    position: Float32Array
    boxes: dict[str, Float32Array] = field(default_factory=dict)
    visible: dict[str, BoolArray] = field(default_factory=dict)
    in_play: BoolArray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = self.frame.shape[0]
        _same_length("truth", n, id=self.id, team=self.team, role=self.role, pos=self.position)
        if self.position.shape != (n, 3):
            raise FormatError("truth position must be [N, 3]")
        if set(self.boxes) != set(self.visible):
            raise FormatError("truth boxes and visible must name the same cameras")
        for camera, boxes in self.boxes.items():
            if boxes.shape != (n, 4) or self.visible[camera].shape != (n,):
                raise FormatError(f"truth camera {camera!r}: boxes must be [N, 4], visible [N]")
        if self.in_play is None:
            self.in_play = np.ones(n, dtype=np.bool_)
        _same_length("truth", n, in_play=self.in_play)

    @property
    def cameras(self) -> list[str]:
        """Camera names that have boxes in the truth, sorted."""
        return sorted(self.boxes)

    @property
    def is_person(self) -> BoolArray:
        """Rows that are people (players and referees)."""
        return np.isin(self.team, ["home", "away", "referee"])

    @property
    def is_ball(self) -> BoolArray:
        """Rows that are the ball."""
        return np.asarray(self.team == "ball", dtype=np.bool_)


@dataclass
class Detections:
    """Exported detections; row ``i`` is one box.

    Attributes:
        frame: ``[N]`` frame index.
        space: ``[N]`` image space the box is in (``left``, ``right``, ``panorama``).
        class_id: ``[N]`` COCO class (0 person, 32 ball).
        score: ``[N]`` confidence.
        boxes: ``[N, 4]`` ``x1, y1, x2, y2`` pixels.
    """

    frame: Int32Array
    space: StrArray
    class_id: npt.NDArray[np.int16]
    score: Float32Array
    boxes: Float32Array

    def __post_init__(self) -> None:
        n = self.frame.shape[0]
        _same_length("detections", n, space=self.space, cls=self.class_id, score=self.score)
        if self.boxes.shape != (n, 4):
            raise FormatError("detections boxes must be [N, 4]")


@dataclass
class Tracks:
    """Exported pitch tracks of people; row ``i`` is one track at one frame.

    Attributes:
        frame: ``[N]`` frame index.
        track_id: ``[N]`` track identity.
        team: ``[N]`` home/away/referee/unknown.
        position: ``[N, 2]`` pitch metres ``x, y``.
        role: ``[N]`` outfield/goalkeeper/referee/unknown (all unknown when not given, as for
            results exported before tracks had roles).
    """

    frame: Int32Array
    track_id: Int32Array
    team: StrArray
    position: Float32Array
    role: StrArray | None = None

    def __post_init__(self) -> None:
        n = self.frame.shape[0]
        if self.role is None:
            self.role = np.full(n, UNKNOWN_ROLE)  # dtype from the value: np.str_ would be <U1
        _same_length("tracks", n, track_id=self.track_id, team=self.team, role=self.role)
        if self.position.shape != (n, 2):
            raise FormatError("tracks position must be [N, 2]")


@dataclass
class VcamQuads:
    """The virtual camera's view of the ground plane, one quad per frame.

    Attributes:
        frame: ``[M]`` frame index.
        quad: ``[M, 4, 2]`` pitch metres, corners in order around the quad.
    """

    frame: Int32Array
    quad: Float32Array

    def __post_init__(self) -> None:
        if self.quad.shape != (self.frame.shape[0], 4, 2):
            raise FormatError("vcam quad must be [M, 4, 2]")


@dataclass
class BallResults:
    """The exported ball track; row ``i`` is one frame.

    Attributes:
        frame: ``[N]`` frame index.
        position: ``[N, 3]`` pitch metres ``x, y`` of the grass under the ball and its height
            ``z``; NaN where not visible.
        visible: ``[N]`` a position is reported (seen, or bridged through an occlusion).
        in_play: ``[N]`` the ball is in play.
    """

    frame: Int32Array
    position: Float32Array
    visible: BoolArray
    in_play: BoolArray

    def __post_init__(self) -> None:
        n = self.frame.shape[0]
        _same_length("ball", n, visible=self.visible, in_play=self.in_play)
        if self.position.shape != (n, 3):
            raise FormatError("ball position must be [N, 3]")

    @property
    def reported(self) -> BoolArray:
        """Frames where a ball in play is reported (what is scored)."""
        return np.asarray(self.visible & self.in_play, dtype=np.bool_)


@dataclass
class Results:
    """A processed match's exported results; a part is None when its file is missing."""

    detections: Detections | None = None
    tracks: Tracks | None = None
    vcam: VcamQuads | None = None
    ball: BallResults | None = None


def _require(table: pa.Table, columns: list[str] | tuple[str, ...], path: Path) -> None:
    missing = [c for c in columns if c not in table.column_names]
    if missing:
        raise FormatError(f"{path}: missing columns {missing}")


def _col(table: pa.Table, name: str, dtype: npt.DTypeLike) -> npt.NDArray[Any]:
    return np.asarray(table.column(name).to_numpy(zero_copy_only=False), dtype=dtype)


def _str_col(table: pa.Table, name: str, null: str) -> StrArray:
    # Nullable strings come back as objects with None; map None to the stated default.
    values = table.column(name).fill_null(null).to_pylist()
    return np.asarray(values, dtype=np.str_) if values else np.zeros(0, dtype=np.str_)


def _stack(table: pa.Table, columns: list[str]) -> Float32Array:
    if not columns:
        return np.zeros((table.num_rows, 0), dtype=np.float32)
    return np.stack([_col(table, c, np.float32) for c in columns], axis=1)


def load_truth(directory: Path) -> Truth:
    """Read ``truth.parquet`` and ``match.json`` from a ground-truth directory.

    Cameras are found from the columns: every ``{c}_visible`` with its four box columns.

    Raises:
        FileNotFoundError: A file is missing.
        FormatError: A required column or ``match.json`` key is missing.
    """
    meta: dict[str, Any] = json.loads((directory / MATCH_FILE).read_text())
    missing = [k for k in ("fps", "frames", "size") if k not in meta]
    if missing:
        raise FormatError(f"{directory / MATCH_FILE}: missing keys {missing}")
    path = directory / TRUTH_FILE
    table = pq.read_table(path)
    _require(table, _TRUTH_REQUIRED, path)
    cameras = sorted(
        name.removesuffix("_visible")
        for name in table.column_names
        if name.endswith("_visible")
        and all(f"{name.removesuffix('_visible')}_{s}" in table.column_names for s in _BOX_SUFFIXES)
    )
    width, height = meta["size"]
    return Truth(
        fps=float(meta["fps"]),
        frames=int(meta["frames"]),
        size=(int(width), int(height)),
        seed=int(meta.get("seed", 0)),
        frame=_col(table, "frame", np.int32),
        id=_col(table, "id", np.int16),
        team=_str_col(table, "team", ""),
        role=_str_col(table, "role", ""),
        position=_stack(table, ["x_m", "y_m", "z_m"]),
        boxes={c: _stack(table, [f"{c}_{s}" for s in _BOX_SUFFIXES]) for c in cameras},
        visible={c: _col(table, f"{c}_visible", np.bool_) for c in cameras},
        in_play=_col(table, "in_play", np.bool_) if "in_play" in table.column_names else None,
        meta=meta,
    )


def write_truth(truth: Truth, directory: Path) -> None:
    """Write a `Truth` as ``truth.parquet`` and ``match.json`` (the generator's format)."""
    directory.mkdir(parents=True, exist_ok=True)
    columns: dict[str, pa.Array] = {
        "frame": pa.array(truth.frame, pa.int32()),
        "id": pa.array(truth.id, pa.int16()),
        "team": pa.array(truth.team.tolist(), pa.string()),
        "role": pa.array(truth.role.tolist(), pa.string()),
    }
    for axis, name in enumerate(("x_m", "y_m", "z_m")):
        columns[name] = pa.array(truth.position[:, axis], pa.float32())
    for camera in truth.cameras:
        for axis, suffix in enumerate(_BOX_SUFFIXES):
            columns[f"{camera}_{suffix}"] = pa.array(truth.boxes[camera][:, axis], pa.float32())
        columns[f"{camera}_visible"] = pa.array(truth.visible[camera], pa.bool_())
    if truth.in_play is not None:
        columns["in_play"] = pa.array(truth.in_play, pa.bool_())
    pq.write_table(pa.table(columns), directory / TRUTH_FILE)
    meta = {
        **truth.meta,
        "fps": truth.fps,
        "frames": truth.frames,
        "size": list(truth.size),
        "seed": truth.seed,
    }
    (directory / MATCH_FILE).write_text(json.dumps(meta, indent=2))


def load_results(directory: Path) -> Results:
    """Read whichever of ``detections``, ``tracks``, ``vcam`` and ``ball`` parquet files exist.

    Raises:
        FormatError: A present file lacks a required column.
    """
    results = Results()
    path = directory / DETECTIONS_FILE
    if path.is_file():
        table = pq.read_table(path)
        _require(table, DETECTIONS_SCHEMA.names, path)
        results.detections = Detections(
            frame=_col(table, "frame", np.int32),
            space=_str_col(table, "space", ""),
            class_id=_col(table, "class_id", np.int16),
            score=_col(table, "score", np.float32),
            boxes=_stack(table, list(_BOX_SUFFIXES)),
        )
    path = directory / TRACKS_FILE
    if path.is_file():
        table = pq.read_table(path)
        _require(table, _TRACKS_REQUIRED, path)
        has_role = "role" in table.column_names
        results.tracks = Tracks(
            frame=_col(table, "frame", np.int32),
            track_id=_col(table, "track_id", np.int32),
            team=_str_col(table, "team", UNKNOWN_TEAM),
            position=_stack(table, ["x_m", "y_m"]),
            role=_str_col(table, "role", UNKNOWN_ROLE) if has_role else None,
        )
    path = directory / VCAM_FILE
    if path.is_file():
        table = pq.read_table(path)
        _require(table, VCAM_SCHEMA.names, path)
        corners = _stack(table, VCAM_SCHEMA.names[1:])
        results.vcam = VcamQuads(
            frame=_col(table, "frame", np.int32), quad=corners.reshape(-1, 4, 2)
        )
    path = directory / BALL_FILE
    if path.is_file():
        table = pq.read_table(path)
        _require(table, BALL_SCHEMA.names, path)
        results.ball = BallResults(
            frame=_col(table, "frame", np.int32),
            position=_stack(table, ["x_m", "y_m", "z_m"]),
            visible=_col(table, "visible", np.bool_),
            in_play=_col(table, "in_play", np.bool_),
        )
    return results


def write_results(results: Results, directory: Path) -> None:
    """Write the present parts of `Results` in the exported-results format."""
    directory.mkdir(parents=True, exist_ok=True)
    if results.detections is not None:
        d = results.detections
        columns = [d.frame, d.space.tolist(), d.class_id, d.score, *d.boxes.T]
        table = pa.Table.from_arrays(
            [pa.array(c, f.type) for c, f in zip(columns, DETECTIONS_SCHEMA, strict=True)],
            schema=DETECTIONS_SCHEMA,
        )
        pq.write_table(table, directory / DETECTIONS_FILE)
    if results.tracks is not None:
        t = results.tracks
        assert t.role is not None  # set by Tracks.__post_init__
        columns = [t.frame, t.track_id, t.team.tolist(), t.role.tolist(), *t.position.T]
        table = pa.Table.from_arrays(
            [pa.array(c, f.type) for c, f in zip(columns, TRACKS_SCHEMA, strict=True)],
            schema=TRACKS_SCHEMA,
        )
        pq.write_table(table, directory / TRACKS_FILE)
    if results.vcam is not None:
        v = results.vcam
        columns = [v.frame, *v.quad.reshape(-1, 8).T]
        table = pa.Table.from_arrays(
            [pa.array(c, f.type) for c, f in zip(columns, VCAM_SCHEMA, strict=True)],
            schema=VCAM_SCHEMA,
        )
        pq.write_table(table, directory / VCAM_FILE)
    if results.ball is not None:
        b = results.ball
        columns = [b.frame, *b.position.T, b.visible, b.in_play]
        table = pa.Table.from_arrays(
            [pa.array(c, f.type) for c, f in zip(columns, BALL_SCHEMA, strict=True)],
            schema=BALL_SCHEMA,
        )
        pq.write_table(table, directory / BALL_FILE)
