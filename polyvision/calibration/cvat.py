"""Point annotations exported from CVAT ("CVAT for images 1.1" or "CVAT for video 1.1" XML).

Each annotated point marks a pitch landmark in one video frame; its label is the landmark's
pitch position written as ``"(x,y)"`` in metres, e.g. ``"(16.5,53.16)"``. The coordinates are
returned as written: the annotator's axis convention may differ from the project's pitch frame
(see `polyvision.calibration.soccertrack` for SoccerTrack's).

The image format holds ``<image id=.. name=.. width=.. height=..>`` elements with ``<points
label=.. points="x,y">`` children; the video format holds ``<track label=..>`` elements with
``<points frame=.. outside=.. points="x,y">`` children and the frame size under
``meta/task/original_size``.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from polyvision.calibration.errors import CvatError

# "(x,y)" with optional spaces and signed decimal numbers, e.g. "(52.25, -1.5)".
_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_LABEL = re.compile(rf"^\s*\(\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\)\s*$")


@dataclass(frozen=True)
class PointAnnotation:
    """One annotated pitch landmark.

    Attributes:
        image_xy: Pixel position ``(x, y)`` in the (distorted) video frame.
        pitch_xy: Pitch position in metres as written in the label, in the annotator's convention.
        label: The label text, e.g. ``"(16.5,53.16)"``.
        frame: Frame index (the ``<image id>`` or the ``<points frame>``).
        image_name: The annotated image's file name, where the file gives one.
        image_size: ``(width, height)`` of the annotated frame, where the file gives it.
        occluded: Whether the annotator marked the point occluded.
    """

    image_xy: tuple[float, float]
    pitch_xy: tuple[float, float]
    label: str
    frame: int
    image_name: str | None
    image_size: tuple[int, int] | None
    occluded: bool


def parse_pitch_label(label: str) -> tuple[float, float]:
    """Pitch position written in a label.

    Args:
        label: Text such as ``"(16.5,53.16)"``.

    Returns:
        ``(x, y)`` in metres.

    Raises:
        CvatError: The label is not ``"(x,y)"`` with two finite numbers.
    """
    match = _LABEL.match(label)
    if match is None:
        raise CvatError(f"label {label!r} is not a pitch position '(x,y)' in metres")
    x, y = float(match.group(1)), float(match.group(2))
    if not (math.isfinite(x) and math.isfinite(y)):
        raise CvatError(f"label {label!r} has a non-finite coordinate")
    return x, y


def _int_attr(element: ET.Element, name: str, where: str) -> int:
    value = element.get(name)
    if value is None:
        raise CvatError(f"{where}: missing attribute {name!r}")
    try:
        return int(value)
    except ValueError as error:
        raise CvatError(f"{where}: attribute {name}={value!r} is not an integer") from error


def _image_xy(element: ET.Element, where: str) -> tuple[float, float]:
    """The single ``x,y`` of a ``<points>`` element."""
    text = element.get("points")
    if text is None:
        raise CvatError(f"{where}: <points> has no 'points' attribute")
    pairs = [pair for pair in text.split(";") if pair.strip()]
    # A CVAT points shape may hold several points; one label names one landmark, so more than
    # one point would be ambiguous (which one is the landmark?).
    if len(pairs) != 1:
        raise CvatError(f"{where}: expected exactly one point, got {len(pairs)} in {text!r}")
    parts = pairs[0].split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        x, y = float(parts[0]), float(parts[1])
    except ValueError as error:
        raise CvatError(f"{where}: points={text!r} is not 'x,y'") from error
    if not (math.isfinite(x) and math.isfinite(y)):
        raise CvatError(f"{where}: points={text!r} has a non-finite coordinate")
    return x, y


def _video_size(root: ET.Element, where: str) -> tuple[int, int] | None:
    size = root.find("meta/task/original_size")
    if size is None:
        size = root.find("meta/job/original_size")
    if size is None:
        return None
    width_el, height_el = size.find("width"), size.find("height")
    try:
        if width_el is None or height_el is None:
            raise ValueError
        return int(width_el.text or ""), int(height_el.text or "")
    except ValueError as error:
        raise CvatError(f"{where}: meta original_size is not two integers") from error


def parse_cvat_points(text: str, source: str = "<string>") -> list[PointAnnotation]:
    """Parse the text of a CVAT XML export into its point annotations.

    Shapes other than points (boxes, polygons, ...) are ignored; points of a video track that are
    ``outside`` the frame are skipped.

    Args:
        text: The XML text.
        source: Name of the file, for error messages.

    Returns:
        The point annotations in document order.

    Raises:
        CvatError: The text is not XML, not a CVAT ``<annotations>`` document, a point or label is
            malformed, or the document holds no point annotation.
    """
    try:
        root = ET.fromstring(text)
    except ET.ParseError as error:
        raise CvatError(f"{source}: not well-formed XML ({error})") from error
    if root.tag != "annotations":
        raise CvatError(f"{source}: root element is <{root.tag}>, expected CVAT <annotations>")

    annotations: list[PointAnnotation] = []
    for image in root.iter("image"):
        where = f"{source}: <image id={image.get('id')!r}>"
        frame = _int_attr(image, "id", where)
        width, height = image.get("width"), image.get("height")
        try:
            size = (int(width), int(height)) if width and height else None
        except ValueError as error:
            raise CvatError(f"{where}: width/height are not integers") from error
        for index, points in enumerate(image.iter("points")):
            point_where = f"{where} point {index}"
            label = points.get("label")
            if label is None:
                raise CvatError(f"{point_where}: <points> has no label")
            annotations.append(
                PointAnnotation(
                    image_xy=_image_xy(points, point_where),
                    pitch_xy=_pitch_xy(label, point_where),
                    label=label,
                    frame=frame,
                    image_name=image.get("name"),
                    image_size=size,
                    occluded=points.get("occluded", "0") == "1",
                )
            )

    video_size = _video_size(root, source)
    for track in root.iter("track"):
        where = f"{source}: <track id={track.get('id')!r}>"
        label = track.get("label")
        for index, points in enumerate(track.iter("points")):
            point_where = f"{where} point {index}"
            if label is None:
                raise CvatError(f"{point_where}: <track> has no label")
            if points.get("outside", "0") == "1":
                continue
            annotations.append(
                PointAnnotation(
                    image_xy=_image_xy(points, point_where),
                    pitch_xy=_pitch_xy(label, point_where),
                    label=label,
                    frame=_int_attr(points, "frame", point_where),
                    image_name=None,
                    image_size=video_size,
                    occluded=points.get("occluded", "0") == "1",
                )
            )

    if not annotations:
        raise CvatError(f"{source}: no point annotation found")
    return annotations


def _pitch_xy(label: str, where: str) -> tuple[float, float]:
    try:
        return parse_pitch_label(label)
    except CvatError as error:
        raise CvatError(f"{where}: {error}") from error


def load_cvat_points(path: str | Path) -> list[PointAnnotation]:
    """Read a CVAT XML export's point annotations from a file (see `parse_cvat_points`).

    Raises:
        CvatError: The file cannot be read or is malformed.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CvatError(f"{path}: cannot read ({error})") from error
    return parse_cvat_points(text, source=str(path))
