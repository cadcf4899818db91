"""`make chaos` (`python -m chaos`): the fault, fuzzing, attack and load suite; it writes each
part's figures to ``chaos/results/`` and regenerates RELIABILITY.md from them.

Seeded and repeatable: ``--seed`` picks the synthetic matches, the kill moments and the injected
faults. ``--only kills,freeze`` runs some parts (the report keeps the others' last results).
Exits non-zero when any required figure is not met.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from chaos import checks, report
from chaos.results import RESULTS_DIR, write_result

ROOT = Path(__file__).resolve().parent.parent

SECURITY_TESTS = (
    "tests/security",
    "tests/api/test_auth.py",
    "tests/api/test_device_tokens.py",
    "tests/api/test_delivery.py",
    "tests/api/test_playback_tokens.py",
    "tests/api/test_uploads.py",
    "tests/api/test_permission_table.py",
    "tests/ingest/test_probe.py",
    "tests/ingest/test_validate.py",
    "tests/stage/test_attempt_fence.py",
)
FUZZ_TEST = "tests/security/test_fuzz_openapi.py"
PARTS = ("kills", "freeze", "temporal_restart", "s3_faults", "limits", "security", "fuzz", "load")


def _command(args: argparse.Namespace, part: str) -> str:
    return f"make chaos CHAOS_ARGS='--only {part} --seed {args.seed}'"


async def _scenario(part: str, work: Path, args: argparse.Namespace) -> dict[str, Any]:
    if part == "kills":
        from chaos import kills

        return await kills.run(work, args.seed, kills=args.kills, matches=args.matches)
    if part == "freeze":
        from chaos import freeze

        return await freeze.run(work, args.seed)
    if part == "temporal_restart":
        from chaos import temporal_restart

        return await temporal_restart.run(work, args.seed)
    if part == "s3_faults":
        from chaos import s3_faults

        return await s3_faults.run(work, args.seed)
    if part == "limits":
        from chaos import limits

        return await limits.run(work, args.seed)
    raise ValueError(part)


def _pytest(paths: Sequence[str], work: Path, env: dict[str, str]) -> dict[str, Any]:
    record = work / "pytest-record.json"
    started = time.monotonic()
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "chaos.pytest_record", *paths],
        cwd=ROOT,
        env={**os.environ, **env, "PV_CHAOS_RECORD": str(record)},
        check=False,
    )
    tests = json.loads(record.read_text()) if record.exists() else []
    return {
        "returncode": completed.returncode,
        "elapsed_s": round(time.monotonic() - started, 1),
        "tests": tests,
    }


def _bench(module: str) -> dict[str, Any]:
    completed = subprocess.run([sys.executable, "-m", module], cwd=ROOT, check=False)
    name = module.rsplit(".", 1)[-1]
    path = ROOT / "bench" / "results" / f"{name}.json"
    figures = json.loads(path.read_text()) if path.exists() else {}
    return {
        "returncode": completed.returncode,
        "results_file": str(path.relative_to(ROOT)),
        **figures,
    }


def run_part(part: str, args: argparse.Namespace) -> bool:
    work = args.work / part
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    print(f"chaos: {part} ...", flush=True)
    started = time.monotonic()
    command = _command(args, part)
    if part == "security":
        # The fuzzing test runs as its own part, with many more examples.
        figures = _pytest([*SECURITY_TESTS, f"--ignore={FUZZ_TEST}"], work, {})
        found = checks.pytest_suite(figures, "attacks and bad input refused, nothing lost")
    elif part == "fuzz":
        env = {"PV_FUZZ_EXAMPLES": str(args.fuzz_examples), "PV_FUZZ_SEED": str(args.seed)}
        figures = _pytest([FUZZ_TEST], work, env)
        figures["examples_per_operation"] = args.fuzz_examples
        found = checks.fuzz(figures)
    elif part == "load":
        figures = {
            "load_delivery": _bench("bench.load_delivery"),
            "upload_storm": _bench("bench.upload_storm"),
        }
        command = "python -m bench.load_delivery; python -m bench.upload_storm (also in make bench)"
        found = checks.load(figures)
    else:
        try:
            figures = asyncio.run(_scenario(part, work, args))
        except Exception as exc:
            figures = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
            found = [checks.Check(f"{part} ran to the end", "no error", figures["error"], False)]
        else:
            found = (
                checks.kills(figures, args.kills)
                if part == "kills"
                else checks.CHECKS[part](figures)
            )
    elapsed = time.monotonic() - started
    write_result(
        part, command=command, seed=args.seed, elapsed_s=elapsed, figures=figures, checks=found
    )
    ok = all(check.ok for check in found)
    for check in found:
        print(f"  [{'ok' if check.ok else 'FAIL'}] {check.what}: {check.measured}", flush=True)
    print(f"chaos: {part} {'passed' if ok else 'FAILED'} in {elapsed:.0f} s", flush=True)
    return ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos", description=__doc__)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--only", default=",".join(PARTS), help=f"comma-separated of {PARTS}")
    parser.add_argument("--kills", type=int, default=20)
    parser.add_argument("--matches", type=int, default=4, help="matches in the killed batch")
    parser.add_argument("--fuzz-examples", type=int, default=60, help="per operation")
    parser.add_argument("--work", type=Path, default=ROOT / ".polyvision" / "chaos")
    args = parser.parse_args(argv)
    parts = [part.strip() for part in args.only.split(",") if part.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts {unknown}; choose from {', '.join(PARTS)}")
    if not os.environ.get("PV_MODELS_DIR"):
        parser.error("PV_MODELS_DIR is not set: run it through `make chaos` (it points there)")
    failed = [part for part in parts if not run_part(part, args)]
    path = report.write(RESULTS_DIR, ROOT / "RELIABILITY.md")
    print(f"chaos: {path.relative_to(ROOT)} regenerated", flush=True)
    if failed:
        print(f"chaos: FAILED: {', '.join(failed)}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
