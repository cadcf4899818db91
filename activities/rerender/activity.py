"""`view_sources`: read what a processed revision stored that a re-render of its camera needs.

A view (`workflows.view.MatchViewWorkflow`) plans, renders and packages the virtual camera
again without running ingest, stitching, detection or tracking: it reuses their outputs. Those
are found through the manifests the stages wrote last (`polyvision.stage.StageStep`), which hold
each stage's typed output: ingest's chunk plan and frame rate, the panorama model of
``stitch/prepare/`` and each chunk's panorama video of ``stitch/chunk-NNNNN/``. The index
stage's manifest, written at the very end of a run, says the revision is complete (its tracks
and ball, which the planner reads from the analytics store, included).

Reading only: nothing is written, so the activity needs no manifest of its own.
"""

from __future__ import annotations

from typing import TypeVar

from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities.ingest.contracts import IngestOutput
from activities.rerender.contracts import ViewSourcesInput, ViewSourcesOutput
from activities.stitch.contracts import StitchChunkOutput, StitchPrepareOutput
from polyvision.artifacts import Manifest, artifact_key
from polyvision.stage import MANIFEST_NAME, output_from_json
from polyvision.storage.objects import ObjectNotFound, ObjectStore
from polyvision.temporal import names

OutputT = TypeVar("OutputT")

NOT_PROCESSED = "RevisionNotProcessed"
"""Error type (non-retryable) when the revision lacks an output a view reuses."""


class RerenderActivities:
    """The activity a view workflow starts with, bound to the worker's object store.

    Args:
        objects: Object store holding the revision's manifests and outputs.
    """

    def __init__(self, objects: ObjectStore) -> None:
        self._objects = objects

    @activity.defn(name=names.VIEW_SOURCES)
    async def sources(self, input: ViewSourcesInput) -> ViewSourcesOutput:
        """The chunk plan, panorama videos and model of a processed revision.

        Raises:
            ApplicationError: ``RevisionNotProcessed`` (not retried) when the revision has not
                finished processing or an output it recorded is gone.
        """
        await self._manifest(input, "index", ())  # written last: the run finished
        ingest = await self._output(input, "ingest", (), IngestOutput)
        prepare = await self._output(input, "stitch", ("prepare",), StitchPrepareOutput)
        panorama_keys: list[str] = []
        for chunk in ingest.chunks:
            name = f"chunk-{chunk.index:05d}"
            stitched = await self._output(input, "stitch", (name,), StitchChunkOutput)
            if stitched.frames != chunk.frame_count:
                raise self._refusal(
                    input,
                    f"its stitched chunk {chunk.index} has {stitched.frames} frames, "
                    f"not {chunk.frame_count}",
                )
            await self._exists(input, stitched.video_key)
            panorama_keys.append(stitched.video_key)
        await self._exists(input, prepare.panorama_model_key)
        return ViewSourcesOutput(
            chunks=list(ingest.chunks),
            panorama_keys=panorama_keys,
            panorama_model_key=prepare.panorama_model_key,
            fps=ingest.fps,
            frames=ingest.frame_count,
        )

    async def _manifest(
        self, input: ViewSourcesInput, stage: str, folder: tuple[str, ...]
    ) -> tuple[str, Manifest]:
        """A stage's manifest in the revision, and its key."""
        key = artifact_key(
            input.organization_id, input.match_id, input.revision, stage, *folder, MANIFEST_NAME
        )
        try:
            return key, Manifest.from_json(await self._objects.get(key))
        except ObjectNotFound as exc:
            raise self._refusal(input, f"it has no {stage} output ({key})") from exc
        except (ValueError, KeyError, TypeError) as exc:
            raise self._refusal(input, f"its {stage} manifest is unreadable ({key})") from exc

    async def _output(
        self,
        input: ViewSourcesInput,
        stage: str,
        folder: tuple[str, ...],
        output_type: type[OutputT],
    ) -> OutputT:
        """The typed output a stage's manifest recorded."""
        key, manifest = await self._manifest(input, stage, folder)
        try:
            return output_from_json(output_type, manifest.outputs["output"])
        except (TypeError, ValueError, KeyError) as exc:
            why = f"its {stage} manifest is of another layout ({key})"
            raise self._refusal(input, why) from exc

    async def _exists(self, input: ViewSourcesInput, key: str) -> None:
        if not await self._objects.exists(key):
            raise self._refusal(input, f"{key} is gone")

    @staticmethod
    def _refusal(input: ViewSourcesInput, why: str) -> ApplicationError:
        return ApplicationError(
            f"revision {input.revision} of match {input.match_id} cannot be re-rendered: {why}",
            type=NOT_PROCESSED,
            non_retryable=True,
        )
