"""Score a processed match against the synthetic ground truth (`polyvision eval`).

`run_eval` reads a ground-truth directory and an exported-results directory (formats in
`evaluation.formats`) and returns an `EvalReport`: detection precision and recall per class,
MOTA, IDF1 and HOTA (TrackEval), mean position error and bias, track ids per true person,
distance-covered error, team accuracy, team-and-role accuracy, the virtual camera's
ball-in-view share and the ball track's scores (found within 2 m and 1 m, false reports, height
error, in/out of play agreement).
"""

from evaluation.ball import BallScores, score_ball
from evaluation.detection import DetectionScore, box_iou, detection_pr, evaluate_detections
from evaluation.formats import (
    BALL_CLASS,
    BALL_FILE,
    PERSON_CLASS,
    BallResults,
    Detections,
    FormatError,
    Results,
    Tracks,
    Truth,
    VcamQuads,
    load_results,
    load_truth,
    write_results,
    write_truth,
)
from evaluation.report import EvalReport, evaluate, run_eval
from evaluation.tracking import (
    GROUPS,
    DistanceScores,
    GroupAccuracy,
    IdentityCounts,
    MatchedPairs,
    PlayerDistance,
    PositionError,
    TrackingScores,
    build_sequence,
    distance_covered,
    group_accuracy,
    identity_counts,
    match_pairs,
    mean_position_error,
    person_groups,
    position_error,
    team_accuracy,
    tracking_scores,
)
from evaluation.vcam import VcamScores, ball_in_view, points_in_quads

__all__ = [
    "BALL_CLASS",
    "BALL_FILE",
    "GROUPS",
    "PERSON_CLASS",
    "BallResults",
    "BallScores",
    "DetectionScore",
    "Detections",
    "DistanceScores",
    "EvalReport",
    "FormatError",
    "GroupAccuracy",
    "IdentityCounts",
    "MatchedPairs",
    "PlayerDistance",
    "PositionError",
    "Results",
    "TrackingScores",
    "Tracks",
    "Truth",
    "VcamQuads",
    "VcamScores",
    "ball_in_view",
    "box_iou",
    "build_sequence",
    "detection_pr",
    "distance_covered",
    "evaluate",
    "evaluate_detections",
    "group_accuracy",
    "identity_counts",
    "load_results",
    "load_truth",
    "match_pairs",
    "mean_position_error",
    "person_groups",
    "points_in_quads",
    "position_error",
    "run_eval",
    "score_ball",
    "team_accuracy",
    "tracking_scores",
    "write_results",
    "write_truth",
]
