"""The one skeleton every stage's activity follows: matching manifest? → work → write manifest.

A stage (or one chunk of a stage) is a `StageStep`: where its manifest lives, what determines its
outputs (``inputs``, digested) and its code version. An activity asks `recorded()` first; a
retried or replayed attempt whose manifest matches gets its typed output back at once. Otherwise
it does the work, writes every output, and calls `record(output)` last.

The manifest holds the typed output itself (``outputs["output"]``, the dataclass as JSON, read
back with Temporal's own JSON-to-dataclass conversion), so no stage writes a second, hand-made
description of what it returns. ``details`` carries anything else worth recording (counts per
team, per-chunk figures) that the output type does not hold.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from temporalio.converter import AdvancedJSONEncoder, value_to_type

from polyvision.artifacts import (
    Manifest,
    artifact_key,
    inputs_digest,
    read_matching_manifest,
    write_manifest,
)
from polyvision.storage.objects import ObjectStore

OutputT = TypeVar("OutputT")

MANIFEST_NAME = "manifest.json"
"""The file name of a stage's manifest inside its folder (or a chunk's sub-folder)."""


class MatchScoped(Protocol):
    """What every stage input carries: whose match, and which processing revision."""

    @property
    def organization_id(self) -> str: ...

    @property
    def match_id(self) -> str: ...

    @property
    def revision(self) -> int: ...


async def object_digest(objects: ObjectStore, key: str) -> str:
    """An input object's identity for a manifest: its stored sha256, or its size and time where
    the store recorded no digest."""
    info = await objects.stat(key)
    return info.sha256 or f"{info.size}:{info.modified.isoformat()}"


def output_to_json(output: Any) -> Any:
    """A dataclass output as plain JSON values (the same encoding Temporal's payloads use)."""
    return json.loads(json.dumps(output, cls=AdvancedJSONEncoder))


def output_from_json(output_type: type[OutputT], value: Any) -> OutputT:
    """Rebuild a typed output from `output_to_json`'s values.

    Raises:
        TypeError, ValueError, KeyError: The values do not fit ``output_type``.
    """
    return value_to_type(output_type, value)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class StageStep(Generic[OutputT]):
    """One idempotent unit of a stage: the whole stage, or one chunk of it.

    Attributes:
        objects: The object store holding the manifest.
        stage: The stage's name (``manifest.stage``).
        manifest_key: Where the manifest lives.
        inputs: JSON-able values that determine the outputs; their digest is recorded.
        code_version: Bumped by the stage when the same inputs would give other outputs.
        output_type: The activity's output dataclass.
    """

    objects: ObjectStore
    stage: str
    manifest_key: str
    inputs: dict[str, Any]
    code_version: str
    output_type: type[OutputT]
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "digest", inputs_digest(self.inputs))

    @classmethod
    def for_match(
        cls,
        objects: ObjectStore,
        scope: MatchScoped,
        *,
        stage: str,
        inputs: dict[str, Any],
        code_version: str,
        output_type: type[OutputT],
        folder: tuple[str, ...] = (),
    ) -> StageStep[OutputT]:
        """The step of ``scope``'s match whose manifest is
        ``{revision}/{stage}/{*folder}/manifest.json``."""
        key = artifact_key(
            scope.organization_id, scope.match_id, scope.revision, stage, *folder, MANIFEST_NAME
        )
        return cls(objects, stage, key, inputs, code_version, output_type)

    async def recorded(self) -> OutputT | None:
        """The output a previous attempt recorded for the same inputs and code, else None.

        An output type with a ``from_manifest`` field gets it set, so callers (and tests) can
        tell a replayed answer from fresh work.
        """
        manifest = await read_matching_manifest(
            self.objects, self.manifest_key, self.digest, self.code_version
        )
        if manifest is None or "output" not in manifest.outputs:
            return None
        try:
            output = output_from_json(self.output_type, manifest.outputs["output"])
        except (TypeError, ValueError, KeyError):  # an older layout: do the work again
            return None
        if dataclasses.is_dataclass(output) and any(
            f.name == "from_manifest" for f in dataclasses.fields(output)
        ):
            output = dataclasses.replace(output, from_manifest=True)  # type: ignore[type-var]
        return output

    async def record(self, output: OutputT, details: dict[str, Any] | None = None) -> OutputT:
        """Write the manifest (last, after every output it names is stored); returns ``output``."""
        manifest = Manifest(
            stage=self.stage,
            inputs_digest=self.digest,
            code_version=self.code_version,
            outputs={"output": output_to_json(output), "details": details or {}},
        )
        await write_manifest(self.objects, self.manifest_key, manifest)
        return output

    async def details(self) -> dict[str, Any]:
        """The ``details`` a matching manifest recorded ({} when there is none)."""
        manifest = await read_matching_manifest(
            self.objects, self.manifest_key, self.digest, self.code_version
        )
        if manifest is None:
            return {}
        return dict(manifest.outputs.get("details", {}))
