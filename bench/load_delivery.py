"""Our delivery path under load, side by side with nginx serving the same segment files.

One run on this machine, on loopback, with one load generator at one fixed concurrency:

* **the API**, a real uvicorn server process (``uvicorn api.app:create_app --factory``, the
  embedded stores: SQLite, chDB, the file object store), holding one processed match: an HLS
  package made by the project's own packaging activity from small H.264 chunks, catalogued by
  the index stage's activity, and analytics rows written by the analyze stage's row writer.
  The endpoints loaded, one after the other:

  - ``playback``: ``GET /orgs/{org}/matches/{match}/playback`` (membership check, catalog
    lookup, the package's files, a fresh signed token), as an analyst;
  - ``playlist``: the signed master and media playlists (``GET /delivery/{token}/...m3u8``,
    rewritten so every URI carries the token);
  - ``segment``: the CMAF media segments through the same signed URLs;
  - ``analytics``: both teams' heatmap grids (``GET .../analytics/heatmaps?team=``);

* **the peer**: Debian's nginx (``/usr/sbin/nginx``, ``make bench`` installs it) with a
  config of its own (``daemon off``, its own port, no access log, ``sendfile on``) serving the
  same segment files straight from the file object store's directory.

The API and nginx get the same number of worker processes (``--workers``, default 1 on a
machine of two cores: the load generator needs the other one; more than one API worker needs
a ClickHouse server for the analytics, ``--analytics-url``, as the embedded chDB opens in one
process only). The load generator is locust in library mode (`bench.load_client`:
``FastHttpUser``, one keep-alive connection per user, no think time), in a process of its own.
Each target is loaded for ``--duration`` seconds after a warm-up; the two segment targets
share theirs out in ``--rounds`` alternating rounds, so a noisy neighbour does not hit only one
of them. Figures per endpoint: successful requests per second, p50 and p99 latency (nearest
rank) and errors (no answer, or not 200). Required: our segment requests per second at least
half of nginx's. A load generator near a full core (``limited_by_load_generator``) was the
limit of that target, not the server: nginx's figure is then a floor.

Run: ``python -m bench.load_delivery [--duration 20] [--users 32] [--workers 1] [--rounds 4]``.
"""

from __future__ import annotations

import argparse
import asyncio
import grp
import importlib.metadata
import json
import os
import pwd
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import numpy as np
from temporalio.testing import ActivityEnvironment

from activities.analyze.rows import player_stats_table, track_points_table, write_chunk
from activities.encode.activity import EncodeActivities
from activities.encode.contracts import MASTER_PLAYLIST, MEDIA_PLAYLIST, PackageInput
from activities.index.activity import IndexActivities
from activities.index.contracts import IndexInput
from bench.api_process import (
    REPO,
    ApiProcess,
    BenchMember,
    access_token,
    bench_member,
    server_description,
)
from bench.load_stats import EndpointFigures, Window, summarize
from bench.results_file import write_results
from polyvision.artifacts import artifact_key
from polyvision.media.writer import VideoWriter
from polyvision.ports import free_port
from polyvision.settings import Settings
from polyvision.storage.analytics import open_analytics_store
from polyvision.storage.metadata.engine import create_engine, session_maker
from polyvision.storage.metadata.models import Match, MatchStatus, Role
from polyvision.storage.objects import open_object_store
from polyvision.storage.upgrade import upgrade_stores

NGINX = Path("/usr/sbin/nginx")
REQUIRED_RATIO = 0.5
GENERATOR_SATURATED = 0.9
FAIRNESS = (
    "one load generator process, the same users, warm-up and duration for every target; the "
    "API (uvicorn) and nginx with the same number of worker processes, access logs off on "
    "both; nginx serves the very segment files of the API's file object store"
)
FPS = 25.0
CHUNKS = 6
CHUNK_SECONDS = 2.0
WIDTH, HEIGHT = 640, 360
TRACKS = 22


def _require_nginx() -> Path:
    if not os.access(NGINX, os.X_OK):
        raise SystemExit(f"{NGINX} is missing: `make bench` installs Debian's nginx-light")
    return NGINX


