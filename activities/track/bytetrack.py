"""ByteTrack (Zhang et al., "ByteTrack: Multi-Object Tracking by Associating Every Detection Box",
ECCV 2022) for the people on the stitched panorama.

Why our own and not a library (each checked by installing it into a scratch venv):

* ``supervision`` 0.31.2 (current) no longer ships ``ByteTrack``; it was deprecated in 0.28 and
  moved to Roboflow's ``trackers`` package.
* ``supervision`` 0.30.9, the last release with it, warns ``FutureWarning`` on every construction
  (our pytest turns warnings into errors) and, even with ``--no-deps``, cannot be imported
  without pydeprecate, pillow, requests (+ urllib3, idna, certifi), pyyaml, tqdm and defusedxml.
  0.26.x still requires ``opencv-python``, which would clobber our headless ``cv2``.
* ``trackers`` 2.6.1 requires ``opencv-python``, ``rich`` and all of ``supervision``.
* None of them can save and restore tracker state as plain data, which the activity needs to
  checkpoint into heartbeat details and resume after a crash with identical identities.

So this module is a compact re-implementation of the reference tracker
(``ifzhang/ByteTrack``, ``yolox/tracker/byte_tracker.py``) on numpy + scipy, with the same
constants, and with the state held as arrays so that it serialises exactly
(:meth:`ByteTracker.to_state`).

One ``update`` per frame:

1. Every track's constant-velocity Kalman filter on ``(cx, cy, w/h, h)`` predicts the frame.
2. Confirmed tracks (tracked and lost) are matched to *high* detections
   (``score >= track_thresh``) by Hungarian assignment on ``1 - IoU * score``, accepted below
   ``match_thresh``.
3. Tracked tracks still unmatched are matched to *low* detections
   (``low_thresh <= score < track_thresh``) on ``1 - IoU`` below 0.5: ByteTrack's second stage,
   which keeps occluded, low-confidence people on their track instead of dropping them. Low
   detections never start tracks.
4. Unconfirmed tracks (born last frame) are matched to the remaining high detections (below 0.7);
   a match confirms them and gives them an identity, a miss deletes them.
5. Remaining high detections with ``score >= new_track_thresh`` start unconfirmed tracks.
6. Tracks unmatched for more than ``track_buffer * frame_rate / 30`` frames are dropped.

Identities are handed out at confirmation, counting up from 1, and never reused.

Two deliberate differences from the reference. A confirmed track missed for up to
``coast_frames`` frames is still reported, at its Kalman prediction with score 0 (see the
parameter); ``coast_frames=0`` reports as the reference does. And a lost track overlapping a
tracked one is dropped as a duplicate only if the two were never alive together (see
``ByteTracker._duplicates``), so a player hidden while crossing another keeps the identity.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.optimize import linear_sum_assignment

from activities.detect.detections import Detections
from activities.track.tracks import Tracks

__all__ = ["ByteTracker", "box_iou", "track_sequence"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

STATE_VERSION = 1

# The reference tracker's Kalman noise, relative to box height so that near and far people
# (tens vs hundreds of pixels tall on the panorama) are tracked with the same relative slack.
_STD_POSITION = 1.0 / 20.0
_STD_VELOCITY = 1.0 / 160.0
# Constant-velocity motion over one frame: position += velocity.
_MOTION = np.eye(8) + np.eye(8, k=4)
# Stage thresholds of the reference tracker (second stage and unconfirmed tracks).
_LOW_MATCH_THRESH = 0.5
_UNCONFIRMED_MATCH_THRESH = 0.7
# A tracked and a lost track this overlapping are the same person twice (reference: 0.15 cost).
_DUPLICATE_IOU = 0.85
# Cost of a forbidden pair; far above any real cost so Hungarian first maximises valid matches.
_FORBIDDEN = 1e6


def box_iou(a: npt.ArrayLike, b: npt.ArrayLike) -> F64:
    """Intersection over union of every box in ``a`` with every box in ``b``.

    Args:
        a: ``[N, 4]`` boxes ``x1, y1, x2, y2``.
        b: ``[M, 4]`` boxes.

    Returns:
        float64 ``[N, M]``; 0 where a union is empty.
    """
    aa = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    bb = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(aa[:, None, :2], bb[None, :, :2])
    rb = np.minimum(aa[:, None, 2:], bb[None, :, 2:])
    wh = np.clip(rb - lt, 0.0, None)
    inter = wh[..., 0] * wh[..., 1]
    area_a = (aa[:, 2] - aa[:, 0]) * (aa[:, 3] - aa[:, 1])
    area_b = (bb[:, 2] - bb[:, 0]) * (bb[:, 3] - bb[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    out: F64 = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    return out


def _xyxy_to_xyah(xyxy: F64) -> F64:
    w = xyxy[:, 2] - xyxy[:, 0]
    h = xyxy[:, 3] - xyxy[:, 1]
    return np.stack([xyxy[:, 0] + w / 2, xyxy[:, 1] + h / 2, w / h, h], axis=1)


def _xyah_to_xyxy(xyah: F64) -> F64:
    h = xyah[:, 3]
    w = xyah[:, 2] * h
    cx, cy = xyah[:, 0], xyah[:, 1]
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)


def _kf_initiate(z: F64) -> tuple[F64, F64]:
    """Kalman state for new tracks from ``[N, 4]`` xyah measurements (velocity 0, unsure)."""
    h = z[:, 3]
    mean = np.concatenate([z, np.zeros_like(z)], axis=1)
    pos, vel = 2 * _STD_POSITION * h, 10 * _STD_VELOCITY * h
    std = np.stack([pos, pos, np.full_like(h, 1e-2), pos, vel, vel, np.full_like(h, 1e-5), vel], 1)
    cov = np.zeros((len(z), 8, 8))
    idx = np.arange(8)
    cov[:, idx, idx] = std**2
    return mean, cov


def _kf_predict(mean: F64, cov: F64) -> tuple[F64, F64]:
    """One frame of constant-velocity motion for ``[T, 8]`` means and ``[T, 8, 8]`` covariances."""
    h = mean[:, 3]
    pos, vel = _STD_POSITION * h, _STD_VELOCITY * h
    std = np.stack([pos, pos, np.full_like(h, 1e-2), pos, vel, vel, np.full_like(h, 1e-5), vel], 1)
    idx = np.arange(8)
    new_cov = _MOTION @ cov @ _MOTION.T
    new_cov[:, idx, idx] += std**2
    return mean @ _MOTION.T, new_cov


def _kf_update(mean: F64, cov: F64, z: F64) -> tuple[F64, F64]:
    """Correct ``[K, 8]`` states with ``[K, 4]`` xyah measurements."""
    h = mean[:, 3]
    pos = _STD_POSITION * h
    idx = np.arange(4)
    # The measurement picks the first four state components, so H P H^T and P H^T are slices.
    s = cov[:, :4, :4].copy()
    s[:, idx, idx] += np.stack([pos, pos, np.full_like(h, 1e-1), pos], 1) ** 2
    gain_t = np.linalg.solve(s, cov[:, :4, :])  # [K, 4, 8] = S^-1 H P (S, P symmetric)
    innovation = z - mean[:, :4]
    new_mean = mean + np.einsum("kij,ki->kj", gain_t, innovation)
    new_cov = cov - gain_t.transpose(0, 2, 1) @ s @ gain_t
    return new_mean, new_cov


def _match(cost: F64, thresh: float) -> tuple[I64, I64, I64]:
    """Minimum-cost assignment among pairs with ``cost <= thresh``.

    Returns:
        ``[P, 2]`` matched (row, column) pairs, then unmatched rows and unmatched columns.
    """
    rows, cols = cost.shape
    if rows == 0 or cols == 0:
        return np.zeros((0, 2), np.int64), np.arange(rows), np.arange(cols)
    gated = np.where(cost <= thresh, cost, _FORBIDDEN)
    r, c = linear_sum_assignment(gated)
    ok = gated[r, c] <= thresh
    pairs = np.stack([r[ok], c[ok]], axis=1).astype(np.int64)
    return (
        pairs,
        np.setdiff1d(np.arange(rows), pairs[:, 0]),
        np.setdiff1d(np.arange(cols), pairs[:, 1]),
    )


@dataclass
class _Table:
    """All live tracks, one row each; row order is part of the state (it fixes tie-breaking)."""

    track_id: I64  # 0 while unconfirmed
    lost: npt.NDArray[np.bool_]
    score: npt.NDArray[np.float32]
    class_id: I64
    start: I64  # frame of birth
    last: I64  # frame of the last matched detection
    mean: F64  # [T, 8] Kalman mean: cx, cy, w/h, h and their velocities
    cov: F64  # [T, 8, 8]

    @classmethod
    def empty(cls) -> _Table:
        return cls(
            track_id=np.zeros(0, np.int64),
            lost=np.zeros(0, np.bool_),
            score=np.zeros(0, np.float32),
            class_id=np.zeros(0, np.int64),
            start=np.zeros(0, np.int64),
            last=np.zeros(0, np.int64),
            mean=np.zeros((0, 8)),
            cov=np.zeros((0, 8, 8)),
        )

    def take(self, rows: npt.NDArray[np.bool_] | I64) -> _Table:
        return _Table(
            self.track_id[rows],
            self.lost[rows],
            self.score[rows],
            self.class_id[rows],
            self.start[rows],
            self.last[rows],
            self.mean[rows],
            self.cov[rows],
        )

    def append(self, other: _Table) -> _Table:
        return _Table(
            np.concatenate([self.track_id, other.track_id]),
            np.concatenate([self.lost, other.lost]),
            np.concatenate([self.score, other.score]),
            np.concatenate([self.class_id, other.class_id]),
            np.concatenate([self.start, other.start]),
            np.concatenate([self.last, other.last]),
            np.concatenate([self.mean, other.mean]),
            np.concatenate([self.cov, other.cov]),
        )


class ByteTracker:
    """Online multi-object tracker; feed it one frame of detections at a time.

    Deterministic: the same detections give the same tracks, also across
    :meth:`to_state` / :meth:`from_state`.

    Args:
        frame_rate: frames per second of the detections; scales ``track_buffer``.
        track_thresh: detections at or above this score are *high* (first stage, may start
            tracks); below it they are *low* (second stage only).
        low_thresh: detections below this score are ignored.
        match_thresh: largest ``1 - IoU * score`` accepted in the first stage.
        track_buffer: how long a lost track may be re-found, in frames at 30 fps (the reference
            tracker's unit): ``int(track_buffer * frame_rate / 30)`` frames, e.g. 25 at 25 fps.
        min_box_area: tracks whose box is smaller than this (square pixels) are not reported
            (they are still tracked).
        new_track_thresh: a high detection starts a track only at or above this score;
            ``None`` means ``track_thresh + 0.1`` as in the reference tracker.
        classes: the class ids to track (others are ignored; tracks never change class);
            ``None`` tracks all. Default: people only, the ball is tracked separately.
        coast_frames: keep reporting a confirmed track for this many frames after its last
            detection, at its predicted box with score 0. The reference tracker reports only
            matched tracks (``coast_frames=0``), so every single-frame detector miss is a hole
            in the trajectory; on the panorama the far players are small and missed often,
            and the pitch analytics want continuous positions. 3 frames (0.12 s at 25 fps)
            fills most holes while a constant-velocity prediction is still close; the score 0
            lets consumers drop predicted boxes.
    """

    def __init__(
        self,
        frame_rate: float = 25.0,
        track_thresh: float = 0.5,
        low_thresh: float = 0.1,
        match_thresh: float = 0.8,
        track_buffer: int = 30,
        min_box_area: float = 10.0,
        new_track_thresh: float | None = None,
        classes: Sequence[int] | None = (Detections.PERSON,),
        coast_frames: int = 3,
    ) -> None:
        if frame_rate <= 0:
            raise ValueError(f"frame_rate must be > 0, got {frame_rate}")
        if not 0.0 <= low_thresh <= track_thresh:
            raise ValueError("need 0 <= low_thresh <= track_thresh")
        if track_buffer < 0 or coast_frames < 0:
            raise ValueError("track_buffer and coast_frames must be >= 0")
        self.frame_rate = float(frame_rate)
        self.track_thresh = float(track_thresh)
        self.low_thresh = float(low_thresh)
        self.match_thresh = float(match_thresh)
        self.track_buffer = int(track_buffer)
        self.min_box_area = float(min_box_area)
        self.new_track_thresh = float(
            track_thresh + 0.1 if new_track_thresh is None else new_track_thresh
        )
        self.classes = None if classes is None else tuple(int(c) for c in classes)
        self.coast_frames = int(coast_frames)
        self.max_time_lost = int(self.frame_rate / 30.0 * self.track_buffer)
        self._frame = 0
        self._next_id = 1
        self._t = _Table.empty()

    @property
    def frame(self) -> int:
        """Number of frames seen so far."""
        return self._frame

    def update(self, detections: Detections) -> Tracks:
        """Advance one frame.

        Args:
            detections: this frame's detections, any classes and scores.

        Returns:
            The confirmed tracks matched in this frame, with their Kalman-filtered boxes, and
            those unmatched for at most ``coast_frames`` frames, at their predicted boxes with
            score 0; sorted by ``track_id``.
        """
        self._frame += 1
        frame = self._frame
        det = detections
        if self.classes is not None:
            det = det.filter(np.isin(det.class_id, self.classes))
        wh = det.xyxy[:, 2:] - det.xyxy[:, :2]
        # A zero-height box has no aspect ratio for the Kalman state.
        det = det.filter((wh > 0).all(axis=1) & (det.score >= self.low_thresh))
        boxes = det.xyxy.astype(np.float64)
        scores = det.score
        det_cls = det.class_id.astype(np.int64)
        high = np.flatnonzero(scores >= self.track_thresh)
        low = np.flatnonzero(scores < self.track_thresh)

        t = self._t
        mean = t.mean.copy()
        # The reference tracker stops a lost box's height from drifting while it is unseen.
        mean[t.lost, 7] = 0.0
        mean, cov = _kf_predict(mean, t.cov)
        pred = _xyah_to_xyxy(mean[:, :4])

        def cost(tracks: I64, dets: I64, fuse: bool) -> F64:
            sim = box_iou(pred[tracks], boxes[dets])
            if fuse:
                # Reference (non-MOT20) setting: weigh overlap by confidence, so a confident
                # detection wins a track over a doubtful one that overlaps as much.
                sim = sim * scores[dets][None, :].astype(np.float64)
            c = 1.0 - sim
            c[t.class_id[tracks][:, None] != det_cls[dets][None, :]] = _FORBIDDEN
            return c

        # Stage 1: confirmed tracks, tracked or lost, against high detections.
        pool = np.flatnonzero(t.track_id > 0)
        m1, u_pool, u_high = _match(cost(pool, high, True), self.match_thresh)
        # Stage 2: still-tracked leftovers against low detections.
        rest = pool[u_pool]
        rest = rest[~t.lost[rest]]
        m2, u_rest, _ = _match(cost(rest, low, False), _LOW_MATCH_THRESH)
        # Stage 3: unconfirmed tracks against the high detections left over.
        unconfirmed = np.flatnonzero(t.track_id == 0)
        high_left = high[u_high]
        m3, u_unc, u_high_left = _match(
            cost(unconfirmed, high_left, True), _UNCONFIRMED_MATCH_THRESH
        )

        rows = np.concatenate([pool[m1[:, 0]], rest[m2[:, 0]], unconfirmed[m3[:, 0]]])
        dets = np.concatenate([high[m1[:, 1]], low[m2[:, 1]], high_left[m3[:, 1]]])
        mean[rows], cov[rows] = _kf_update(mean[rows], cov[rows], _xyxy_to_xyah(boxes[dets]))
        track_id = t.track_id.copy()
        lost = t.lost.copy()
        score = t.score.copy()
        last = t.last.copy()
        lost[rows] = False
        score[rows] = scores[dets]
        last[rows] = frame
        # Identities in row order, so they do not depend on anything but the state.
        confirmed_now = np.sort(unconfirmed[m3[:, 0]])
        track_id[confirmed_now] = self._next_id + np.arange(len(confirmed_now))
        self._next_id += len(confirmed_now)
        lost[rest[u_rest]] = True

        keep = np.ones(len(t.track_id), np.bool_)
        keep[unconfirmed[u_unc]] = False
        keep &= ~(lost & (frame - last > self.max_time_lost))
        keep &= ~self._duplicates(track_id, lost, t.start, last, mean, keep)
        table = _Table(track_id, lost, score, t.class_id, t.start, last, mean, cov).take(keep)

        born = high_left[u_high_left]
        born = born[scores[born] >= self.new_track_thresh]
        if len(born):
            b_mean, b_cov = _kf_initiate(_xyxy_to_xyah(boxes[born]))
            n = len(born)
            # The reference tracker confirms the first frame's tracks at once: nothing came
            # before them to have been a false positive of.
            ids = self._next_id + np.arange(n) if frame == 1 else np.zeros(n, np.int64)
            if frame == 1:
                self._next_id += n
            table = table.append(
                _Table(
                    ids.astype(np.int64),
                    np.zeros(n, np.bool_),
                    scores[born].copy(),
                    det_cls[born],
                    np.full(n, frame, np.int64),
                    np.full(n, frame, np.int64),
                    b_mean,
                    b_cov,
                )
            )
        self._t = table
        return self._report()

    def _duplicates(
        self,
        track_id: I64,
        lost: npt.NDArray[np.bool_],
        start: I64,
        last: I64,
        mean: F64,
        alive: npt.NDArray[np.bool_],
    ) -> npt.NDArray[np.bool_]:
        """Rows that duplicate another live track: a tracked and a lost track on one person.

        The one followed for the shorter time goes (reference ``remove_duplicate_stracks``).
        Unlike the reference, a pair counts only if the tracked track was born after the lost
        one was last seen: tracks that were alive together were on different people, and
        when one is hidden behind the other (players crossing) its lost track overlaps the
        visible one, which the reference would delete, losing the hidden player's identity.
        """
        out = np.zeros(len(track_id), np.bool_)
        tracked = np.flatnonzero(alive & ~lost)
        gone = np.flatnonzero(alive & lost)
        if len(tracked) == 0 or len(gone) == 0:
            return out
        box = _xyah_to_xyxy(mean[:, :4])
        pa, pb = np.nonzero(box_iou(box[tracked], box[gone]) > _DUPLICATE_IOU)
        for a, b in zip(tracked[pa], gone[pb], strict=True):
            if start[a] <= last[b]:
                continue
            if last[a] - start[a] > last[b] - start[b]:
                out[b] = True
            else:
                out[a] = True
        return out

    def _report(self) -> Tracks:
        t = self._t
        show = (t.track_id > 0) & (self._frame - t.last <= self.coast_frames)
        xyxy = _xyah_to_xyxy(t.mean[show, :4])
        wh = xyxy[:, 2:] - xyxy[:, :2]
        big = (wh > 0).all(axis=1) & (wh[:, 0] * wh[:, 1] >= self.min_box_area)
        order = np.argsort(t.track_id[show][big], kind="stable")
        return Tracks(
            track_id=t.track_id[show][big][order].astype(np.int32),
            xyxy=xyxy[big][order].astype(np.float32),
            score=np.where(t.last == self._frame, t.score, np.float32(0))[show][big][order],
            class_id=t.class_id[show][big][order].astype(np.int16),
        )

    def to_state(self) -> dict[str, Any]:
        """Everything needed to resume, as JSON-able plain data (exact: floats round-trip).

        About 1.5 KB per live track; 25 people plus a few lost tracks stay well under
        Temporal's 256 KB payload warning.
        """
        t = self._t
        return {
            "version": STATE_VERSION,
            "params": {
                "frame_rate": self.frame_rate,
                "track_thresh": self.track_thresh,
                "low_thresh": self.low_thresh,
                "match_thresh": self.match_thresh,
                "track_buffer": self.track_buffer,
                "min_box_area": self.min_box_area,
                "new_track_thresh": self.new_track_thresh,
                "classes": None if self.classes is None else list(self.classes),
                "coast_frames": self.coast_frames,
            },
            "frame": self._frame,
            "next_id": self._next_id,
            "tracks": {
                "track_id": t.track_id.tolist(),
                "lost": t.lost.tolist(),
                # float32 -> Python float is exact, and so is the way back.
                "score": t.score.tolist(),
                "class_id": t.class_id.tolist(),
                "start": t.start.tolist(),
                "last": t.last.tolist(),
                "mean": t.mean.tolist(),
                "cov": t.cov.reshape(-1, 64).tolist(),
            },
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> ByteTracker:
        """Rebuild a tracker saved by :meth:`to_state`; it continues exactly where that left off.

        Raises:
            ValueError: the state has another version or inconsistent track arrays.
        """
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported tracker state version {state.get('version')!r}")
        tracker = cls(**state["params"])
        tracker._frame = int(state["frame"])
        tracker._next_id = int(state["next_id"])
        s = state["tracks"]
        n = len(s["track_id"])
        tracker._t = _Table(
            track_id=np.asarray(s["track_id"], np.int64).reshape(n),
            lost=np.asarray(s["lost"], np.bool_).reshape(n),
            score=np.asarray(s["score"], np.float32).reshape(n),
            class_id=np.asarray(s["class_id"], np.int64).reshape(n),
            start=np.asarray(s["start"], np.int64).reshape(n),
            last=np.asarray(s["last"], np.int64).reshape(n),
            mean=np.asarray(s["mean"], np.float64).reshape(n, 8),
            cov=np.asarray(s["cov"], np.float64).reshape(n, 8, 8),
        )
        return tracker


def track_sequence(
    frames: Iterable[Detections], tracker: ByteTracker | None = None, frame_rate: float = 25.0
) -> list[Tracks]:
    """Track a whole sequence of per-frame detections.

    Args:
        frames: detections of consecutive frames, in order.
        tracker: the tracker to advance (e.g. one resumed with :meth:`ByteTracker.from_state`);
            a fresh ``ByteTracker(frame_rate)`` when ``None``.
        frame_rate: frames per second, used only for a fresh tracker.

    Returns:
        The tracks of each frame.
    """
    tr = ByteTracker(frame_rate) if tracker is None else tracker
    return [tr.update(d) for d in frames]
