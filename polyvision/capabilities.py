"""What this machine can run: NVIDIA GPUs (with or without a video encoder) and CPU cores."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import structlog

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class GpuInfo:
    """One NVIDIA GPU as NVML reports it.

    Attributes:
        index: NVML device index (what ``CUDA_VISIBLE_DEVICES`` counts, absent remapping).
        name: Marketing name, e.g. ``NVIDIA H100 80GB HBM3``.
        memory_mb: Total device memory in MiB.
        has_nvenc: Whether the GPU has a hardware H.264 encoder (NVENC).
    """

    index: int
    name: str
    memory_mb: int
    has_nvenc: bool


@dataclass(frozen=True)
class Capabilities:
    """The machine's compute, as far as queue planning cares.

    Attributes:
        gpus: NVIDIA GPUs, empty without a driver.
        cpu_count: CPU cores this process may use.
    """

    gpus: list[GpuInfo] = field(default_factory=list)
    cpu_count: int = 1

    @property
    def nvenc_gpus(self) -> list[GpuInfo]:
        """The GPUs that can take hardware encode work."""
        return [gpu for gpu in self.gpus if gpu.has_nvenc]


def _cpu_count() -> int:
    # Respect affinity (taskset, cgroup cpusets in containers), not the host's core count.
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _text(value: Any) -> str:
    # Older nvidia-ml-py releases return bytes for names.
    return value.decode() if isinstance(value, bytes) else str(value)


def _has_nvenc(nvml: ModuleType, handle: Any) -> bool:
    # Encoder capacity is the % of the NVENC engine free (0..100); a GPU without NVENC (H100,
    # A100) answers NOT_SUPPORTED or 0. Anything unexpected means "do not route encodes here".
    try:
        capacity = int(nvml.nvmlDeviceGetEncoderCapacity(handle, nvml.NVML_ENCODER_QUERY_H264))
    except nvml.NVMLError:
        return False
    if capacity > 0:
        return True
    # 0 is also what a present but fully busy encoder reports: live sessions prove it exists.
    try:
        session_count = int(nvml.nvmlDeviceGetEncoderStats(handle)[0])
    except (nvml.NVMLError, AttributeError, TypeError, IndexError):
        return False
    return session_count > 0


def _probe_gpus(nvml: ModuleType) -> list[GpuInfo]:
    gpus: list[GpuInfo] = []
    for index in range(int(nvml.nvmlDeviceGetCount())):
        handle = nvml.nvmlDeviceGetHandleByIndex(index)
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        gpus.append(
            GpuInfo(
                index=index,
                name=_text(nvml.nvmlDeviceGetName(handle)),
                memory_mb=int(memory.total) // (1024 * 1024),
                has_nvenc=_has_nvenc(nvml, handle),
            )
        )
    return gpus


def detect_capabilities(nvml: ModuleType | None = None) -> Capabilities:
    """Detect GPUs through NVML and count usable CPU cores.

    Never raises for a missing driver, a missing library or a broken GPU: such a machine
    reports zero GPUs and serves CPU work.

    Args:
        nvml: The NVML binding module; ``pynvml`` (package nvidia-ml-py) if None.

    Returns:
        The machine's capabilities.
    """
    cpu_count = _cpu_count()
    if nvml is None:
        try:
            import pynvml

            nvml = pynvml
        except ImportError:
            log.info("worker.capabilities.no_nvml", reason="pynvml not installed")
            return Capabilities(gpus=[], cpu_count=cpu_count)
    try:
        nvml.nvmlInit()
    except Exception as err:  # NVMLError_LibraryNotFound / DriverNotLoaded, or an OSError
        log.info("worker.capabilities.no_gpu", reason=str(err) or type(err).__name__)
        return Capabilities(gpus=[], cpu_count=cpu_count)
    try:
        gpus = _probe_gpus(nvml)
    except Exception as err:  # a GPU that fails mid-probe must not take the worker down
        log.warning("worker.capabilities.gpu_probe_failed", error=repr(err))
        gpus = []
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception as err:  # shutdown failures do not change what we found
            log.debug("worker.capabilities.nvml_shutdown_failed", error=repr(err))
    return Capabilities(gpus=gpus, cpu_count=cpu_count)
