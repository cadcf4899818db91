"""`polyvision` command line: the embedded stack, workers, migrations and Temporal setup."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import re
import sys
import uuid
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from polyvision.settings import Settings, StartupError, load_settings
from polyvision.telemetry import configure_logging

if TYPE_CHECKING:
    from temporalio.client import Client


def _up(settings: Settings, args: argparse.Namespace) -> int:
    from programs.stack import run_stack_until_signalled, with_ports

    settings = with_ports(
        settings,
        api=args.api_port,
        temporal=args.temporal_port,
        ui=args.ui_port,
        metrics=args.metrics_port,
    )
    return asyncio.run(run_stack_until_signalled(settings))


def _port(text: str, lowest: int = 1) -> int:
    """An argparse type: a TCP port."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not lowest <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port ({lowest}-65535)")
    return port


def _port_or_zero(text: str) -> int:
    """An argparse type: a TCP port, or 0 for "none"."""
    return _port(text, lowest=0)


def _demo(settings: Settings, args: argparse.Namespace) -> int:
    try:
        from programs.demo import run_demo
        from synth.generate import SynthConfig
    except KeyboardInterrupt:  # Ctrl-C before the demo started anything
        print("interrupted: nothing was running")
        return 130

    width, _, height = args.size.partition("x")
    match = (
        None
        if args.no_match
        else SynthConfig(seconds=args.seconds, width=int(width), height=int(height), seed=7)
    )
    return run_demo(
        settings,
        keep_data=args.keep_data,
        match=match,
        stall_timeout_s=args.stall_minutes * 60,
        serve=not args.no_serve and match is not None,
    )


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from programs.worker.run import WorkerStartError, serve

    try:
        asyncio.run(
            serve(
                settings,
                args.queues,
                args.concurrency,
                shutdown_timeout=timedelta(seconds=args.shutdown_timeout),
                task_queue_suffix=args.task_queue_suffix,
            )
        )
    except WorkerStartError as exc:
        print(f"polyvision worker: {exc}", file=sys.stderr)
        return 1
    return 0


def _api(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from api.app import create_app

    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        # The app believes forwarded headers from PV_TRUSTED_PROXIES only (`api.app`);
        # uvicorn's own handling would trust any local process by default.
        proxy_headers=False,
    )
    return 0


class TemporalUnreachableError(RuntimeError):
    """No Temporal frontend answers at the configured address."""


async def _connect_or_explain(settings: Settings) -> Client:
    from polyvision.temporal.client import connect

    try:
        return await connect(settings.temporal_address, settings.temporal_namespace)
    except RuntimeError as exc:  # the SDK reports every connection failure as RuntimeError
        raise TemporalUnreachableError(
            f"cannot reach Temporal at {settings.temporal_address} (PV_TEMPORAL_ADDRESS): {exc}"
        ) from exc


