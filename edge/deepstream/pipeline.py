"""The Jetson DeepStream capture pipeline, generated as a ``gst-launch-1.0`` description.

Why a gst-launch description rather than a deepstream-app INI: deepstream-app has no way to say
"record each camera to its own file with splitmuxsink" next to a custom stitch stage, while a
pipeline description can, and the same text runs under ``gst-launch-1.0 -e`` or
``Gst.parse_launch`` in the DeepStream Python bindings.

Shape (one tee, two branches)::

    nvarguscamerasrc sensor-id=0 ─┐
                                  ├─► nvstreammux (batch 2) ─► tee t
    nvarguscamerasrc sensor-id=1 ─┘                               │
        t. ─► queue (leaky) ─► nvdsvideotemplate (stitch) ─► nvinfer (detector) ─► fakesink
        t. ─► queue ─► nvstreamdemux ─┬─ src_0 ─► nvv4l2h265enc ─► splitmuxsink <name>_left.mp4
                                      └─ src_1 ─► nvv4l2h265enc ─► splitmuxsink <name>_right.mp4

The recording branch writes the raw sensor streams, not the panorama: the cloud pipeline stitches
with the calibrated rig itself, and uploads are exactly the ``<name>_left.mp4`` /
``<name>_right.mp4`` pair that ``polyvision-edge watch`` picks up. The edge stitch only feeds the
live analysis branch; it is a placeholder custom library until the CUDA stitch is ported.

Regenerate the committed files with ``python -m edge.deepstream.pipeline``; a test checks that
the committed bytes are what this module generates. Nothing here can run DeepStream: the test
checks the structure, not a live pipeline.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
CAPTURE_FILE = HERE / "capture.txt"
DETECTOR_FILE = HERE / "config_infer_detector.txt"

SENSOR_WIDTH = 3856
SENSOR_HEIGHT = 2180
STITCH_LIBRARY = "libpolyvision_stitch_PLACEHOLDER.so"
"""Not built yet: the stitch stage's custom library for nvdsvideotemplate."""
SIDES = ("left", "right")


@dataclass(frozen=True)
class CaptureConfig:
    """What varies between rigs.

    Attributes:
        fps: Sensor frame rate.
        width: Sensor width (IMX678 full resolution).
        height: Sensor height.
        output_dir: Where the recordings go (the directory ``polyvision-edge watch`` watches).
        name: Base name of the pair; a wrapper substitutes the match's name per recording.
        bitrate: H.265 bitrate per camera, bits/s.
        rig_file: The rig.json the stitch library reads.
        detector_config: The nvinfer config file.
    """

    fps: int = 25
    width: int = SENSOR_WIDTH
    height: int = SENSOR_HEIGHT
    output_dir: str = "/var/lib/polyvision/recordings"
    name: str = "capture"
    bitrate: int = 40_000_000
    rig_file: str = "/var/lib/polyvision/recordings/rig.json"
    detector_config: str = "config_infer_detector.txt"


@dataclass(frozen=True)
class Element:
    """One GStreamer element, a caps filter, or a pad reference (``t.``, ``mux.sink_0``)."""

    factory: str
    properties: tuple[tuple[str, str], ...] = ()

    def render(self) -> str:
        """The element as gst-launch text."""
        return " ".join([self.factory, *(f"{key}={value}" for key, value in self.properties)])

    def get(self, key: str) -> str | None:
        """The value of property ``key``, if set."""
        return dict(self.properties).get(key)


def element(factory: str, **properties: object) -> Element:
    """An `Element` with properties in keyword order (underscores become dashes)."""
    return Element(
        factory, tuple((key.replace("_", "-"), _text(value)) for key, value in properties.items())
    )


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def pad(reference: str) -> Element:
    """A pad reference such as ``t.`` or ``demux.src_0``."""
    return Element(reference)


@dataclass(frozen=True)
class Pipeline:
    """The pipeline as chains of linked elements (each chain is one ``a ! b ! c`` run)."""

    chains: tuple[tuple[Element, ...], ...] = field(default_factory=tuple)

    def render(self) -> str:
        """One chain per line; gst-launch treats the line breaks as spaces."""
        return "\n".join(" ! ".join(item.render() for item in chain) for chain in self.chains)


