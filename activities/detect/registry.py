"""The detector model registry: rows in the metadata store, files in the object store, a cache.

Why a registry: a better detector should be a file an operator adds (``polyvision models add``),
not a code change, and every worker must run the same bytes. So a model is

- a row in the metadata store (``detector_models``): name, version, decoder, input size, class
  map, sha256, size, and whether it is *the default* the detect stage runs;
- a file in the object store at ``models/<name>/<version>/<filename>``, which every worker can
  reach whatever its disk;
- a copy in a local cache directory, verified by sha256 each time it is loaded and fetched
  again from the object store when missing or corrupt.

With no default registered, the stage keeps running the bundled YOLOX-nano from
``PV_MODELS_DIR`` exactly as before (:func:`resolve_stage_model`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Final

import sqlalchemy as sa
import structlog
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from activities.detect.model_spec import (
    BUNDLED_FILE,
    BUNDLED_SPEC,
    DECODERS,
    OUR_CLASSES,
    ClassMap,
    Decoder,
    ModelSpec,
    class_name,
    parse_model_ref,
)
from activities.detect.model_store import (
    KNOWN_URL,
    ModelChecksumError,
    ModelNotFoundError,
    ModelStoreError,
    resolve_model,
    sha256_of,
)
from polyvision.storage.metadata.models import DetectorModel
from polyvision.storage.objects import ChecksumMismatch, ObjectNotFound, ObjectStore

__all__ = [
    "MODELS_PREFIX",
    "ModelAlreadyRegisteredError",
    "ModelNotRegisteredError",
    "NoModelError",
    "RegisteredModel",
    "ResolvedModel",
    "default_model",
    "fetch_model",
    "find_model",
    "list_models",
    "materialise",
    "model_key",
    "register_model",
    "resolve_stage_model",
    "set_default",
]

log = structlog.get_logger(__name__)

MODELS_PREFIX: Final = "models"

Sessions = async_sessionmaker[AsyncSession]

ADD_HINT: Final = (
    "polyvision models add FILE --name NAME --version VERSION --decoder yolox|yolov8 "
    "--input-size WxH --classes person=0,ball=32 --default"
)


class ModelAlreadyRegisteredError(ModelStoreError):
    """A model of that name and version is registered already (versions are immutable)."""


class ModelNotRegisteredError(ModelNotFoundError):
    """No registered model has that name (and version)."""


class NoModelError(ModelNotFoundError):
    """Neither a registered default nor the bundled model is available."""


@dataclass(frozen=True)
class RegisteredModel:
    """A registry row, as the rest of the code sees it.

    Attributes:
        spec: what the backend needs to run it.
        object_key: where its file is in the object store.
        size_bytes: the file's size.
        is_default: whether the detect stage runs it.
        created_at: when it was added.
    """

    spec: ModelSpec
    object_key: str
    size_bytes: int
    is_default: bool
    created_at: datetime

    @classmethod
    def from_row(cls, row: DetectorModel) -> RegisteredModel:
        """Read a row; its values were validated by :func:`register_model`."""
        if row.decoder not in DECODERS:
            raise ModelStoreError(
                f"model {row.name}:{row.version} has decoder {row.decoder!r}, which this code "
                f"does not know ({', '.join(DECODERS)})"
            )
        decoder: Decoder = row.decoder
        class_map = tuple((int(index), OUR_CLASSES[name]) for index, name in row.class_map.items())
        spec = ModelSpec(
            name=row.name,
            version=row.version,
            decoder=decoder,
            input_size=(row.input_width, row.input_height),
            class_map=class_map,
            sha256=row.sha256,
            format=row.format,
        )
        return cls(spec, row.object_key, row.size_bytes, bool(row.is_default), row.created_at)

    @property
    def identity(self) -> str:
        """``name:version:sha256``: what the detect stage's manifests record as its model."""
        return f"{self.spec.ref}:{self.spec.sha256}"

    @property
    def filename(self) -> str:
        """The file's name, the last segment of its key (kept in the cache too)."""
        return self.object_key.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class ResolvedModel:
    """A model ready to load: its spec and a verified local file.

    Attributes:
        spec: decoder, input size, class map, digest.
        path: the verified file.
        registered: False for the bundled YOLOX-nano from ``PV_MODELS_DIR``.
    """

    spec: ModelSpec
    path: Path
    registered: bool


