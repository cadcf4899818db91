"""The generated DeepStream capture description: committed bytes and structure.

DeepStream cannot run here; these checks are about what the description says.
"""

from __future__ import annotations

from pathlib import Path

from edge.deepstream.pipeline import (
    CAPTURE_FILE,
    DETECTOR_FILE,
    STITCH_LIBRARY,
    CaptureConfig,
    Element,
    Pipeline,
    parse_description,
    render_capture,
    render_detector_config,
    write_files,
)


def committed() -> Pipeline:
    return parse_description(CAPTURE_FILE.read_text(encoding="utf-8"))


def elements(pipeline: Pipeline, factory: str) -> list[Element]:
    return [item for chain in pipeline.chains for item in chain if item.factory == factory]


def test_committed_files_are_what_the_generator_writes(tmp_path: Path) -> None:
    config = CaptureConfig()
    assert CAPTURE_FILE.read_bytes() == render_capture(config).encode()
    assert DETECTOR_FILE.read_bytes() == render_detector_config(config).encode()
    written = write_files(config, tmp_path)
    assert [path.read_bytes() for path in written] == [
        CAPTURE_FILE.read_bytes(),
        DETECTOR_FILE.read_bytes(),
    ]


def test_two_imx678_sensors_at_full_resolution() -> None:
    pipeline = committed()
    sources = [chain for chain in pipeline.chains if chain[0].factory == "nvarguscamerasrc"]
    assert sorted(chain[0].get("sensor-id") or "" for chain in sources) == ["0", "1"]
    for chain in sources:
        caps = chain[1].factory
        assert caps.startswith("video/x-raw(memory:NVMM)")
        assert "width=3856" in caps.split(",") and "height=2180" in caps.split(",")
        assert "framerate=25/1" in caps.split(",")
        assert chain[-1].factory == f"mux.sink_{chain[0].get('sensor-id')}"


def test_muxer_batches_both_cameras_at_sensor_size() -> None:
    (mux,) = elements(committed(), "nvstreammux")
    assert mux.get("batch-size") == "2"
    assert (mux.get("width"), mux.get("height")) == ("3856", "2180")
    assert mux.get("batched-push-timeout") == "40000"  # one frame period at 25 fps


def test_the_tee_has_exactly_an_analysis_and_a_record_branch() -> None:
    pipeline = committed()
    (tee,) = elements(pipeline, "tee")
    assert tee.get("name") == "t"
    branches = [chain for chain in pipeline.chains if chain[0].factory == "t."]
    assert len(branches) == 2
    analysis, record = branches
    factories = [item.factory for item in analysis]
    assert factories.index("nvdsvideotemplate") < factories.index("nvinfer")
    (stitch,) = [item for item in analysis if item.factory == "nvdsvideotemplate"]
    assert stitch.get("customlib-name") == STITCH_LIBRARY
    (infer,) = [item for item in analysis if item.factory == "nvinfer"]
    assert infer.get("config-file-path") == DETECTOR_FILE.name
    assert record[-1].factory == "nvstreamdemux"


def test_each_camera_is_recorded_for_the_watch_convention() -> None:
    pipeline = committed()
    sinks = elements(pipeline, "splitmuxsink")
    locations = sorted(sink.get("location") or "" for sink in sinks)
    assert [Path(location).name for location in locations] == [
        "capture_left.mp4",
        "capture_right.mp4",
    ]
    assert len(elements(pipeline, "nvv4l2h265enc")) == 2
    demuxed = [chain for chain in pipeline.chains if chain[0].factory.startswith("demux.src_")]
    assert sorted(chain[0].factory for chain in demuxed) == ["demux.src_0", "demux.src_1"]
    # src_0 is sensor 0 is the left camera.
    assert demuxed[0][-1].get("location") == locations[0]


def test_frame_rate_is_configurable() -> None:
    text = render_capture(CaptureConfig(fps=30))
    pipeline = parse_description(text)
    (mux,) = elements(pipeline, "nvstreammux")
    assert mux.get("batched-push-timeout") == "33333"
    assert text.count("framerate=30/1") == 2
    assert {enc.get("iframeinterval") for enc in elements(pipeline, "nvv4l2h265enc")} == {"30"}
