"""The whole match workflow on a short synthetic match, on the real dev server and real stores.

The match is processed once per session (`tests.fixtures.processed_match`); these tests read
what it left.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import av
import m3u8
import mpegdash.parser
from temporalio.client import WorkflowExecutionStatus

from evaluation.export import export_match
from evaluation.report import run_eval
from polyvision.temporal.search_attributes import (
    DEVICE_ID,
    MATCH_ID,
    ORGANIZATION_ID,
    PIPELINE_STAGE,
)
from tests.fixtures.processed_match import DEVICE, ORGANIZATION, ProcessedMatch


def test_every_chunk_went_through_every_stage(processed_match: ProcessedMatch) -> None:
    assert (processed_match.output.frames, processed_match.output.chunks) == (100, 2)
    progress = processed_match.progress
    assert progress.stage == "done"
    for stage in ("stitch", "detect", "encode"):
        assert (progress.stages[stage].done, progress.stages[stage].total) == (2, 2), stage
    assert processed_match.description.status == WorkflowExecutionStatus.COMPLETED


def test_starting_the_same_match_twice_finds_the_same_run(
    processed_match: ProcessedMatch,
) -> None:
    assert processed_match.run_id
    assert processed_match.second_start_run_id == processed_match.run_id


def test_operators_find_the_run_by_its_search_attributes(
    processed_match: ProcessedMatch,
) -> None:
    attributes = processed_match.description.typed_search_attributes
    assert attributes.get(MATCH_ID) == processed_match.match_input.match_id
    assert attributes.get(ORGANIZATION_ID) == ORGANIZATION
    assert attributes.get(DEVICE_ID) == DEVICE
    assert attributes.get(PIPELINE_STAGE) == "done"


async def test_the_summary_and_the_ladder_are_stored(
    processed_match: ProcessedMatch, tmp_path: Path
) -> None:
    result = processed_match.output
    local = tmp_path / "hls"
    async with processed_match.stores() as stores:
        summary = json.loads(await stores.objects.get(result.summary_key))
        prefix = result.hls_master_key.rsplit("/", 1)[0] + "/"
        async for info in stores.objects.list_prefix(prefix):
            name = info.key[len(prefix) :]
            if name.startswith("views/"):  # a re-rendered view's stream, not the match's own
                continue
            (local / name).parent.mkdir(parents=True, exist_ok=True)
            await stores.objects.download_file(info.key, local / name)
    assert summary["frames"] == 100
    assert summary["tracks"] >= 10

    # HLS v7 and DASH over the same CMAF segments, every rendition of the default ladder.
    master = m3u8.load(str(local / "master.m3u8"))
    sizes = {tuple(p.stream_info.resolution) for p in master.playlists}
    assert sizes == {(1920, 1080), (1280, 720), (854, 480)}
    for variant in master.playlists:
        info = variant.stream_info
        assert info.bandwidth and info.average_bandwidth and info.codecs.startswith("avc1.")
        assert info.frame_rate == 25
    assert len(master.iframe_playlists) == 3
    mpd = mpegdash.parser.MPEGDASHParser.parse(str(local / "manifest.mpd"))
    representations = [r for s in mpd.periods[0].adaptation_sets for r in s.representations]
    assert {(r.width, r.height) for r in representations} == sizes
    # The panorama's own stream, the thumbnails and the poster.
    assert (local / "panorama" / "master.m3u8").exists()
    assert (local / "panorama" / "manifest.mpd").exists()
    assert (local / "thumbnails.vtt").read_text().startswith("WEBVTT")
    assert (local / "poster.jpg").stat().st_size > 0

    for variant in master.playlists:
        media = local / variant.uri
        playlist = m3u8.load(str(media))
        assert playlist.version == 7
        # Each rendition plays the whole match, and every segment starts on a keyframe.
        with av.open(str(media)) as container:
            stream = container.streams.video[0]
            assert (stream.width, stream.height) == tuple(variant.stream_info.resolution)
            assert sum(1 for _ in container.decode(stream)) == 100
        init = (media.parent / playlist.segment_map[0].uri).read_bytes()
        for segment in playlist.segments:
            data = init + (media.parent / segment.uri).read_bytes()
            with av.open(io.BytesIO(data), mode="r") as container:
                first = next(container.decode(video=0))
                assert first.key_frame, segment.uri


async def test_polyvision_eval_scores_it_against_the_truth(
    processed_match: ProcessedMatch, tmp_path: Path
) -> None:
    # `polyvision eval --match`: the results exported from the stores, scored against the truth.
    await export_match(
        processed_match.settings(),
        ORGANIZATION,
        processed_match.match_input.match_id,
        1,
        tmp_path / "eval",
    )
    report = run_eval(processed_match.truth_dir, tmp_path / "eval")
    assert report.tracking is not None and report.tracking.tp > 0
    assert report.position_error_m is not None and report.position_error_m < 1.0
    assert report.vcam is not None and report.vcam.ball_in_view_share is not None
    assert report.vcam.ball_in_view_share > 0.5