# SQLModel's idiom for a boolean column test; `is_default` is True or NULL, never False.
_IS_DEFAULT = DetectorModel.is_default == True  # noqa: E712


def model_key(name: str, version: str, filename: str) -> str:
    """The object key of a model's file: ``models/<name>/<version>/<filename>``."""
    return f"{MODELS_PREFIX}/{name}/{version}/{filename}"


def _class_map_json(class_map: ClassMap) -> dict[str, str]:
    return {str(index): class_name(ours) for index, ours in class_map}


def _by_ref(name: str, version: str) -> sa.ColumnElement[bool]:
    return sa.and_(col(DetectorModel.name) == name, col(DetectorModel.version) == version)


async def register_model(
    sessions: Sessions,
    objects: ObjectStore,
    path: Path,
    *,
    name: str,
    version: str,
    decoder: Decoder,
    input_size: tuple[int, int],
    class_map: ClassMap,
    make_default: bool = False,
    check: Callable[[ModelSpec, Path], None] | None = None,
) -> RegisteredModel:
    """Add a model: upload its file, record its row, optionally make it the default.

    Args:
        sessions: the metadata store.
        objects: the object store receiving the file.
        path: the local ``.onnx`` file.
        name: registry name (letters, digits, ``._-``).
        version: registry version (same alphabet); a (name, version) is never replaced.
        decoder: ``yolox`` or ``yolov8``.
        input_size: the network's input ``(width, height)``.
        class_map: model class index to our class id (:func:`~activities.detect.model_spec.
            parse_class_map`).
        make_default: make it the model the detect stage runs.
        check: called with the spec and file before anything is stored (the CLI passes
            :func:`activities.detect.backend.check_model_file`, which loads and runs it once).

    Raises:
        FileNotFoundError: no file at ``path``.
        ValueError: an invalid name, version, input size or class map.
        ModelAlreadyRegisteredError: that name and version exist.
        ModelSpecError: ``check`` found the file does not fit the spec.
    """
    try:
        sha256 = await asyncio.to_thread(sha256_of, path)
    except (FileNotFoundError, IsADirectoryError):
        raise FileNotFoundError(f"no such model file: {path}") from None
    spec = ModelSpec(name, version, decoder, input_size, class_map, sha256)
    if check is not None:
        await asyncio.to_thread(check, spec, path)
    async with sessions() as session:
        if (await session.exec(select(DetectorModel).where(_by_ref(name, version)))).first():
            raise ModelAlreadyRegisteredError(
                f"model {spec.ref} is registered already; versions never change: add it as a "
                f"new --version"
            )
    key = model_key(name, version, path.name)
    # Upload first, row last: a row always points at a complete, verified object. A crash in
    # between leaves an unreferenced object that the next `add` of this version overwrites.
    info = await objects.upload_file(key, path, sha256=sha256, content_type="application/onnx")
    row = DetectorModel(
        name=name,
        version=version,
        decoder=decoder,
        input_width=input_size[0],
        input_height=input_size[1],
        class_map=_class_map_json(spec.class_map),
        sha256=sha256,
        size_bytes=info.size,
        object_key=key,
    )
    try:
        async with sessions() as session:
            if make_default:
                await _clear_default(session)
                row.is_default = True
            session.add(row)
            await session.commit()
            await session.refresh(row)
    except IntegrityError as exc:
        async with sessions() as session:
            taken = (
                await session.exec(select(DetectorModel).where(_by_ref(name, version)))
            ).first()
        if taken is not None:  # another `add` of the same version won the race
            raise ModelAlreadyRegisteredError(f"model {spec.ref} is registered already") from exc
        # Another process made its model the default at the same moment: nothing was added.
        raise ModelStoreError(
            f"model {spec.ref} was not added: another default was set at the same time; run "
            f"the command again"
        ) from exc
    log.info("model registered", model=spec.ref, sha256=sha256, default=make_default)
    return RegisteredModel.from_row(row)


