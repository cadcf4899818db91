"""Where each stage's objects live under a revision, and so what a cleanup removes.

A reprocess only needs the manifests (and outputs) of the stages it redoes gone: every stage
recomputes when its manifest is missing. A cancel removes the whole revision.
"""

from __future__ import annotations

from activities.index.contracts import CleanupInput
from polyvision.artifacts import artifact_key, match_prefix

# The object folders each stage writes under a revision.
STAGE_FOLDERS: dict[str, tuple[str, ...]] = {
    "ingest": ("ingest",),
    "stitch": ("stitch",),
    "detect": ("detect",),
    "track": ("track",),
    "vcam": ("vcam",),
    "analyze": ("analyze",),
    "encode": ("encode", "hls"),
    "index": ("index",),
}


def cleanup_prefixes(input: CleanupInput) -> list[str]:
    """The key prefixes (each ending in ``/``) whose objects ``input`` removes.

    Raises:
        ValueError: ``input.stages`` names a stage that is not in `STAGE_FOLDERS`.
    """
    if input.stages is None:
        return [match_prefix(input.organization_id, input.match_id, input.revision) + "/"]
    unknown = sorted(set(input.stages) - set(STAGE_FOLDERS))
    if unknown:
        raise ValueError(f"unknown stages {unknown}")
    return [
        artifact_key(input.organization_id, input.match_id, input.revision, folder) + "/"
        for stage in input.stages
        for folder in STAGE_FOLDERS[stage]
    ]
