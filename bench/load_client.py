"""The load generator of `bench.load_delivery`: locust in library mode, one target per run.

Run in a process of its own (locust monkey-patches the standard library with gevent when it
is imported, which nothing else in the benchmarks may see)::

    python -m bench.load_client SPEC.json OUT.json

``SPEC.json``: ``{"host", "paths", "headers", "users", "duration_s", "warmup_s",
"expect_status"}``. ``users`` `FastHttpUser` s (one keep-alive connection each, no think time)
run at once; each walks ``paths`` round robin from its own offset, so the users do not ask for
the same path in step. Requests are measured from ``warmup_s`` after the last user started for
``duration_s``; the out file holds the window's successful latencies, its error count and the
CPU the generator used (near one core means the generator, not the server, was the limit).
"""

from __future__ import annotations

import itertools
import json
import resource
import sys
import time
from pathlib import Path
from typing import Any

from locust import FastHttpUser, constant, task
from locust.env import Environment

from bench.load_stats import Sample, in_window


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(spec: dict[str, Any]) -> dict[str, Any]:
    """Load ``spec['host']`` as the module docstring says; the window's figures."""
    paths: list[str] = list(spec["paths"])
    headers: dict[str, str] = dict(spec.get("headers", {}))
    expect = int(spec.get("expect_status", 200))
    users = int(spec["users"])
    offsets = itertools.count()

    class Viewer(FastHttpUser):
        host = spec["host"]
        wait_time = constant(0)
        # One connection per user: the concurrency is exactly `users` connections.
        concurrency = 1

        def on_start(self) -> None:
            self._paths = itertools.islice(itertools.cycle(paths), next(offsets) % len(paths), None)

        @task
        def fetch(self) -> None:
            with self.client.get(
                next(self._paths), headers=headers, name="target", catch_response=True
            ) as response:
                if response.status_code == expect:
                    response.success()
                else:
                    response.failure(f"HTTP {response.status_code}")

    samples: list[Sample] = []

    def on_request(response_time: float, exception: BaseException | None = None, **_: Any) -> None:
        samples.append(Sample(time.monotonic(), response_time, exception is None))

    environment = Environment(user_classes=[Viewer], catch_exceptions=False)
    environment.events.request.add_listener(on_request)
    runner = environment.create_local_runner()
    runner.start(users, spawn_rate=float(min(users, 100)))
    # Spawning is asynchronous: wait until every user runs, then the warm-up. (`time.sleep`
    # yields to the users: importing locust patched it with gevent's.)
    while runner.user_count < users:
        time.sleep(0.05)
    time.sleep(float(spec.get("warmup_s", 2.0)))
    start, cpu_start = time.monotonic(), _cpu_s()
    time.sleep(float(spec["duration_s"]))
    end, cpu_end = time.monotonic(), _cpu_s()
    runner.quit()
    window = in_window(samples, start, end)
    return {
        "latencies_ms": window.latencies_ms,
        "errors": window.errors,
        "seconds": window.seconds,
        "generator_cpu": (cpu_end - cpu_start) / (end - start),
    }


def main(argv: list[str] | None = None) -> None:
    spec_path, out_path = (argv if argv is not None else sys.argv[1:])[:2]
    result = run(json.loads(Path(spec_path).read_text()))
    Path(out_path).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
