"""Capability detection (real NVML where present, a fake NVML otherwise) and queue planning."""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

import pytest

from polyvision.capabilities import Capabilities, GpuInfo, detect_capabilities
from polyvision.temporal.queues import CPU_QUEUE, GPU_QUEUE, NVENC_QUEUE, QueueRole, queue_names
from programs.worker.plan import QueuePlan, describe_plan, plan_queues

H100 = GpuInfo(index=0, name="NVIDIA H100 80GB HBM3", memory_mb=81559, has_nvenc=False)
L4_0 = GpuInfo(index=0, name="NVIDIA L4", memory_mb=23034, has_nvenc=True)
L4_1 = GpuInfo(index=1, name="NVIDIA L4", memory_mb=23034, has_nvenc=True)

NO_GPU = Capabilities(gpus=[], cpu_count=8)
TWO_L4 = Capabilities(gpus=[L4_0, L4_1], cpu_count=16)
ONE_H100 = Capabilities(gpus=[H100], cpu_count=32)


def plan(role: QueueRole, slots: int) -> QueuePlan:
    return QueuePlan(role, {"gpu": GPU_QUEUE, "nvenc": NVENC_QUEUE, "cpu": CPU_QUEUE}[role], slots)


# -- planning ---------------------------------------------------------------------------------


def test_auto_without_gpu_serves_the_gpu_stages_on_the_cores() -> None:
    # No stage is ever left unserved: the GPU stages run their CPU implementations, each queue
    # with a slot per core (no core idles while one queue has work and the other none).
    assert plan_queues("auto", NO_GPU) == [plan(QueueRole.gpu, 8), plan(QueueRole.cpu, 8)]
    two_cores = Capabilities(gpus=[], cpu_count=2)
    assert plan_queues("auto", two_cores) == [plan(QueueRole.gpu, 2), plan(QueueRole.cpu, 2)]
    three_cores = Capabilities(gpus=[], cpu_count=3)
    assert plan_queues("auto", three_cores) == [plan(QueueRole.gpu, 3), plan(QueueRole.cpu, 3)]
    one_core = Capabilities(gpus=[], cpu_count=1)
    assert plan_queues("auto", one_core) == [plan(QueueRole.gpu, 1), plan(QueueRole.cpu, 1)]


def test_auto_with_two_nvenc_gpus_polls_every_queue() -> None:
    assert plan_queues("auto", TWO_L4) == [
        plan(QueueRole.gpu, 2),
        plan(QueueRole.nvenc, 2),
        plan(QueueRole.cpu, 16),
    ]


def test_auto_on_h100_gets_no_encode_work() -> None:
    # An H100 has no NVENC: "has a GPU" must not imply "can encode".
    plans = plan_queues("auto", ONE_H100)
    assert plans == [plan(QueueRole.gpu, 1), plan(QueueRole.cpu, 32)]
    assert NVENC_QUEUE not in {p.task_queue for p in plans}


def test_mixed_gpus_get_nvenc_slots_only_for_encoder_gpus() -> None:
    caps = Capabilities(gpus=[H100, GpuInfo(1, "NVIDIA L4", 23034, True)], cpu_count=4)
    assert plan_queues("auto", caps) == [
        plan(QueueRole.gpu, 2),
        plan(QueueRole.nvenc, 1),
        plan(QueueRole.cpu, 4),
    ]


def test_explicit_lists_are_canonical_and_deduplicated() -> None:
    assert plan_queues(" CPU , gpu,cpu", TWO_L4) == [
        plan(QueueRole.gpu, 2),
        plan(QueueRole.cpu, 16),
    ]
    assert plan_queues("nvenc", TWO_L4) == [plan(QueueRole.nvenc, 2)]
    assert plan_queues("cpu", ONE_H100) == [plan(QueueRole.cpu, 32)]
    assert plan_queues("gpu,cpu", NO_GPU) == [plan(QueueRole.gpu, 8), plan(QueueRole.cpu, 8)]


def test_explicit_gpu_without_gpu_uses_every_core() -> None:
    # A worker for the gpu queue alone on a machine without a GPU has the cores to itself.
    assert plan_queues("gpu", NO_GPU) == [plan(QueueRole.gpu, 8)]


