"""Every name Temporal records in a history: workflow, activity, query, signal and update types.

Recorded histories (``tests/workflows/histories``) and the runs in flight on a cluster refer to
these strings, so they are fixed: a rename breaks replay. Change one only together with a
``workflow.patched`` branch or re-recorded histories, and say so in the commit. Activities
register under these names (``@activity.defn(name=...)``) and workflows call them by name with
the stage's light contract types, so workflow code never imports an activity module.
"""

from __future__ import annotations

from typing import Final

# -- workflows -------------------------------------------------------------------------------
MATCH_WORKFLOW: Final = "MatchWorkflow"
STITCH_DETECT_BATCH_WORKFLOW: Final = "StitchDetectBatchWorkflow"
RENDER_BATCH_WORKFLOW: Final = "RenderBatchWorkflow"
HEALTH_CHECK_WORKFLOW: Final = "HealthCheckWorkflow"
MATCH_VIEW_WORKFLOW: Final = "MatchViewWorkflow"  # re-renders a processed match's camera
RETENTION_WORKFLOW: Final = "RetentionWorkflow"  # daily: expires matches past retention

# -- the match workflow's operator surface -----------------------------------------------------
PROGRESS_QUERY: Final = "progress"
CHUNK_DONE_SIGNAL: Final = "chunk_done"
CHUNKS_DONE_SIGNAL: Final = "chunks_done"  # several chunks of a stage at once (coalesced)
REPROCESS_UPDATE: Final = "reprocess"

# -- activities, by stage ----------------------------------------------------------------------
INGEST: Final = "ingest"
STITCH_PREPARE: Final = "stitch_prepare"
STITCH_CHUNK: Final = "stitch_chunk"
DETECT_CHUNK: Final = "detect_chunk"
TRACK_MATCH: Final = "track_match"
VCAM_PLAN: Final = "vcam_plan"
VCAM_RENDER: Final = "vcam_render"
ANALYZE_MATCH: Final = "analyze_match"
MINIMAP_RENDER: Final = "minimap_render"
PACKAGE_HLS: Final = "package_hls"
INDEX_MATCH: Final = "index_match"
CLEANUP_MATCH: Final = "cleanup_match"
VIEW_SOURCES: Final = "view_sources"  # what a re-render reuses from a processed revision
PING: Final = "ping"
GPU_PROBE: Final = "gpu_probe"
EXPIRE_MATCHES: Final = "expire_matches"  # retention: objects and analytics rows of old matches

ACTIVITIES: Final = (
    INGEST,
    STITCH_PREPARE,
    STITCH_CHUNK,
    DETECT_CHUNK,
    TRACK_MATCH,
    VCAM_PLAN,
    VCAM_RENDER,
    ANALYZE_MATCH,
    MINIMAP_RENDER,
    PACKAGE_HLS,
    INDEX_MATCH,
    CLEANUP_MATCH,
    VIEW_SOURCES,
    PING,
    GPU_PROBE,
    EXPIRE_MATCHES,
)
"""Every activity type; a test checks the workers register exactly these."""

WORKFLOWS: Final = (
    MATCH_WORKFLOW,
    STITCH_DETECT_BATCH_WORKFLOW,
    RENDER_BATCH_WORKFLOW,
    HEALTH_CHECK_WORKFLOW,
    MATCH_VIEW_WORKFLOW,
    RETENTION_WORKFLOW,
)
"""Every workflow type; a test checks the workers register exactly these."""


def match_workflow_id(match_id: str) -> str:
    """The id of a match's workflow: starting the same match twice finds the same workflow."""
    return f"match-{match_id}"


def view_workflow_id(match_id: str, view: str) -> str:
    """The id of the workflow rendering one view of a match (``match-{match_id}-view-{view}``).

    One per match and view name: asking for a view while it renders finds that run (a
    conflict), and a finished one may be asked for again.
    """
    return f"{match_workflow_id(match_id)}-view-{view}"
