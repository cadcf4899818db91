"""Settings: one URL per store under one data directory; no usable secret outside development."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from pydantic import ValidationError

from polyvision.settings import (
    DEVELOPMENT_SECRET,
    Environment,
    InsecureSettingsError,
    Settings,
    StartupError,
    load_settings,
)

# Planted in secret values: it must never come back in an error.
MARKER = "pv-marker-7f3a9c"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith("PV_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env from the checkout


def test_embedded_defaults_live_under_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "state")
    root = (tmp_path / "state").resolve()
    assert settings.database_url == f"sqlite+aiosqlite:///{root / 'metadata.db'}"
    assert settings.analytics_url == f"chdb://{root / 'analytics'}"
    assert settings.objects_url == f"file://{root / 'objects'}"
    assert settings.temporal_namespace == "polyvision"


def test_environment_variables_select_backends(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PV_DATABASE_URL", "postgresql+asyncpg://u:p@db/polyvision")
    monkeypatch.setenv("PV_ANALYTICS_URL", "clickhouse://u:p@ch:8123/polyvision")
    monkeypatch.setenv("PV_OBJECTS_URL", "s3://media?endpoint_url=http://minio:9000")
    monkeypatch.setenv("PV_TEMPORAL_ADDRESS", "temporal:7233")
    settings = Settings()
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.analytics_url.startswith("clickhouse://")
    assert settings.objects_url.startswith("s3://media")
    assert settings.temporal_address == "temporal:7233"


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("PV_TEMPORAL_NAMESPACE=from-dotenv\n")
    assert Settings().temporal_namespace == "from-dotenv"


def test_development_gets_a_development_secret() -> None:
    assert Settings().secret == DEVELOPMENT_SECRET.encode()


@pytest.mark.parametrize("env", [Environment.test, Environment.production])
def test_missing_secret_is_refused_outside_development(env: Environment) -> None:
    with pytest.raises(ValidationError, match="PV_SECRET_KEY must be set"):
        Settings(env=env)


def test_development_secret_is_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PV_SECRET_KEY", DEVELOPMENT_SECRET)
    with pytest.raises(ValidationError, match="development secret"):
        Settings(env=Environment.production)


def test_short_secret_is_refused_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PV_SECRET_KEY", "too-short")
    with pytest.raises(ValidationError, match="at least 32"):
        Settings(env=Environment.production)


def test_real_secret_is_accepted_in_production(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PV_SECRET_KEY", "x" * 40)
    assert Settings(env=Environment.production).secret == b"x" * 40


# ---- errors: one line, the variable's name, never a value ------------------------------------


def test_load_settings_names_the_variable_and_not_the_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("PV_API_PORT", f"{MARKER}-port")
    with pytest.raises(StartupError) as raised:
        load_settings()
    assert raised.value.setting == "PV_API_PORT"
    assert str(raised.value).startswith("invalid setting PV_API_PORT (api_port): ")
    assert MARKER not in str(raised.value)
    assert "\n" not in str(raised.value)


def test_every_invalid_setting_is_named_on_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PV_API_PORT", MARKER)
    monkeypatch.setenv("PV_LOG_JSON", MARKER)
    with pytest.raises(StartupError) as raised:
        load_settings()
    message = str(raised.value)
    assert "PV_API_PORT" in message and "PV_LOG_JSON" in message
    assert MARKER not in message and "\n" not in message


def test_an_unparsable_list_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PV_CORS_ORIGINS", f"https://{MARKER}.example")  # not JSON
    with pytest.raises(StartupError, match="PV_CORS_ORIGINS cannot be parsed") as raised:
        load_settings()
    assert raised.value.setting == "PV_CORS_ORIGINS"
    assert MARKER not in str(raised.value)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PV_ENV": "production"}, "PV_SECRET_KEY must be set when PV_ENV=production"),
        (
            {"PV_ENV": "production", "PV_SECRET_KEY": f"short-{MARKER}"},
            "PV_SECRET_KEY must be at least 32 characters in production",
        ),
        (
            {"PV_ENV": "test", "PV_SECRET_KEY": DEVELOPMENT_SECRET},
            "PV_SECRET_KEY is the development secret; set a real one",
        ),
    ],
)
def test_secret_key_errors_hold_no_secret(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    # Every other secret is set too: a whole-model error once quoted all of the input.
    for name, value in {
        "PV_SMTP_URL": f"smtp://user:{MARKER}@mail.example:587?starttls=1&from=a@b.example",
        "PV_DATABASE_URL": f"postgresql+asyncpg://user:{MARKER}@db.example/pv",
        "PV_ANALYTICS_URL": f"clickhouse://user:{MARKER}@ch.example:8123/pv",
        "PV_OBJECTS_URL": "s3://media?region=eu-west-1",
        **env,
    }.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(StartupError) as raised:
        load_settings()
    assert str(raised.value) == message
    assert raised.value.setting == "PV_SECRET_KEY"
    assert isinstance(raised.value, InsecureSettingsError)
    # Settings() itself raises pydantic's error, which hides the input as well.
    with pytest.raises(ValidationError) as validation:
        Settings()
    assert MARKER not in str(validation.value)
    assert DEVELOPMENT_SECRET not in str(validation.value)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"smtp://user:{MARKER}@mail.example:587", "PV_SMTP_URL needs a sender address"),
        (f"smtp://user:{MARKER}/x@mail.example?from=a@b.example", "PV_SMTP_URL has a malformed"),
        (f"http://user:{MARKER}@mail.example?from=a@b.example", "PV_SMTP_URL must start with"),
    ],
)
def test_a_malformed_smtp_url_is_a_settings_error_without_the_password(
    monkeypatch: pytest.MonkeyPatch, url: str, message: str
) -> None:
    monkeypatch.setenv("PV_SMTP_URL", url)
    with pytest.raises(StartupError, match=message) as raised:
        load_settings()
    assert raised.value.setting == "PV_SMTP_URL"
    assert MARKER not in str(raised.value)


def test_a_good_smtp_url_is_kept_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"smtp://user:{MARKER}@mail.example:587?starttls=1&from=noreply@example.org"
    monkeypatch.setenv("PV_SMTP_URL", url)
    settings = load_settings()
    assert settings.smtp_url.get_secret_value() == url
    assert MARKER not in repr(settings) and MARKER not in str(settings)


def test_load_settings_takes_overrides(tmp_path: Path) -> None:
    assert load_settings(data_dir=tmp_path / "x").data_dir == (tmp_path / "x").resolve()


# ---- the data directory ----------------------------------------------------------------------


def test_prepare_data_dir_creates_it(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "a" / "b")
    assert settings.prepare_data_dir() == (tmp_path / "a" / "b").resolve()
    assert (tmp_path / "a" / "b").is_dir()
    assert list((tmp_path / "a" / "b").iterdir()) == []  # the write probe leaves nothing


@pytest.mark.parametrize("where", ["a-file", "a-file/below"])
def test_an_uncreatable_data_dir_names_pv_data_dir(tmp_path: Path, where: str) -> None:
    (tmp_path / "a-file").write_text("")
    settings = Settings(data_dir=tmp_path / where)
    with pytest.raises(StartupError, match=r"^PV_DATA_DIR .* is not a writable directory") as e:
        settings.prepare_data_dir()
    assert e.value.setting == "PV_DATA_DIR"


def test_a_read_only_data_dir_names_pv_data_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Root writes into a mode-0500 directory, so the file system's refusal is simulated.
    def read_only(*args: object, **kwargs: object) -> None:
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(tempfile, "TemporaryFile", read_only)
    settings = Settings(data_dir=tmp_path)
    with pytest.raises(StartupError, match=r"\(Read-only file system\)"):
        settings.prepare_data_dir()
