"""`polyvision models`: register detector models, list them, choose the one the stage runs.

Handlers only: the sub-parsers are registered in `programs.cli`. Each handler opens the metadata
and object stores of the settings, calls `activities.detect.registry`, and reports in one line
per fact; every refusal is one line on stderr (exit 2 for what the operator typed, 1 for a
store that refused).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from sqlalchemy.exc import DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel.ext.asyncio.session import AsyncSession

from activities.detect.model_spec import (
    DECODERS,
    Decoder,
    format_class_map,
    parse_class_map,
    parse_input_size,
)
from activities.detect.model_store import ModelStoreError
from activities.detect.registry import (
    RegisteredModel,
    list_models,
    register_model,
    set_default,
)
from polyvision.settings import Settings
from polyvision.storage.metadata.engine import create_engine, session_maker
from polyvision.storage.objects import ObjectStore, ObjectStoreError, open_object_store

__all__ = [
    "database_refused",
    "describe_models",
    "model_cache_dir",
    "open_registry",
    "run_models",
]


def model_cache_dir(settings: Settings) -> Path:
    """Where registered models are cached: the worker's own cache (`work_dir / "models"`), so a
    CLI run and a worker on one machine fetch a model once."""
    return settings.data_dir / "worker" / "models"


@contextlib.asynccontextmanager
async def open_registry(
    settings: Settings,
) -> AsyncIterator[tuple[async_sessionmaker[AsyncSession], ObjectStore]]:
    """The metadata sessions and object store of ``settings``, closed on exit."""
    engine = create_engine(settings.database_url)
    objects = open_object_store(
        settings.objects_url, secret=settings.secret, public_base_url=settings.api_public_url
    )
    try:
        async with objects:
            yield session_maker(engine), objects
    finally:
        await engine.dispose()


def describe_models(models: Sequence[RegisteredModel]) -> list[str]:
    """A table of models for `polyvision models list`, the default marked with ``*``."""
    lines = [
        f"  {'MODEL':<28} {'DECODER':<8} {'INPUT':<10} {'CLASSES':<22} {'SIZE':>12}  "
        f"{'SHA256':<12}  ADDED (UTC)"
    ]
    for model in models:
        spec = model.spec
        size = f"{spec.input_size[0]}x{spec.input_size[1]}"
        lines.append(
            f"{'*' if model.is_default else ' '} {spec.ref:<28} {spec.decoder:<8} {size:<10} "
            f"{format_class_map(spec.class_map):<22} {model.size_bytes:>12,d}  "
            f"{spec.sha256[:12]}  {model.created_at:%Y-%m-%d %H:%M}"
        )
    return lines


def _refuse(command: str, message: str, code: int) -> int:
    sys.stderr.write(f"polyvision models {command}: {' '.join(message.splitlines())}\n")
    return code


def database_refused(exc: SQLAlchemyError | OSError) -> str:
    """One line saying the metadata database refused, and the two likely reasons."""
    reason = exc.orig if isinstance(exc, DBAPIError) else exc
    return (
        f"the metadata database refused ({exc.__class__.__name__}: {reason}); is it reachable "
        f"(PV_DATABASE_URL) and migrated (`polyvision db upgrade`)?"
    )


async def _add(settings: Settings, args: argparse.Namespace) -> str:
    # Imported here: it loads ONNX Runtime, which `list` and `set-default` do not need.
    from activities.detect.backend import check_model_file

    decoder: Decoder = args.decoder
    async with open_registry(settings) as (sessions, objects):
        model = await register_model(
            sessions,
            objects,
            Path(args.file),
            name=args.name,
            version=args.version,
            decoder=decoder,
            input_size=parse_input_size(args.input_size),
            class_map=parse_class_map(args.classes),
            make_default=args.default,
            check=check_model_file,
        )
    default = ", now the default" if model.is_default else ""
    return (
        f"added {model.spec.ref} ({model.spec.decoder}, {model.size_bytes:,d} bytes, sha256 "
        f"{model.spec.sha256}) at {model.object_key}{default}"
    )


async def _list(settings: Settings, args: argparse.Namespace) -> str:
    async with open_registry(settings) as (sessions, _):
        models = await list_models(sessions)
    if not models:
        return (
            "no models registered: the detect stage runs the bundled yolox-nano from "
            "PV_MODELS_DIR; add one with `polyvision models add FILE --name NAME --version "
            "VERSION --decoder yolox|yolov8 --input-size WxH --classes person=0,ball=32 --default`"
        )
    lines = describe_models(models)
    if not any(model.is_default for model in models):
        lines.append(
            "no default: the detect stage runs the bundled yolox-nano from PV_MODELS_DIR "
            "(choose one with `polyvision models set-default NAME VERSION`)"
        )
    return "\n".join(lines)


async def _set_default(settings: Settings, args: argparse.Namespace) -> str:
    async with open_registry(settings) as (sessions, _):
        model = await set_default(sessions, args.name, args.version)
    return (
        f"{model.spec.ref} is the default model; workers started from now on run it "
        f"(restart running workers to switch them)"
    )


_HANDLERS = {"add": _add, "list": _list, "set-default": _set_default}


def run_models(settings: Settings, args: argparse.Namespace) -> int:
    """Run one `polyvision models` subcommand; its exit status.

    Exit 0 on success; 2 for a missing file, an invalid value, a model file that does not fit
    what was declared, an unknown or duplicate model; 1 when a store refused.
    """
    command: str = args.models_command
    if command == "add" and args.decoder not in DECODERS:  # argparse's choices say it first
        return _refuse(command, f"--decoder must be one of {', '.join(DECODERS)}", 2)
    try:
        report = asyncio.run(_HANDLERS[command](settings, args))
    except (FileNotFoundError, ValueError, ModelStoreError) as exc:
        return _refuse(command, str(exc), 2)
    except SQLAlchemyError as exc:
        return _refuse(command, database_refused(exc), 1)
    except ObjectStoreError as exc:
        return _refuse(command, f"the object store (PV_OBJECTS_URL) refused: {exc}", 1)
    sys.stdout.write(f"{report}\n")
    return 0
