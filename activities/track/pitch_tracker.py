"""Multi-person tracking on the pitch, in metres: one Kalman filter per player, kit-aware.

Why pitch metres and not image boxes: in a panorama of a full pitch, players are 15 to 60 px
tall, two players' boxes overlap whenever they cross, and the same step is 3 px far away and
30 px near. On the ground plane a step is a step: a gate of a few metres at 9 m/s top speed
holds near and far, and two players who cross in the image are usually a metre apart on the
grass. ByteTrack's ideas are kept where they pay (Zhang et al., 2022): high-score detections
are associated first, low-score ones only continue confirmed tracks, and new tracks need a
few hits before they count.

Each detection carries its torso colour (CIE Lab, detect stage). The association cost adds a
kit term, so a crossing between two teams does not swap identities, and a track's colour is
a running average of its matched detections.

The state is plain JSON-able data (`to_state`), exact across a round trip: it rides in the
track activity's heartbeat, so a resumed attempt continues with the same identities.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

STATE_VERSION = 1

_FORBIDDEN = 1e6


@dataclass(frozen=True)
class TrackerSettings:
    """Tuning of `PitchTracker`; defaults measured on synthetic matches (see bench/trackers.py).

    Attributes:
        high_score: detections at least this confident are associated first and may start
            tracks; those between ``low_score`` and this only continue confirmed tracks.
        low_score: weaker detections are ignored.
        confirm_hits: consecutive hits that make a new track count.
        max_lost_s: a confirmed track unmatched this long is closed (the match-wide linking
            pass may still join it to a later one).
        gate_m: association radius around the predicted position of a track just seen...
        max_speed_mps: ...grown by this speed for every second the track has been unseen.
        accel_mps2: process noise: the acceleration a player can make unseen.
        measurement_m: the position noise of a detection's ground point.
        colour_weight_m: the kit term's weight, in metres of cost per ``colour_scale`` of
            Lab distance.
        colour_scale: Lab distance counted as one unit of kit difference (capped at 2).
        colour_memory: running-average weight of a track's previous colour.
        duplicate_m: two same-kit detections closer than this are one person (the
            panorama's overlap can show one player twice).
    """

    high_score: float = 0.5
    low_score: float = 0.1
    confirm_hits: int = 6
    max_lost_s: float = 1.5
    gate_m: float = 2.0
    max_speed_mps: float = 3.0
    accel_mps2: float = 4.0
    measurement_m: float = 0.35
    colour_weight_m: float = 1.5
    colour_scale: float = 20.0
    colour_memory: float = 0.9
    duplicate_m: float = 0.6


@dataclass
class PitchFrame:
    """One frame's tracking answer: the confirmed tracks seen in it.

    Attributes:
        track_id: ``[M]`` identities.
        xy: ``[M, 2]`` filtered positions in pitch metres.
        detection: ``[M]`` index of the frame's detection each track was updated with.
    """

    track_id: I64
    xy: F64
    detection: I64
    earlier: list[tuple[int, int, float, float, float, float, float]] = field(default_factory=list)
    """Hits of tracks confirmed in this frame, from before it: ``(frames_ago, track_id, x, y,
    L, a, b)``. A player is there from the first sighting, not from the confirming one."""


class PitchTracker:
    """Tracks people on the pitch frame by frame (see the module docstring)."""

    def __init__(self, fps: float, settings: TrackerSettings | None = None) -> None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        self.fps = float(fps)
        self.settings = settings or TrackerSettings()
        dt = 1.0 / self.fps
        self._motion = np.eye(4)
        self._motion[0, 2] = self._motion[1, 3] = dt
        q = self.settings.accel_mps2**2
        block = np.array([[dt**4 / 4, dt**3 / 2], [dt**3 / 2, dt**2]]) * q
        self._noise = np.zeros((4, 4))
        self._noise[np.ix_([0, 2], [0, 2])] = block
        self._noise[np.ix_([1, 3], [1, 3])] = block
        self._frame = 0
        self._next_id = 1
        self.ids = np.zeros(0, np.int64)
        self.mean = np.zeros((0, 4))
        self.cov = np.zeros((0, 4, 4))
        self.lab = np.zeros((0, 3))
        self.hits = np.zeros(0, np.int64)
        self.lost = np.zeros(0, np.int64)  # frames since the last update
        self.confirmed = np.zeros(0, np.bool_)
        # Tentative tracks' hits: id -> [[frame, x, y, L, a, b], ...] (NaN colour: None in JSON).
        self.pending: dict[int, list[list[float]]] = {}

    @property
    def frame(self) -> int:
        """Frames fed so far."""
        return self._frame

    def update(self, xy: npt.ArrayLike, score: npt.ArrayLike, lab: npt.ArrayLike) -> PitchFrame:
        """Feed one frame's person detections in pitch metres; returns the confirmed tracks
        updated in it.

        Args:
            xy: ``[N, 2]`` ground points in pitch metres (already filtered to the pitch).
            score: ``[N]`` detector confidence.
            lab: ``[N, 3]`` torso colour (NaN: unknown).
        """
        s = self.settings
        points = np.asarray(xy, np.float64).reshape(-1, 2)
        scores = np.asarray(score, np.float64).reshape(-1)
        colours = np.asarray(lab, np.float64).reshape(-1, 3)
        self._frame += 1
        self._predict()
        keep = _merge_duplicates(points, scores, colours, s)
        keep = keep[scores[keep] >= s.low_score]
        high = keep[scores[keep] >= s.high_score]
        low = keep[scores[keep] < s.high_score]

        matched_track: list[I64] = []
        matched_det: list[I64] = []
        # 1: confident detections against every live track, confirmed first by cost.
        tracks_all = np.arange(len(self.ids))
        t1, d1 = self._associate(tracks_all, high, points, colours)
        matched_track.append(t1)
        matched_det.append(d1)
        # 2: weak detections only continue confirmed tracks still unmatched.
        rest = np.setdiff1d(tracks_all[self.confirmed], t1)
        t2, d2 = self._associate(rest, low, points, colours)
        matched_track.append(t2)
        matched_det.append(d2)
        tracks = np.concatenate(matched_track)
        dets = np.concatenate(matched_det)
        was_confirmed = self.confirmed.copy()
        self._correct(tracks, points[dets], colours[dets])
        earlier = self._earlier(tracks, dets, points, colours, was_confirmed)
        # Tentative tracks are dropped at their first miss; new tracks from the confident rest.
        missed = np.setdiff1d(tracks_all, tracks)
        drop = missed[~self.confirmed[missed]]
        lost_long = self.lost > round(s.max_lost_s * self.fps)
        det_of_track = np.full(len(self.ids), -1, np.int64)
        det_of_track[tracks] = dets
        gone = np.zeros(len(self.ids), np.bool_)
        gone[drop] = True
        gone |= lost_long
        self._keep(~gone)
        det_of_track = det_of_track[~gone]
        born = np.setdiff1d(high, dets)
        self._start(born, points, colours)
        det_of_track = np.concatenate([det_of_track, born])
        report = (det_of_track >= 0) & self.confirmed
        self.pending = {t: hits for t, hits in self.pending.items() if t in set(self.ids.tolist())}
        return PitchFrame(
            track_id=self.ids[report].copy(),
            xy=self.mean[report, :2].copy(),
            detection=det_of_track[report],
            earlier=earlier,
        )

    def _earlier(
        self,
        tracks: I64,
        dets: I64,
        points: F64,
        colours: F64,
        was_confirmed: npt.NDArray[np.bool_],
    ) -> list[tuple[int, int, float, float, float, float, float]]:
        """Keep tentative tracks' hits; give back those of the tracks confirmed just now."""
        out: list[tuple[int, int, float, float, float, float, float]] = []
        for track, det in zip(tracks.tolist(), dets.tolist(), strict=True):
            identity = int(self.ids[track])
            if was_confirmed[track]:
                continue
            if self.confirmed[track]:
                for frame, x, y, *lab in self.pending.pop(identity, []):
                    colour = [np.nan if v is None else float(v) for v in lab]
                    out.append((self._frame - int(frame), identity, x, y, *colour))  # type: ignore[arg-type]
            else:
                hit = [float(self._frame), *points[det].tolist()]
                hit += [None if not np.isfinite(v) else float(v) for v in colours[det]]
                self.pending.setdefault(identity, []).append(hit)
        return out

    # -- Kalman filter --------------------------------------------------------------------

    def _predict(self) -> None:
        if not len(self.ids):
            return
        self.mean = self.mean @ self._motion.T
        self.cov = self._motion @ self.cov @ self._motion.T + self._noise
        self.lost += 1

    def _correct(self, tracks: I64, z: F64, lab: F64) -> None:
        if not len(tracks):
            return
        r = self.settings.measurement_m**2
        for row, track in enumerate(tracks.tolist()):
            mean, cov = self.mean[track], self.cov[track]
            innovation_cov = cov[:2, :2] + np.eye(2) * r
            gain = cov[:, :2] @ np.linalg.inv(innovation_cov)
            self.mean[track] = mean + gain @ (z[row] - mean[:2])
            self.cov[track] = cov - gain @ cov[:2, :]
            colour = lab[row]
            if np.isfinite(colour).all():
                if np.isfinite(self.lab[track]).all():
                    m = self.settings.colour_memory
                    self.lab[track] = m * self.lab[track] + (1 - m) * colour
                else:
                    self.lab[track] = colour
        self.hits[tracks] += 1
        self.lost[tracks] = 0
        self.confirmed[tracks] |= self.hits[tracks] >= self.settings.confirm_hits

    # -- association ----------------------------------------------------------------------

    def _associate(self, tracks: I64, dets: I64, points: F64, colours: F64) -> tuple[I64, I64]:
        empty = np.zeros(0, np.int64)
        if not len(tracks) or not len(dets):
            return empty, empty
        s = self.settings
        predicted = self.mean[tracks, :2]
        distance = np.linalg.norm(predicted[:, None, :] - points[dets][None, :, :], axis=2)
        unseen_s = np.maximum(self.lost[tracks] - 1, 0) / self.fps
        gate = s.gate_m + s.max_speed_mps * unseen_s
        lab_t = self.lab[tracks]
        lab_d = colours[dets]
        with np.errstate(invalid="ignore"):
            colour = np.linalg.norm(lab_t[:, None, :] - lab_d[None, :, :], axis=2) / s.colour_scale
        colour = np.where(np.isfinite(colour), np.minimum(colour, 2.0), 0.5)
        # Tentative tracks are cheaper to lose than confirmed ones: they pay a small premium.
        premium = np.where(self.confirmed[tracks], 0.0, 0.3)[:, None]
        cost = distance + s.colour_weight_m * colour + premium
        cost = np.where(distance <= gate[:, None], cost, _FORBIDDEN)
        rows, cols = linear_sum_assignment(cost)
        good = cost[rows, cols] < _FORBIDDEN
        return tracks[rows[good]].astype(np.int64), dets[cols[good]].astype(np.int64)

    # -- bookkeeping ----------------------------------------------------------------------

    def _keep(self, mask: npt.NDArray[np.bool_]) -> None:
        self.ids = self.ids[mask]
        self.mean = self.mean[mask]
        self.cov = self.cov[mask]
        self.lab = self.lab[mask]
        self.hits = self.hits[mask]
        self.lost = self.lost[mask]
        self.confirmed = self.confirmed[mask]

    def _start(self, dets: I64, points: F64, colours: F64) -> None:
        if not len(dets):
            return
        n = len(dets)
        mean = np.zeros((n, 4))
        mean[:, :2] = points[dets]
        cov = np.zeros((n, 4, 4))
        cov[:, 0, 0] = cov[:, 1, 1] = self.settings.measurement_m**2
        cov[:, 2, 2] = cov[:, 3, 3] = 4.0  # (2 m/s)^2: a new player's speed is unknown
        for row, det in enumerate(dets.tolist()):
            if self.settings.confirm_hits <= 1:
                break
            hit = [float(self._frame), *points[det].tolist()]
            hit += [None if not np.isfinite(v) else float(v) for v in colours[det]]
            self.pending[self._next_id + row] = [hit]
        self.ids = np.concatenate([self.ids, np.arange(self._next_id, self._next_id + n)])
        self._next_id += n
        self.mean = np.concatenate([self.mean, mean])
        self.cov = np.concatenate([self.cov, cov])
        self.lab = np.concatenate([self.lab, colours[dets]])
        self.hits = np.concatenate([self.hits, np.ones(n, np.int64)])
        self.lost = np.concatenate([self.lost, np.zeros(n, np.int64)])
        confirmed = np.full(n, self.settings.confirm_hits <= 1, np.bool_)
        self.confirmed = np.concatenate([self.confirmed, confirmed])

    # -- state ----------------------------------------------------------------------------

    def to_state(self) -> dict[str, Any]:
        """Everything needed to continue, as JSON-able plain data (exact round trip)."""
        return {
            "version": STATE_VERSION,
            "fps": self.fps,
            "frame": self._frame,
            "next_id": self._next_id,
            "ids": self.ids.tolist(),
            "mean": self.mean.tolist(),
            "cov": self.cov.tolist(),
            "lab": [[None if not np.isfinite(v) else float(v) for v in row] for row in self.lab],
            "hits": self.hits.tolist(),
            "lost": self.lost.tolist(),
            "confirmed": self.confirmed.tolist(),
            "pending": [[t, hits] for t, hits in sorted(self.pending.items())],
        }

    @classmethod
    def from_state(
        cls, state: dict[str, Any], settings: TrackerSettings | None = None
    ) -> PitchTracker:
        """Inverse of :meth:`to_state`."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unknown tracker state version {state.get('version')!r}")
        tracker = cls(float(state["fps"]), settings)
        tracker._frame = int(state["frame"])
        tracker._next_id = int(state["next_id"])
        tracker.ids = np.array(state["ids"], np.int64).reshape(-1)
        tracker.mean = np.array(state["mean"], np.float64).reshape(-1, 4)
        tracker.cov = np.array(state["cov"], np.float64).reshape(-1, 4, 4)
        lab = [[np.nan if v is None else v for v in row] for row in state["lab"]]
        tracker.lab = np.array(lab, np.float64).reshape(-1, 3)
        tracker.hits = np.array(state["hits"], np.int64).reshape(-1)
        tracker.lost = np.array(state["lost"], np.int64).reshape(-1)
        tracker.confirmed = np.array(state["confirmed"], np.bool_).reshape(-1)
        tracker.pending = {int(t): hits for t, hits in state.get("pending", [])}
        return tracker


def _merge_duplicates(points: F64, scores: F64, colours: F64, s: TrackerSettings) -> I64:
    """Indices of the detections kept after merging same-kit pairs closer than
    ``duplicate_m`` (the more confident of each pair stays)."""
    n = len(points)
    if n < 2:
        return np.arange(n, dtype=np.int64)
    close = np.linalg.norm(points[:, None, :] - points[None, :, :], axis=2) < s.duplicate_m
    with np.errstate(invalid="ignore"):
        kit = np.linalg.norm(colours[:, None, :] - colours[None, :, :], axis=2)
    same = close & ~(kit >= s.colour_scale)  # unknown colour (NaN) counts as the same kit
    np.fill_diagonal(same, False)
    keep = np.ones(n, np.bool_)
    if not same.any():
        return np.arange(n, dtype=np.int64)
    for i in np.argsort(-scores, kind="stable").tolist():
        if keep[i]:
            others = same[i] & keep
            others[i] = False
            keep[others] = False
    return np.flatnonzero(keep).astype(np.int64)