# --- the processed match ------------------------------------------------------------------


def _write_chunks(folder: Path) -> list[Path]:
    """2-second H.264 chunks as the vcam stage writes them (a keyframe first): a pattern that
    moves, with grain, so the segments are not trivially small."""
    rng = np.random.default_rng(7)
    folder.mkdir(parents=True, exist_ok=True)
    ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
    frames_per_chunk = round(CHUNK_SECONDS * FPS)
    paths = []
    for index in range(CHUNKS):
        path = folder / f"chunk-{index:05d}.mp4"
        with VideoWriter(path, WIDTH, HEIGHT, FPS, gop=frames_per_chunk) as writer:
            for offset in range(frames_per_chunk):
                t = index * frames_per_chunk + offset
                base = (xs + 3 * t) % 256 // 2 + (ys * 2 + t) % 128
                grain = rng.integers(0, 24, (HEIGHT, WIDTH), dtype=np.int64)
                plane = np.clip(base + grain, 0, 255).astype(np.uint8)
                writer.write(np.dstack([plane, np.roll(plane, t, axis=1), 255 - plane]))
        paths.append(path)
    return paths


def _analytics_rows(settings: Settings, organization_id: str, match_id: str) -> None:
    """Track points of ``TRACKS`` players over the match, written per chunk as the analyze
    stage writes them."""
    rng = np.random.default_rng(11)
    frames_per_chunk = round(CHUNK_SECONDS * FPS)
    position = rng.uniform((0, 0), (105, 68), (TRACKS, 2))
    with open_analytics_store(settings.analytics_url) as analytics:
        for chunk in range(CHUNKS):
            frames, ids, teams, xs, ys = [], [], [], [], []
            for offset in range(frames_per_chunk):
                position = np.clip(position + rng.normal(0, 0.2, position.shape), 0, (105, 68))
                frames.append(np.full(TRACKS, chunk * frames_per_chunk + offset))
                ids.append(np.arange(TRACKS))
                teams.append(np.arange(TRACKS) % 2)
                xs.append(position[:, 0])
                ys.append(position[:, 1])
            frame, track, team = (np.concatenate(a) for a in (frames, ids, teams))
            x, y = np.concatenate(xs), np.concatenate(ys)
            speed = np.full(frame.size, 5.0)
            write_chunk(
                analytics,
                organization_id,
                match_id,
                1,
                chunk,
                track_points=track_points_table(frame, track, team, x, y, speed),
                player_stats=player_stats_table(frame, track, team, x, y, FPS, speed),
            )


@dataclass(frozen=True)
class Published:
    """The processed match the load is about."""

    member: BenchMember
    match_id: uuid.UUID
    segment_keys: list[str]

    @property
    def playback_path(self) -> str:
        return f"/orgs/{self.member.organization_id}/matches/{self.match_id}/playback"

    def heatmap_paths(self) -> list[str]:
        base = f"/orgs/{self.member.organization_id}/matches/{self.match_id}/analytics/heatmaps"
        return [f"{base}?team=1", f"{base}?team=0"]


