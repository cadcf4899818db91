"""`polyvision overlay`'s input and output: the stores in, an MP4 and a PNG out.

Where things are (the keys the stages write, `polyvision.artifacts.artifact_key`):

* the chunk plan, the frame rate and the frame count: the ingest stage's manifest, whose chunks
  number the frames every later stage uses (``track_points.frame`` included);
* the panorama model: ``stitch/panorama.json``; the panorama video of chunk ``i``:
  ``stitch/chunk-{i:05d}.mp4``, whose ``k``-th frame is match frame ``chunk.start_frame + k``;
* the track points: the analytics store's ``track_points``; the ball: its ``ball_points``
  (none in a store or a revision from before the ball was tracked: nothing is drawn for it).

The stores are those of the ``PV_`` settings, or of the `polyvision up` data directory that
``--stack DIR`` names. chDB opens a data directory in one process only: a running stack holds
its analytics store, and the command says so (and to stop the stack) instead of failing inside
chDB. ``--org`` takes an organization id or, as `polyvision process` does, the slug of one
(``local``): stored keys carry the id, so a slug is looked up in the metadata database, read
only.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import av
import cv2
import numpy as np

from activities.ingest.contracts import IngestOutput
from activities.stitch.panorama import PanoramaError, PanoramaModel
from activities.track.ball_points import MatchRevision, read_ball_track
from activities.track.ball_track import BallTrack
from polyvision.artifacts import Manifest, artifact_key
from polyvision.media.writer import VideoWriter
from polyvision.settings import Settings, StartupError
from polyvision.stage import MANIFEST_NAME, output_from_json
from polyvision.storage.analytics import (
    AnalyticsError,
    AnalyticsStore,
    open_analytics_store,
    parse_analytics_url,
)
from polyvision.storage.objects import (
    InvalidObjectKey,
    ObjectNotFound,
    ObjectStore,
    open_object_store,
)
from programs.overlay.draw import Image, TrackTable, draw_overlay, trails
from programs.stack_state import EMBEDDED_SCHEMES, StackState, running_stack
from programs.worker.stores import StoreHolder, embedded_analytics_holder

TRAIL_SECONDS: Final = 1.0
VIDEO_NAME: Final = "overlay.mp4"


class OverlayError(Exception):
    """Why no overlay can be drawn, in one line (the command exits with status 2)."""


@dataclass(frozen=True)
class OverlayRequest:
    """What `polyvision overlay` was asked for (its arguments).

    Attributes:
        organization: Organization id, or the slug of one.
        match_id: The match.
        revision: Its processing revision.
        out_dir: Where the MP4 and the PNG go (created when missing).
        start_frame: First frame drawn.
        frames: How many frames to draw (fewer when the match ends sooner).
        png_frame: The frame also written as PNG; None: the middle of those drawn.
        width: Largest output width; the panorama is scaled down to it, never up.
        stack_dir: A `polyvision up` data directory whose stores to read; None: the settings'.
    """

    organization: str
    match_id: str
    revision: int
    out_dir: Path
    start_frame: int = 0
    frames: int = 250
    png_frame: int | None = None
    width: int = 1920
    stack_dir: Path | None = None


@dataclass(frozen=True)
class PanoramaChunk:
    """One chunk's panorama video and the match frames it holds."""

    index: int
    first_frame: int
    frames: int
    video_key: str


@dataclass(frozen=True)
class MatchPanorama:
    """What the object store says about a processed match's panorama.

    Attributes:
        organization_id: The id its keys carry (``--org`` resolved).
        model: The stitch stage's panorama model.
        fps: Frame rate.
        frame_count: Frames in the match.
        chunks: Every chunk of the plan, in order (their videos may be missing).
    """

    organization_id: str
    model: PanoramaModel
    fps: float
    frame_count: int
    chunks: list[PanoramaChunk]


@dataclass(frozen=True)
class Clip:
    """The frames to draw: ``first`` up to ``last`` (included), and the one written as PNG."""

    first: int
    last: int
    png_frame: int

    @property
    def frames(self) -> int:
        return self.last - self.first + 1


@dataclass(frozen=True)
class OverlayResult:
    """What was written."""

    video: Path
    png: Path
    clip: Clip
    frames_written: int
    points: int
    size: tuple[int, int]
    ball_frames: int = 0
    """Frames of the clip in which a ball (in play or not) is visible."""


