"""How the detector runs on this machine: execution provider, sessions, threads, spinning.

Detection dominates the pipeline's cost, so how ONNX Runtime is laid out on the hardware matters
as much as the model. Three layouts, one :class:`InferenceSettings` each:

- **CPU** (``backend="cpu"``): either one session whose operators use ``N`` threads, or ``N``
  sessions of one thread each, each taking whole tiles (:class:`DetectorPool`). YOLOX-nano on a
  416 tile is small: its operators split poorly over threads, while whole tiles split perfectly
  over cores. Either way *spinning* is off: by default ONNX Runtime's idle worker threads spin
  on the CPU after each run waiting for the next one, which steals the cores that video decoding
  and tracking need between detector runs. ``bench/ort_threads.py`` measures the layouts, and
  :func:`settings_for_machine` picks the faster one.
- **CUDA** (``backend="cuda"``): one session on the CUDA execution provider, the tiles of a
  frame as one batch where the model's batch axis is dynamic
  (:meth:`~activities.detect.backend.OnnxDetector.detect_many`).
- **TensorRT** (``backend="tensorrt"``): the TensorRT execution provider, FP16 by default, with
  CUDA and then CPU behind it for any operator TensorRT does not take. Building an engine takes
  minutes, so engines are cached on disk, in a folder per GPU model and TensorRT version
  (an engine is only valid for the GPU and TensorRT it was built with).

The pure helpers (:func:`session_options`, :func:`execution_providers`,
:func:`settings_for_machine`) are tested without a GPU; :func:`probe_tensorrt_version` asks the
machine (the GPUs come from `polyvision.capabilities`).
"""

from __future__ import annotations

import importlib.metadata
import os
import queue
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Final, Literal, get_args

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from activities.detect.backend import OnnxDetector, Provider
from activities.detect.detections import Detections
from activities.detect.model_spec import ModelSpec

__all__ = [
    "CPU_EP",
    "CUDA_EP",
    "INTER_OP_SPINNING",
    "INTRA_OP_SPINNING",
    "TENSORRT_EP",
    "Backend",
    "BatchProfile",
    "DetectorPool",
    "InferenceSettings",
    "build_detector",
    "engine_cache_path",
    "execution_providers",
    "probe_tensorrt_version",
    "session_options",
    "settings_for_machine",
    "slug",
]

Backend = Literal["cpu", "cuda", "tensorrt"]

CPU_EP: Final = "CPUExecutionProvider"
CUDA_EP: Final = "CUDAExecutionProvider"
TENSORRT_EP: Final = "TensorrtExecutionProvider"

# Session config keys, from onnxruntime_session_options_config_keys.h: "0" makes an idle pool
# thread block at once instead of spinning a while before blocking ("1", the default).
INTRA_OP_SPINNING: Final = "session.intra_op.allow_spinning"
INTER_OP_SPINNING: Final = "session.inter_op.allow_spinning"


@dataclass(frozen=True)
class InferenceSettings:
    """How to run the detector: which execution provider, how many sessions and threads.

    Attributes:
        backend: ``"cpu"``, ``"cuda"`` or ``"tensorrt"`` (TensorRT, then CUDA, then CPU for
            operators TensorRT leaves).
        sessions: ONNX Runtime sessions; more than one spreads the tiles of a frame over
            sessions (:class:`DetectorPool`). CPU only: a GPU runs one batch per frame.
        intra_op_threads: threads per operator in each session; 0 lets ONNX Runtime pick (one
            per physical core).
        allow_spinning: let idle pool threads spin waiting for work (ONNX Runtime's default);
            off, they sleep at once and leave the cores to the rest of the pipeline.
        fp16: let TensorRT build FP16 kernels (TensorRT only).
        cache_dir: where TensorRT engines and timing caches are kept (TensorRT only); ``None``
            keeps none, and every start rebuilds the engine.
    """

    backend: Backend = "cpu"
    sessions: int = 1
    intra_op_threads: int = 0
    allow_spinning: bool = False
    fp16: bool = True
    cache_dir: Path | None = None

    def __post_init__(self) -> None:
        if self.backend not in get_args(Backend):
            raise ValueError(f"backend must be one of {get_args(Backend)}, got {self.backend!r}")
        if self.sessions < 1:
            raise ValueError(f"sessions must be at least 1, got {self.sessions}")
        if self.intra_op_threads < 0:
            raise ValueError(f"intra_op_threads must be >= 0, got {self.intra_op_threads}")
        if self.backend != "cpu" and self.sessions != 1:
            raise ValueError("several sessions are a CPU layout; a GPU takes one batch per frame")