async def publish_match(settings: Settings, work: Path) -> Published:
    """An analyst's organization with one match processed as the pipeline leaves it: the HLS
    package, its catalog entry marked ready by the index stage, and its analytics rows."""
    member = await bench_member(settings, Role.analyst, "load-bench")
    engine = create_engine(settings.database_url)
    objects = open_object_store(
        settings.objects_url, secret=settings.secret, public_base_url=settings.api_public_url
    )
    try:
        sessions = session_maker(engine)
        match = Match(
            title="Load bench",
            organization_id=member.organization_id,
            status=MatchStatus.processing,
            revision=1,
        )
        async with sessions() as session:
            session.add(match)
            await session.commit()
        org, match_id = str(member.organization_id), str(match.id)
        keys = []
        for index, path in enumerate(_write_chunks(work / "chunks")):
            key = artifact_key(org, match_id, 1, "vcam", f"chunk-{index:05d}.mp4")
            keys.append((await objects.upload_file(key, path)).key)
        environment = ActivityEnvironment()
        packaged = await environment.run(
            EncodeActivities(objects).package, PackageInput(org, match_id, 1, keys)
        )
        await asyncio.to_thread(_analytics_rows, settings, org, match_id)
        frames = CHUNKS * round(CHUNK_SECONDS * FPS)
        index_input = IndexInput(
            organization_id=org,
            match_id=match_id,
            revision=1,
            frames=frames,
            fps=FPS,
            chunks=CHUNKS,
            detections_persons=frames * TRACKS,
            detections_balls=0,
            tracks=TRACKS,
            total_distance_m=0.0,
            hls_master_key=packaged.master_key,
            heatmaps_key=artifact_key(org, match_id, 1, "analyze", "heatmaps.json"),
        )
        indexed = await environment.run(IndexActivities(objects, sessions).index, index_input)
        if not indexed.catalog_updated:
            raise RuntimeError("the index stage did not mark the match ready")
        folder = packaged.master_key.removesuffix(MASTER_PLAYLIST)
        segments = sorted(
            [info.key async for info in objects.list_prefix(folder) if info.key.endswith(".m4s")]
        )
    finally:
        await objects.close()
        await engine.dispose()
    return Published(member, match.id, segments)


# --- nginx --------------------------------------------------------------------------------


def nginx_config(root: Path, port: int, workers: int, prefix: Path) -> str:
    """nginx serving ``root`` on loopback ``port`` with ``workers`` processes, in the
    foreground, every file it writes under ``prefix``."""
    user = ""
    if os.geteuid() == 0:  # workers would otherwise drop to nobody, who cannot read our files
        user = f"user {pwd.getpwuid(os.getuid()).pw_name} {grp.getgrgid(os.getgid()).gr_name};"
    temp = {name: prefix / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    temp_paths = "\n".join(f"    {name}_temp_path {path};" for name, path in temp.items())
    return f"""{user}
daemon off;
worker_processes {workers};
pid {prefix / "nginx.pid"};
error_log {prefix / "error.log"} warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    sendfile on;
    tcp_nopush on;
    tcp_nodelay on;
    keepalive_timeout 75s;
    keepalive_requests 1000000;
{temp_paths}
    types {{
        video/iso.segment m4s;
        video/mp4 mp4;
        application/vnd.apple.mpegurl m3u8;
    }}
    default_type application/octet-stream;
    server {{
        listen 127.0.0.1:{port};
        root {root};
        location / {{
            add_header Cache-Control "public, max-age=14400, immutable";
        }}
    }}
}}
"""


class NginxProcess:
    """``nginx`` with `nginx_config`, for a ``with`` block."""

    def __init__(self, root: Path, workers: int, prefix: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.prefix = prefix
        prefix.mkdir(parents=True, exist_ok=True)
        self.config = prefix / "nginx.conf"
        self.config.write_text(nginx_config(root, self.port, workers, prefix))
        self._process: subprocess.Popen[bytes] | None = None

    def wait_ready(self, probe_path: str, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                break
            try:
                with urllib.request.urlopen(self.url + probe_path, timeout=2.0) as answer:
                    if answer.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.1)
        error_log = self.prefix / "error.log"
        tail = error_log.read_text(errors="replace")[-2000:] if error_log.exists() else ""
        raise RuntimeError(f"nginx did not serve {probe_path}:\n{tail}")

    def __enter__(self) -> NginxProcess:
        command = [str(_require_nginx()), "-p", str(self.prefix), "-c", str(self.config)]
        # -e: the log nginx writes before it has read the config (its default is under /var).
        command += ["-e", str(self.prefix / "error.log")]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()  # SIGTERM: fast shutdown
            try:
                self._process.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()


def nginx_version() -> str:
    answer = subprocess.run([str(_require_nginx()), "-v"], capture_output=True, text=True)
    return (answer.stderr or answer.stdout).strip().removeprefix("nginx version: ")


# --- the load -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What one load run asks for."""

    name: str
    host: str
    paths: list[str]
    headers: dict[str, str]


def load(
    target: Target, users: int, duration_s: float, warmup_s: float, work: Path
) -> tuple[Window, float]:
    """One load run of ``target`` in a `bench.load_client` process: its window, and the CPU
    share the generator used over it (near 1.0: the generator was the limit)."""
    spec = {
        "host": target.host,
        "paths": target.paths,
        "headers": target.headers,
        "users": users,
        "duration_s": duration_s,
        "warmup_s": warmup_s,
        "expect_status": 200,
    }
    spec_path, out_path = work / f"{target.name}.spec.json", work / f"{target.name}.out.json"
    spec_path.write_text(json.dumps(spec))
    subprocess.run(
        [sys.executable, "-m", "bench.load_client", str(spec_path), str(out_path)],
        cwd=REPO,
        check=True,
        timeout=duration_s + warmup_s + 120,
    )
    result: dict[str, Any] = json.loads(out_path.read_text())
    window = Window(result["latencies_ms"], int(result["errors"]), float(result["seconds"]))
    window_cpu = float(result["generator_cpu"])
    figures = summarize([window])
    print(
        f"{target.name:>13}: {figures.rps:8.1f} req/s  p50 {figures.p50_ms or 0:7.2f} ms  "
        f"p99 {figures.p99_ms or 0:7.2f} ms  errors {figures.errors}  "
        f"(generator CPU {window_cpu:.0%})"
    )
    return window, window_cpu


def _get_json(url: str, headers: dict[str, str]) -> Any:
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=30.0) as answer:
        return json.loads(answer.read())


def _get_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=30.0) as answer:
        text: str = answer.read().decode()
        return text