def overlay_settings(
    settings: Settings, stack_dir: Path | None
) -> tuple[Settings, StackState | None]:
    """The settings whose stores to read: a running stack's, else ``stack_dir``'s, else as is;
    and the stack that runs there, if one does.

    A stack that runs in ``stack_dir`` (or in ``PV_DATA_DIR`` without one) names its stores in
    its ``stack.json``; a stopped one keeps its embedded stores at their default places in its
    data directory (a store on a server keeps this environment's ``PV_`` URL, as the stack has).

    Raises:
        OverlayError: ``stack_dir`` is not a directory, or the stack keeps a store on a
            server this environment does not name.
    """
    data_dir = stack_dir if stack_dir is not None else settings.data_dir
    state = running_stack(data_dir)
    if state is not None:
        try:
            return state.settings(settings), state
        except ValueError as exc:
            raise OverlayError(str(exc)) from None
    if stack_dir is None:
        return settings, None
    if not stack_dir.is_dir():
        raise OverlayError(f"--stack {stack_dir}: no such directory")
    root = stack_dir.expanduser().resolve()
    update: dict[str, object] = {"data_dir": root}
    defaults = {
        "database_url": f"sqlite+aiosqlite:///{root / 'metadata.db'}",
        "analytics_url": f"chdb://{root / 'analytics'}",
        "objects_url": f"file://{root / 'objects'}",
    }
    for name, default in defaults.items():
        if _embedded(getattr(settings, name)):
            update[name] = default
    return settings.model_copy(update=update), None


def _embedded(url: str) -> bool:
    return "://" in url and url.split("://", 1)[0].lower() in EMBEDDED_SCHEMES


def check_analytics_free(settings: Settings, stack: StackState | None = None) -> None:
    """Refuse, with the reason, an embedded analytics store another process holds.

    Args:
        settings: The stores to read.
        stack: The stack that runs in their data directory, if one does (its holding the store
            is recognised by its pid, however it was started).

    Raises:
        OverlayError: A `polyvision up` (or any other process) has the chDB directory open.
    """
    holder = embedded_analytics_holder(settings.analytics_url)
    if holder is None:
        return
    if stack is not None and holder.pid == stack.pid:
        holder = StoreHolder(holder.pid, "polyvision up")
    if holder.command == "polyvision up":
        advice = (
            "stop the stack (Ctrl-C where `polyvision up` runs) and run this again; its data "
            "stays, and `--stack DIR` reads it"
        )
    else:
        advice = "stop that process and run this again"
    raise OverlayError(
        f"the analytics store ({settings.analytics_url}) is held by {holder}: chDB opens a data"
        f" directory in one process only, so {advice}"
    )


def clip_frames(start_frame: int, frames: int, png_frame: int | None, frame_count: int) -> Clip:
    """The frames to draw, within the match, and the PNG's frame among them.

    Raises:
        OverlayError: The start is past the match's end, or the PNG's frame is not drawn.
    """
    if start_frame >= frame_count:
        raise OverlayError(
            f"--start-frame {start_frame} is past the match's end (frames 0-{frame_count - 1})"
        )
    last = min(start_frame + frames, frame_count) - 1
    png = (start_frame + last) // 2 if png_frame is None else png_frame
    if not start_frame <= png <= last:
        raise OverlayError(
            f"--png-frame {png} is not among the frames drawn ({start_frame}-{last})"
        )
    return Clip(start_frame, last, png)


def output_size(model: PanoramaModel, width: int) -> tuple[int, int]:
    """The output's ``(width, height)``: the panorama's aspect, at most ``width``, both even."""
    out_w = min(width, model.width) // 2 * 2
    out_h = max(2, round(model.height * out_w / model.width / 2) * 2)
    return out_w, out_h


async def _slug_organization_id(settings: Settings, slug: str) -> str | None:
    """The id of the organization with this slug, from the metadata database, or None.

    Read only: unlike `polyvision process`, nothing is created for an unknown slug, and a
    SQLite database that does not exist is not created either.
    """
    from sqlalchemy.exc import SQLAlchemyError
    from sqlmodel import col, select

    from polyvision.storage.metadata.engine import (
        create_engine,
        normalize_url,
        session_maker,
        sqlite_path,
    )
    from polyvision.storage.metadata.models import Organization

    try:
        url = normalize_url(settings.database_url)
    except StartupError:
        return None
    path = sqlite_path(url)
    if path is not None and not path.is_file():
        return None
    engine = create_engine(url)
    try:
        async with session_maker(engine)() as session:
            statement = select(Organization).where(col(Organization.slug) == slug)
            found = (await session.exec(statement)).first()
    except SQLAlchemyError:
        return None  # no such table, unreachable server: the caller reports the match unknown
    finally:
        await engine.dispose()
    return None if found is None else str(found.id)