@dataclass(frozen=True)
class BatchProfile:
    """The batch sizes TensorRT should build a dynamic-batch engine for.

    Without a profile TensorRT builds for the first batch size it sees and rebuilds (minutes)
    whenever a larger batch arrives; with one, a single engine covers ``1 .. max_batch``.

    Attributes:
        input_name: the model's input tensor name (``images`` for our YOLOX export).
        input_hw: the model's input ``(height, width)``.
        max_batch: the most tiles per frame.
        opt_batch: the batch size to tune for; ``None`` tunes for ``max_batch``.
    """

    input_name: str
    input_hw: tuple[int, int]
    max_batch: int
    opt_batch: int | None = None

    def trt_options(self) -> dict[str, str]:
        """The ``trt_profile_*_shapes`` provider options, e.g. ``images:1x3x416x416``."""
        h, w = self.input_hw
        opt = self.max_batch if self.opt_batch is None else self.opt_batch
        if not 1 <= opt <= self.max_batch:
            raise ValueError(f"need 1 <= opt_batch <= max_batch, got {opt} and {self.max_batch}")

        def shape(batch: int) -> str:
            return f"{self.input_name}:{batch}x3x{h}x{w}"

        return {
            "trt_profile_min_shapes": shape(1),
            "trt_profile_opt_shapes": shape(opt),
            "trt_profile_max_shapes": shape(self.max_batch),
        }


