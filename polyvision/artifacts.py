"""Where a match's artifacts live and how a stage records that it is done.

Every output goes to a deterministic key ``orgs/{org}/matches/{match}/{revision}/{stage}/...``,
and a stage writes a small manifest last: the digest of its inputs, the code version and its
outputs. A retried or replayed activity whose manifest matches its inputs returns the recorded
outputs at once instead of doing the work again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from polyvision.storage.objects import ObjectNotFound, ObjectStore

MANIFEST_VERSION = 1

HLS_STAGE = "hls"
"""Folder (in a revision) where the encode stage publishes the HLS package viewers fetch."""
HLS_MASTER_PLAYLIST = "master.m3u8"
"""The viewers' entry point inside `HLS_STAGE`."""


def match_prefix(organization_id: str, match_id: str, revision: int) -> str:
    """The key prefix of one revision of one match."""
    return f"orgs/{organization_id}/matches/{match_id}/{revision}"


def artifact_key(
    organization_id: str, match_id: str, revision: int, stage: str, *parts: str
) -> str:
    """The key of an artifact of ``stage``; ``parts`` name it inside the stage's folder."""
    return "/".join([match_prefix(organization_id, match_id, revision), stage, *parts])


def inputs_digest(inputs: dict[str, Any]) -> str:
    """A stable sha256 of JSON-able inputs (keys sorted, no whitespace)."""
    text = json.dumps(inputs, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class ChunkSpan:
    """A chunk as the whole-match stages read it: its index and frames ``[first, first+frames)``."""

    chunk: int
    first_frame: int
    frames: int


@dataclass(frozen=True)
class Manifest:
    """What a finished stage (or chunk of a stage) recorded.

    Attributes:
        stage: The stage name.
        inputs_digest: `inputs_digest` of everything that determines the outputs.
        code_version: Bumped by a stage when the same inputs would give other outputs.
        outputs: JSON-able description of the outputs (keys, counts, digests).
    """

    stage: str
    inputs_digest: str
    code_version: str
    outputs: dict[str, Any]

    def to_json(self) -> bytes:
        body = {
            "manifest_version": MANIFEST_VERSION,
            "stage": self.stage,
            "inputs_digest": self.inputs_digest,
            "code_version": self.code_version,
            "outputs": self.outputs,
        }
        return json.dumps(body, sort_keys=True, indent=2).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Manifest:
        body = json.loads(data)
        return cls(
            stage=str(body["stage"]),
            inputs_digest=str(body["inputs_digest"]),
            code_version=str(body["code_version"]),
            outputs=dict(body["outputs"]),
        )


async def read_matching_manifest(
    objects: ObjectStore, key: str, digest: str, code_version: str
) -> Manifest | None:
    """The manifest at ``key`` if it records the same inputs and code version, else None."""
    try:
        manifest = Manifest.from_json(await objects.get(key))
    except ObjectNotFound:
        return None
    except (ValueError, KeyError):  # a damaged manifest means: do the work again
        return None
    if manifest.inputs_digest != digest or manifest.code_version != code_version:
        return None
    return manifest


async def write_manifest(objects: ObjectStore, key: str, manifest: Manifest) -> None:
    """Write the manifest; call it last, after every output it names is stored."""
    await objects.put(key, manifest.to_json(), content_type="application/json")
