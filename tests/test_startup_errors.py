"""Start-up failures of `polyvision`: one line naming the `PV_` variable, exit 2, no secret.

Each case runs the real command in a subprocess (`python -m programs.cli`) and reads everything
it printed: a secret planted in a setting must come back in neither stream, and no
traceback may take the place of the one line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from pathlib import Path

import pytest

from polyvision.settings import StartupError
from polyvision.storage.analytics import parse_analytics_url
from polyvision.storage.metadata.engine import create_engine, normalize_url
from polyvision.storage.objects import parse_object_store_url
from programs import cli

# Planted in secret values: it must never come back in an error.
MARKER = "pv-marker-5e81d2"
REPOSITORY = Path(__file__).resolve().parents[1]


def run_cli(tmp_path: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """`polyvision ARGS` in `tmp_path` (no `.env` there), with only the `PV_` variables given."""
    base = {name: value for name, value in os.environ.items() if not name.startswith("PV_")}
    base["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(REPOSITORY), base.get("PYTHONPATH", "")])
    )
    return subprocess.run(
        [sys.executable, "-m", "programs.cli", *args],
        env={**base, "PV_DATA_DIR": str(tmp_path / "pv"), "PV_LOG_JSON": "true", **env},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def assert_refused(completed: subprocess.CompletedProcess[str], variable: str) -> str:
    """The command exited 2 with exactly one line on stderr naming `variable`; that line."""
    assert "Traceback" not in completed.stderr, completed.stderr
    lines = completed.stderr.splitlines()
    assert len(lines) == 1, completed.stderr
    assert lines[0].startswith("polyvision: "), lines[0]
    assert variable in lines[0], lines[0]
    assert completed.returncode == 2, completed.stderr
    assert completed.stdout == ""
    assert MARKER not in completed.stdout + completed.stderr
    return lines[0]


# ---- no secret in any error ------------------------------------------------------------------

SECRETS_IN_INVALID_VALUES = [
    # (variable, invalid value holding the marker, what the line says)
    ("PV_SECRET_KEY", f"short-{MARKER}", "PV_SECRET_KEY must be at least 32 characters"),
    ("PV_SMTP_URL", f"smtp://user:{MARKER}@mail.example:587", "PV_SMTP_URL needs a sender"),
    ("PV_SMTP_URL", f"smtp://user:{MARKER}/x@mail.example?from=a@b.example", "malformed port"),
    ("PV_DATABASE_URL", f"mysql://user:{MARKER}@db.example/pv", "unsupported database 'mysql'"),
    (
        "PV_DATABASE_URL",
        f"postgresql+asyncpg://user:{MARKER}@db.example:port/pv",
        "PV_DATABASE_URL is not a database URL",
    ),
    ("PV_DATABASE_URL", f"{MARKER} is no URL", "PV_DATABASE_URL is not a database URL"),
    (
        "PV_ANALYTICS_URL",
        f"mongodb://user:{MARKER}@mongo.example/pv",
        "unknown analytics URL scheme 'mongodb'",
    ),
    (
        # An unescaped / in the password: urlsplit would quote its tail as the "port".
        "PV_ANALYTICS_URL",
        f"clickhouse://user:{MARKER}/x@ch.example:8123/pv",
        "PV_ANALYTICS_URL has a malformed host or port",
    ),
    ("PV_ANALYTICS_URL", f"clickhouse://user:{MARKER}@", "PV_ANALYTICS_URL names no ClickHouse"),
    ("PV_ANALYTICS_URL", f"{MARKER}", "PV_ANALYTICS_URL has no scheme"),
    (
        "PV_OBJECTS_URL",
        f"s3://media?endpoint_url=https://s3.example&aws_secret_access_key={MARKER}",
        "unknown S3 object store option(s) ['aws_secret_access_key']",
    ),
    ("PV_OBJECTS_URL", f"s3://AKIAEXAMPLE:{MARKER}@media", "PV_OBJECTS_URL carries credentials"),
    (
        "PV_OBJECTS_URL",
        f"ftp://user:{MARKER}@ftp.example/objects",
        "unknown object store URL scheme 'ftp'",
    ),
    ("PV_OBJECTS_URL", f"file://user:{MARKER}@host/objects", "file:///absolute/path"),
]


@pytest.mark.parametrize(("variable", "value", "message"), SECRETS_IN_INVALID_VALUES)
def test_an_invalid_secret_setting_is_named_not_echoed(
    tmp_path: Path, variable: str, value: str, message: str
) -> None:
    env = {variable: value}
    if variable == "PV_SECRET_KEY":
        env["PV_ENV"] = "production"
    line = assert_refused(run_cli(tmp_path, "db", "upgrade", env=env), variable)
    assert message in line
    assert not (tmp_path / "pv").exists()  # refused before anything was touched


PARSERS = {
    "PV_DATABASE_URL": normalize_url,
    "PV_ANALYTICS_URL": parse_analytics_url,
    "PV_OBJECTS_URL": parse_object_store_url,
}


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [case for case in SECRETS_IN_INVALID_VALUES if case[0] in PARSERS],
)
def test_the_store_url_parsers_errors_hold_no_secret(
    variable: str, value: str, message: str
) -> None:
    # The same refusals in process, where an API or a worker would log them (the settings
    # fields' own errors are checked in process by tests/test_settings.py).
    parse = PARSERS[variable]
    with pytest.raises(StartupError) as raised:
        parse(value)
    assert raised.value.setting == variable
    assert message in str(raised.value)
    # Not even a traceback of it, chained errors included, would show the secret.
    assert MARKER not in "".join(traceback.format_exception(raised.value))


def test_no_secret_leaks_through_another_settings_error(tmp_path: Path) -> None:
    # Valid secrets everywhere, one insecure setting: the error once quoted the whole input.
    env = {
        "PV_ENV": "production",
        "PV_SMTP_URL": f"smtp://user:{MARKER}@mail.example:587?starttls=1&from=a@b.example",
        "PV_DATABASE_URL": f"postgresql+asyncpg://user:{MARKER}@db.example/pv",
        "PV_ANALYTICS_URL": f"clickhouse://user:{MARKER}@ch.example:8123/pv",
        "PV_OBJECTS_URL": "s3://media?region=eu-west-1",
    }
    line = assert_refused(run_cli(tmp_path, "keys", "rotate", env=env), "PV_SECRET_KEY")
    assert line == "polyvision: PV_SECRET_KEY must be set when PV_ENV=production"

    env |= {"PV_SECRET_KEY": f"{MARKER}-long-enough-to-be-a-real-secret", "PV_API_PORT": "x"}
    line = assert_refused(run_cli(tmp_path, "keys", "rotate", env=env), "PV_API_PORT")


# ---- one line naming the setting ---------------------------------------------------------------


def test_an_invalid_setting(tmp_path: Path) -> None:
    line = assert_refused(
        run_cli(tmp_path, "db", "upgrade", env={"PV_API_PORT": "not-a-port"}), "PV_API_PORT"
    )
    assert line == (
        "polyvision: invalid setting PV_API_PORT (api_port): Input should be a valid integer,"
        " unable to parse string as an integer"
    )


@pytest.mark.parametrize(
    ("where", "reason"), [("a-file", "File exists"), ("a-file/below", "Not a directory")]
)
def test_an_uncreatable_data_dir(tmp_path: Path, where: str, reason: str) -> None:
    (tmp_path / "a-file").write_text("")
    data_dir = tmp_path / where
    line = assert_refused(
        run_cli(tmp_path, "db", "upgrade", env={"PV_DATA_DIR": str(data_dir)}), "PV_DATA_DIR"
    )
    assert line == (
        f"polyvision: PV_DATA_DIR {data_dir} is not a writable directory ({reason});"
        " create it or point PV_DATA_DIR at one this user can write"
    )


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory")
def test_a_read_only_data_dir(tmp_path: Path) -> None:
    data_dir = tmp_path / "read-only"
    data_dir.mkdir(mode=0o500)
    try:
        line = assert_refused(
            run_cli(tmp_path, "keys", "rotate", env={"PV_DATA_DIR": str(data_dir)}),
            "PV_DATA_DIR",
        )
    finally:
        data_dir.chmod(0o700)
    assert "(Permission denied)" in line


@pytest.mark.parametrize(
    ("variable", "value", "line"),
    [
        (
            "PV_DATABASE_URL",
            "mysql://polyvision@db.example/polyvision",
            "polyvision: PV_DATABASE_URL names an unsupported database 'mysql'; expected"
            " sqlite+aiosqlite:///path or postgresql+asyncpg://user:pass@host:5432/db",
        ),
        (
            "PV_ANALYTICS_URL",
            "postgres://db.example/analytics",
            "polyvision: PV_ANALYTICS_URL has an unknown analytics URL scheme 'postgres';"
            " expected chdb:///abs/dir, chdb://:memory: or clickhouse://user:pass@host:8123/db"
            " (or clickhouses:// for HTTPS)",
        ),
        (
            "PV_OBJECTS_URL",
            "gs://media",
            "polyvision: PV_OBJECTS_URL has an unknown object store URL scheme 'gs'; expected"
            " file:///abs/dir, s3://bucket or s3://bucket?endpoint_url=http://host:9000"
            "&region=name",
        ),
    ],
)
@pytest.mark.parametrize("command", [("db", "upgrade"), ("keys", "rotate")])
def test_an_unsupported_store_url_scheme(
    tmp_path: Path, command: tuple[str, ...], variable: str, value: str, line: str
) -> None:
    completed = run_cli(tmp_path, *command, env={variable: value})
    assert assert_refused(completed, variable) == line
    assert not (tmp_path / "pv").exists()  # refused before the data directory was made


def test_commands_without_stores_do_not_check_them(tmp_path: Path) -> None:
    completed = run_cli(
        tmp_path,
        "eval",
        "--truth",
        str(tmp_path / "no-truth"),
        "--results",
        str(tmp_path / "no-results"),
        env={"PV_OBJECTS_URL": "gs://media"},
    )
    assert completed.returncode == 2  # the missing truth, not the object store
    assert "PV_OBJECTS_URL" not in completed.stderr
    assert not (tmp_path / "pv").exists()


# ---- the handler -------------------------------------------------------------------------------


def test_a_sqlite_directory_that_cannot_be_made_names_the_database_url(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(StartupError, match=r"^PV_DATABASE_URL: cannot create .*Not a directory"):
        create_engine(f"sqlite+aiosqlite:///{tmp_path / 'a-file' / 'db' / 'metadata.db'}")


@pytest.mark.parametrize(
    "error",
    [
        StartupError("PV_OBJECTS_URL", "PV_OBJECTS_URL is wrong"),
        ExceptionGroup("stack", [ExceptionGroup("worker", [StartupError("PV_X", "wrong")])]),
    ],
)
def test_run_prints_a_startup_error_raised_anywhere_as_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], error: Exception
) -> None:
    def main() -> int:
        raise error

    monkeypatch.setattr(cli, "main", main)
    monkeypatch.setattr(os, "_exit", sys.exit)  # run() skips teardown once Temporal is loaded
    with pytest.raises(SystemExit) as exited:
        cli.run()
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err in (
        "polyvision: PV_OBJECTS_URL is wrong\n",
        "polyvision: PV_X: wrong\n",
    )


def test_run_leaves_other_exception_groups_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    def main() -> int:
        raise ExceptionGroup("stack", [RuntimeError("boom")])

    monkeypatch.setattr(cli, "main", main)
    with pytest.raises(ExceptionGroup):
        cli.run()