def session_options(settings: InferenceSettings) -> ort.SessionOptions:
    """ONNX Runtime session options for ``settings``: intra-op threads, spinning, one inter-op.

    Spinning is written both ways (``"1"`` or ``"0"``), so the options say what they do
    whatever ONNX Runtime's default becomes.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = settings.intra_op_threads
    # The graph is one chain of operators: inter-op parallelism has nothing to overlap.
    options.inter_op_num_threads = 1
    spinning = "1" if settings.allow_spinning else "0"
    options.add_session_config_entry(INTRA_OP_SPINNING, spinning)
    options.add_session_config_entry(INTER_OP_SPINNING, spinning)
    return options


def slug(text: str) -> str:
    """``NVIDIA H100 80GB HBM3`` -> ``nvidia-h100-80gb-hbm3``: safe in a file name."""
    return re.sub(r"[^a-z0-9.]+", "-", text.lower()).strip("-.") or "unknown"


def engine_cache_path(cache_dir: Path, device_name: str, trt_version: str) -> Path:
    """The TensorRT engine folder for one GPU model and TensorRT version under ``cache_dir``.

    An engine is tuned for, and only valid on, the GPU and TensorRT version that built it; one
    folder per pair lets machines of different kinds share a cache without rebuilding over
    each other's engines.
    """
    return cache_dir / f"{slug(device_name)}-trt{slug(trt_version)}"


def execution_providers(
    settings: InferenceSettings,
    device_name: str = "",
    trt_version: str = "",
    *,
    batch_profile: BatchProfile | None = None,
) -> list[Provider]:
    """The execution providers, with their options, in order of preference.

    - ``cpu``: the CPU provider alone.
    - ``cuda``: CUDA, then CPU (for any operator CUDA lacks).
    - ``tensorrt``: TensorRT (FP16 per ``settings.fp16``; engine and timing caches in
      :func:`engine_cache_path` when ``settings.cache_dir`` is set), then CUDA, then CPU.

    Args:
        settings: the backend and its options.
        device_name: the GPU's name (``nvidia-smi``'s), which names the engine cache folder.
        trt_version: the TensorRT version, which names the engine cache folder.
        batch_profile: the batch sizes to build a dynamic-batch TensorRT engine for.

    Returns:
        A list for ``ort.InferenceSession(providers=...)``; option values are strings, as
        ONNX Runtime reads them (``"True"``/``"False"`` for flags).
    """
    if settings.backend == "cpu":
        return [CPU_EP]
    # Fixed input shapes: the exhaustive cuDNN search runs once and picks the fastest kernels.
    cuda: Provider = (CUDA_EP, {"device_id": "0", "cudnn_conv_algo_search": "EXHAUSTIVE"})
    if settings.backend == "cuda":
        return [cuda, CPU_EP]
    trt: dict[str, str] = {"device_id": "0", "trt_fp16_enable": str(settings.fp16)}
    if settings.cache_dir is not None:
        folder = str(engine_cache_path(settings.cache_dir, device_name, trt_version))
        trt |= {
            "trt_engine_cache_enable": "True",
            "trt_engine_cache_path": folder,
            "trt_timing_cache_enable": "True",
            "trt_timing_cache_path": folder,
        }
    if batch_profile is not None:
        trt |= batch_profile.trt_options()
    return [(TENSORRT_EP, trt), cuda, CPU_EP]


def settings_for_machine(
    cpu_count: int,
    available_providers: Sequence[str],
    gpu_names: Sequence[str],
    *,
    cache_dir: Path | None = None,
) -> InferenceSettings:
    """The fastest layout for a machine, from what it has.

    TensorRT where its provider is built in and a GPU is present, else CUDA, else CPU. On a
    GPU the session keeps one CPU thread (only pre- and post-processing and any fallback
    operator run there) with spinning off, so the CPU stays free for decoding and tracking.

    On CPU, ``cpu_count`` sessions of one thread each, spinning off. Measured on the shared
    2-core development machine (``bench/ort_threads.py``: YOLOX-nano, the 32 pitch tiles of a
    SoccerTrack frame, medians of 6-8 interleaved rounds, ONNX Runtime 1.32):

    - with the cores mostly ours (load ~4 from other work): 141.8 tiles/s against 70.1 for one
      session of 2 threads with spinning off (2.0x) and 39.1 for ONNX Runtime's defaults
      (3.6x), at 13.4 against 17.3 and 25.6 CPU ms per tile;
    - with other processes keeping both cores busy (load 5-8): a tie in median throughput
      (28.8-31.5 against 30.4-31.6 tiles/s; best rounds 50.5-53.8 against 39.5-44.7), still
      8-12 % less CPU per tile (15.4-16.4 against 17.5-17.8 ms).

    Spinning costs in every run: it cut one session's throughput by 27-59 % and raised its CPU
    per tile 1.45-2.1x. Whole tiles split over cores perfectly, while a nano model's small
    operators do not.

    Args:
        cpu_count: logical CPUs available (``os.cpu_count()``).
        available_providers: ``ort.get_available_providers()``.
        gpu_names: the GPUs present (`polyvision.capabilities.detect_capabilities`); empty for
            none.
        cache_dir: where TensorRT keeps its engines.
    """
    if gpu_names and TENSORRT_EP in available_providers:
        return InferenceSettings("tensorrt", intra_op_threads=1, cache_dir=cache_dir)
    if gpu_names and CUDA_EP in available_providers:
        return InferenceSettings("cuda", intra_op_threads=1)
    cores = max(1, cpu_count)
    return InferenceSettings("cpu", sessions=cores, intra_op_threads=1)


_TENSORRT_DISTRIBUTIONS = ("tensorrt", "tensorrt-cu12", "tensorrt-cu12-libs", "tensorrt-libs")


def probe_tensorrt_version() -> str | None:
    """The installed TensorRT's version from its Python distribution, or ``None`` if absent.

    ONNX Runtime's TensorRT provider loads the TensorRT libraries at session start; pip wheels
    of TensorRT (``tensorrt-cu12``) are the usual way they get there.
    """
    for name in _TENSORRT_DISTRIBUTIONS:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


class DetectorPool:
    """Several ONNX Runtime sessions of one model, the tiles of a frame spread over them.

    ONNX Runtime releases the GIL while a session runs, and each session here has its own
    threads (one, in the CPU layout), so ``N`` sessions on ``N`` threads keep ``N`` cores busy
    with whole tiles. Each session runs one tile at a time: a session is taken from a free
    list for a tile and returned after it.

    Implements the tiling ``Detector`` protocol (:meth:`detect`) and :meth:`detect_many`.
    Close it (or use it as a context manager) to stop its threads.

    Args:
        detectors: the sessions, all of the same model and spec.
    """

    def __init__(self, detectors: Sequence[OnnxDetector]) -> None:
        if not detectors:
            raise ValueError("a pool needs at least one detector")
        self.detectors: tuple[OnnxDetector, ...] = tuple(detectors)
        self._free: queue.SimpleQueue[OnnxDetector] = queue.SimpleQueue()
        for detector in self.detectors:
            self._free.put(detector)
        self._executor = ThreadPoolExecutor(
            max_workers=len(self.detectors), thread_name_prefix="detector"
        )

    @property
    def spec(self) -> ModelSpec:
        """The model's spec (the same for every session)."""
        return self.detectors[0].spec

    @property
    def providers(self) -> list[str]:
        """The execution providers the sessions use."""
        return self.detectors[0].providers

    @contextmanager
    def _session(self) -> Iterator[OnnxDetector]:
        detector = self._free.get()
        try:
            yield detector
        finally:
            self._free.put(detector)

    def detect(
        self,
        image_bgr: npt.NDArray[np.uint8],
        score_threshold: float = 0.3,
        nms_iou: float = 0.45,
    ) -> Detections:
        """Detect in one image on a free session; see :meth:`OnnxDetector.detect`."""
        with self._session() as detector:
            return detector.detect(image_bgr, score_threshold=score_threshold, nms_iou=nms_iou)

    def detect_many(
        self,
        images: Sequence[npt.NDArray[np.uint8]],
        *,
        score_threshold: float = 0.3,
        nms_iou: float = 0.45,
    ) -> list[Detections]:
        """Detect in several images (the tiles of one frame), spread over the sessions.

        Returns:
            One :class:`Detections` per image, in order, each in its image's pixels, exactly
            as :meth:`detect` gives them.
        """
        if len(images) < 2 or len(self.detectors) == 1:
            return [
                self.detect(image, score_threshold=score_threshold, nms_iou=nms_iou)
                for image in images
            ]
        futures = [
            self._executor.submit(self.detect, image, score_threshold, nms_iou) for image in images
        ]
        return [future.result() for future in futures]

    def close(self) -> None:
        """Stop the pool's threads (after the tiles in flight)."""
        self._executor.shutdown(wait=True)

    def __enter__(self) -> DetectorPool:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def build_detector(
    model_path: str | os.PathLike[str],
    spec: ModelSpec,
    settings: InferenceSettings,
    *,
    device_name: str = "",
    trt_version: str = "",
    batch_profile: BatchProfile | None = None,
    adopt_model_input_size: bool = False,
) -> OnnxDetector | DetectorPool:
    """The detector ``settings`` describe: a :class:`DetectorPool` for several CPU sessions,
    else one :class:`~activities.detect.backend.OnnxDetector`.

    Both implement ``detect`` and ``detect_many``. ``device_name``, ``trt_version`` and
    ``batch_profile`` matter for TensorRT only (see :func:`execution_providers`); the other
    arguments are :class:`~activities.detect.backend.OnnxDetector`'s.
    """
    providers = execution_providers(settings, device_name, trt_version, batch_profile=batch_profile)
    if settings.backend == "tensorrt" and settings.cache_dir is not None:
        # Made up front, parents too, so that a missing folder cannot fail the session start.
        Path(engine_cache_path(settings.cache_dir, device_name, trt_version)).mkdir(
            parents=True, exist_ok=True
        )

    def one() -> OnnxDetector:
        return OnnxDetector(
            model_path,
            spec,
            providers=providers,
            session_options=session_options(settings),
            adopt_model_input_size=adopt_model_input_size,
        )

    if settings.sessions == 1:
        return one()
    return DetectorPool([one() for _ in range(settings.sessions)])
