"""The rectilinear view: where its pixels sample the panorama, its ground footprint, and the
geometry a stored path carries."""

from __future__ import annotations

import io
import math

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from activities.stitch.panorama import PanoramaModel, panorama_to_pitch
from activities.vcam.plan import VcamPath
from activities.vcam.view import (
    GEOMETRY_METADATA_KEY,
    ViewGeometry,
    footprint_areas,
    geometry_of,
    view_corners,
    view_extents,
    view_maps,
    with_geometry,
)

MODEL = PanoramaModel(
    width=2838,
    height=826,
    center=(52.5, -15.0, 13.0),
    heading_rad=math.pi / 2,
    focal_px=882.8,
    cu=1418.5,
    cv=-57.3,
    far_wall_y_m=78.0,
    pitch_length_m=105.0,
    pitch_width_m=68.0,
)
GEOMETRY = ViewGeometry.of(MODEL)


def test_the_view_centre_looks_at_the_window_centre_and_verticals_stay_vertical() -> None:
    map_x, map_y = view_maps(GEOMETRY, 1200.0, 400.0, 600.0, (161, 91))
    assert map_x[45, 80] == pytest.approx(1200.0, abs=1e-3)
    assert map_y[45, 80] == pytest.approx(400.0, abs=1e-3)
    # The centre column is one panorama column (the camera does not roll).
    np.testing.assert_allclose(map_x[:, 80], 1200.0, atol=1e-3)
    # Level, the centre row spans the window's width on the panorama (hfov = width / focal);
    # tilted down, the same field of view sweeps a wider azimuth.
    level_x, _ = view_maps(GEOMETRY, 1200.0, GEOMETRY.cv, 600.0, (161, 91))
    level_span = level_x[45, -1] - level_x[45, 0]
    assert level_span == pytest.approx(600.0 * 160 / 161, rel=0.01)
    assert map_x[45, -1] - map_x[45, 0] > level_span


def test_straight_view_edges_are_straight_on_the_ground() -> None:
    # A pinhole view of a plane is a homography: a point along a view edge lands on the ground
    # segment between the two corners (a crop of the cylinder would bow).
    map_x, map_y = view_maps(GEOMETRY, 1000.0, 350.0, 700.0, (193, 109))
    corners = view_corners(GEOMETRY, 1000.0, 350.0, 700.0, (193, 109))[0]
    bottom = panorama_to_pitch(MODEL, np.column_stack([map_x[-1], map_y[-1]]))
    a, b = panorama_to_pitch(MODEL, corners[[3, 2]])
    direction = (b - a) / np.linalg.norm(b - a)
    offsets = (bottom - a) @ np.array([-direction[1], direction[0]])
    # The last row of pixel centres is half a pixel inside the edge: parallel, and straight.
    assert np.ptp(offsets) < 0.005 and np.abs(offsets).max() < 0.2


def test_footprint_area_of_a_unit_square_and_extents_contain_the_corners() -> None:
    square = np.array([[[0, 0], [2, 0], [2, 3], [0, 3]]], np.float64)
    assert footprint_areas(square)[0] == pytest.approx(6.0)
    half, top, bottom = view_extents(GEOMETRY, np.array([300.0]), np.array([800.0]))
    corners = view_corners(GEOMETRY, 1000.0, 300.0, 800.0)[0]
    assert np.abs(corners[:, 0] - 1000.0).max() <= half[0] + 1e-6
    assert top[0] <= corners[:, 1].min() + 1e-6 and corners[:, 1].max() <= bottom[0] + 1e-6


def test_a_path_table_carries_its_geometry_and_old_tables_have_none() -> None:
    path = VcamPath(np.array([1000.0]), np.array([300.0]), np.array([800.0]))
    buffer = io.BytesIO()
    pq.write_table(with_geometry(path.to_table(), GEOMETRY), buffer)
    table = pq.read_table(io.BytesIO(buffer.getvalue()))
    assert geometry_of(table) == GEOMETRY
    assert geometry_of(path.to_table()) is None
    broken = path.to_table().replace_schema_metadata({GEOMETRY_METADATA_KEY: b'{"cv": 1}'})
    with pytest.raises(ValueError, match="malformed view geometry"):
        geometry_of(broken)
    negative = pa.table({"a": [1]}).replace_schema_metadata(
        {GEOMETRY_METADATA_KEY: b'{"focal_px": -1, "cv": 0, "width": 2, "height": 2}'}
    )
    with pytest.raises(ValueError, match="positive focal"):
        geometry_of(negative)