async def _clear_default(session: AsyncSession) -> None:
    # Flushed before the new default is set: the unique constraint sees one change at a time.
    for row in (await session.exec(select(DetectorModel).where(_IS_DEFAULT))).all():
        row.is_default = None
        session.add(row)
    await session.flush()


async def list_models(sessions: Sessions) -> list[RegisteredModel]:
    """Every registered model, by name then newest first."""
    async with sessions() as session:
        rows = (
            await session.exec(
                select(DetectorModel).order_by(
                    col(DetectorModel.name), col(DetectorModel.created_at).desc()
                )
            )
        ).all()
    return [RegisteredModel.from_row(row) for row in rows]


async def find_model(sessions: Sessions, name: str, version: str | None = None) -> RegisteredModel:
    """The model ``name:version``, or the newest version of ``name`` when no version is given.

    Raises:
        ModelNotRegisteredError: none registered; the message lists what is.
    """
    statement = select(DetectorModel).where(col(DetectorModel.name) == name)
    if version is not None:
        statement = statement.where(col(DetectorModel.version) == version)
    async with sessions() as session:
        row = (await session.exec(statement.order_by(col(DetectorModel.created_at).desc()))).first()
    if row is None:
        ref = name if version is None else f"{name}:{version}"
        known = ", ".join(m.spec.ref for m in await list_models(sessions)) or "none"
        raise ModelNotRegisteredError(
            f"no model {ref} is registered (registered: {known}); add one with {ADD_HINT}"
        )
    return RegisteredModel.from_row(row)


async def set_default(sessions: Sessions, name: str, version: str) -> RegisteredModel:
    """Make ``name:version`` the model the detect stage runs.

    Workers read the default once, when they detect their first chunk: a worker that already
    has keeps its model until it restarts.

    Raises:
        ModelNotRegisteredError: no such model.
    """
    chosen = await find_model(sessions, name, version)
    for attempt in range(3):
        try:
            async with sessions() as session:
                await _clear_default(session)
                row = (
                    await session.exec(select(DetectorModel).where(_by_ref(name, version)))
                ).one()
                row.is_default = True
                session.add(row)
                await session.commit()
            break
        except IntegrityError:
            # Another set-default committed between our clear and our set: clear its choice too.
            if attempt == 2:
                raise
    log.info("default model set", model=chosen.spec.ref)
    return await find_model(sessions, name, version)


async def default_model(sessions: Sessions) -> RegisteredModel | None:
    """The registered default, or None when there is none.

    A database never migrated to the registry (no ``detector_models`` table) has none either:
    nobody can have registered a model there, so the bundled one is the right answer, not an
    error.
    """
    async with sessions() as session:
        connection = await session.connection()
        table = DetectorModel.__tablename__
        if not await connection.run_sync(lambda c: sa.inspect(c).has_table(table)):
            return None
        row = (await session.exec(select(DetectorModel).where(_IS_DEFAULT))).first()
    return None if row is None else RegisteredModel.from_row(row)


def _cache_path(cache_dir: Path, model: RegisteredModel) -> Path:
    return cache_dir / model.spec.name / model.spec.version / model.filename


