"""Processing of matches: the one client that starts, follows, reprocesses and cancels them.

Sits between the API (and the CLI) and the workflows: `processing.client.MatchProcessing` talks
to Temporal by the recorded names of `polyvision.temporal.names` with the contract types of
`workflows.types`; `processing.catalog` keeps the metadata store's match rows in step;
`processing.views` starts the re-rendering of a processed match's camera in another mode. Nothing
here imports a workflow or activity implementation, a video decoder or native code.
"""

from processing.client import (
    MatchProcessing,
    MatchRun,
    NotStarted,
    NoWorkerAnswered,
    ProcessingEnded,
    ProcessingError,
    ProcessingState,
    Reprocessed,
    ReprocessRefused,
    UnknownStage,
    ViewRun,
    ViewRunning,
    ui_link,
)

__all__ = [
    "MatchProcessing",
    "MatchRun",
    "NoWorkerAnswered",
    "NotStarted",
    "ProcessingEnded",
    "ProcessingError",
    "ProcessingState",
    "ReprocessRefused",
    "Reprocessed",
    "UnknownStage",
    "ViewRun",
    "ViewRunning",
    "ui_link",
]