def _ingest_manifest_key(organization_id: str, match_id: str, revision: int) -> str:
    return artifact_key(organization_id, match_id, revision, "ingest", MANIFEST_NAME)


async def _read_ingest(
    objects: ObjectStore, organization_id: str, match_id: str, revision: int
) -> IngestOutput | None:
    """The ingest stage's recorded output, None when the match revision was never ingested."""
    try:
        data = await objects.get(_ingest_manifest_key(organization_id, match_id, revision))
    except (ObjectNotFound, InvalidObjectKey):
        return None
    try:
        return output_from_json(IngestOutput, Manifest.from_json(data).outputs["output"])
    except (TypeError, ValueError, KeyError) as exc:
        raise OverlayError(
            f"the ingest manifest of match {match_id} is unreadable ({exc})"
        ) from None


async def find_match(
    objects: ObjectStore, settings: Settings, organization: str, match_id: str, revision: int
) -> MatchPanorama:
    """The match's chunk plan, frame rate and panorama model.

    Raises:
        OverlayError: No such match (nothing ingested under that organization, id and
            revision), or no panorama model (the stitch stage has not prepared one).
    """
    organization_id = organization
    ingest = await _read_ingest(objects, organization, match_id, revision)
    if ingest is None and not _is_uuid(organization):
        found = await _slug_organization_id(settings, organization)
        if found is not None:
            organization_id = found
            ingest = await _read_ingest(objects, found, match_id, revision)
    if ingest is None:
        raise OverlayError(
            f"no match {match_id} in organization {organization} (revision {revision}): nothing"
            f" was ingested at {_ingest_manifest_key(organization_id, match_id, revision)};"
            " check --match, --org, --revision and the stores (--stack DIR or PV_DATA_DIR)"
        )
    model_key = artifact_key(organization_id, match_id, revision, "stitch", "panorama.json")
    try:
        model = PanoramaModel.from_json((await objects.get(model_key)).decode())
    except ObjectNotFound:
        raise OverlayError(
            f"no panorama chunks for match {match_id}: the stitch stage has not run (no"
            f" {model_key})"
        ) from None
    except (PanoramaError, UnicodeDecodeError) as exc:
        raise OverlayError(f"the panorama model {model_key} is unreadable ({exc})") from None
    chunks = [
        PanoramaChunk(
            index=chunk.index,
            first_frame=chunk.start_frame,
            frames=chunk.end_frame - chunk.start_frame,
            video_key=artifact_key(
                organization_id, match_id, revision, "stitch", f"chunk-{chunk.index:05d}.mp4"
            ),
        )
        for chunk in ingest.chunks
    ]
    return MatchPanorama(organization_id, model, ingest.fps, ingest.frame_count, chunks)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


async def clip_chunks(
    objects: ObjectStore, match: MatchPanorama, clip: Clip
) -> list[PanoramaChunk]:
    """The chunks holding the clip's frames, each with its video in the store.

    Raises:
        OverlayError: A chunk of the clip has no panorama video (the stitch stage has not
            stitched it, or failed).
    """
    chunks = [
        chunk
        for chunk in match.chunks
        if chunk.first_frame <= clip.last and chunk.first_frame + chunk.frames > clip.first
    ]
    missing = [chunk for chunk in chunks if not await objects.exists(chunk.video_key)]
    if not chunks or len(missing) == len(chunks):
        raise OverlayError(
            f"no panorama chunks for frames {clip.first}-{clip.last}: the stitch stage has not"
            f" stitched them (no {missing[0].video_key if missing else 'chunk in the plan'})"
        )
    if missing:
        spans = ", ".join(
            f"chunk {c.index} (frames {c.first_frame}-{c.first_frame + c.frames - 1})"
            for c in missing
        )
        raise OverlayError(
            f"no panorama video for {spans}: the stitch stage has not stitched it; draw other"
            " frames with --start-frame and --frames"
        )
    return chunks


def _analytics_missing(analytics_url: str) -> bool:
    """Whether the URL names a chDB directory that does not exist (opening would create it)."""
    try:
        parsed = parse_analytics_url(analytics_url)
    except StartupError:
        return False  # opening it reports the problem
    return (
        parsed.backend == "chdb" and parsed.path.startswith("/") and not Path(parsed.path).exists()
    )


def _where() -> str:
    return (
        "organization_id = {org:String} AND match_id = {match:String} "
        "AND revision = {revision:UInt32}"
    )