def _temporal_codec_server(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from polyvision.temporal.codec import PayloadSettings, build_codec
    from polyvision.temporal.codec_server import create_codec_app

    token = os.environ.get("PV_CODEC_SERVER_TOKEN", "")
    if not token:
        raise StartupError("PV_CODEC_SERVER_TOKEN", "set a bearer token for the codec server")
    try:
        codec = build_codec(PayloadSettings())
    except ValueError as exc:
        raise StartupError("PV_PAYLOAD_KEYS", str(exc)) from None
    if codec is None:
        raise StartupError(
            "PV_PAYLOAD_KEYS", "no payload codec is configured (PV_PAYLOAD_*): nothing to decode"
        )
    origins = args.cors_origin or [settings.temporal_ui_url]
    app = create_codec_app(codec, token=token, cors_origins=origins)
    uvicorn.run(app, host=args.host, port=args.port, log_config=None)
    return 0


def _temporal_apply(settings: Settings, args: argparse.Namespace) -> int:
    from polyvision.temporal.apply import apply_namespace
    from polyvision.temporal.config import load_namespace_config
    from polyvision.temporal.queues import QueueRole, queue_names
    from polyvision.temporal.schedules import RETENTION_SCHEDULE_ID, ensure_retention_schedule

    config = load_namespace_config(Path(args.config) if args.config else None)

    async def apply() -> None:
        client = await _connect_or_explain(settings)
        result = await apply_namespace(client, config.with_name(settings.temporal_namespace))
        changes = []
        if result.registered:
            changes.append("registered")
        if result.retention_updated:
            changes.append(f"retention set to {config.retention}")
        if result.added_search_attributes:
            changes.append("search attributes added: " + ", ".join(result.added_search_attributes))
        summary = "; ".join(changes) if changes else "up to date, nothing changed"
        sys.stdout.write(f"namespace {result.namespace}: {summary}\n")
        # The daily retention run (objects and analytics rows of expired matches together).
        created = await ensure_retention_schedule(
            client,
            queue_names(settings.task_queue_suffix)[QueueRole.cpu],
            namespace=config.with_name(settings.temporal_namespace),
        )
        state = "created" if created else "up to date"
        sys.stdout.write(f"schedule {RETENTION_SCHEDULE_ID}: {state}\n")

    try:
        asyncio.run(apply())
    except TemporalUnreachableError as exc:
        print(f"polyvision temporal apply: {exc}", file=sys.stderr)
        return 1
    return 0


def _db_upgrade(settings: Settings, args: argparse.Namespace) -> int:
    from polyvision.storage.upgrade import upgrade_stores

    upgrade_stores(settings)
    return 0


def _keys_rotate(settings: Settings, args: argparse.Namespace) -> int:
    from sqlalchemy.exc import DBAPIError, SQLAlchemyError

    from api.security import rotate_signing_key
    from api.security.signing_keys import KeyRingError

    try:
        kid = asyncio.run(rotate_signing_key(settings))
    except KeyRingError as exc:
        print(f"polyvision keys rotate: {exc}", file=sys.stderr)
        return 1
    except SQLAlchemyError as exc:
        print(
            f"polyvision keys rotate: the metadata database refused ({exc.__class__.__name__}:"
            f" {exc.orig if isinstance(exc, DBAPIError) else exc}); is it reachable and"
            " migrated (`polyvision db upgrade`)?",
            file=sys.stderr,
        )
        return 1
    sys.stdout.write(f"new signing key {kid}\n")
    return 0


def _eval(settings: Settings, args: argparse.Namespace) -> int:
    from evaluation.formats import FormatError
    from evaluation.report import run_eval

    if (args.results is None) == (args.match is None):
        print("polyvision eval: give either --results DIR or --match MATCH_ID", file=sys.stderr)
        return 2
    results_dir = Path(args.results) if args.results else settings.data_dir / "eval" / args.match
    if args.match:
        from evaluation.export import export_match

        asyncio.run(export_match(settings, args.org, args.match, args.revision, results_dir))
    try:
        report = run_eval(
            Path(args.truth),
            results_dir,
            Path(args.json) if args.json else None,
            iou_threshold=args.iou,
            match_threshold_m=args.match_distance,
        )
    except (FileNotFoundError, FormatError) as exc:
        print(f"polyvision eval: {exc}", file=sys.stderr)
        return 2
    print(report.format_table())
    if args.json:
        print(f"\nJSON report: {args.json}")
    return 0


def _synth(settings: Settings, args: argparse.Namespace) -> int:
    from synth.generate import SynthConfig, generate_match

    width, _, height = args.size.partition("x")
    config = SynthConfig(
        seconds=args.seconds, fps=args.fps, width=int(width), height=int(height), seed=args.seed
    )
    generate_match(config, Path(args.out), progress=True)
    return 0


def _rig_soccertrack(settings: Settings, args: argparse.Namespace) -> int:
    from polyvision.calibration.errors import CalibrationError
    from polyvision.calibration.soccertrack import build_soccertrack_rig

    lens_from = {"right": "left"} if args.right_lens_from_left else None
    try:
        rig, fits = build_soccertrack_rig(Path(args.data_dir), lens_from=lens_from)
    except CalibrationError as exc:
        print(f"polyvision rig soccertrack: {exc}", file=sys.stderr)
        return 2
    for fit in fits.values():
        print(fit.summary())
    rig.save(Path(args.out))
    print(f"rig written to {args.out}")
    return 0


def _rig_calibrate(settings: Settings, args: argparse.Namespace) -> int:
    from polyvision.calibration.errors import CalibrationError
    from polyvision.calibration.lens import parse_board
    from polyvision.calibration.rig_calibration import (
        CalibrationOptions,
        CameraInputs,
        calibrate_rig,
        report_path_for,
        write_report,
    )

    def optional(value: str | None) -> Path | None:
        return None if value is None else Path(value)

    try:
        options = CalibrationOptions(
            board=None if args.board is None else parse_board(args.board),
            lens_model=args.lens_model,
            label_frame=args.label_frame,
            refine_lens=not args.no_lens_refinement,
            frame=args.frame,
            alignment_model=args.alignment,
            ransac_threshold_px=args.ransac_threshold_px,
        )
        calibration = calibrate_rig(
            CameraInputs(
                "left",
                Path(args.left_video),
                Path(args.left_checkerboards),
                optional(args.left_keypoints),
            ),
            CameraInputs(
                "right",
                Path(args.right_video),
                Path(args.right_checkerboards),
                optional(args.right_keypoints),
            ),
            options,
        )
    except CalibrationError as exc:
        print(f"polyvision rig calibrate: {exc}", file=sys.stderr)
        return 2
    print(calibration.summary())
    out = Path(args.out)
    calibration.rig.save(out)
    report = write_report(
        calibration, out, Path(args.report) if args.report else report_path_for(out)
    )
    print(f"rig written to {out}, report to {report}")
    return 0


def _kit_colour(text: str) -> str:
    """A shirt colour ``#rrggbb`` (argparse type)."""
    if not re.fullmatch(r"#[0-9a-fA-F]{6}", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a colour #rrggbb")
    return text.lower()


def _process(settings: Settings, args: argparse.Namespace) -> int:
    from programs.process import ProcessRequest, run_process

    for name in ("left", "right", "rig"):
        if not Path(getattr(args, name)).is_file():
            print(f"polyvision process: no such file: {getattr(args, name)}", file=sys.stderr)
            return 2
    return run_process(
        settings,
        ProcessRequest(
            left=Path(args.left),
            right=Path(args.right),
            rig=Path(args.rig),
            organization=args.org,
            match_id=args.match_id,
            title=args.title,
            chunk_seconds=args.chunk_seconds,
            panorama_scale=args.panorama_scale,
            home_kit_colour=args.home_kit,
            away_kit_colour=args.away_kit,
            home_starts_left=args.home_starts_left,
        ),
        stack_dir=Path(args.stack) if args.stack else None,
    )


def _models(settings: Settings, args: argparse.Namespace) -> int:
    from programs.models_cli import run_models

    return run_models(settings, args)


def _detect(settings: Settings, args: argparse.Namespace) -> int:
    from programs.detect_cli import run_detect

    return run_detect(settings, args)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="polyvision", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = commands.add_parser(
        "up", help="run the embedded stack (Temporal dev server + UI, worker, API) until stopped"
    )
    up.add_argument(
        "--api-port",
        type=_port,
        default=None,
        help="port of the API (default: PV_API_PORT, 8000)",
    )
    up.add_argument(
        "--temporal-port",
        type=_port,
        default=None,
        help="gRPC port of the Temporal dev server (default: the port of PV_TEMPORAL_ADDRESS,"
        " 7233)",
    )
    up.add_argument(
        "--ui-port",
        type=_port,
        default=None,
        help="port of the Temporal Web UI (default: the port of PV_TEMPORAL_UI_URL, 8233)",
    )
    up.add_argument(
        "--metrics-port",
        type=_port_or_zero,
        default=None,
        help="port of the worker's Prometheus /metrics, 0 for none (default:"
        " PV_WORKER_METRICS_PORT, 9464)",
    )
    up.set_defaults(handler=_up)

    demo = commands.add_parser(
        "demo", help="bring the embedded stack up, check it end to end, and stop it"
    )
    demo.add_argument(
        "--keep-data", action="store_true", help="keep the demo's data directory afterwards"
    )
    demo.add_argument("--seconds", type=float, default=30.0, help="synthetic match length")
    demo.add_argument("--size", default="1280x720", help="WIDTHxHEIGHT of each synthetic camera")
    demo.add_argument(
        "--no-match", action="store_true", help="only check the stack, process nothing"
    )
    demo.add_argument(
        "--stall-minutes",
        type=float,
        default=10.0,
        help="give up when processing shows no progress (no chunk or frame done) this long",
    )
    demo.add_argument(
        "--no-serve",
        action="store_true",
        help="stop when the demo is done instead of serving the web viewer until Ctrl-C",
    )
    demo.set_defaults(handler=_demo)

    worker = commands.add_parser("worker", help="poll the task queues this machine can serve")
    worker.add_argument(
        "--queues",
        default="auto",
        help="auto (by detected capability), all, or a comma list of gpu, cpu, nvenc",
    )
    worker.add_argument(
        "--concurrency",
        type=int,
        default=None,
        help="activity slots per queue (default: by capability)",
    )
    worker.add_argument(
        "--shutdown-timeout",
        type=float,
        default=30.0,
        help="seconds running activities get to finish or heartbeat after SIGTERM",
    )
    worker.add_argument(
        "--task-queue-suffix",
        default=None,
        help="appended to every queue name, to isolate a developer's workers (write --x=-dev;"
        " default: PV_TASK_QUEUE_SUFFIX, the suffix the API starts matches with)",
    )
    worker.set_defaults(handler=_worker)

    api = commands.add_parser("api", help="serve the HTTP API alone")
    api.set_defaults(handler=_api)

    temporal = commands.add_parser("temporal", help="Temporal cluster setup")
    temporal_commands = temporal.add_subparsers(dest="temporal_command", required=True)
    apply = temporal_commands.add_parser(
        "apply", help="apply temporal/namespace.yaml (namespace, retention, search attributes)"
    )
    apply.add_argument("--config", default=None, help="path of the namespace YAML")
    apply.set_defaults(handler=_temporal_apply)
    codec_server = temporal_commands.add_parser(
        "codec-server",
        help="decode payloads for the Temporal UI and CLI (bearer token: PV_CODEC_SERVER_TOKEN)",
    )
    codec_server.add_argument("--host", default="127.0.0.1", help="interface to bind")
    codec_server.add_argument("--port", type=int, default=8081, help="port to bind")
    codec_server.add_argument(
        "--cors-origin",
        action="append",
        default=None,
        help="browser origin allowed to call it, repeatable (default: PV_TEMPORAL_UI_URL)",
    )
    codec_server.set_defaults(handler=_temporal_codec_server)

    synth = commands.add_parser(
        "synth", help="film a simulated match with a virtual two-camera rig, with ground truth"
    )
    synth.add_argument("--seconds", type=float, default=60.0, help="match length to simulate")
    synth.add_argument("--fps", type=float, default=25.0, help="frames per second")
    synth.add_argument("--size", default="1920x1080", help="WIDTHxHEIGHT of each camera")
    synth.add_argument("--seed", type=int, default=7, help="random seed (same seed, same files)")
    synth.add_argument("--out", required=True, help="output directory")
    synth.set_defaults(handler=_synth)

    evaluate = commands.add_parser(
        "eval", help="score a processed match's exported results against the synthetic truth"
    )
    evaluate.add_argument("--truth", required=True, help="directory written by polyvision synth")
    evaluate.add_argument(
        "--results",
        default=None,
        help="directory with detections.parquet, tracks.parquet and/or vcam.parquet",
    )
    evaluate.add_argument(
        "--match", default=None, help="a processed match: export its results from the stores"
    )
    evaluate.add_argument("--org", default="local", help="organization of --match")
    evaluate.add_argument("--revision", type=int, default=1, help="revision of --match")
    evaluate.add_argument("--json", default=None, help="also write the report as JSON here")
    evaluate.add_argument("--iou", type=float, default=0.5, help="detection match IoU")
    evaluate.add_argument(
        "--match-distance", type=float, default=1.0, help="tracking match distance in metres"
    )
    evaluate.set_defaults(handler=_eval)

    from programs.overlay import add_overlay_parser  # arguments only; the drawing loads on use

    add_overlay_parser(commands)

    process = commands.add_parser(
        "process", help="process a recording pair on the running stack, with live progress"
    )
    process.add_argument("--left", required=True, help="the left camera's recording")
    process.add_argument("--right", required=True, help="the right camera's recording")
    process.add_argument("--rig", required=True, help="rig.json of the pair")
    process.add_argument(
        "--org",
        default="local",
        help="organization id, or the slug of one to find or create (default: local)",
    )
    process.add_argument(
        "--match-id", type=uuid.UUID, default=None, help="match id, a UUID (default: a new one)"
    )
    process.add_argument("--title", default=None, help="match title (default: the file names)")
    process.add_argument("--chunk-seconds", type=float, default=10.0, help="chunk length")
    process.add_argument(
        "--panorama-scale", type=float, default=1.0, help="panorama size relative to default"
    )
    process.add_argument(
        "--stack",
        default=None,
        metavar="DIR",
        help="data directory of the running `polyvision up` to process on (default: "
        "PV_DATA_DIR; without a stack running there, this environment's PV_ settings)",
    )
    process.add_argument(
        "--home-kit", type=_kit_colour, default=None, help="home shirt colour, #rrggbb"
    )
    process.add_argument(
        "--away-kit", type=_kit_colour, default=None, help="away shirt colour, #rrggbb"
    )
    starting_side = process.add_mutually_exclusive_group()
    starting_side.add_argument(
        "--home-starts-left",
        dest="home_starts_left",
        action="store_const",
        const=True,
        default=None,
        help="the home team defends the goal at x = 0 m in the first minutes",
    )
    starting_side.add_argument(
        "--home-starts-right",
        dest="home_starts_left",
        action="store_const",
        const=False,
        help="the home team defends the goal at x = 105 m in the first minutes",
    )
    process.set_defaults(handler=_process)

    from programs.view_cli import add_view_parser  # arguments only; the rest loads on use

    add_view_parser(commands)

    rig = commands.add_parser("rig", help="camera rigs (rig.json)")
    rig_commands = rig.add_subparsers(dest="rig_command", required=True)
    soccertrack = rig_commands.add_parser(
        "soccertrack", help="build rig.json for the SoccerTrack recording from its calibration"
    )
    soccertrack.add_argument("data_dir", help="the soccertrack-v1 folder")
    soccertrack.add_argument("--out", required=True, help="where to write rig.json")
    soccertrack.add_argument(
        "--right-lens-from-left",
        action="store_true",
        help="use the left camera's lens model for the right camera (its own does not fit)",
    )
    soccertrack.set_defaults(handler=_rig_soccertrack)
    calibrate = rig_commands.add_parser(
        "calibrate",
        help="calibrate a two-camera rig from its checkerboard photos and pitch keypoints",
        description=(
            "Fit each camera's lens to its checkerboard photos (standard and fisheye models, "
            "the lower RMS wins), its pose to its pitch keypoints (RANSAC; rejected points are "
            "listed), refine the lens on the keypoints, and place a camera without keypoints "
            "by features matched with the other one. Writes rig.json and a report beside it."
        ),
    )
    for side in ("left", "right"):
        calibrate.add_argument(
            f"--{side}-video", required=True, metavar="MP4", help=f"the {side} camera's recording"
        )
        calibrate.add_argument(
            f"--{side}-checkerboards",
            required=True,
            metavar="DIR",
            help=f"folder of the {side} camera's checkerboard photos",
        )
        calibrate.add_argument(
            f"--{side}-keypoints",
            metavar="XML",
            help=f"CVAT pitch keypoints of the {side} camera (without: placed by features)",
        )
    calibrate.add_argument("--out", required=True, help="where to write rig.json")
    calibrate.add_argument(
        "--report",
        metavar="JSON",
        help="where to write the report (default: OUT's stem + .report.json)",
    )
    calibrate.add_argument(
        "--board", metavar="COLSxROWS", help="checkerboard inner corners (default: detected)"
    )
    calibrate.add_argument(
        "--lens-model",
        choices=("auto", "standard", "fisheye"),
        default="auto",
        help="lens model (auto: the lower checkerboard RMS; a fisheye fit is written as "
        "standard coefficients)",
    )
    calibrate.add_argument(
        "--label-frame",
        choices=("auto", "near", "far"),
        default="auto",
        help="keypoint labels measure y from the near touchline (the pitch frame) or the far "
        "one (SoccerTrack); auto tries both",
    )
    calibrate.add_argument(
        "--no-lens-refinement",
        action="store_true",
        help="keep the checkerboard-only lens (do not refine it on the keypoints)",
    )
    calibrate.add_argument(
        "--alignment",
        choices=("ground", "rotation"),
        default="ground",
        help="feature alignment model: ground-plane pose (default) or a rotation about a "
        "shared optical centre",
    )
    calibrate.add_argument(
        "--frame", type=int, default=0, help="video frame used for feature alignment"
    )
    calibrate.add_argument(
        "--ransac-threshold-px",
        type=float,
        default=None,
        help="keypoint RANSAC inlier threshold (default: 1%% of the image width)",
    )
    calibrate.set_defaults(handler=_rig_calibrate)

    db = commands.add_parser("db", help="store migrations")
    db_commands = db.add_subparsers(dest="db_command", required=True)
    upgrade = db_commands.add_parser(
        "upgrade", help="apply metadata (Alembic) and analytics (.sql) migrations"
    )
    upgrade.set_defaults(handler=_db_upgrade)

    models = commands.add_parser(
        "models", help="detector models: register ONNX files, list them, choose the default"
    )
    models_commands = models.add_subparsers(dest="models_command", required=True)
    models_add = models_commands.add_parser(
        "add",
        help="upload an ONNX detector to the object store and register it",
        description=(
            "Check the file with ONNX Runtime (input size, output layout, class indices), "
            "upload it to models/NAME/VERSION/FILENAME in the object store (PV_OBJECTS_URL) "
            "and record it in the metadata database (PV_DATABASE_URL)."
        ),
    )
    models_add.add_argument("file", help="the .onnx file")
    models_add.add_argument("--name", required=True, help="model name, e.g. yolov8s-football")
    models_add.add_argument("--version", required=True, help="model version, e.g. 1")
    models_add.add_argument(
        "--decoder",
        required=True,
        choices=("yolox", "yolov8"),
        help="output layout: yolox (raw grid heads [1, N, 5+C], BGR 0-255 input) or yolov8 "
        "(Ultralytics [1, 4+C, N], RGB 0-1 input)",
    )
    models_add.add_argument(
        "--input-size", required=True, metavar="WxH", help="the network's input, e.g. 640x640"
    )
    models_add.add_argument(
        "--classes",
        required=True,
        metavar="MAP",
        help="which model classes are ours, e.g. person=0,ball=32 (a class may repeat: "
        "person=0,person=2,ball=1)",
    )
    models_add.add_argument(
        "--default", action="store_true", help="make it the model the detect stage runs"
    )
    models_add.set_defaults(handler=_models)
    models_list = models_commands.add_parser("list", help="list registered models (* = default)")
    models_list.set_defaults(handler=_models)
    models_default = models_commands.add_parser(
        "set-default", help="make a registered model the one the detect stage runs"
    )
    models_default.add_argument("name", help="model name")
    models_default.add_argument("version", help="model version")
    models_default.set_defaults(handler=_models)

    detect = commands.add_parser(
        "detect",
        help="run the detect stage's detector on images or video clips",
        description=(
            "Run the detect stage's detection (its model, tiling and score threshold) on still "
            "images and video clips; print one JSON object per image or frame (or write them "
            "with --json), and draw the boxes with --draw."
        ),
    )
    detect.add_argument("inputs", nargs="+", metavar="IMAGE_OR_VIDEO", help="files to detect in")
    detect.add_argument("--json", metavar="OUT", help="write the JSON here instead of stdout")
    detect.add_argument("--draw", metavar="DIR", help="write an annotated PNG per image here")
    detect.add_argument(
        "--model",
        metavar="NAME[:VERSION]",
        help="a registered model (default: the registry's default, else the bundled yolox-nano)",
    )
    detect.add_argument(
        "--score", type=float, default=None, help="score threshold (default: the stage's)"
    )
    detect.add_argument(
        "--every", type=int, default=1, metavar="N", help="in videos, detect every N-th frame"
    )
    detect.add_argument(
        "--max-frames", type=int, default=None, metavar="M", help="in videos, at most M frames"
    )
    detect.add_argument(
        "--network-balls",
        action="store_true",
        help="ball boxes from the network alone (default: blobs and network balls, classified)",
    )
    detect.set_defaults(handler=_detect)

    keys = commands.add_parser("keys", help="the RS256 keys that sign the API's access tokens")
    keys_commands = keys.add_subparsers(dest="keys_command", required=True)
    rotate = keys_commands.add_parser(
        "rotate",
        help="make a new signing key current in the metadata database (PV_DATABASE_URL)",
        description=(
            "Make a new signing key current in the metadata database (PV_DATABASE_URL), "
            "encrypted with PV_SECRET_KEY, and print its kid. Every API replica signs with it "
            "within a minute; tokens signed by the old key keep verifying until they expire "
            "(16 minutes at most), then the old key is dropped. Run it on a schedule, and "
            "after a suspected leak of the database and the secret. Needs `polyvision db "
            "upgrade` to have run."
        ),
    )
    rotate.set_defaults(handler=_keys_rotate)
    return parser


# Commands that touch neither the stores nor the data directory.
_STORELESS_COMMANDS = frozenset({"synth", "rig", "temporal"})


def _check_stores(settings: Settings, args: argparse.Namespace) -> None:
    """Refuse, before any work, store URLs no backend takes and a data directory not writable.

    Raises:
        StartupError: naming PV_DATABASE_URL, PV_ANALYTICS_URL, PV_OBJECTS_URL or PV_DATA_DIR.
    """
    if (
        args.command in _STORELESS_COMMANDS
        or (args.command == "eval" and args.results)  # reads result files only
        or (args.command == "process" and getattr(args, "stack", None))  # the stack's stores
        or (args.command == "view" and getattr(args, "stack", None))
    ):
        return
    from polyvision.storage.analytics import parse_analytics_url
    from polyvision.storage.metadata.engine import normalize_url
    from polyvision.storage.objects import parse_object_store_url

    normalize_url(settings.database_url)
    parse_analytics_url(settings.analytics_url)
    parse_object_store_url(settings.objects_url)
    settings.prepare_data_dir()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `polyvision` command.

    Raises:
        StartupError: a setting keeps the command from starting (`run` prints it as one line).
    """
    args = build_parser().parse_args(argv)
    settings = load_settings()
    _check_stores(settings, args)
    configure_logging(settings.log_level, settings.log_json)
    code: int = args.handler(settings, args)
    return code


def _first_startup_error(group: BaseExceptionGroup[StartupError]) -> StartupError:
    for exc in group.exceptions:
        if isinstance(exc, StartupError):
            return exc
        return _first_startup_error(exc)
    raise AssertionError("an exception group is never empty")


def _refuse_start(exc: StartupError) -> int:
    # One line, the setting's name and the problem; never a traceback or a setting's value.
    message = " ".join(str(exc).splitlines())
    print(f"polyvision: {message}", file=sys.stderr)
    return 2


def run() -> None:
    """Console entry point: `main`, then an exit that the Temporal SDK cannot crash.

    A `StartupError` (an invalid setting, an unusable data directory, a store URL no backend
    takes), raised before or during a command, ends it with one line on stderr and exit
    status 2.

    The SDK's Rust runtime keeps background threads that may still touch the interpreter while
    it finalizes, which now and then ends a finished command with SIGSEGV or SIGABRT (seen here
    on `temporal apply`; temporalio/sdk-python#300). Every command has closed its clients and
    stores by the time `main` returns, so once the output is flushed the process exits
    without running the interpreter's teardown.
    """
    try:
        code = main()
    except StartupError as exc:
        code = _refuse_start(exc)
    except BaseExceptionGroup as group:  # from a task group, e.g. the stack's or a worker's
        startup_errors, _ = group.split(StartupError)
        if startup_errors is None:
            raise
        code = _refuse_start(_first_startup_error(startup_errors))
    if "temporalio.client" in sys.modules:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    run()