def build_pipeline(config: CaptureConfig) -> Pipeline:
    """The capture pipeline for ``config``."""
    caps = (
        f"video/x-raw(memory:NVMM),width={config.width},height={config.height},"
        f"format=NV12,framerate={config.fps}/1"
    )
    chains: list[tuple[Element, ...]] = []
    for sensor in (0, 1):
        chains.append(
            (
                element("nvarguscamerasrc", sensor_id=sensor, name=f"cam{sensor}"),
                Element(caps),
                element("queue"),
                pad(f"mux.sink_{sensor}"),
            )
        )
    chains.append(
        (
            element(
                "nvstreammux",
                name="mux",
                batch_size=2,
                width=config.width,
                height=config.height,
                live_source=1,
                # One frame period: never wait longer than that for the second camera.
                batched_push_timeout=1_000_000 // config.fps,
            ),
            element("tee", name="t"),
        )
    )
    chains.append(
        (
            pad("t."),
            # Leaky: when inference falls behind, analysis drops frames; recording never does.
            element("queue", leaky=2, max_size_buffers=4),
            element(
                "nvdsvideotemplate",
                name="stitch",
                customlib_name=STITCH_LIBRARY,
                customlib_props=f"rig-file:{config.rig_file}",
            ),
            element(
                "nvinfer", name="detector", config_file_path=config.detector_config, batch_size=1
            ),
            element("fakesink", sync=False),
        )
    )
    chains.append(
        (
            pad("t."),
            element("queue", max_size_buffers=0, max_size_time=0, max_size_bytes=0),
            element("nvstreamdemux", name="demux"),
        )
    )
    for index, side in enumerate(SIDES):
        chains.append(
            (
                pad(f"demux.src_{index}"),
                element("queue"),
                element(
                    "nvv4l2h265enc",
                    bitrate=config.bitrate,
                    control_rate=1,
                    # One keyframe a second: ingest cuts chunks on keyframes.
                    iframeinterval=config.fps,
                    insert_sps_pps=1,
                    maxperf_enable=1,
                ),
                element("h265parse"),
                element(
                    "splitmuxsink",
                    name=f"rec_{side}",
                    muxer_factory="mp4mux",
                    # 0/0: one file per recording, finalised by EOS (gst-launch -e).
                    max_size_time=0,
                    max_size_bytes=0,
                    location=f"{config.output_dir}/{config.name}_{side}.mp4",
                ),
            )
        )
    return Pipeline(tuple(chains))


def render_capture(config: CaptureConfig) -> str:
    """The text of ``capture.txt``: a comment header, then the description."""
    header = [
        "# Polyvision edge capture pipeline (Jetson Orin NX, DeepStream), generated by",
        "# edge/deepstream/pipeline.py: do not edit, regenerate with",
        "#   python -m edge.deepstream.pipeline",
        f"# Two IMX678 sensors at {config.width}x{config.height}, {config.fps} fps.",
        "# Run:  gst-launch-1.0 -e $(grep -v '^#' capture.txt)",
        f"# then write {config.output_dir}/{config.name}.done (the upload agent's marker).",
        "",
    ]
    return "\n".join(header) + build_pipeline(config).render() + "\n"


def render_detector_config(config: CaptureConfig) -> str:
    """The nvinfer config of the detector (the project's YOLOX-nano export, 416x416, BGR 0-255)."""
    del config  # same detector for every rig today; kept for symmetry with render_capture
    lines = [
        "# nvinfer config of the Polyvision detector, generated by edge/deepstream/pipeline.py.",
        "[property]",
        "gpu-id=0",
        "onnx-file=yolox_nano.onnx",
        "model-engine-file=yolox_nano.onnx_b1_gpu0_fp16.engine",
        "batch-size=1",
        "network-mode=2",
        "network-type=0",
        "num-detected-classes=80",
        "infer-dims=3;416;416",
        "net-scale-factor=1.0",
        "model-color-format=1",
        "maintain-aspect-ratio=1",
        "symmetric-padding=0",
        "cluster-mode=2",
        "parse-bbox-func-name=NvDsInferParseYolox",
        "custom-lib-path=libpolyvision_yolox_parser_PLACEHOLDER.so",
        "",
        "[class-attrs-all]",
        "pre-cluster-threshold=0.3",
        "nms-iou-threshold=0.45",
        "",
    ]
    return "\n".join(lines)


def parse_description(text: str) -> Pipeline:
    """Parse the description part of ``capture.txt`` back into chains (for checks and tests).

    Understands what `Pipeline.render` writes: comment lines, one chain per line, elements
    joined by `` ! ``, ``key=value`` properties without spaces.
    """
    chains: list[tuple[Element, ...]] = []
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        chain: list[Element] = []
        for item in line.split(" ! "):
            factory, *pairs = item.split(" ")
            properties = tuple(
                (key, value) for key, _, value in (pair.partition("=") for pair in pairs)
            )
            chain.append(Element(factory, properties))
        chains.append(tuple(chain))
    return Pipeline(tuple(chains))


def write_files(config: CaptureConfig, directory: Path = HERE) -> list[Path]:
    """Write ``capture.txt`` and the detector config into ``directory``."""
    written = []
    for path, text in (
        (directory / CAPTURE_FILE.name, render_capture(config)),
        (directory / DETECTOR_FILE.name, render_detector_config(config)),
    ):
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """Regenerate the committed files (``--fps`` and ``--output-dir`` for another rig)."""
    parser = argparse.ArgumentParser(prog="python -m edge.deepstream.pipeline")
    parser.add_argument("--fps", type=int, default=CaptureConfig.fps)
    parser.add_argument("--output-dir", type=Path, default=HERE, help="where to write")
    args = parser.parse_args(argv)
    for path in write_files(CaptureConfig(fps=args.fps), args.output_dir):
        sys.stdout.write(f"wrote {path}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