def load_tracks(
    analytics: AnalyticsStore,
    organization_id: str,
    match_id: str,
    revision: int,
    first: int,
    last: int,
    history: int = 0,
) -> TrackTable:
    """The match's track points of frames ``first`` to ``last`` (both included), and of the
    ``history`` frames before ``first`` (where the first frames' trails come from).

    Raises:
        OverlayError: The match has no track points at all, or none in those frames.
    """
    parameters: dict[str, str | int] = {
        "org": organization_id,
        "match": match_id,
        "revision": revision,
    }
    extent = analytics.query_numpy(
        "SELECT count() AS n, min(frame) AS lo, max(frame) AS hi FROM track_points "
        f"WHERE {_where()}",
        parameters,
    )
    if int(extent["n"][0]) == 0:
        raise OverlayError(
            f"match {match_id} has no track points (revision {revision}): has the track stage run?"
        )
    rows = analytics.query_numpy(
        "SELECT frame, track_id, team, role, pitch_x, pitch_y FROM track_points "
        f"WHERE {_where()} AND frame >= {{first:UInt32}} AND frame <= {{last:UInt32}} "
        "ORDER BY frame, track_id",
        {**parameters, "first": max(0, first - history), "last": last},
    )
    tracks = TrackTable.from_columns(rows)
    if len(tracks.rows(first, last)) == 0:
        raise OverlayError(
            f"match {match_id} has no track points in frames {first}-{last} (its points are in"
            f" frames {int(extent['lo'][0])}-{int(extent['hi'][0])}); choose --start-frame there"
        )
    return tracks


def read_tracks(
    settings: Settings,
    match: MatchPanorama,
    match_id: str,
    revision: int,
    clip: Clip,
    trail_frames: int,
) -> TrackTable:
    """The clip's track points, and those of the second before it (for the first trails).

    Raises:
        OverlayError: No track points, or the analytics store cannot be read.
    """
    if _analytics_missing(settings.analytics_url):
        raise OverlayError(
            f"match {match_id} has no track points: the analytics store"
            f" ({settings.analytics_url}) does not exist"
        )
    try:
        with open_analytics_store(settings.analytics_url) as analytics:
            return load_tracks(
                analytics,
                match.organization_id,
                match_id,
                revision,
                clip.first,
                clip.last,
                history=trail_frames - 1,
            )
    except AnalyticsError as exc:
        reason = " ".join(str(exc).split())
        raise OverlayError(f"cannot read track_points from the analytics store: {reason}") from None


def load_ball(
    analytics: AnalyticsStore,
    organization_id: str,
    match_id: str,
    revision: int,
    first: int,
    last: int,
    history: int = 0,
) -> BallTrack:
    """The match's ball of frames ``first`` to ``last`` (both included), and of the ``history``
    frames before ``first`` (where the first frames' trail comes from).

    Empty when the store has no ``ball_points`` table (migrated before the ball) or the match
    no rows in it (tracked before the ball): the overlay then draws the people only.
    """
    exists = analytics.query_numpy(
        "SELECT count() AS n FROM system.tables "
        "WHERE database = currentDatabase() AND name = 'ball_points'"
    )
    if int(exists["n"][0]) == 0:
        return BallTrack.not_seen(0, 0)
    return read_ball_track(
        analytics,
        MatchRevision(organization_id, match_id, revision),
        start_frame=max(0, first - history),
        end_frame=last + 1,
    )


def read_ball(
    settings: Settings,
    match: MatchPanorama,
    match_id: str,
    revision: int,
    clip: Clip,
    trail_frames: int,
) -> BallTrack:
    """The clip's ball, and that of the second before it (for the first trail).

    Raises:
        OverlayError: The analytics store cannot be read.
    """
    try:
        with open_analytics_store(settings.analytics_url) as analytics:
            return load_ball(
                analytics,
                match.organization_id,
                match_id,
                revision,
                clip.first,
                clip.last,
                history=trail_frames - 1,
            )
    except AnalyticsError as exc:
        reason = " ".join(str(exc).split())
        raise OverlayError(f"cannot read ball_points from the analytics store: {reason}") from None


def panorama_frames(path: Path, size: tuple[int, int], skip: int) -> Iterator[Image]:
    """The video's frames after the first ``skip``, scaled to ``size`` as BGR.

    Like `activities.detect.frames.decode_frames`, but skipped frames are never converted, and
    each kept one is scaled by FFmpeg while it converts (area averaging, as `cv2.INTER_AREA`).
    """
    width, height = size
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        for index, frame in enumerate(container.decode(stream)):
            if index < skip:
                continue
            yield np.asarray(
                frame.to_ndarray(format="bgr24", width=width, height=height, interpolation="AREA"),
                dtype=np.uint8,
            )


