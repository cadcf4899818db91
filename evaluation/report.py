"""`run_eval`: score a processed match's exported results against the synthetic ground truth."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.ball import BallScores, score_ball
from evaluation.detection import DetectionScore, evaluate_detections
from evaluation.formats import (
    BALL_FILE,
    DETECTIONS_FILE,
    TRACKS_FILE,
    VCAM_FILE,
    Results,
    Truth,
    load_results,
    load_truth,
)
from evaluation.tracking import (
    GROUPS,
    UNKNOWN_GROUP,
    DistanceScores,
    GroupAccuracy,
    IdentityCounts,
    PositionError,
    TrackingScores,
    build_sequence,
    distance_covered,
    group_accuracy,
    identity_counts,
    match_pairs,
    mean_position_error,
    position_error,
    team_accuracy,
    tracking_scores,
)
from evaluation.vcam import VcamScores, ball_in_view


@dataclass
class EvalReport:
    """Every score of one evaluation; a section is None when its results file was missing.

    Attributes:
        truth_dir: Ground-truth directory.
        results_dir: Results directory.
        frames: Frames in the clip (from ``match.json``).
        iou_threshold: IoU threshold of the detection scores.
        match_threshold_m: Pitch distance under which a track matches a truth person.
        detection: Per image space, one score per class.
        tracking: MOTA, IDF1, HOTA and their counts.
        matched_pairs: Number of truth-track pairs behind the pair-based scores below.
        position_error_m: Mean distance over matched pairs.
        position: Signed (track minus truth) mean and median error and the mean bias.
        identities: Track ids per true person.
        distance: Distance covered per player against the majority-matched track.
        team_accuracy: Share of matched pairs with the right team.
        team_role: Truth (team, role) group against track group over matched pairs, with the
            overall and per-group accuracy.
        vcam: Ball-in-view share of the virtual camera.
        ball: The ball track's scores: found within 2 m and 1 m, false reports, height error,
            in/out of play agreement.
        notes: Sections skipped and why.
    """

    truth_dir: str
    results_dir: str
    frames: int
    iou_threshold: float
    match_threshold_m: float
    detection: dict[str, list[DetectionScore]] | None = None
    tracking: TrackingScores | None = None
    matched_pairs: int = 0
    position_error_m: float | None = None
    position: PositionError | None = None
    identities: IdentityCounts | None = None
    distance: DistanceScores | None = None
    team_accuracy: float | None = None
    team_role: GroupAccuracy | None = None
    vcam: VcamScores | None = None
    ball: BallScores | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data (absent values are None, never NaN)."""
        detection = None
        if self.detection is not None:
            detection = {
                space: {
                    s.name: {
                        "class_id": s.class_id,
                        "tp": s.tp,
                        "fp": s.fp,
                        "fn": s.fn,
                        "precision": s.precision,
                        "recall": s.recall,
                    }
                    for s in scores
                }
                for space, scores in self.detection.items()
            }
        tracking = None
        if self.tracking is not None:
            t = self.tracking
            tracking = {
                "mota": t.mota,
                "idf1": t.idf1,
                "hota": t.hota,
                "deta": t.deta,
                "assa": t.assa,
                "loca": t.loca,
                "tp": t.tp,
                "fp": t.fp,
                "fn": t.fn,
                "id_switches": t.id_switches,
                "idtp": t.idtp,
                "idfp": t.idfp,
                "idfn": t.idfn,
                "matched_pairs": self.matched_pairs,
                "mean_position_error_m": self.position_error_m,
                "position_bias_m": None if self.position is None else self.position.bias_m,
                "ids_per_person": (
                    None if self.identities is None else self.identities.ids_per_person
                ),
                "team_accuracy": self.team_accuracy,
                "team_role_accuracy": None if self.team_role is None else self.team_role.accuracy,
                "position_error": _position_dict(self.position),
                "identities": _identities_dict(self.identities),
                "team_role": _team_role_dict(self.team_role),
            }
        distance = None
        if self.distance is not None:
            d = self.distance
            distance = {
                "mean_abs_error_m": d.mean_abs_error_m,
                "mean_rel_error": d.mean_rel_error,
                "unmatched_players": d.unmatched_players,
                "players": [
                    {
                        "truth_id": p.truth_id,
                        "truth_m": p.truth_m,
                        "track_id": p.track_id,
                        "track_m": p.track_m,
                        "abs_error_m": p.abs_error_m,
                        "rel_error": p.rel_error,
                    }
                    for p in d.players
                ],
            }
        vcam = None
        if self.vcam is not None:
            vcam = {
                "frames": self.vcam.frames,
                "ball_in_view": self.vcam.in_view,
                "missing_frames": self.vcam.missing_frames,
                "ball_in_view_share": self.vcam.ball_in_view_share,
            }
        return {
            "truth_dir": self.truth_dir,
            "results_dir": self.results_dir,
            "frames": self.frames,
            "iou_threshold": self.iou_threshold,
            "match_threshold_m": self.match_threshold_m,
            "detection": detection,
            "tracking": tracking,
            "distance_covered": distance,
            "vcam": vcam,
            "ball": _ball_dict(self.ball),
            "notes": list(self.notes),
        }

    def format_table(self) -> str:
        """The report as plain aligned text for a terminal."""
        lines = [f"truth {self.truth_dir}", f"results {self.results_dir}", ""]
        if self.detection is not None:
            lines.append(f"Detection (IoU >= {self.iou_threshold:.2f})")
            rows = [
                [s.space, s.name, s.tp, s.fp, s.fn, _fmt(s.precision), _fmt(s.recall)]
                for scores in self.detection.values()
                for s in scores
            ]
            headers = ["space", "class", "TP", "FP", "FN", "precision", "recall"]
            lines += [*_table(headers, rows), ""]
        if self.tracking is not None:
            t = self.tracking
            lines.append(f"Tracking (pitch, match <= {self.match_threshold_m:.2f} m)")
            headers = ["MOTA", "IDF1", "HOTA", "DetA", "AssA", "IDSW", "TP", "FP", "FN"]
            row: list[object] = [_fmt(t.mota), _fmt(t.idf1), _fmt(t.hota), _fmt(t.deta)]
            row += [_fmt(t.assa), t.id_switches, t.tp, t.fp, t.fn]
            lines += [*_table(headers, [row]), ""]
        summary: list[list[object]] = []
        if self.tracking is not None:
            summary.append(["mean position error (m)", _fmt(self.position_error_m)])
            p = self.position
            summary.append(["mean position bias (m)", _fmt(None if p is None else p.bias_m)])
            summary.append(["mean error x (m)", _fmt(None if p is None else p.mean_x_m)])
            summary.append(["mean error y (m)", _fmt(None if p is None else p.mean_y_m)])
            summary.append(["median error x (m)", _fmt(None if p is None else p.median_x_m)])
            summary.append(["median error y (m)", _fmt(None if p is None else p.median_y_m)])
            ids = self.identities
            summary.append(["ids per person", _fmt(None if ids is None else ids.ids_per_person)])
            matched = None if ids is None else ids.matched_ids_per_person
            summary.append(["matched ids per person", _fmt(matched)])
            summary.append(["team accuracy", _fmt(self.team_accuracy)])
            accuracy = None if self.team_role is None else self.team_role.accuracy
            summary.append(["team and role accuracy", _fmt(accuracy)])
        if self.distance is not None:
            summary.append(["distance covered error (m)", _fmt(self.distance.mean_abs_error_m)])
            summary.append(["distance covered error (rel)", _fmt(self.distance.mean_rel_error)])
            summary.append(["players without a track", self.distance.unmatched_players])
        if self.vcam is not None:
            summary.append(["ball in view (share)", _fmt(self.vcam.ball_in_view_share)])
            summary.append(["frames without a vcam quad", self.vcam.missing_frames])
        if self.ball is not None:
            b = self.ball
            summary.append(["ball frames (visible, in play)", b.ball_frames])
            summary.append(["ball found within 2 m (share)", _fmt(b.found_2m_share)])
            summary.append(["ball found within 1 m (share)", _fmt(b.found_1m_share)])
            summary.append(["ball false reports (share, no ball)", _fmt(b.false_report_share)])
            summary.append(["ball false reports (share, all)", _fmt(b.false_report_share_all)])
            summary.append(["ball height error > 1 m (m)", _fmt(b.height_mae_m)])
            summary.append(["ball in/out of play agreement", _fmt(b.in_play_agreement)])
        if summary:
            lines += [*_table(["metric", "value"], summary), ""]
        if self.team_role is not None and self.team_role.pairs:
            lines.append("Team and role (matched pairs; rows truth, columns track)")
            lines += [*_confusion_table(self.team_role), ""]
        lines += [f"note: {note}" for note in self.notes]
        return "\n".join(lines).rstrip() + "\n"


