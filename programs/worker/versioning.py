"""Which build a worker is, and how workflows move between builds (Temporal Worker Versioning).

Every worker reports a deployment version: the deployment name (``polyvision``) and a build id
made of the package version and a digest of the source it runs (``0.1.0+3f9c2a1b7d4e``), both
overridable (``PV_WORKER_DEPLOYMENT_NAME``, ``PV_WORKER_BUILD_ID``: an image build passes its
git sha). The UI and ``temporal workflow describe`` then show which build ran each task.

Routing by version is opt-in (``PV_WORKER_VERSIONING=true``). With it on, the server sends a
workflow's tasks only to workers of the deployment's *current* version, which an operator sets
once the new build polls every queue::

    temporal worker deployment set-current-version --deployment-name polyvision --build-id B

Versioning behaviour: **auto-upgrade** for every workflow these workers run. A match workflow
lives for hours (a 120-minute match, then reprocess updates), longer than a rollout should
wait: pinned runs would hold the old build's GPU workers until the last match drained. With
auto-upgrade a running match moves to the new build at its next workflow task, which is safe
because workflow changes go behind ``workflow.patched`` and every recorded history replays on
the new code before it ships (``tests/workflows/test_replay.py``, the release gate). The batch
children follow the same rule, so a match and its children never run on builds that disagree
about a patch. Pinning would be the choice for a workflow whose code changes could not be
patched; none of ours is.

With routing off (the default) the version is reported but does not route: any worker polling a
queue takes its tasks, which is what a single ``polyvision up`` machine or a rolling update of
unversioned workers needs.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict
from temporalio.api.workflowservice.v1 import SetWorkerDeploymentCurrentVersionRequest
from temporalio.client import Client
from temporalio.common import VersioningBehavior, WorkerDeploymentVersion
from temporalio.worker import WorkerDeploymentConfig

DEFAULT_DEPLOYMENT_NAME = "polyvision"

#: The behaviour of every workflow on a versioned worker (see the module docstring for why).
VERSIONING_BEHAVIOR = VersioningBehavior.AUTO_UPGRADE

# The packages whose source makes up a worker build (what runs in a worker process).
_SOURCE_PACKAGES = ("workflows", "activities", "polyvision", "programs")
_REPO_ROOT = Path(__file__).resolve().parents[2]


class VersioningSettings(BaseSettings):
    """``PV_WORKER_*`` settings of worker versioning, read in the worker's entry point.

    Attributes:
        worker_deployment_name: The deployment every worker of this system belongs to.
        worker_build_id: This build's id; computed by `default_build_id` if empty.
        worker_versioning: Route tasks by version (the deployment's current version takes new
            tasks) instead of only reporting it.
    """

    model_config = SettingsConfigDict(
        env_prefix="PV_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    worker_deployment_name: str = DEFAULT_DEPLOYMENT_NAME
    worker_build_id: str = ""
    worker_versioning: bool = False


def source_digest(root: Path = _REPO_ROOT, packages: Iterable[str] = _SOURCE_PACKAGES) -> str:
    """sha256 over the relative paths and contents of the packages' ``.py`` files (hex).

    Any change to the code a worker runs changes it; comments and docstrings too, which only
    costs a version nobody needed.
    """
    digest = hashlib.sha256()
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(b"\0")
            digest.update(path.read_bytes())
            digest.update(b"\0")
    return digest.hexdigest()


def package_version() -> str:
    """The installed ``polyvision`` distribution's version (``0+unknown`` if not installed)."""
    try:
        return metadata.version("polyvision")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def default_build_id() -> str:
    """``{package version}+{first 12 hex digits of the source digest}``."""
    return f"{package_version()}+{source_digest()[:12]}"


def worker_version(settings: VersioningSettings | None = None) -> WorkerDeploymentVersion:
    """The deployment version this worker process reports."""
    settings = settings or VersioningSettings()
    return WorkerDeploymentVersion(
        deployment_name=settings.worker_deployment_name or DEFAULT_DEPLOYMENT_NAME,
        build_id=settings.worker_build_id or default_build_id(),
    )


def deployment_config(
    version: WorkerDeploymentVersion, *, use_worker_versioning: bool
) -> WorkerDeploymentConfig:
    """The `Worker(deployment_config=...)` of a worker of `version`.

    Args:
        version: From `worker_version`.
        use_worker_versioning: Route by version (see the module docstring) or only report it.
    """
    return WorkerDeploymentConfig(
        version=version,
        use_worker_versioning=use_worker_versioning,
        default_versioning_behavior=(
            VERSIONING_BEHAVIOR if use_worker_versioning else VersioningBehavior.UNSPECIFIED
        ),
    )


async def set_current_version(
    client: Client, version: WorkerDeploymentVersion, *, identity: str = "polyvision"
) -> None:
    """Make `version` its deployment's current version: new and auto-upgrade tasks go to it.

    What ``temporal worker deployment set-current-version`` does. The server refuses until
    workers of that version have polled; callers retry.

    Raises:
        temporalio.service.RPCError: The server refused (e.g. no poller of that version yet).
    """
    await client.workflow_service.set_worker_deployment_current_version(
        SetWorkerDeploymentCurrentVersionRequest(
            namespace=client.namespace,
            deployment_name=version.deployment_name,
            build_id=version.build_id,
            identity=identity,
            ignore_missing_task_queues=True,
        )
    )