def draw_chunk(
    video: Path,
    chunk: PanoramaChunk,
    clip: Clip,
    tracks: TrackTable,
    model: PanoramaModel,
    trail_frames: int,
    writer: VideoWriter,
    png: Path,
    ball: BallTrack | None = None,
) -> int:
    """Draw and encode the clip's frames of one chunk (the PNG too, if it is among them).

    ``ball``: the clip's ball (`load_ball`), drawn with its trail of ``trail_frames``; None: no
    ball.

    Returns:
        How many frames were written (fewer than planned when the video is shorter).
    """
    skip = max(0, clip.first - chunk.first_frame)
    written = 0
    size = (writer.width, writer.height)
    for offset, image in enumerate(panorama_frames(video, size, skip)):
        frame = chunk.first_frame + skip + offset
        if frame > clip.last or frame >= chunk.first_frame + chunk.frames:
            break
        drawn = draw_overlay(
            image,
            tracks.at(frame),
            trails(tracks, frame, trail_frames),
            model,
            frame=frame,
            trail_seconds=TRAIL_SECONDS,
            ball=None if ball is None else ball.slice_frames(frame - trail_frames + 1, frame + 1),
        )
        writer.write(drawn)
        written += 1
        if frame == clip.png_frame and not cv2.imwrite(str(png), drawn):
            raise OverlayError(f"cannot write {png}")
    return written


async def make_overlay(settings: Settings, request: OverlayRequest) -> OverlayResult:
    """Draw the request's frames into ``out_dir``: ``overlay.mp4`` and one PNG.

    Raises:
        OverlayError: Anything that keeps the overlay from being drawn, in one line.
    """
    settings, stack = overlay_settings(settings, request.stack_dir)
    check_analytics_free(settings, stack)
    async with open_object_store(
        settings.objects_url, secret=settings.secret, public_base_url=settings.api_public_url
    ) as objects:
        match = await find_match(
            objects, settings, request.organization, request.match_id, request.revision
        )
        clip = clip_frames(
            request.start_frame, request.frames, request.png_frame, match.frame_count
        )
        chunks = await clip_chunks(objects, match, clip)
        trail_frames = max(1, round(TRAIL_SECONDS * match.fps))
        tracks = await asyncio.to_thread(
            read_tracks, settings, match, request.match_id, request.revision, clip, trail_frames
        )
        ball = await asyncio.to_thread(
            read_ball, settings, match, request.match_id, request.revision, clip, trail_frames
        )
        out_w, out_h = output_size(match.model, request.width)
        try:
            request.out_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OverlayError(f"cannot create --out {request.out_dir}: {exc.strerror}") from None
        video = request.out_dir / VIDEO_NAME
        png = request.out_dir / f"overlay-frame-{clip.png_frame}.png"
        png.unlink(missing_ok=True)  # so that a PNG afterwards is this run's
        written = 0
        with (
            tempfile.TemporaryDirectory(prefix="pv-overlay-") as scratch,
            VideoWriter(video, out_w, out_h, match.fps) as writer,
        ):
            for chunk in chunks:
                path = Path(scratch) / f"chunk-{chunk.index:05d}.mp4"
                await objects.download_file(chunk.video_key, path)
                written += await asyncio.to_thread(
                    draw_chunk,
                    path,
                    chunk,
                    clip,
                    tracks,
                    match.model,
                    trail_frames,
                    writer,
                    png,
                    # A clip without the ball keeps the legend of a match without one.
                    ball if ball.visible.any() else None,
                )
                path.unlink()
    if not png.exists():
        raise OverlayError(
            f"frame {clip.png_frame} is not in the panorama videos (they hold {written} of the"
            f" frames {clip.first}-{clip.last}); {video} has what they hold"
        )
    return OverlayResult(
        video=video,
        png=png,
        clip=clip,
        frames_written=written,
        points=len(tracks.rows(clip.first, clip.last)),
        size=(out_w, out_h),
        ball_frames=int(ball.slice_frames(clip.first, clip.last + 1).visible.sum()),
    )


def run_overlay(settings: Settings, request: OverlayRequest) -> int:
    """The `polyvision overlay` handler: draw, say what was written; 2 with one line on failure."""
    try:
        result = asyncio.run(make_overlay(settings, request))
    except OverlayError as exc:
        sys.stderr.write(f"polyvision overlay: {exc}\n")
        return 2
    width, height = result.size
    sys.stdout.write(
        f"match {request.match_id}: frames {result.clip.first}-{result.clip.last}"
        f" ({result.frames_written} drawn, {result.points} track points) at {width}x{height}\n"
        f"video: {result.video}\n"
        f"frame {result.clip.png_frame}: {result.png}\n"
        f"ball: visible in {result.ball_frames} of the frames\n"
    )
    return 0
