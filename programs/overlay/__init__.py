"""`polyvision overlay`: a processed match's tracks drawn on its panorama, for people to look at.

Every track point of each frame (the analytics store's ``track_points``) is projected back into
the stitch stage's panorama video (the object store's chunk videos) with the panorama model the
stitch stage stored: the track id, a marker at the ground point coloured by team and shaped by
role, and the last second of the track's positions. The result is an H.264 MP4 of a stretch of
frames and a PNG of one of them.

This module holds only the sub-command's arguments: `programs.cli` builds every parser at each
start, so nothing heavy is imported here. `programs.overlay.draw` is the pure drawing and
`programs.overlay.render` reads the stores and writes the files.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from polyvision.settings import Settings

DEFAULT_FRAMES = 250
DEFAULT_WIDTH = 1920


def _count(text: str, lowest: int) -> int:
    try:
        value = int(text)
    except ValueError:
        value = lowest - 1
    if value < lowest:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= {lowest}")
    return value


def _frame(text: str) -> int:
    """An argparse type: a frame number (0 or more)."""
    return _count(text, 0)


def _positive(text: str) -> int:
    """An argparse type: a count of 1 or more."""
    return _count(text, 1)


def _width(text: str) -> int:
    """An argparse type: an output width wide enough for the markers and the legend."""
    return _count(text, 64)


def _run(settings: Settings, args: argparse.Namespace) -> int:
    from programs.overlay.render import OverlayRequest, run_overlay

    return run_overlay(
        settings,
        OverlayRequest(
            organization=args.org,
            match_id=args.match,
            revision=args.revision,
            out_dir=Path(args.out),
            start_frame=args.start_frame,
            frames=args.frames,
            png_frame=args.png_frame,
            width=args.width,
            stack_dir=Path(args.stack) if args.stack else None,
        ),
    )


def add_overlay_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``overlay`` to the `polyvision` sub-commands."""
    overlay = commands.add_parser(
        "overlay",
        help="draw a processed match's tracks on its panorama (MP4 and PNG)",
        description=(
            "Draw every track point of a processed match on its panorama video: the track id, "
            "a marker at the ground point (disc: outfield player, square: goalkeeper, yellow "
            "triangle: referee; red: home, blue: away, grey: no team) and the last second of "
            "its positions. Writes OUT/overlay.mp4 and OUT/overlay-frame-F.png. Reads the "
            "stores of PV_ settings, or of the `polyvision up` data directory --stack DIR; "
            "chDB opens a data directory in one process only, so stop a running stack first."
        ),
    )
    overlay.add_argument("--match", required=True, help="the match id")
    overlay.add_argument(
        "--org", default="local", help="organization id or slug of the match (default: local)"
    )
    overlay.add_argument("--revision", type=_positive, default=1, help="processing revision")
    overlay.add_argument(
        "--stack",
        default=None,
        metavar="DIR",
        help="data directory of a `polyvision up` (stopped) to read (default: PV_DATA_DIR)",
    )
    overlay.add_argument("--out", required=True, metavar="DIR", help="where to write the files")
    overlay.add_argument(
        "--start-frame", type=_frame, default=0, metavar="F", help="first frame drawn"
    )
    overlay.add_argument(
        "--frames",
        type=_positive,
        default=DEFAULT_FRAMES,
        metavar="N",
        help=f"how many frames to draw (default: {DEFAULT_FRAMES})",
    )
    overlay.add_argument(
        "--png-frame",
        type=_frame,
        default=None,
        metavar="F",
        help="the frame written as PNG, among those drawn (default: the middle one)",
    )
    overlay.add_argument(
        "--width",
        type=_width,
        default=DEFAULT_WIDTH,
        metavar="PX",
        help=f"at most this wide; the panorama is scaled down to it (default: {DEFAULT_WIDTH})",
    )
    overlay.set_defaults(handler=_run)