def _ball_dict(ball: BallScores | None) -> dict[str, Any] | None:
    if ball is None:
        return None
    return {
        "frames": ball.frames,
        "ball_frames": ball.ball_frames,
        "within_2m": ball.within_2m,
        "within_1m": ball.within_1m,
        "found_2m_share": ball.found_2m_share,
        "found_1m_share": ball.found_1m_share,
        "no_ball_frames": ball.no_ball_frames,
        "false_reports": ball.false_reports,
        "false_report_share": ball.false_report_share,
        "false_report_share_all": ball.false_report_share_all,
        "high_frames": ball.high_frames,
        "height_mae_m": ball.height_mae_m,
        "in_play_frames": ball.in_play_frames,
        "in_play_agree": ball.in_play_agree,
        "in_play_agreement": ball.in_play_agreement,
    }


def _position_dict(position: PositionError | None) -> dict[str, Any] | None:
    if position is None:
        return None
    return {
        "pairs": position.pairs,
        "mean_m": position.mean_m,
        "mean_x_m": position.mean_x_m,
        "mean_y_m": position.mean_y_m,
        "median_x_m": position.median_x_m,
        "median_y_m": position.median_y_m,
        "bias_m": position.bias_m,
    }


def _identities_dict(identities: IdentityCounts | None) -> dict[str, Any] | None:
    if identities is None:
        return None
    return {
        "truth_people": identities.truth_people,
        "track_ids": identities.track_ids,
        "matched_track_ids": identities.matched_track_ids,
        "ids_per_person": identities.ids_per_person,
        "matched_ids_per_person": identities.matched_ids_per_person,
    }