def _delivery_paths(api_url: str, published: Published) -> tuple[list[str], list[str]]:
    """The signed playlist and segment paths a player of the match would fetch."""
    playback = _get_json(api_url + published.playback_path, published.member.headers)
    master_url: str = playback["master_url"]
    media_url = master_url.removesuffix(MASTER_PLAYLIST) + MEDIA_PLAYLIST
    media = _get_text(media_url)
    segment_urls = [line for line in media.splitlines() if line.split("?")[0].endswith(".m4s")]
    if len(segment_urls) != len(published.segment_keys):
        raise RuntimeError(f"the media playlist names {len(segment_urls)} segments: {media}")
    playlists = [urlsplit(url).path for url in (master_url, media_url)]
    return playlists, [urlsplit(url).path for url in segment_urls]


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    _require_nginx()
    if args.workers > 1 and not args.analytics_url:
        raise SystemExit(
            "the embedded analytics store (chDB) opens in one process only: more than one API "
            "worker needs --analytics-url clickhouse://... (a ClickHouse server)"
        )
    port = free_port()
    settings = Settings(
        data_dir=work / "pv",
        analytics_url=args.analytics_url,
        api_host="127.0.0.1",
        api_port=port,
        api_public_url=f"http://127.0.0.1:{port}",
        # Nothing listens there: delivery needs no Temporal, and the API starts without it.
        temporal_address=f"127.0.0.1:{free_port()}",
        log_level="WARNING",
    )
    upgrade_stores(settings)
    published = asyncio.run(publish_match(settings, work))
    objects_root = Path(urlsplit(settings.objects_url).path)
    sizes = [(objects_root / key).stat().st_size for key in published.segment_keys]
    print(
        f"match published: {len(sizes)} segments of {min(sizes)}..{max(sizes)} bytes; "
        f"API and nginx with {args.workers} worker process(es) each, {args.users} users"
    )
    print(f"fair: {FAIRNESS}")
    measured: dict[str, list[Window]] = {}
    generator_cpu: dict[str, list[float]] = {}

    def measure(target: Target, duration_s: float) -> None:
        window, cpu = load(target, args.users, duration_s, args.warmup, work)
        measured.setdefault(target.name, []).append(window)
        generator_cpu.setdefault(target.name, []).append(round(cpu, 3))

    def member_headers() -> dict[str, str]:
        # A token of its own per target: one lives 15 minutes, a long run outlives it.
        token = asyncio.run(access_token(settings, published.member.user_id))
        return {"Authorization": f"Bearer {token}"}

    api = ApiProcess(settings, args.workers, work / "api.log")
    nginx = NginxProcess(objects_root, args.workers, work / "nginx")
    with api, nginx:
        playlists, segments = _delivery_paths(api.url, published)
        nginx.wait_ready("/" + published.segment_keys[0])
        measure(
            Target("playback", api.url, [published.playback_path], member_headers()),
            args.duration,
        )
        measure(Target("playlist", api.url, playlists, {}), args.duration)
        measure(
            Target("analytics", api.url, published.heatmap_paths(), member_headers()),
            args.duration,
        )
        ours = Target("segment", api.url, segments, {})
        peer = Target("nginx_segment", nginx.url, ["/" + key for key in published.segment_keys], {})
        for round_number in range(args.rounds):
            # Alternate who goes first, so a noisy neighbour does not always hit the same one.
            pair = (ours, peer) if round_number % 2 == 0 else (peer, ours)
            for target in pair:
                measure(target, args.duration / args.rounds)
    figures = {name: summarize(windows) for name, windows in measured.items()}
    ratio = figures["segment"].rps / figures["nginx_segment"].rps
    return _record(args, figures, ratio, sizes, generator_cpu)