async def fetch_model(objects: ObjectStore, model: RegisteredModel, cache_dir: Path) -> Path:
    """The model's file in the local cache, verified by its sha256 now.

    The cached copy is hashed on every call (once per worker or CLI run; a 100 MB file takes a
    fraction of a second) and fetched again from the object store when missing or corrupt.

    Raises:
        ModelNotFoundError: the row's object is not in the object store.
        ModelChecksumError: the object store's bytes do not have the registered sha256.
    """
    path = _cache_path(cache_dir, model)
    expected = model.spec.sha256
    if path.is_file():
        actual = await asyncio.to_thread(sha256_of, path)
        if actual == expected:
            return path
        log.warning("cached model corrupt, fetching again", model=model.spec.ref, path=str(path))
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    try:
        # download_file writes a temporary file and renames it: readers never see a partial one.
        await objects.download_file(model.object_key, path)
    except ObjectNotFound:
        raise ModelNotFoundError(
            f"model {model.spec.ref} is registered but its file {model.object_key} is not in the "
            f"object store (PV_OBJECTS_URL); add it again as a new version or set another "
            f"default (polyvision models set-default NAME VERSION)"
        ) from None
    except ChecksumMismatch as exc:
        raise ModelStoreError(
            f"model {model.spec.ref}: the object store's copy {model.object_key} is corrupt "
            f"({exc}); add the file again as a new version"
        ) from exc
    actual = await asyncio.to_thread(sha256_of, path)
    if actual != expected:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        raise ModelChecksumError(model.object_key, expected, actual)
    return path


async def materialise(
    objects: ObjectStore | None,
    model: RegisteredModel | None,
    *,
    cache_dir: Path,
    models_dir: Path,
    download_url: str | None = KNOWN_URL,
) -> ResolvedModel:
    """A verified local file for ``model``, or for the bundled model when ``model`` is None.

    Args:
        objects: the object store holding registered files (unused for the bundled model).
        model: the registered model to fetch; None: the bundled YOLOX-nano.
        cache_dir: local cache of registered models.
        models_dir: ``PV_MODELS_DIR``, where the bundled ``yolox_nano.onnx`` is.
        download_url: where the bundled model may be downloaded from when absent (None: never).

    Raises:
        NoModelError: the bundled model is wanted and absent; the message names it, the
            registry, and how to add a model.
        ModelNotFoundError: a registered model's object is missing from the object store.
        ModelChecksumError: a file (stored or bundled) has the wrong digest.
    """
    if model is not None:
        if objects is None:
            raise ModelNotFoundError(f"model {model.spec.ref}: no object store to fetch it from")
        path = await fetch_model(objects, model, cache_dir)
        return ResolvedModel(model.spec, path, registered=True)
    try:
        path = await asyncio.to_thread(
            resolve_model, models_dir, BUNDLED_FILE, BUNDLED_SPEC.sha256, download_url
        )
    except ModelChecksumError:
        raise
    except ModelNotFoundError as exc:
        raise NoModelError(
            f"no detector model available: no registered model is the default, and the bundled "
            f"one is missing ({exc}). Register one with `{ADD_HINT}`, or put {BUNDLED_FILE} in "
            f"PV_MODELS_DIR"
        ) from exc
    return ResolvedModel(BUNDLED_SPEC, path, registered=False)


async def resolve_stage_model(
    *,
    sessions: Sessions | None,
    objects: ObjectStore | None,
    cache_dir: Path,
    models_dir: Path,
    ref: str | None = None,
    download_url: str | None = KNOWN_URL,
) -> ResolvedModel:
    """The model the detect stage runs: ``ref``, else the registered default, else the bundled.

    Args:
        sessions: the metadata store; None: no registry (only the bundled model).
        objects: the object store holding registered files; needed with ``sessions``.
        cache_dir: local cache of registered models.
        models_dir: ``PV_MODELS_DIR``, where the bundled ``yolox_nano.onnx`` is.
        ref: ``NAME`` or ``NAME:VERSION`` of a registered model to use instead of the default.
        download_url: where the bundled model may be downloaded from when absent (None: never).

    Raises:
        ModelNotRegisteredError: ``ref`` names no registered model.
        NoModelError: no default is registered and the bundled model is absent; the message
            names both and how to add a model.
        ModelChecksumError: a file (cached, stored or bundled) has the wrong digest.
    """
    model: RegisteredModel | None = None
    if ref is not None:
        name, version = parse_model_ref(ref)
        if sessions is None or objects is None:
            raise ModelNotRegisteredError(f"--model {ref}: no model registry is configured")
        model = await find_model(sessions, name, version)
    elif sessions is not None:
        model = await default_model(sessions)
    return await materialise(
        objects, model, cache_dir=cache_dir, models_dir=models_dir, download_url=download_url
    )
