"""``polyvision-edge``: provision the box, upload recordings, watch a directory, show the spool.

Exit codes: 0 success, 1 failure (the message is on stderr), 2 usage error.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from edge.client import ApiError, ApiUnavailable, EdgeClient, Throttle
from edge.keys import (
    SPOOL_FILENAME,
    DeviceConfig,
    KeyFileError,
    NotProvisionedError,
    load_device_config,
    load_key,
    load_or_generate_key,
    resolve_state_dir,
    save_device_config,
)
from edge.protocol import SIDES, parts_total
from edge.spool import Spool, State
from edge.uploader import (
    DeviceRejected,
    Progress,
    Uploader,
    describe_pair,
    session_summary,
)
from edge.watch import RIG_FILENAME, Watcher, pair_name
from polyvision.device_tokens import public_key_text

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2
# The line ``watch`` writes to stderr once SIGINT/SIGTERM stop it cleanly.
READY_PREFIX = "polyvision-edge watch: watching"


class CliError(RuntimeError):
    """A failure to report on stderr with exit code 1."""


def _err(text: str) -> None:
    sys.stderr.write(text.rstrip("\n") + "\n")
    sys.stderr.flush()


def _out(text: str) -> None:
    sys.stdout.write(text.rstrip("\n") + "\n")
    sys.stdout.flush()


def parse_size(text: str) -> int:
    """``"5M"`` → 5 MiB; plain integers are bytes; K, M and G suffixes are binary multiples."""
    value = text.strip().upper().removesuffix("B").removesuffix("I")
    scale = 1
    for suffix, factor in (("K", 1024), ("M", 1024**2), ("G", 1024**3)):
        if value.endswith(suffix):
            value, scale = value[:-1], factor
            break
    try:
        number = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}") from None
    if number <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive: {text!r}")
    return int(number * scale)


def progress_line(step: Progress) -> str:
    """One upload step, labelled by its file: ``left.mp4: 3/8 parts (… bytes), part 3 sent``."""
    counts = (
        f"{step.parts_done}/{step.parts_total} parts ({step.bytes_done}/{step.bytes_total} bytes)"
    )
    if step.event == "resume":
        return f"{step.label}: {counts} already on the server"
    return f"{step.label}: {counts}, part {step.number} sent"


def _show_progress(step: Progress) -> None:
    _err(progress_line(step))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``polyvision-edge``."""
    parser = argparse.ArgumentParser(
        prog="polyvision-edge", description="The Polyvision edge agent."
    )
    parser.add_argument(
        "--state-dir",
        help="key, device.json and spool (default: $PV_EDGE_STATE_DIR or ~/.polyvision-edge)",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    provision = commands.add_parser("provision", help="register this box with a one-time code")
    provision.add_argument("--api", required=True, help="API base URL, e.g. https://api.example")
    provision.add_argument("--code", required=True, help="the provisioning code")
    provision.add_argument("--name", required=True, help="a name for this box")

    def transfer_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("--part-size", type=parse_size, help="part size to ask for (5M)")
        command.add_argument(
            "--limit-rate", type=parse_size, help="upload bandwidth cap in bytes/s (10M)"
        )
        command.add_argument(
            "--delete-after-upload",
            action="store_true",
            help="delete recordings once the server verified both digests (default: keep)",
        )

    upload = commands.add_parser("upload", help="upload one recording pair")
    upload.add_argument("left", type=Path, help="left recording")
    upload.add_argument("right", type=Path, help="right recording")
    upload.add_argument("--rig", type=Path, required=True, help="rig.json of the cameras")
    upload.add_argument("--title", help="match title")
    transfer_options(upload)

    watch = commands.add_parser("watch", help="upload every finished pair of a directory")
    watch.add_argument("directory", type=Path)
    watch.add_argument("--rig", type=Path, help=f"rig.json (default: DIR/{RIG_FILENAME})")
    watch.add_argument("--once", action="store_true", help="process what is there, then exit")
    watch.add_argument("--poll-interval", type=float, default=10.0, help="seconds between scans")
    transfer_options(watch)

    status = commands.add_parser("status", help="show the spool")
    status.add_argument("--json", action="store_true", help="one JSON document")
    return parser


def run(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``polyvision-edge``; returns the exit code."""
    args = build_parser().parse_args(argv)
    state_dir = resolve_state_dir(args.state_dir, os.environ)
    handlers: dict[str, Callable[[argparse.Namespace, Path], Awaitable[int]]] = {
        "provision": _provision,
        "upload": _upload,
        "watch": _watch,
    }
    try:
        if args.command == "status":
            return _status(args, state_dir)
        _check_paths(args)
        return _run_interruptible(handlers[args.command](args, state_dir), args.command)
    except (CliError, KeyFileError, NotProvisionedError, DeviceRejected) as exc:
        _err(f"polyvision-edge {args.command}: {exc}")
        return EXIT_FAILURE
    except ApiError as exc:
        _err(f"polyvision-edge {args.command}: the API refused: {exc}")
        return EXIT_FAILURE
    except ApiUnavailable as exc:
        _err(f"polyvision-edge {args.command}: {exc}")
        return EXIT_FAILURE


def _run_interruptible(work: Awaitable[int], command: str) -> int:
    """Run ``work``; SIGINT/SIGTERM cancel it (``watch`` treats that as a clean stop)."""

    async def main() -> int:
        loop = asyncio.get_running_loop()
        task = asyncio.ensure_future(work)
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        try:
            return await task
        except asyncio.CancelledError:
            if command == "watch":
                _err("polyvision-edge watch: stopped")
                return EXIT_OK
            _err(f"polyvision-edge {command}: interrupted; run it again to resume")
            return EXIT_FAILURE
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)

    return asyncio.run(main())


async def _provision(args: argparse.Namespace, state_dir: Path) -> int:
    try:
        existing = load_device_config(state_dir)
    except NotProvisionedError:
        existing = None
    if existing is not None:
        raise CliError(
            f"already provisioned as device {existing.device_id} with {existing.api_url}; "
            f"use another --state-dir to provision again"
        )
    key = load_or_generate_key(state_dir)
    async with EdgeClient(args.api) as client:
        registered = await client.register(args.code, args.name, public_key_text(key))
    save_device_config(
        state_dir,
        DeviceConfig(
            api_url=args.api,
            device_id=registered.device_id,
            organization_id=registered.organization_id,
            name=registered.name,
        ),
    )
    _out(f"provisioned device {registered.device_id} in organization {registered.organization_id}")
    return EXIT_OK


def _client(state_dir: Path, limit_rate: int | None) -> EdgeClient:
    config = load_device_config(state_dir)
    key = load_key(state_dir)
    return EdgeClient(
        config.api_url, config.device_id, key, throttle=Throttle(bytes_per_s=limit_rate)
    )


def _check_paths(args: argparse.Namespace) -> None:
    """Refuse missing inputs before any async work starts."""
    if args.command == "upload":
        for path in (args.left, args.right, args.rig):
            if not path.is_file():
                raise CliError(f"{path}: no such file")
    elif args.command == "watch":
        if not args.directory.is_dir():
            raise CliError(f"{args.directory}: not a directory")
        args.rig = args.rig or args.directory / RIG_FILENAME
        if not args.rig.is_file():
            raise CliError(f"{args.rig}: no rig.json (pass --rig)")


async def _upload(args: argparse.Namespace, state_dir: Path) -> int:
    client = _client(state_dir, args.limit_rate)
    with Spool.open(state_dir / SPOOL_FILENAME) as spool:
        async with client:
            recording = spool.find_by_paths(args.left.resolve(), args.right.resolve())
            if recording is None:
                info = await asyncio.to_thread(
                    describe_pair,
                    pair_name(args.left),
                    args.left,
                    args.right,
                    args.rig,
                    title=args.title,
                    part_size=args.part_size,
                )
                recording = spool.enqueue(info)
            if recording.state is State.completed:
                _out(f"already uploaded: match {recording.match_id}")
                return EXIT_OK
            if recording.state is State.failed:
                recording = spool.requeue(recording.id)
            uploader = Uploader(
                client,
                spool,
                delete_after_upload=args.delete_after_upload,
                progress=_show_progress,
            )
            result = await uploader.process(recording.id)
    if result.state is State.completed:
        _out(f"uploaded: match {result.match_id}, workflow {result.workflow_id}")
        return EXIT_OK
    if result.state is State.failed:
        raise CliError(f"the upload failed, files kept: {result.last_error}")
    raise CliError(f"not uploaded yet (run again to resume): {result.last_error}")


async def _watch(args: argparse.Namespace, state_dir: Path) -> int:
    directory: Path = args.directory
    rig: Path = args.rig
    client = _client(state_dir, args.limit_rate)
    with Spool.open(state_dir / SPOOL_FILENAME) as spool:
        async with client:
            uploader = Uploader(
                client,
                spool,
                delete_after_upload=args.delete_after_upload,
                progress=_show_progress,
            )
            watcher = Watcher(
                uploader,
                spool,
                directory,
                rig,
                part_size=args.part_size,
                poll_s=args.poll_interval,
                notify=_err,
            )
            if args.once:
                results = await watcher.run_once()
                pending = [r for r in results if r.state is not State.completed]
                return EXIT_FAILURE if pending else EXIT_OK
            # Runs inside the task `_run_interruptible` started after installing its signal
            # handlers, so from this line on a SIGTERM stops cleanly; supervisors (and the tests)
            # wait for it before signalling.
            _err(f"{READY_PREFIX} {directory} (Ctrl-C or SIGTERM stops)")
            await watcher.run(asyncio.Event())
    return EXIT_OK


def _status(args: argparse.Namespace, state_dir: Path) -> int:
    spool_path = state_dir / SPOOL_FILENAME
    if not spool_path.exists():
        _out("[]" if args.json else "the spool is empty")
        return EXIT_OK
    with Spool.open(spool_path) as spool:
        rows = []
        for recording in spool.all():
            summary = session_summary(recording)
            part_size = recording.info.part_size
            for side in SIDES:
                total = parts_total(recording.size(side), part_size) if part_size else None
                summary[f"{side}_parts"] = {
                    "confirmed": len(spool.confirmed_parts(recording.id, side)),
                    "total": total,
                }
            rows.append(summary)
    if args.json:
        _out(json.dumps(rows, indent=2))
        return EXIT_OK
    if not rows:
        _out("the spool is empty")
    for row in rows:
        parts = " ".join(
            f"{side} {row[f'{side}_parts']['confirmed']}/{row[f'{side}_parts']['total'] or '?'}"
            for side in SIDES
        )
        line = f"{row['id']:>4} {row['state']:<10} {row['name']}  parts {parts}"
        if row["match_id"]:
            line += f"  match {row['match_id']}"
        if row["last_error"]:
            line += f"  error: {row['last_error']}"
        _out(line)
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(run())