def test_all_polls_every_queue_even_without_gpu() -> None:
    assert plan_queues("all", NO_GPU) == [
        plan(QueueRole.gpu, 8),
        plan(QueueRole.nvenc, 1),
        plan(QueueRole.cpu, 8),
    ]
    assert plan_queues("all", ONE_H100) == [
        plan(QueueRole.gpu, 1),
        plan(QueueRole.nvenc, 1),
        plan(QueueRole.cpu, 32),
    ]


def test_concurrency_overrides_every_queue() -> None:
    assert [p.max_concurrent_activities for p in plan_queues("auto", TWO_L4, 3)] == [3, 3, 3]
    assert [p.max_concurrent_activities for p in plan_queues("auto", NO_GPU, 3)] == [3, 3]


def test_custom_queue_names() -> None:
    names = queue_names("-alice")
    assert names[QueueRole.gpu] == "polyvision-gpu-alice"
    plans = plan_queues("all", NO_GPU, names=names)
    assert [p.task_queue for p in plans] == [
        "polyvision-gpu-alice",
        "polyvision-nvenc-alice",
        "polyvision-cpu-alice",
    ]


# -- what a worker says at start --------------------------------------------------------------


def lines(spec: str, caps: Capabilities, concurrency: int | None = None) -> list[str]:
    return describe_plan(spec, caps, plan_queues(spec, caps, concurrency))


def test_a_cpu_only_worker_says_it_serves_the_gpu_stages() -> None:
    assert lines("auto", Capabilities(gpus=[], cpu_count=2)) == [
        "polyvision-gpu: no NVIDIA GPU found, serving GPU stages with CPU implementations"
        " (2 slots, one per core)",
        "polyvision-nvenc: not polled: no NVIDIA GPU found (encodes run on polyvision-cpu)",
        "polyvision-cpu: workflows and CPU stages (2 slots, one per core)",
    ]
    assert lines("auto", Capabilities(gpus=[], cpu_count=1))[0].endswith("(1 slot, one per core)")


def test_a_gpu_worker_names_its_gpus_and_why_encodes_stay_away() -> None:
    assert lines("auto", ONE_H100) == [
        "polyvision-gpu: GPU stages on #0 NVIDIA H100 80GB HBM3 (1 slot, one per GPU)",
        "polyvision-nvenc: not polled: no hardware video encoder on #0 NVIDIA H100 80GB HBM3"
        " (encodes run on polyvision-cpu)",
        "polyvision-cpu: workflows and CPU stages (32 slots, one per core)",
    ]
    assert lines("auto", TWO_L4)[1] == (
        "polyvision-nvenc: hardware video encoder on #0 NVIDIA L4, #1 NVIDIA L4"
        " (2 slots, one per encoder GPU)"
    )


def test_queues_left_out_by_an_explicit_list_are_named() -> None:
    assert lines("cpu", ONE_H100) == [
        "polyvision-gpu: not polled (--queues cpu); another worker must serve it",
        "polyvision-nvenc: not polled (--queues cpu)",
        "polyvision-cpu: workflows and CPU stages (32 slots, one per core)",
    ]
    assert lines("all", NO_GPU)[1] == (
        "polyvision-nvenc: no GPU with a hardware video encoder; polled because a development"
        " worker polls every queue (1 slot)"
    )
    assert (
        lines("auto", NO_GPU, 3)[2]
        == "polyvision-cpu: workflows and CPU stages (3 slots, --concurrency)"
    )


def test_lines_use_the_suffixed_names() -> None:
    names = queue_names("-bob")
    caps = Capabilities(gpus=[], cpu_count=2)
    described = describe_plan("auto", caps, plan_queues("auto", caps, names=names), names=names)
    assert [line.split(":")[0] for line in described] == [
        "polyvision-gpu-bob",
        "polyvision-nvenc-bob",
        "polyvision-cpu-bob",
    ]
    assert described[1].endswith("(encodes run on polyvision-cpu-bob)")


@pytest.mark.parametrize(
    ("spec", "concurrency"),
    [
        ("tpu", None),
        ("gpu,tpu", None),
        ("", None),
        ("cpu,", None),
        ("auto,cpu", None),
        ("all,gpu", None),
        ("cpu", 0),
    ],
)
def test_bad_specs_raise(spec: str, concurrency: int | None) -> None:
    with pytest.raises(ValueError):
        plan_queues(spec, NO_GPU, concurrency)


# -- detection --------------------------------------------------------------------------------