def _record(
    args: argparse.Namespace,
    figures: dict[str, EndpointFigures],
    ratio: float,
    sizes: list[int],
    generator_cpu: dict[str, list[float]],
) -> dict[str, Any]:
    return {
        "load_generator": f"locust {importlib.metadata.version('locust')} "
        "(FastHttpUser, library mode, one process, one keep-alive connection per user)",
        "concurrency": args.users,
        "duration_s_per_target": args.duration,
        "warmup_s": args.warmup,
        "segment_rounds": args.rounds,
        "cpu_count": os.cpu_count(),
        "api": {"server": server_description(), "worker_processes": args.workers},
        "nginx": {"version": nginx_version(), "worker_processes": args.workers},
        "segments": {
            "count": len(sizes),
            "bytes_min": min(sizes),
            "bytes_max": max(sizes),
            "bytes_mean": round(sum(sizes) / len(sizes)),
        },
        "endpoints": {
            name: figures[name].as_json()
            for name in ("playback", "playlist", "segment", "analytics")
        },
        "nginx_segment": figures["nginx_segment"].as_json(),
        "generator_cpu": generator_cpu,
        # A generator near one core of CPU was the limit: the figure is then a floor for
        # what the server could do (nginx's, here, usually).
        "limited_by_load_generator": {
            name: min(values) >= GENERATOR_SATURATED for name, values in generator_cpu.items()
        },
        "fairness": FAIRNESS,
        "segment_rps_over_nginx": round(ratio, 3),
        "required_ratio": REQUIRED_RATIO,
        "meets_required_ratio": ratio >= REQUIRED_RATIO,
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per target")
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds before measuring")
    parser.add_argument("--users", type=int, default=32, help="concurrent connections")
    parser.add_argument(
        "--workers", type=int, default=1, help="worker processes of the API and of nginx"
    )
    parser.add_argument("--rounds", type=int, default=4, help="alternations of the segment pair")
    parser.add_argument(
        "--analytics-url",
        default="",
        help="the API's analytics store (PV_ANALYTICS_URL); default: the embedded chDB, which "
        "one process only can open, so a ClickHouse server for --workers above 1",
    )
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pv-bench-load-") as scratch:
        record = run(args, Path(scratch))
    path = write_results("load_delivery", record)
    segment, peer = record["endpoints"]["segment"], record["nginx_segment"]
    print(
        f"segments: ours {segment['rps']} req/s (p99 {segment['p99_ms']} ms), nginx "
        f"{peer['rps']} req/s (p99 {peer['p99_ms']} ms): ratio {record['segment_rps_over_nginx']}"
        f" (required >= {REQUIRED_RATIO}); results: {path}"
    )


if __name__ == "__main__":
    main()
