"""Pictures of the stitch for people to look at: the panorama of one frame and its seam.

Writes, under ``--out`` (default ``.polyvision/stitch_preview/``, which git ignores):

* ``panorama.png``: the whole panorama of the frame;
* ``seam.png``: the columns around the seam, twice side by side: with the seam drawn in red
  (and the feather band's edges in yellow), then as stitched;
* ``seam_baseline.png``: the same columns stitched the previous way (straight seam at the
  geometric middle, a ramp 2 % of the panorama wide, no gains), for comparison.

The seam and gains are chosen as the stitch stage does for a 10-second chunk starting at the
frame. Source: the SoccerTrack recording (``--real DIR``, the default when it is there) or a
fresh synthetic match (``--synth-seed N``).

Run: ``python -m bench.stitch_preview [--real DIR | --synth-seed 7 [--size 1920x1080]]
[--frame 0] [--out DIR]``.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import av
import cv2
import numpy as np

from activities.stitch.chunk import decode_frames
from activities.stitch.maps import build_stitch_maps
from activities.stitch.panorama import panorama_model_from_rig
from activities.stitch.stitch_plan import StitchPlan, stitch_frame
from bench.stitch_quality import REAL_DIR, _size, baseline_plan, chunk_choice, real_rig
from polyvision.geometry import Rig
from synth.generate import SynthConfig, generate_match

REPO = Path(__file__).resolve().parents[1]
CHUNK_S = 10.0


def _seam_picture(image: np.ndarray, plan: StitchPlan, columns: slice, draw: bool) -> np.ndarray:
    crop = image[:, columns].copy()
    if draw:
        rows = np.arange(plan.height)
        first = columns.start or 0
        for offset, colour in (
            (0, (0, 0, 255)),
            (-plan.band_half, (0, 220, 255)),
            (plan.band_half, (0, 220, 255)),
        ):
            x = plan.seam + offset - first
            keep = (x >= 0) & (x < crop.shape[1])
            crop[rows[keep], x[keep]] = colour
    return crop


def _frame_count(path: Path) -> int:
    with av.open(str(path)) as container:
        return int(container.streams.video[0].frames) or 10**9


def preview(left: Path, right: Path, rig: Rig, frame: int, fps: float, out: Path) -> list[Path]:
    model = panorama_model_from_rig(rig)
    maps = build_stitch_maps(rig, model)
    end = min(frame + round(CHUNK_S * fps), _frame_count(left), _frame_count(right))
    choice = chunk_choice(maps, left, right, frame, end, fps)
    plan = choice.plan(maps)
    image_l = next(decode_frames(left, frame, frame + 1))
    image_r = next(decode_frames(right, frame, frame + 1))
    panorama = stitch_frame(image_l, image_r, plan)
    baseline = stitch_frame(image_l, image_r, baseline_plan(maps))
    margin = max(150, maps.width // 20)
    columns = slice(max(0, int(plan.seam.min()) - margin), int(plan.seam.max()) + margin)
    seam = np.concatenate(
        [
            _seam_picture(panorama, plan, columns, draw=True),
            np.zeros((plan.height, 8, 3), np.uint8),
            _seam_picture(panorama, plan, columns, draw=False),
        ],
        axis=1,
    )
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, image in (
        ("panorama.png", panorama),
        ("seam.png", seam),
        ("seam_baseline.png", baseline[:, columns]),
    ):
        path = out / name
        cv2.imwrite(str(path), image)
        written.append(path)
    gains = np.round(plan.gains.astype(float), 3).tolist()
    print(
        f"panorama {model.width}x{model.height}; seam columns {plan.seam.min()}-{plan.seam.max()}"
        f", band ±{plan.band_half} px; gains left {gains[0]} right {gains[1]} (BGR)"
    )
    return written


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--real", type=Path, default=REAL_DIR, help="soccertrack-v1 folder")
    parser.add_argument("--synth-seed", type=int, default=None, help="a synthetic match instead")
    parser.add_argument("--size", type=_size, default=(1920, 1080))
    parser.add_argument("--frame", type=int, default=0)
    parser.add_argument("--out", type=Path, default=REPO / ".polyvision" / "stitch_preview")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        if args.synth_seed is None and args.real.is_dir():
            rig, _ = real_rig(args.real)
            left, right, fps = args.real / "left_camera.mp4", args.real / "right_camera.mp4", 25.0
        else:
            seed = 7 if args.synth_seed is None else args.synth_seed
            match = Path(scratch) / "match"
            config = SynthConfig(
                seconds=CHUNK_S, width=args.size[0], height=args.size[1], seed=seed
            )
            generate_match(config, match)
            rig = Rig.load(match / "rig.json")
            left, right, fps = match / "left.mp4", match / "right.mp4", config.fps
        for path in preview(left, right, rig, args.frame, fps, args.out):
            print(f"wrote {path}")


if __name__ == "__main__":
    main()
