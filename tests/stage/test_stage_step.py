"""The stage skeleton's manifest round trip, on a real file object store."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from polyvision.artifacts import Manifest, write_manifest
from polyvision.stage import StageStep
from polyvision.storage.objects import open_object_store


@dataclass
class Part:
    key: str
    frames: int


@dataclass
class Output:
    parts: list[Part]
    digest: str
    from_manifest: bool = False
    counts: dict[str, int] = field(default_factory=dict)


@dataclass
class Scope:
    organization_id: str = "org"
    match_id: str = "m1"
    revision: int = 1


def _step(objects, inputs, code_version="v1"):
    return StageStep.for_match(
        objects,
        Scope(),
        stage="stitch",
        inputs=inputs,
        code_version=code_version,
        output_type=Output,
        folder=("chunk-0003",),
    )


async def test_recorded_output_comes_back_typed_and_marked(tmp_path: Path) -> None:
    async with open_object_store(
        f"file://{tmp_path}", secret=b"s" * 32, public_base_url="http://t"
    ) as objects:
        step = _step(objects, {"chunk": 3, "left": "a"})
        assert step.manifest_key == "orgs/org/matches/m1/1/stitch/chunk-0003/manifest.json"
        assert await step.recorded() is None
        output = Output(parts=[Part("k0", 250), Part("k1", 10)], digest="d", counts={"a": 2})
        assert await step.record(output, {"teams": [11, 10]}) is output
        again = await _step(objects, {"left": "a", "chunk": 3}).recorded()
        assert again == Output(
            parts=[Part("k0", 250), Part("k1", 10)], digest="d", from_manifest=True, counts={"a": 2}
        )
        assert isinstance(again.parts[0], Part)
        assert await step.details() == {"teams": [11, 10]}


async def test_other_inputs_code_or_layout_mean_work_again(tmp_path: Path) -> None:
    async with open_object_store(
        f"file://{tmp_path}", secret=b"s" * 32, public_base_url="http://t"
    ) as objects:
        step = _step(objects, {"chunk": 3})
        await step.record(Output(parts=[], digest="d"))
        assert await _step(objects, {"chunk": 4}).recorded() is None
        assert await _step(objects, {"chunk": 3}, code_version="v2").recorded() is None
        # A manifest of an older layout (hand-made outputs) is not trusted.
        old = Manifest("stitch", step.digest, "v1", outputs={"parts": 3})
        await write_manifest(objects, step.manifest_key, old)
        assert await step.recorded() is None
        # Nor one whose output does not fit the type.
        bad = Manifest("stitch", step.digest, "v1", outputs={"output": {"parts": "x"}})
        await write_manifest(objects, step.manifest_key, bad)
        assert await step.recorded() is None
