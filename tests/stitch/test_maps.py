"""The stitch's lookup table: full-width fixed-point maps, stored compact and read back exactly."""

from __future__ import annotations

import io

import numpy as np
import pytest

from activities.stitch.maps import (
    OUTSIDE_PX,
    StitchMaps,
    StitchMapsError,
    build_stitch_maps,
    maps_identity,
)
from activities.stitch.panorama import PanoramaModel
from polyvision.geometry import Rig

ARRAYS = ("left_map1", "left_map2", "right_map1", "right_map2")


def test_maps_round_trip_exactly_and_compactly(maps: StitchMaps) -> None:
    data = maps.to_bytes()
    assert maps.to_bytes() == data  # the same maps, the same bytes
    again = StitchMaps.from_bytes(data)
    for name in ARRAYS:
        original, loaded = getattr(maps, name), getattr(again, name)
        assert loaded.dtype == original.dtype and loaded.flags.c_contiguous
        np.testing.assert_array_equal(loaded, original)
    assert again.model == maps.model
    assert again.source_sizes == maps.source_sizes
    assert again.anchor_u == maps.anchor_u and again.identity == maps.identity
    raw = sum(getattr(maps, name).nbytes for name in ARRAYS)
    assert len(data) < raw / 5  # the row differences compress far better than the tables
    # It is an ordinary .npz.
    with np.load(io.BytesIO(data)) as stored:
        assert {"version", "model", "left_delta", "right_delta"} <= set(stored.files)


def test_unseen_pixels_hold_minus_16(maps: StitchMaps) -> None:
    for name in ("left", "right"):
        map1 = getattr(maps, f"{name}_map1")
        valid = getattr(maps, f"valid_{name}")
        assert ((map1 == OUTSIDE_PX).all(axis=2) == ~valid).all()
        assert valid.any() and (~valid).any()
    # The two cameras overlap around the middle and each sees its own side.
    assert maps.valid_left[:, 0 : maps.width // 4].any()
    assert not maps.valid_left[:, -10:].any()
    assert not maps.valid_right[:, :10].any()


def test_identity_names_the_rig_and_panorama(rig: Rig, model: PanoramaModel) -> None:
    identity = maps_identity(rig.to_json(), model.to_json())
    assert identity == maps_identity(rig.to_json(), model.to_json())
    assert identity != maps_identity(rig.to_json(), model.to_json() + " ")
    built = build_stitch_maps(rig, model, identity)
    assert StitchMaps.from_bytes(built.to_bytes()).identity == identity


@pytest.mark.parametrize("data", [b"", b"not an npz", b"PK\x03\x04garbage"])
def test_malformed_maps_are_refused(data: bytes) -> None:
    with pytest.raises(StitchMapsError):
        StitchMaps.from_bytes(data)


def test_maps_of_another_version_are_refused(maps: StitchMaps) -> None:
    buffer = io.BytesIO()
    with np.load(io.BytesIO(maps.to_bytes())) as stored:
        arrays = {name: stored[name] for name in stored.files}
    arrays["version"] = np.asarray(99)
    np.savez_compressed(buffer, **arrays)
    with pytest.raises(StitchMapsError, match="version 99"):
        StitchMaps.from_bytes(buffer.getvalue())
