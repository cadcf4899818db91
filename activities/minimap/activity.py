"""The minimap as a Temporal activity: the match drawn from above, one video per chunk.

Thin on purpose. It reads the revision's track points (pitch metres, team) and the frames where
the ball is reported, draws every frame of every chunk (`activities.minimap.draw`) and encodes
each chunk with the same encoder as the other renditions (`polyvision.media.encoder`: H.264,
closed GOPs), storing ``minimap/chunk-NNNNN.mp4``. The packager publishes them as the minimap
rendition beside the virtual camera's. The heartbeat carries the chunks done, so a retry after a
worker crash starts at the first chunk not yet stored; the manifest is written last.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from temporalio import activity

from activities.minimap.contracts import MINIMAP_SIZE, MinimapInput, MinimapOutput
from activities.minimap.draw import (
    TEAM_COLOURS,
    MinimapScene,
    PitchFrame,
    draw_frame,
    hex_colour,
    pitch_canvas,
)
from activities.track.ball_points import ball_points_digest
from activities.track.points import track_points_digest
from polyvision.artifacts import ChunkSpan, artifact_key
from polyvision.heartbeat import frames_done_reporter, heartbeat, resume_details
from polyvision.media.encoder import EncodeTarget, LadderEncoder
from polyvision.stage import StageStep
from polyvision.storage.analytics import AnalyticsStore
from polyvision.storage.objects import ObjectStore
from polyvision.temporal import names

CODE_VERSION = "minimap-1"
STAGE = "minimap"
CRF = 23  # flat colours and a few dots: a high CRF keeps them sharp at a tiny bit rate


class MinimapActivities:
    """The minimap activity, bound to the worker's stores.

    Args:
        objects: Object store for the chunk videos and the manifest.
        analytics: Analytics store holding the track points and the ball.
    """

    def __init__(self, objects: ObjectStore, analytics: AnalyticsStore) -> None:
        self._objects = objects
        self._analytics = analytics

    @activity.defn(name=names.MINIMAP_RENDER)
    async def render(self, input: MinimapInput) -> MinimapOutput:
        """Draw and encode every chunk of the match from above."""
        step = await self._step(input)
        if (done := await step.recorded()) is not None:
            return done
        scene = await asyncio.to_thread(self._scene, input)
        keys = [self._key(input, f"chunk-{c.chunk:05d}.mp4") for c in input.chunks]
        resumed = resume_details() or {}
        start = int(resumed.get("chunks_done", 0))
        if start and not all([await self._objects.exists(k) for k in keys[:start]]):
            start = 0  # the earlier attempt's outputs are gone: draw everything again
        scratch = Path(tempfile.mkdtemp(prefix="pv-minimap-"))
        try:
            for index in range(start, len(input.chunks)):
                chunk = input.chunks[index]
                local = scratch / f"chunk-{chunk.chunk:05d}.mp4"
                await asyncio.to_thread(
                    render_minimap_chunk,
                    scene,
                    chunk,
                    input,
                    local,
                    frames_done_reporter({"chunks_done": index}),
                )
                await self._objects.upload_file(keys[index], local, content_type="video/mp4")
                local.unlink()
                heartbeat({"chunks_done": index + 1})
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        output = MinimapOutput(chunk_keys=keys, manifest_key=step.manifest_key)
        return await step.record(output, {"chunks": len(keys)})

    def _scene(self, input: MinimapInput) -> MinimapScene:
        scope = {"org": input.organization_id, "match": input.match_id, "revision": input.revision}
        people = self._analytics.query_numpy(
            "SELECT frame, track_id, team, pitch_x, pitch_y FROM track_points "
            "WHERE organization_id = {org:String} AND match_id = {match:String} "
            "AND revision = {revision:UInt32}",
            scope,
        )
        ball = self._analytics.query_numpy(
            "SELECT frame, pitch_x, pitch_y FROM ball_points "
            "WHERE organization_id = {org:String} AND match_id = {match:String} "
            "AND revision = {revision:UInt32} AND visible = 1 AND in_play = 1",
            scope,
        )
        empty = np.zeros(0)
        # chDB answers an empty result without columns.
        people = people or {n: empty for n in ("frame", "track_id", "team", "pitch_x", "pitch_y")}
        ball = ball or {n: empty for n in ("frame", "pitch_x", "pitch_y")}
        colours = (
            hex_colour(input.home_kit_colour, TEAM_COLOURS[0]),
            hex_colour(input.away_kit_colour, TEAM_COLOURS[1]),
        )
        return MinimapScene(
            frames=people["frame"],
            track_ids=people["track_id"],
            teams=people["team"],
            xy=np.column_stack([people["pitch_x"], people["pitch_y"]]),
            ball_frames=ball["frame"],
            ball_xy=np.column_stack([ball["pitch_x"], ball["pitch_y"]]),
            fps=input.fps,
            team_colours=colours,
        )

    async def _step(self, input: MinimapInput) -> StageStep[MinimapOutput]:
        return StageStep.for_match(
            self._objects,
            input,
            stage=STAGE,
            inputs={
                "chunks": [(c.chunk, c.first_frame, c.frames) for c in input.chunks],
                "fps": input.fps,
                "colours": (input.home_kit_colour, input.away_kit_colour),
                "gop": input.gop_frames,
                "track_points": await asyncio.to_thread(
                    track_points_digest,
                    self._analytics,
                    input,
                    "chunk, frame, track_id, team, pitch_x, pitch_y",
                ),
                "ball_points": await asyncio.to_thread(ball_points_digest, self._analytics, input),
            },
            code_version=CODE_VERSION,
            output_type=MinimapOutput,
        )

    @staticmethod
    def _key(input: MinimapInput, name: str) -> str:
        return artifact_key(input.organization_id, input.match_id, input.revision, STAGE, name)


def render_minimap_chunk(
    scene: MinimapScene,
    chunk: ChunkSpan,
    input: MinimapInput,
    out: Path,
    on_progress: Callable[[int], None] | None = None,
) -> int:
    """Draw and encode one chunk's frames into ``out``; the number of frames written."""
    frame = PitchFrame.fit(MINIMAP_SIZE)
    canvas = pitch_canvas(frame)
    image = np.empty_like(canvas)
    gop = input.gop_frames if input.gop_frames > 0 else max(1, round(input.fps))
    target = EncodeTarget("minimap", MINIMAP_SIZE[0], MINIMAP_SIZE[1], out)
    with LadderEncoder([target], input.fps, gop=gop, crf=CRF) as encoder:
        for offset in range(chunk.frames):
            number = chunk.first_frame + offset
            people, colours = scene.people(number)
            draw_frame(canvas, frame, people, colours, scene.ball(number), out=image)
            encoder.write(image)
            if on_progress is not None and (offset + 1) % 25 == 0:
                on_progress(offset + 1)
        (written,) = encoder.close()
    return written.frames
