"""What each part of the suite must show: its required figures, judged from its results.

Every check names the requirement (the issue's words), what was required and what was measured;
the report lists them all, met or not. A check is computed from the figures a run produced, never
written down by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Check:
    """One required figure.

    Attributes:
        what: The property, in words.
        required: What the issue requires.
        measured: What this run measured.
        ok: Whether the measurement meets the requirement.
    """

    what: str
    required: str
    measured: str
    ok: bool

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _count(value: Any) -> str:
    """A figure that is a count or the list of what it counts, as a count."""
    if value is None:
        return "not measured"
    return str(len(value)) if isinstance(value, list | dict) else str(value)


def _failures(failed: list[str]) -> str:
    return f" (failed: {'; '.join(failed)[:300]})" if failed else ""


def _same_outputs(f: Mapping[str, Any]) -> list[Check]:
    objects, rows = f["object_differences"], f["row_differences"]
    return [
        Check(
            "every workflow completed",
            f"{f['workflows']} of {f['workflows']}",
            f"{f['workflows_completed']} of {f['workflows']}"
            + (
                f" (failed: {'; '.join(f['workflows_failed'])[:300]})"
                if f["workflows_failed"]
                else ""
            ),
            f["workflows_completed"] == f["workflows"],
        ),
        Check(
            "every stored object identical to the undisturbed run's (sha256)",
            "0 differences",
            f"{sum(len(v) for v in objects.values())} differences of "
            f"{f['objects_compared']} objects" + (f": {objects}"[:300] if objects else ""),
            not objects,
        ),
        Check(
            "every analytics row identical (count and row hash per table and match)",
            "0 differences, 0 duplicated",
            f"{len(rows)} differences, {len(f['rows_duplicated'])} duplicated, "
            f"of {f['rows_compared']} rows in {f['row_tables_compared']} tables",
            not rows and not f["rows_duplicated"],
        ),
    ]


def kills(f: Mapping[str, Any], wanted: int) -> list[Check]:
    return [
        Check(
            "workers SIGKILLed at random points of random stages",
            f"{wanted} kills",
            f"{f['kills']} kills ({f['kills_during_an_activity']} during an activity: "
            + ", ".join(f"{k} x{v}" for k, v in f["stages_hit"].items())
            + ")",
            f["kills"] >= wanted,
        ),
        *_same_outputs(f),
    ]


def freeze(f: Mapping[str, Any]) -> list[Check]:
    stale = f["stale_attempts"]
    return [
        Check(
            "a SIGSTOPped worker's activity is retried on another worker",
            f"within heartbeat timeout + 10 s = {f['retry_deadline_s']:g} s",
            f"{f['retry_started_after_s']:g} s",
            bool(f["retried_elsewhere_in_time"]),
        ),
        Check(
            "the retry's output equals the undisturbed run's",
            "same sha256",
            "same" if f["outputs_equal_reference"] else "different",
            bool(f["outputs_equal_reference"]) and bool(f["outputs"]),
        ),
        Check(
            "the stale attempt, woken after the retry finished, cannot overwrite the newer output",
            "outputs unchanged (sha256 and mtime); the stale attempt stopped",
            ("unchanged" if f["outputs_unchanged_after_wake"] else "CHANGED")
            + "; "
            + "; ".join(f"attempt {s['attempt']}: {s['stopped_by']}" for s in stale),
            bool(f["outputs_unchanged_after_wake"]) and bool(stale),
        ),
    ]


def restart(f: Mapping[str, Any]) -> list[Check]:
    return [
        Check(
            "the Temporal server restarted mid-run",
            "stopped while activities run, started again",
            f"stopped after {f['stopped_after_s']:g} s while "
            f"{', '.join(f['running_when_stopped']) or 'no activity'} ran; "
            f"down {f['down_for_s']:g} s",
            bool(f["running_when_stopped"]),
        ),
        *_same_outputs(f),
    ]


def s3_faults(f: Mapping[str, Any]) -> list[Check]:
    faults = f.get("faults", {})
    injected = sum(int(v) for v in faults.values()) if isinstance(faults, Mapping) else 0
    return [
        Check(
            "errors and timeouts injected at the S3 endpoint",
            "> 0 of each kind",
            ", ".join(f"{k} {v}" for k, v in faults.items()) + f" of {f.get('requests', '?')} "
            "requests",
            injected > 0 and all(int(v) > 0 for v in faults.values()),
        ),
        Check(
            "no multipart upload left open by a retried call",
            "0",
            _count(f.get("multipart_uploads_left_open")),
            _count(f.get("multipart_uploads_left_open")) == "0",
        ),
        *_same_outputs(f),
    ]


def limits(f: Mapping[str, Any]) -> list[Check]:
    lim = f["limits"]
    return [
        Check(
            "a long match completes under lowered limits",
            "completed",
            "completed" if f["completed"] else f"failed: {f['failure']}",
            bool(f["completed"]),
        ),
        Check(
            "longest history",
            f"< {lim['limit.historyCount.error']} events (lowered error limit)",
            f"{f['longest_history']['events']} events ({f['longest_history']['workflow_id']})",
            f["longest_history"]["events"] < lim["limit.historyCount.error"],
        ),
        Check(
            "largest history",
            f"< {lim['limit.historySize.error']} bytes",
            f"{f['largest_history']['bytes']} bytes ({f['largest_history']['workflow_id']})",
            f["largest_history"]["bytes"] < lim["limit.historySize.error"],
        ),
        Check(
            "largest history event (payloads included)",
            f"< {lim['limit.blobSize.error']} bytes",
            f"{f['largest_event_bytes']} bytes",
            f["largest_event_bytes"] < lim["limit.blobSize.error"],
        ),
    ]


def pytest_suite(f: Mapping[str, Any], what: str) -> list[Check]:
    tests = f["tests"]
    failed = [t["nodeid"] for t in tests if t["outcome"] in ("failed", "error", "xpassed")]
    skipped = [t["nodeid"] for t in tests if t["outcome"] == "skipped"]
    passed = sum(1 for t in tests if t["outcome"] == "passed")
    return [
        Check(
            what,
            "every test passes, none skipped",
            f"{passed} passed, {len(failed)} failed, {len(skipped)} skipped"
            + (f": {', '.join(failed + skipped)}"[:400] if failed or skipped else ""),
            not failed and not skipped and passed > 0 and f["returncode"] == 0,
        )
    ]


def fuzz(f: Mapping[str, Any]) -> list[Check]:
    """The fuzzing test passed, and what it sent (its ``record_property`` figures)."""
    props: dict[str, Any] = {}
    for test in f["tests"]:
        props.update(test.get("properties") or {})
    failures = props.get("fuzz_failures")
    return [
        *pytest_suite(f, "schemathesis: no 5xx, no response off the schema"),
        Check(
            "requests generated from the OpenAPI document (valid and invalid), stateful included",
            "> 0 requests, 0 failures",
            f"{props.get('fuzz_requests')} requests over {props.get('fuzz_operations')} operations"
            f" ({props.get('fuzz_operations_with_2xx')} answered 2xx at least once),"
            f" {props.get('fuzz_requests_stateful')} of them in"
            f" {props.get('fuzz_scenarios')} stateful scenarios; {failures} failures",
            failures == 0 and int(props.get("fuzz_requests") or 0) > 0,
        ),
    ]


CHECKS: dict[str, Callable[..., list[Check]]] = {
    "kills": kills,
    "freeze": freeze,
    "temporal_restart": restart,
    "s3_faults": s3_faults,
    "limits": limits,
}


def load(f: Mapping[str, Any]) -> list[Check]:
    """From the benchmarks' result files (`bench/results/load_delivery.json`,
    `bench/results/upload_storm.json`)."""
    delivery, storm = f["load_delivery"], f["upload_storm"]
    ratio = delivery.get("segment_rps_over_nginx")
    endpoints = delivery.get("endpoints", {})
    nginx = delivery.get("nginx_segment", {})
    errors = (
        sum(int(e.get("errors", 0)) for e in [*endpoints.values(), nginx]) if endpoints else None
    )
    ours = endpoints.get("segment", {})
    counts = storm.get("counts", {})
    return [
        Check(
            "segment delivery requests per second, ours / nginx (same load generator, same run)",
            ">= 0.5",
            (
                f"{ratio} ({ours.get('rps')} vs {nginx.get('rps')} req/s; p99 {ours.get('p99_ms')}"
                f" vs {nginx.get('p99_ms')} ms; {delivery.get('concurrency')} users)"
            )
            if ratio is not None
            else f"not measured (exit {delivery['returncode']})",
            ratio is not None and float(ratio) >= 0.5 and delivery["returncode"] == 0,
        ),
        Check(
            "requests answered with an error under load (playback, playlists, segments, "
            "analytics, nginx)",
            "0",
            str(errors) if errors is not None else "not measured",
            errors == 0,
        ),
        Check(
            "50 concurrent uploads through connections cut at random: none corrupt or duplicated",
            "50 completed, 0 corrupt, 0 duplicate sessions, assets or workflow starts",
            ", ".join(
                f"{key} {counts.get(key)}"
                for key in (
                    "uploads",
                    "completed",
                    "connections_cut",
                    "corrupt",
                    "duplicate_sessions",
                    "duplicate_assets",
                    "duplicate_workflow_starts",
                )
            ),
            storm.get("returncode") == 0
            and counts.get("completed") == counts.get("uploads") == 50
            and counts.get("corrupt") == 0
            and counts.get("duplicate_sessions") == 0
            and counts.get("duplicate_assets") == 0
            and counts.get("duplicate_workflow_starts") == 0,
        ),
    ]
