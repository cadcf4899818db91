"""How good the stitch is: geometry, double images, the brightness step, the real pitch lines.

Synthetic matches (fresh seeds, with ground truth) are stitched chunk by chunk the way the stage
does it (`activities.stitch.samples` then `choose_seam_and_gains`), and compared with the
previous stitch as the peer: a straight seam at the geometric middle, a linear ramp 2 % of the
panorama wide, no exposure compensation ("baseline"). Figures:

(a) ``pitch_points``: for the painted landmarks (corners, halfway line ends, centre and penalty
    spots, penalty and goal area corners), each camera's own projection of the landmark
    (`polyvision.geometry.project`) is carried into the panorama through the stored maps (the
    panorama pixel whose map points at that source pixel, solved to sub-pixel) and compared with
    `pitch_to_panorama`: median and max distance in panorama pixels. ``spot_centroids``: in a
    stitched clean frame, the centroid of each spot's white pixels against `pitch_to_panorama`.
(b) ``doubled``: for every frame and every player whose box (truth position, 1.9 m tall) crosses
    the feather band, the pixels of the box where the two warped cameras disagree (max channel
    difference > 30 after gains: the figure in one camera, grass in the other) are classified:
    a pixel is "averaged" when the stitched pixel is closer to the two cameras' mean than to
    either camera. A figure is doubled (shown as a half-transparent pair) when more than half of
    its disagreeing pixels are averaged. Reported: the share of frames with a doubled figure,
    and of crossing figures that are doubled.
(c) ``brightness_step``: mean luminance of the grass pixels in 6-pixel strips just left and just
    right of the band, per 16-row band, absolute difference, median over bands and frames (every
    5th frame; grass = green above red and blue by 5 levels, off the painted lines, outside every
    player's box). It includes the pitch's own
    pattern (mowing stripes, the edges of a line beside the seam), which a single camera shows
    too: ``seam_step`` subtracts the same left-right difference measured in the (gain-corrected)
    right camera alone before taking the absolute value, leaving the step the seam adds; and
    ``seam_colour_step`` is that per colour channel (the largest of B, G, R): white balance.

The real recording (SoccerTrack, its rig fitted from the CVAT keypoints) gives:

* ``line_disagreement``: white line pixels (a top-hat on luminance) of both warped cameras in
  the overlap, within 120 px of the seam; for each line pixel of one camera the distance to the
  nearest line pixel of the other (capped at 20 px; beyond: unmatched), median and 90th
  percentile over both directions. The panorama is 4540 px wide; the issue asks under 3 px.
* ``keypoint_disagreement``: each CVAT keypoint annotated in both cameras, carried to the ground
  through its camera and into the panorama; the distance between the two cameras' panorama
  positions (the rig's calibration decides it: the stitch cannot move it), median and max;
  outliers the rig fit rejected are left out.
* ``brightness_step`` as above, on the per-camera median of the sampled frames (no truth: the
  median removes the players).

Run: ``python -m bench.stitch_quality [--seeds 11 12 13] [--seconds 12] [--chunk-seconds 10]
[--size 1920x1080] [--real DIR | --no-real]``; results in ``bench/results/stitch_quality.json``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import math
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from activities.stitch.chunk import decode_frames
from activities.stitch.maps import StitchMaps, build_stitch_maps
from activities.stitch.panorama import (
    PanoramaModel,
    panorama_model_from_rig,
    pitch_to_panorama,
)
from activities.stitch.samples import sample_camera
from activities.stitch.stitch_plan import (
    SeamChoice,
    StitchPlan,
    choose_seam_and_gains,
    stitch_frame,
)
from bench.results_file import write_results
from evaluation.formats import Truth, load_truth
from polyvision.geometry import Rig, image_to_pitch, project
from polyvision.geometry.pitch import PITCH_LENGTH_M, PITCH_WIDTH_M
from synth.generate import SynthConfig, generate_match
from synth.pitch import (
    CENTRE_SPOT,
    GOAL_AREA_DEPTH_M,
    GOAL_AREA_WIDTH_M,
    PENALTY_AREA_DEPTH_M,
    PENALTY_AREA_WIDTH_M,
    PENALTY_SPOTS,
)
from synth.render import Renderer, RenderStyle
from synth.simulation import simulate

REPO = Path(__file__).resolve().parents[1]
REAL_DIR = REPO.parent / "shared" / "data" / "soccertrack-v1"
CHUNK_S = 10.0  # ingest's default chunk length
PLAYER_HEIGHT_M = 1.9
DISAGREE = 30  # grey levels: the two cameras show different things at the pixel
STRIP_PX = 6
ROW_BAND = 16
STEP_EVERY = 5


# --- plans ------------------------------------------------------------------------------------


def baseline_plan(maps: StitchMaps) -> StitchPlan:
    """The previous stitch: straight seam at the geometric middle, a ramp 2 % of the width wide
    (band_half = 1 %), no gains."""
    seam = np.full(maps.height, round(maps.anchor_u), np.int32)
    return StitchPlan.from_maps(maps, seam, band_half=max(1, round(0.01 * maps.width)))


def chunk_choice(
    maps: StitchMaps, left: Path, right: Path, start: int, end: int, fps: float
) -> SeamChoice:
    """The seam and gains the stage would choose for frames ``[start, end)``."""
    lefts = sample_camera(left, start, end, fps)
    rights = sample_camera(right, start, end, fps)
    return choose_seam_and_gains(maps, lefts, rights)


# --- (a) geometry -----------------------------------------------------------------------------


def landmarks() -> np.ndarray:
    """Ground points of painted markings: corners, halfway ends, spots, area corners."""
    length, width = PITCH_LENGTH_M, PITCH_WIDTH_M
    points = [
        (0.0, 0.0),
        (length, 0.0),
        (0.0, width),
        (length, width),
        (length / 2, 0.0),
        (length / 2, width),
        CENTRE_SPOT,
        *PENALTY_SPOTS,
    ]
    for depth, span in (
        (PENALTY_AREA_DEPTH_M, PENALTY_AREA_WIDTH_M),
        (GOAL_AREA_DEPTH_M, GOAL_AREA_WIDTH_M),
    ):
        for x in (depth, length - depth):
            points += [(x, (width - span) / 2), (x, (width + span) / 2)]
    return np.asarray(points, np.float64)


def invert_map(maps: StitchMaps, camera: str, source_xy: np.ndarray, guess: np.ndarray) -> Any:
    """The sub-pixel panorama position whose map points at ``source_xy`` (None if unseen)."""
    map1 = getattr(maps, f"{camera}_map1")
    map2 = getattr(maps, f"{camera}_map2")
    r = 6
    u0, v0 = round(float(guess[0])), round(float(guess[1]))
    if not (r <= u0 < maps.width - r - 1 and r <= v0 < maps.height - r - 1):
        return None
    window = (slice(v0 - r, v0 + r + 2), slice(u0 - r, u0 + r + 2))
    xy, _ = cv2.convertMaps(
        np.ascontiguousarray(map1[window]), np.ascontiguousarray(map2[window]), cv2.CV_32FC2
    )
    seen = (np.ascontiguousarray(map1[window]) >= 0).all(axis=2)
    if not seen.all():
        return None
    distance = np.linalg.norm(xy - source_xy[None, None, :], axis=2)
    j, i = np.unravel_index(int(np.argmin(distance[:-1, :-1])), distance[:-1, :-1].shape)
    # Local affine model of the map from the neighbouring pixels: solve map(q) = source.
    jac = np.column_stack([xy[j, i + 1] - xy[j, i], xy[j + 1, i] - xy[j, i]]).astype(np.float64)
    step = np.linalg.solve(jac, source_xy - xy[j, i])
    return np.array([u0 - r + i, v0 - r + j], np.float64) + step


def pitch_point_errors(rig: Rig, model: PanoramaModel, maps: StitchMaps) -> dict[str, Any]:
    points = landmarks()
    ground = np.column_stack([points, np.zeros(len(points))])
    predicted = pitch_to_panorama(model, ground)
    errors = []
    for name in ("left", "right"):
        camera = rig.cameras[name]
        pixels, in_front = project(camera, ground)
        w, h = camera.image_size
        for k in range(len(points)):
            x, y = pixels[k]
            if not (in_front[k] and 0 <= x <= w - 1 and 0 <= y <= h - 1):
                continue
            q = invert_map(maps, name, pixels[k], predicted[k])
            if q is not None:
                errors.append(float(np.linalg.norm(q - predicted[k])))
    values = np.asarray(errors)
    return {
        "landmark_views": len(values),
        "median_px": round(float(np.median(values)), 3),
        "max_px": round(float(values.max()), 3),
    }


def spot_centroid_errors(rig: Rig, model: PanoramaModel, plan: StitchPlan) -> dict[str, Any]:
    """Where the painted spots are in a stitched clean frame, against `pitch_to_panorama`."""
    renderer = Renderer(rig, simulate(0.2, 25.0, 1).agents, seed=1, style=RenderStyle.clean())
    image = stitch_frame(renderer.background("left"), renderer.background("right"), plan)
    grey = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY).astype(np.float64)
    errors = []
    for spot in (CENTRE_SPOT, *PENALTY_SPOTS):
        predicted = pitch_to_panorama(model, [spot])[0]
        u0, v0 = (round(float(c)) for c in predicted)
        r = 4
        window = grey[v0 - r : v0 + r + 1, u0 - r : u0 + r + 1]
        whiteness = np.clip(window - np.percentile(window, 60), 0.0, None)
        vv, uu = np.mgrid[v0 - r : v0 + r + 1, u0 - r : u0 + r + 1]
        if spot == CENTRE_SPOT:
            # The halfway line runs through it: its column only, from the rows above and below.
            whiteness[:, :] = 0
            for row in (v0 - 8, v0 + 8):
                profile = grey[row, u0 - r : u0 + r + 1]
                white = np.clip(profile - np.median(grey[row, u0 - 30 : u0 + 31]), 0, None)
                column = (white * np.arange(u0 - r, u0 + r + 1)).sum() / white.sum()
                errors.append(abs(column - predicted[0]))
            continue
        centroid = np.array([(whiteness * uu).sum(), (whiteness * vv).sum()]) / whiteness.sum()
        errors.append(float(np.hypot(*(centroid - predicted))))
    return {"measured": len(errors), "max_px": round(float(max(errors)), 3)}


# --- (b) and (c): frames ----------------------------------------------------------------------


@dataclasses.dataclass
class VariantTally:
    frames: int = 0
    frames_doubled: int = 0
    crossing: int = 0
    touched: int = 0
    doubled: int = 0
    averaged_shares: list[float] = dataclasses.field(default_factory=list)
    steps: list[float] = dataclasses.field(default_factory=list)
    seam_steps: list[float] = dataclasses.field(default_factory=list)
    colour_steps: list[float] = dataclasses.field(default_factory=list)

    def figures(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "frames_with_doubled_figure": round(self.frames_doubled / max(1, self.frames), 4),
            "figures_crossing_band": self.crossing,
            "crossing_figures_blended_at_all": round(self.touched / max(1, self.crossing), 4),
            "crossing_figures_doubled": round(self.doubled / max(1, self.crossing), 4),
            "mean_averaged_share": round(float(np.mean(self.averaged_shares or [0.0])), 3),
            "brightness_step_median": round(float(np.median(self.steps)), 2)
            if self.steps
            else None,
            "seam_step_median": _median(self.seam_steps),
            "seam_colour_step_median": _median(self.colour_steps),
        }


def _median(values: list[float]) -> float | None:
    return round(float(np.median(values)), 2) if values else None


def _gained(image: np.ndarray, gains: np.ndarray) -> np.ndarray:
    return np.clip(image.astype(np.float32) * gains[None, None, :], 0, 255)


def player_boxes(model: PanoramaModel, truth: Truth, frame: int) -> np.ndarray:
    """``[N, 4]`` panorama boxes ``u0, v0, u1, v1`` of the people at a frame."""
    rows = np.flatnonzero((truth.frame == frame) & truth.is_person)
    feet = truth.position[rows].astype(np.float64).copy()
    feet[:, 2] = 0
    heads = feet + np.array([0.0, 0.0, PLAYER_HEIGHT_M])
    f = pitch_to_panorama(model, feet)
    h = pitch_to_panorama(model, heads)
    height = f[:, 1] - h[:, 1]
    return np.column_stack(
        [
            f[:, 0] - 0.35 * height,
            h[:, 1] - 0.1 * height,
            f[:, 0] + 0.35 * height,
            f[:, 1] + 0.05 * height,
        ]
    )


def doubled_figures(
    plan: StitchPlan,
    stitched: np.ndarray,
    warped: tuple[np.ndarray, np.ndarray],
    both: np.ndarray,
    boxes: np.ndarray,
    tally: VariantTally,
) -> None:
    height, width = stitched.shape[:2]
    band = plan.band_half
    any_doubled = False
    for u0, v0, u1, v1 in boxes:
        a, b = max(0, math.floor(u0)), min(width, math.ceil(u1) + 1)
        top, bottom = max(0, math.floor(v0)), min(height, math.ceil(v1) + 1)
        if a >= b or top >= bottom:
            continue
        seam = plan.seam[top:bottom]
        if not ((seam + band >= a) & (seam - band < b)).any():
            continue
        crop = (slice(top, bottom), slice(a, b))
        left = _gained(warped[0][crop], plan.gains[0])
        right = _gained(warped[1][crop], plan.gains[1])
        mean = (left + right) / 2
        out = stitched[crop].astype(np.float32)
        disagree = (np.abs(left - right).max(axis=2) > DISAGREE) & both[crop]
        if disagree.sum() < 10:
            continue
        tally.crossing += 1
        to_left = np.abs(out - left).max(axis=2)
        to_right = np.abs(out - right).max(axis=2)
        to_mean = np.abs(out - mean).max(axis=2)
        averaged = disagree & (to_mean < np.minimum(to_left, to_right))
        share = float(averaged.sum() / disagree.sum())
        tally.averaged_shares.append(share)
        tally.touched += int(share > 0)
        if share > 0.5:
            tally.doubled += 1
            any_doubled = True
    tally.frames += 1
    tally.frames_doubled += int(any_doubled)


def luminance(image: np.ndarray) -> np.ndarray:
    return image[..., 0] * 0.114 + image[..., 1] * 0.587 + image[..., 2] * 0.299


def brightness_steps(
    plan: StitchPlan,
    stitched: np.ndarray,
    warped_right: np.ndarray,
    valid: np.ndarray,
    boxes: np.ndarray,
    tally: VariantTally,
) -> None:
    """(c): grass luminance just left against just right of the band, per row band."""
    height, width = stitched.shape[:2]
    image = stitched.astype(np.float32)
    grass = (image[..., 1] > image[..., 2] + 5) & (image[..., 1] > image[..., 0] + 5) & valid
    # Not the painted lines nor their soft edges (still green-dominant, but brighter).
    lines = cv2.dilate(white_lines(stitched).astype(np.uint8), np.ones((7, 7), np.uint8))
    grass &= lines == 0
    for u0, v0, u1, v1 in boxes:
        grass[
            max(0, math.floor(v0) - 3) : max(0, math.ceil(v1) + 3),
            max(0, math.floor(u0) - 3) : max(0, math.ceil(u1) + 3),
        ] = False
    right = _gained(warped_right, plan.gains[1])
    band = plan.band_half
    weights = np.array([0.114, 0.587, 0.299], np.float32)
    for top in range(0, height - ROW_BAND + 1, ROW_BAND):
        strips: dict[str, list[np.ndarray]] = {"out_l": [], "out_r": [], "ref_l": [], "ref_r": []}
        for row in range(top, top + ROW_BAND):
            s = int(plan.seam[row])
            lo = slice(max(0, s - band - STRIP_PX), max(0, s - band))
            hi = slice(min(width, s + band + 1), min(width, s + band + 1 + STRIP_PX))
            for side, cols in (("l", lo), ("r", hi)):
                keep = grass[row, cols]
                strips[f"out_{side}"].append(image[row, cols][keep])
                strips[f"ref_{side}"].append(right[row, cols][keep])
        means = {k: np.concatenate(v) for k, v in strips.items()}
        if min(len(v) for v in means.values()) < 20:
            continue
        step = means["out_l"].mean(axis=0) - means["out_r"].mean(axis=0)  # per channel
        natural = means["ref_l"].mean(axis=0) - means["ref_r"].mean(axis=0)
        tally.steps.append(abs(float(step @ weights)))
        tally.seam_steps.append(abs(float((step - natural) @ weights)))
        tally.colour_steps.append(float(np.abs(step - natural).max()))


def synthetic_match(
    seed: int, seconds: float, size: tuple[int, int], chunk_s: float, scratch: Path
) -> Any:
    directory = scratch / f"seed-{seed}"
    started = time.perf_counter()
    generate_match(
        SynthConfig(seconds=seconds, width=size[0], height=size[1], seed=seed), directory
    )
    generated = time.perf_counter() - started
    truth = load_truth(directory)
    rig = Rig.load(directory / "rig.json")
    model = panorama_model_from_rig(rig)
    maps = build_stitch_maps(rig, model)
    left, right = directory / "left.mp4", directory / "right.mp4"
    tallies = {"stitch": VariantTally(), "baseline": VariantTally()}
    chunk = round(chunk_s * truth.fps)
    seams, gains, choose_s = [], [], []
    both = maps.overlap
    for start in range(0, truth.frames, chunk):
        end = min(truth.frames, start + chunk)
        t0 = time.perf_counter()
        choice = chunk_choice(maps, left, right, start, end, truth.fps)
        choose_s.append(time.perf_counter() - t0)
        seams.append(choice.seam)
        gains.append(choice.gains)
        plans = {"stitch": choice.plan(maps), "baseline": baseline_plan(maps)}
        frames = zip(decode_frames(left, start, end), decode_frames(right, start, end), strict=True)
        for index, (frame_l, frame_r) in enumerate(frames, start=start):
            warped = (maps.remap("left", frame_l), maps.remap("right", frame_r))
            boxes = player_boxes(model, truth, index)
            for name, plan in plans.items():
                stitched = stitch_frame(frame_l, frame_r, plan)
                doubled_figures(plan, stitched, warped, both, boxes, tallies[name])
                if index % STEP_EVERY == 0:
                    brightness_steps(plan, stitched, warped[1], maps.valid, boxes, tallies[name])
    moves = [float(np.median(np.abs(a - b))) for a, b in itertools.pairwise(seams)]
    return {
        "seed": seed,
        "panorama": [model.width, model.height],
        "generate_s": round(generated, 1),
        "choose_s_per_chunk": round(float(np.mean(choose_s)), 2),
        "pitch_points": pitch_point_errors(rig, model, maps),
        "spot_centroids": spot_centroid_errors(rig, model, baseline_plan(maps)),
        "seam_median_move_between_chunks_px": moves,
        "gains": [np.round(g, 4).tolist() for g in gains],
        **{name: tally.figures() for name, tally in tallies.items()},
    }


# --- the real recording -----------------------------------------------------------------------


def real_rig(data_dir: Path) -> tuple[Rig, dict[str, Any]]:
    from polyvision.calibration.soccertrack import build_soccertrack_rig

    rig, fits = build_soccertrack_rig(data_dir, lens_from={"right": "left"})
    return rig, fits


def white_lines(image: np.ndarray) -> np.ndarray:
    grey = luminance(image.astype(np.float32))
    tophat = cv2.morphologyEx(grey, cv2.MORPH_TOPHAT, np.ones((15, 15), np.uint8))
    low_saturation = (image.max(axis=2).astype(np.int16) - image.min(axis=2)) < 60
    return np.asarray((tophat > 30) & low_saturation)


def line_disagreement(maps: StitchMaps, plan: StitchPlan, left: Any, right: Any) -> Any:
    warped_l = np.clip(_gained(maps.remap("left", left), plan.gains[0]), 0, 255).astype(np.uint8)
    warped_r = np.clip(_gained(maps.remap("right", right), plan.gains[1]), 0, 255).astype(np.uint8)
    near = np.abs(np.arange(maps.width)[None, :] - plan.seam[:, None]) <= 120
    inner = cv2.erode(maps.overlap.astype(np.uint8), np.ones((9, 9), np.uint8)).astype(bool)
    region = near & inner
    lines = [white_lines(warped_l) & region, white_lines(warped_r) & region]
    distances = []
    for a, b in ((0, 1), (1, 0)):
        to_b = cv2.distanceTransform((~lines[b]).astype(np.uint8), cv2.DIST_L2, 5)
        distances.append(to_b[lines[a]])
    d = np.concatenate(distances)
    matched = d[d <= 20]
    return {
        "line_pixels": len(d),
        "matched_share": round(float(len(matched) / max(1, len(d))), 3),
        "median_px": round(float(np.median(matched)), 2) if len(matched) else None,
        "p90_px": round(float(np.percentile(matched, 90)), 2) if len(matched) else None,
    }


def keypoint_disagreement(data_dir: Path, rig: Rig, model: PanoramaModel, fits: Any) -> Any:
    from polyvision.calibration.cvat import load_cvat_points

    seen: dict[str, dict[str, np.ndarray]] = {}
    for name in ("left", "right"):
        rejected = {o.label for o in getattr(fits[name], "outliers", [])}
        for point in load_cvat_points(data_dir / f"{name}_keypoints.xml"):
            if point.label in rejected:
                continue
            ground = image_to_pitch(rig.cameras[name], [point.image_xy])
            if np.isfinite(ground).all():
                seen.setdefault(point.label, {})[name] = pitch_to_panorama(model, ground)[0]
    pairs = [v for v in seen.values() if len(v) == 2]
    gaps = np.asarray([np.linalg.norm(v["left"] - v["right"]) for v in pairs])
    return {
        "points_in_both": len(gaps),
        "median_px": round(float(np.median(gaps)), 2) if len(gaps) else None,
        "max_px": round(float(gaps.max()), 2) if len(gaps) else None,
    }


def real_recording(data_dir: Path) -> Any:
    rig, fits = real_rig(data_dir)
    model = panorama_model_from_rig(rig)
    maps = build_stitch_maps(rig, model)
    left, right = data_dir / "left_camera.mp4", data_dir / "right_camera.mp4"
    started = time.perf_counter()
    lefts = sample_camera(left, 0, 250, 25.0)
    rights = sample_camera(right, 0, 250, 25.0)
    sampled = time.perf_counter() - started
    started = time.perf_counter()
    choice = choose_seam_and_gains(maps, lefts, rights)
    chosen = time.perf_counter() - started
    plans = {"stitch": choice.plan(maps), "baseline": baseline_plan(maps)}
    figures: dict[str, Any] = {
        "panorama": [model.width, model.height],
        "sample_s": round(sampled, 1),
        "choose_s": round(chosen, 2),
        "gains": np.round(choice.gains, 4).tolist(),
        "seam": {k: v for k, v in choice.figures.items() if k != "samples"},
        "keypoint_disagreement": keypoint_disagreement(data_dir, rig, model, fits),
        "line_disagreement": line_disagreement(maps, plans["stitch"], lefts[0], rights[0]),
    }
    # The step on the sampled frames' per-camera median (the players moved away).
    background_l = np.median(np.stack(lefts), axis=0).astype(np.uint8)
    background_r = np.median(np.stack(rights), axis=0).astype(np.uint8)
    warped_r = maps.remap("right", background_r)
    for name, plan in plans.items():
        tally = VariantTally()
        stitched = stitch_frame(background_l, background_r, plan)
        brightness_steps(plan, stitched, warped_r, maps.valid, np.zeros((0, 4)), tally)
        steps = tally.figures()
        figures[name] = {
            k: steps[k]
            for k in ("brightness_step_median", "seam_step_median", "seam_colour_step_median")
        }
    return figures


# --- main -------------------------------------------------------------------------------------


def _size(text: str) -> tuple[int, int]:
    width, height = text.lower().split("x")
    return int(width), int(height)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seeds", type=int, nargs="*", default=[11, 12, 13])
    parser.add_argument("--seconds", type=float, default=12.0)
    parser.add_argument("--chunk-seconds", type=float, default=CHUNK_S)
    parser.add_argument("--size", type=_size, default=(1920, 1080))
    parser.add_argument("--real", type=Path, default=REAL_DIR, help="soccertrack-v1 folder")
    parser.add_argument("--no-real", action="store_true")
    args = parser.parse_args(argv)
    figures: dict[str, Any] = {
        "definitions": __doc__.split("Run:")[0].strip() if __doc__ else "",
        "synthetic": [],
    }
    with tempfile.TemporaryDirectory() as scratch:
        for seed in args.seeds:
            result = synthetic_match(
                seed, args.seconds, args.size, args.chunk_seconds, Path(scratch)
            )
            figures["synthetic"].append(result)
            s, b = result["stitch"], result["baseline"]
            print(
                f"seed {seed} ({result['panorama'][0]}x{result['panorama'][1]}): "
                f"pitch points median {result['pitch_points']['median_px']} px "
                f"(max {result['pitch_points']['max_px']}), spots max "
                f"{result['spot_centroids']['max_px']} px; doubled-figure frames "
                f"{s['frames_with_doubled_figure']:.1%} (baseline "
                f"{b['frames_with_doubled_figure']:.1%}); brightness step "
                f"{s['brightness_step_median']} (baseline {b['brightness_step_median']}), "
                f"seam step {s['seam_step_median']} (baseline {b['seam_step_median']})"
            )
    runs = figures["synthetic"]
    figures["synthetic_summary"] = (
        {}
        if not runs
        else {
            "seeds": args.seeds,
            "seconds": args.seconds,
            "chunk_seconds": args.chunk_seconds,
            "size": list(args.size),
            "pitch_points_median_px": max(r["pitch_points"]["median_px"] for r in runs),
            "frames_with_doubled_figure": {
                v: round(float(np.mean([r[v]["frames_with_doubled_figure"] for r in runs])), 4)
                for v in ("stitch", "baseline")
            },
            "brightness_step_median": {
                v: round(float(np.median([r[v]["brightness_step_median"] for r in runs])), 2)
                for v in ("stitch", "baseline")
            },
            "seam_step_median": {
                v: round(float(np.median([r[v]["seam_step_median"] for r in runs])), 2)
                for v in ("stitch", "baseline")
            },
            "seam_colour_step_median": {
                v: round(float(np.median([r[v]["seam_colour_step_median"] for r in runs])), 2)
                for v in ("stitch", "baseline")
            },
        }
    )
    print("summary:", figures["synthetic_summary"])
    if not args.no_real:
        if args.real.is_dir():
            figures["real"] = real_recording(args.real)
            print("real:", figures["real"])
        else:
            print(f"real recording not found at {args.real}: skipped")
    path = write_results("stitch_quality", figures)
    print(f"results: {path}")


if __name__ == "__main__":
    main()