def test_detect_on_this_machine_never_raises() -> None:
    caps = detect_capabilities()
    assert caps.cpu_count >= 1
    if not Path("/proc/driver/nvidia").exists():
        # No NVIDIA driver here: pynvml fails to load its library, which must mean zero GPUs.
        assert caps.gpus == []


class _FakeNvmlError(Exception):
    pass


class _FakeNotSupported(_FakeNvmlError):
    pass


def fake_nvml(gpus: list[tuple[str, int, int | None]], *, init_error: bool = False) -> Any:
    """A stand-in for NVIDIA's pynvml: (name, memory bytes, encoder capacity or None)."""
    module: Any = types.ModuleType("pynvml")
    module.NVMLError = _FakeNvmlError
    module.NVMLError_NotSupported = _FakeNotSupported
    module.NVML_ENCODER_QUERY_H264 = 0
    module.calls = []

    def nvml_init() -> None:
        module.calls.append("init")
        if init_error:
            raise _FakeNvmlError("Driver Not Loaded")

    def encoder_capacity(handle: int, kind: int) -> int:
        assert kind == module.NVML_ENCODER_QUERY_H264
        capacity = gpus[handle][2]
        if capacity is None:
            raise _FakeNotSupported("Not Supported")
        return capacity

    module.nvmlInit = nvml_init
    module.nvmlShutdown = lambda: module.calls.append("shutdown")
    module.nvmlDeviceGetCount = lambda: len(gpus)
    module.nvmlDeviceGetHandleByIndex = lambda index: index
    module.nvmlDeviceGetName = lambda handle: gpus[handle][0]
    module.nvmlDeviceGetMemoryInfo = lambda handle: types.SimpleNamespace(total=gpus[handle][1])
    module.nvmlDeviceGetEncoderCapacity = encoder_capacity
    return module


def test_detect_h100_and_l4_with_fake_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = fake_nvml(
        [
            ("NVIDIA H100 80GB HBM3", 81559 * 1024 * 1024, None),  # no NVENC: NOT_SUPPORTED
            ("NVIDIA L4", 23034 * 1024 * 1024, 100),
        ]
    )
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    caps = detect_capabilities()
    assert caps.gpus == [
        GpuInfo(0, "NVIDIA H100 80GB HBM3", 81559, has_nvenc=False),
        GpuInfo(1, "NVIDIA L4", 23034, has_nvenc=True),
    ]
    assert [g.name for g in caps.nvenc_gpus] == ["NVIDIA L4"]
    assert nvml.calls == ["init", "shutdown"]
    assert [p.role for p in plan_queues("auto", caps)] == [
        QueueRole.gpu,
        QueueRole.nvenc,
        QueueRole.cpu,
    ]


def test_detect_zero_encoder_capacity() -> None:
    # Capacity 0 is what a GPU without NVENC reports, and also a present but saturated encoder:
    # live encoder sessions tell the two apart.
    nvml = fake_nvml([("NVIDIA H100 PCIe", 2**36, 0), ("NVIDIA L4", 2**34, 0)])
    nvml.nvmlDeviceGetEncoderStats = lambda handle: (handle * 3, 0.0, 0)  # (sessions, fps, us)
    caps = detect_capabilities(nvml)
    assert [g.has_nvenc for g in caps.gpus] == [False, True]
    assert detect_capabilities(fake_nvml([("NVIDIA L4", 2**34, 37)])).gpus[0].has_nvenc


def test_detect_without_driver_reports_zero_gpus() -> None:
    nvml = fake_nvml([("NVIDIA L4", 2**34, 100)], init_error=True)
    assert detect_capabilities(nvml).gpus == []


def test_detect_survives_a_failing_device() -> None:
    nvml = fake_nvml([("NVIDIA L4", 2**34, 100)])

    def broken(handle: int) -> Any:
        raise _FakeNvmlError("GPU is lost")

    nvml.nvmlDeviceGetMemoryInfo = broken
    caps = detect_capabilities(nvml)
    assert caps.gpus == []
    assert nvml.calls == ["init", "shutdown"]


def test_detect_decodes_byte_names_from_old_bindings() -> None:
    caps = detect_capabilities(fake_nvml([(b"Tesla T4", 2**34, 100)]))  # type: ignore[list-item]
    assert caps.gpus[0].name == "Tesla T4"