def _team_role_dict(scores: GroupAccuracy | None) -> dict[str, Any] | None:
    if scores is None:
        return None
    return {
        "pairs": scores.pairs,
        "accuracy": scores.accuracy,
        "groups": {
            group: {"pairs": scores.group_pairs(group), "accuracy": scores.group_accuracy(group)}
            for group in GROUPS
        },
        "confusion": {truth: dict(row) for truth, row in scores.confusion.items()},
    }


def _confusion_table(scores: GroupAccuracy) -> list[str]:
    # Only truth groups that have pairs: a clip without, say, a goalkeeper on screen would
    # otherwise print rows of zeros.
    columns = [*GROUPS, UNKNOWN_GROUP]
    rows: list[list[object]] = [
        [truth, *(row[k] for k in columns), _fmt(scores.group_accuracy(truth))]
        for truth, row in scores.confusion.items()
        if scores.group_pairs(truth)
    ]
    return _table(["truth \\ track", *columns, "accuracy"], rows)


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def _table(headers: list[str], rows: list[list[object]]) -> list[str]:
    cells = [headers, *[[str(c) for c in row] for row in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    # Text columns left-aligned, numbers right-aligned, two spaces between columns.
    numeric = [all(_is_number(r[i]) for r in cells[1:]) for i in range(len(headers))]

    def line(r: list[str]) -> str:
        parts = [
            c.rjust(w) if n else c.ljust(w) for c, w, n in zip(r, widths, numeric, strict=True)
        ]
        return "  " + "  ".join(parts).rstrip()

    return [line(r) for r in cells]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return text == "-"
    return True


def evaluate(
    truth: Truth,
    results: Results,
    *,
    truth_dir: str = "",
    results_dir: str = "",
    iou_threshold: float = 0.5,
    match_threshold_m: float = 1.0,
) -> EvalReport:
    """Score loaded results against a loaded truth (what `run_eval` does after reading files)."""
    report = EvalReport(truth_dir, results_dir, truth.frames, iou_threshold, match_threshold_m)
    if results.detections is None:
        report.notes.append(f"no {DETECTIONS_FILE}: detection scores skipped")
    else:
        report.detection = {}
        if not len(results.detections.frame):
            report.notes.append(f"{DETECTIONS_FILE} has no rows: nothing to score")
        for space in sorted(set(results.detections.space.tolist())):
            if space not in truth.boxes:
                report.notes.append(f"no truth boxes for space {space!r}: its detections skipped")
                continue
            report.detection[space] = evaluate_detections(
                truth, results.detections, space, iou_threshold=iou_threshold
            )
    if results.tracks is None:
        report.notes.append(f"no {TRACKS_FILE}: tracking scores skipped")
    else:
        _score_tracks(report, truth, results, match_threshold_m)
    if results.vcam is None:
        report.notes.append(f"no {VCAM_FILE}: virtual-camera score skipped")
    else:
        assert truth.in_play is not None  # set by Truth.__post_init__
        scored = truth.is_ball & truth.in_play
        report.vcam = ball_in_view(
            truth.frame[scored],
            truth.position[scored, :2],
            results.vcam.frame,
            results.vcam.quad,
        )
    if results.ball is None:
        report.notes.append(f"no {BALL_FILE}: ball scores skipped")
    else:
        report.ball = score_ball(truth, results.ball)
    return report


def _score_tracks(
    report: EvalReport, truth: Truth, results: Results, match_threshold_m: float
) -> None:
    assert results.tracks is not None
    tracks = results.tracks
    people = truth.is_person
    # The pairs' truth rows index the people-only arrays, hence `truth.team[people]` below.
    seq = build_sequence(
        truth.frame[people],
        truth.id[people],
        truth.position[people, :2],
        tracks.frame,
        tracks.track_id,
        tracks.position,
    )
    report.tracking = tracking_scores(seq, match_threshold_m)
    pairs = match_pairs(seq, match_threshold_m)
    report.matched_pairs = len(pairs.frame)
    report.position_error_m = mean_position_error(pairs)
    report.position = position_error(pairs, truth.position[people, :2], tracks.position)
    report.identities = identity_counts(pairs, truth.id[people], tracks.track_id)
    report.team_accuracy = team_accuracy(pairs, truth.team[people], tracks.team)
    assert tracks.role is not None  # set by Tracks.__post_init__
    report.team_role = group_accuracy(
        pairs, truth.team[people], truth.role[people], tracks.team, tracks.role
    )
    players = np.isin(truth.team, ["home", "away"])
    report.distance = distance_covered(
        pairs,
        truth.frame[players],
        truth.id[players],
        truth.position[players, :2],
        tracks.frame,
        tracks.track_id,
        tracks.position,
    )


def run_eval(
    truth_dir: Path,
    results_dir: Path,
    out_json: Path | None = None,
    *,
    iou_threshold: float = 0.5,
    match_threshold_m: float = 1.0,
) -> EvalReport:
    """Load the truth and the results, score every section present, optionally write JSON.

    Args:
        truth_dir: Directory with ``truth.parquet`` and ``match.json``.
        results_dir: Directory with any of ``detections``, ``tracks``, ``vcam``, ``ball`` parquet
            files; missing ones skip their section with a note.
        out_json: Where to write ``report.to_dict()`` as JSON, if given.
        iou_threshold: IoU for a detection to match a truth box.
        match_threshold_m: Pitch distance for a track to match a truth person.

    Returns:
        The report; printing it (``format_table``) is the caller's business.
    """
    report = evaluate(
        load_truth(truth_dir),
        load_results(results_dir),
        truth_dir=str(truth_dir),
        results_dir=str(results_dir),
        iou_threshold=iou_threshold,
        match_threshold_m=match_threshold_m,
    )
    if out_json is not None:
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n")
    return report
