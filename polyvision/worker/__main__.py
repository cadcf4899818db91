"""``python -m polyvision.worker``: run a worker without the full CLI (tests, debugging)."""

from __future__ import annotations

import argparse
import asyncio
from datetime import timedelta

from polyvision.settings import Settings
from polyvision.worker.run import DEFAULT_SHUTDOWN_TIMEOUT, serve


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, read settings from the environment, serve until SIGTERM/SIGINT.

    Args:
        argv: Arguments (``sys.argv[1:]`` if None).

    Returns:
        Exit status (0 after a graceful stop).
    """
    parser = argparse.ArgumentParser(prog="python -m polyvision.worker")
    parser.add_argument("--queues", default="auto", help="auto, all, or a list of gpu,nvenc,cpu")
    parser.add_argument("--concurrency", type=int, default=None, help="activity slots per queue")
    parser.add_argument(
        "--shutdown-timeout",
        type=float,
        default=DEFAULT_SHUTDOWN_TIMEOUT.total_seconds(),
        help="seconds running activities get to finish on SIGTERM",
    )
    parser.add_argument("--task-queue-suffix", default="", help="appended to every queue name")
    args = parser.parse_args(argv)
    asyncio.run(
        serve(
            Settings(),
            args.queues,
            args.concurrency,
            shutdown_timeout=timedelta(seconds=args.shutdown_timeout),
            task_queue_suffix=args.task_queue_suffix,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
