"""CVAT point annotations: the image and video formats, the label syntax and malformed files."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from polyvision.calibration.cvat import (
    load_cvat_points,
    parse_cvat_points,
    parse_pitch_label,
)
from polyvision.calibration.errors import CvatError

REPO = Path(__file__).resolve().parents[2]
SOCCERTRACK = Path(os.environ.get("PV_TEST_DATA", REPO.parent / "shared" / "data")) / (
    "soccertrack-v1"
)

IMAGES_XML = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <image id="3" name="frame003.jpg" width="640" height="360">
    <points label="(16.5,0)" occluded="0" source="manual" points="100.50,20.25" z_order="0"/>
    <points label="( 52.5 , 34 )" occluded="1" source="manual" points="320,180" z_order="0"/>
    <box label="player" xtl="1" ytl="1" xbr="5" ybr="5" occluded="0"/>
  </image>
</annotations>
"""

VIDEO_XML = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <meta><task><original_size><width>3072</width><height>1728</height></original_size></task></meta>
  <track id="0" label="(0,68)">
    <points frame="0" outside="0" occluded="0" points="10,20"/>
    <points frame="5" outside="1" occluded="0" points="11,21"/>
  </track>
</annotations>
"""


def test_parses_image_format() -> None:
    points = parse_cvat_points(IMAGES_XML)
    assert len(points) == 2  # the box is ignored
    first, second = points
    assert first.image_xy == (100.5, 20.25)
    assert first.pitch_xy == (16.5, 0.0)
    assert first.label == "(16.5,0)"
    assert first.frame == 3
    assert first.image_name == "frame003.jpg"
    assert first.image_size == (640, 360)
    assert not first.occluded
    assert second.pitch_xy == (52.5, 34.0)
    assert second.occluded


def test_parses_video_format_and_skips_outside_points() -> None:
    (point,) = parse_cvat_points(VIDEO_XML)
    assert point.image_xy == (10.0, 20.0)
    assert point.pitch_xy == (0.0, 68.0)
    assert point.frame == 0
    assert point.image_size == (3072, 1728)


@pytest.mark.parametrize(
    ("label", "expected"),
    [("(0,0)", (0.0, 0.0)), ("(52.25, 24.85)", (52.25, 24.85)), ("(-1.5,1e1)", (-1.5, 10.0))],
)
def test_pitch_label(label: str, expected: tuple[float, float]) -> None:
    assert parse_pitch_label(label) == expected


@pytest.mark.parametrize("label", ["player", "(1,2,3)", "(1;2)", "1,2", "(nan,1)", "(a,b)"])
def test_bad_label_is_rejected(label: str) -> None:
    with pytest.raises(CvatError, match="pitch position"):
        parse_pitch_label(label)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<annotations><image", "not well-formed XML"),
        ("<root/>", "expected CVAT <annotations>"),
        ("<annotations><image id='0'/></annotations>", "no point annotation"),
        (
            "<annotations><image id='0'><points label='(1,2)' points='1,2;3,4'/></image>"
            "</annotations>",
            "exactly one point",
        ),
        (
            "<annotations><image id='0'><points label='(1,2)' points='1'/></image></annotations>",
            "is not 'x,y'",
        ),
        (
            "<annotations><image id='0'><points label='goal' points='1,2'/></image></annotations>",
            "point 0: label 'goal'",
        ),
        ("<annotations><image id='0'><points points='1,2'/></image></annotations>", "no label"),
        (
            "<annotations><image id='x'><points label='(1,2)' points='1,2'/></image></annotations>",
            "not an integer",
        ),
    ],
)
def test_malformed_file_is_rejected(text: str, message: str) -> None:
    with pytest.raises(CvatError, match=message):
        parse_cvat_points(text, source="bad.xml")


def test_missing_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(CvatError, match="cannot read"):
        load_cvat_points(tmp_path / "absent.xml")


def test_soccertrack_keypoints() -> None:
    if not SOCCERTRACK.is_dir():
        pytest.skip(f"SoccerTrack data not at {SOCCERTRACK} (set PV_TEST_DATA)")
    left = load_cvat_points(SOCCERTRACK / "left_keypoints.xml")
    right = load_cvat_points(SOCCERTRACK / "right_keypoints.xml")
    assert (len(left), len(right)) == (38, 39)
    assert {p.image_size for p in left + right} == {(3072, 1728)}
    assert all(0 <= p.pitch_xy[0] <= 105 and 0 <= p.pitch_xy[1] <= 68 for p in left + right)
    assert ("(99.5,0)", (2945.6, 1117.2)) in [(p.label, p.image_xy) for p in right]
