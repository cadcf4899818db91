"""Process-wide settings: `PV_` environment variables and `.env`, one URL per store.

Read once in entry points (CLI, worker, API lifespan) and passed down; modules that
workflow code imports never read the environment.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Self

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Known only to make a development checkout work without setup; refused elsewhere.
DEVELOPMENT_SECRET = "polyvision-development-secret-do-not-use"


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class InsecureSettingsError(ValueError):
    """Raised when a secret is missing or left at its development value outside development."""


class Settings(BaseSettings):
    """All configuration of a Polyvision process."""

    model_config = SettingsConfigDict(
        env_prefix="PV_", env_file=".env", env_file_encoding="utf-8", extra="ignore"
    )

    env: Environment = Environment.development
    data_dir: Path = Path(".polyvision")

    database_url: str = ""
    analytics_url: str = ""
    objects_url: str = ""
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "polyvision"
    temporal_ui_url: str = "http://127.0.0.1:8233"
    # Appended to every task queue the API starts workflows on and the workers poll; isolates a
    # developer's (or a test's) workers on a shared Temporal server.
    task_queue_suffix: str = ""

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_public_url: str = ""
    worker_metrics_port: int = 9464

    models_dir: Path = Path("models")
    secret_key: SecretStr | None = Field(
        default=None, description="HMAC key for signed object URLs and other server secrets."
    )

    # Outgoing mail, e.g. smtp://user:pass@host:587?starttls=1&from=noreply@example.org
    # (`polyvision.mail`); empty: messages are only logged, which only development accepts.
    # Holds the SMTP password: a secret, never printed with the settings.
    smtp_url: SecretStr = SecretStr("")

    # Origins a browser may call the API from (the web viewer); empty: no cross-origin access.
    cors_origins: list[str] = Field(default_factory=list)
    # Largest request body the API accepts, except object and upload-part bodies.
    max_request_bytes: int = 1 * 1024 * 1024
    # Largest upload part the API accepts through the file backend's signed URLs.
    max_part_bytes: int = 64 * 1024 * 1024
    # Requests a minute per client address on login, registration and device provisioning.
    rate_limit_auth_per_minute: int = 10
    # Requests a minute per client address on device endpoints (`/devices/...`, `/uploads...`).
    rate_limit_device_per_minute: int = 600

    log_level: str = "INFO"
    log_json: bool | None = None  # None: JSON when stderr is not a TTY

    @model_validator(mode="after")
    def _derive_defaults(self) -> Self:
        data_dir = self.data_dir.expanduser().resolve()
        self.data_dir = data_dir
        if not self.database_url:
            self.database_url = f"sqlite+aiosqlite:///{data_dir / 'metadata.db'}"
        if not self.analytics_url:
            self.analytics_url = f"chdb://{data_dir / 'analytics'}"
        if not self.objects_url:
            self.objects_url = f"file://{data_dir / 'objects'}"
        if not self.api_public_url:
            self.api_public_url = f"http://{self.api_host}:{self.api_port}"
        if self.secret_key is None:
            if self.env is not Environment.development:
                raise InsecureSettingsError(
                    f"PV_SECRET_KEY must be set when PV_ENV={self.env.value}"
                )
            self.secret_key = SecretStr(DEVELOPMENT_SECRET)
        elif (
            self.env is not Environment.development
            and self.secret_key.get_secret_value() == DEVELOPMENT_SECRET
        ):
            raise InsecureSettingsError("PV_SECRET_KEY is the development secret; set a real one")
        elif self.env is Environment.production and len(self.secret_key.get_secret_value()) < 32:
            raise InsecureSettingsError(
                "PV_SECRET_KEY must be at least 32 characters in production"
            )
        return self

    @property
    def secret(self) -> bytes:
        """The secret key as bytes (always set after validation)."""
        assert self.secret_key is not None
        return self.secret_key.get_secret_value().encode()
