"""Settings: one URL per store under one data directory; no usable secret outside development."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from polyvision.settings import DEVELOPMENT_SECRET, Environment, Settings


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "PV_ENV",
        "PV_DATA_DIR",
        "PV_DATABASE_URL",
        "PV_ANALYTICS_URL",
        "PV_OBJECTS_URL",
        "PV_SECRET_KEY",
        "PV_TEMPORAL_ADDRESS",
    ):
        monkeypatch.delenv(name, raising=False)
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
