"""Process-wide settings: `PV_` environment variables and `.env`, one URL per store.

Read once in entry points (CLI, worker, API lifespan) and passed down; modules that
workflow code imports never read the environment.
"""

from __future__ import annotations

import ipaddress
import re
import tempfile
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from pydantic_settings import SettingsError as SourceParsingError

# Known only to make a development checkout work without setup; refused elsewhere.
DEVELOPMENT_SECRET = "polyvision-development-secret-do-not-use"


class Environment(StrEnum):
    development = "development"
    test = "test"
    production = "production"


class StartupError(ValueError):
    """A setting keeps the process from starting.

    The message names the `PV_` variable to change and never contains a setting's value (no
    secret, no credentials of a store URL); `polyvision` prints it as one line and exits 2.

    Attributes:
        setting: The environment variable to change, e.g. ``PV_DATABASE_URL``.
    """

    def __init__(self, setting: str, message: str) -> None:
        if setting not in message:
            message = f"{setting}: {message}"
        super().__init__(message)
        self.setting = setting


class InsecureSettingsError(StartupError):
    """Raised when a secret is missing or left at its development value outside development."""

    def __init__(self, message: str) -> None:
        super().__init__("PV_SECRET_KEY", message)


class Settings(BaseSettings):
    """All configuration of a Polyvision process."""

    model_config = SettingsConfigDict(
        env_prefix="PV_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        # Validation errors never echo a value: several settings are secrets or URLs with
        # credentials (`load_settings` renders the errors as one line without them).
        hide_input_in_errors=True,
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
    # Workers with a hardware video encoder (NVENC) poll the nvenc queue in this deployment:
    # matches render and encode there. False: on the cpu queue with libx264 (an H100 has no
    # encoder, so a GPU alone is not a reason to set it).
    nvenc_pool: bool = False

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    api_public_url: str = ""
    worker_metrics_port: int = 9464

    models_dir: Path = Path("models")
    # The detect stage's cost settings (issue 14; figures in README "Performance"). The full
    # detector runs on every `detect_stride`-th frame of the match and the tracker carries the
    # frames between; 1 detects every frame (the accuracy baseline). `detect_tiles`: "sized"
    # tiles the pitch in bands scaled to the players' size there, "pitch" at one upscale only
    # where the pitch and its players are, "all" every tile of the panorama.
    # `inference_layout`: "auto" sizes ONNX Runtime's sessions and threads from the machine
    # (`activities.detect.inference`), "ort-default" leaves ONNX Runtime's own defaults (every
    # core, spinning threads): the naive baseline of the bench.
    detect_stride: int = Field(default=4, ge=1, le=10)  # tuning.DEFAULT_STRIDE
    detect_tiles: Literal["sized", "pitch", "all"] = "sized"
    inference_layout: Literal["auto", "ort-default"] = "auto"
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
    # Proxies (IP addresses or CIDR networks, e.g. ["10.0.0.0/8"]) whose `X-Forwarded-For` and
    # `X-Forwarded-Proto` the API believes; empty: none, the peer address is the client. The
    # rate limits and login lockouts count per client address, so a forwarded header from
    # anyone else would let a client pick a fresh address for every request.
    trusted_proxies: list[str] = Field(default_factory=list)
    # Bearer token Prometheus must send to read the API's `/metrics`; empty: open (the gateway
    # keeps `/metrics` cluster-internal). A secret, never printed with the settings.
    metrics_token: SecretStr = SecretStr("")

    log_level: str = "INFO"
    log_json: bool | None = None  # None: JSON when stderr is not a TTY

    @field_validator("smtp_url")
    @classmethod
    def _check_smtp_url(cls, value: SecretStr) -> SecretStr:
        # A malformed mail URL is a start-up error, not a failure of the first registration.
        if url := value.get_secret_value():
            from polyvision.mail import parse_smtp_url

            parse_smtp_url(url)  # its errors name PV_SMTP_URL and never quote the URL
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _check_trusted_proxies(cls, value: list[str]) -> list[str]:
        # A typo would silently trust nobody (or, worse, be read as some other network).
        for entry in value:
            if entry.strip() == "*":
                continue
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise StartupError(
                    "PV_TRUSTED_PROXIES",
                    "PV_TRUSTED_PROXIES holds an entry that is no IP address or CIDR network",
                ) from None
        return [entry.strip() for entry in value]

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

    def prepare_data_dir(self) -> Path:
        """Create `data_dir` when missing and make sure that this process can write in it.

        Raises:
            StartupError: naming PV_DATA_DIR, when the directory cannot be created or written.
        """
        try:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=self.data_dir):
                pass
        except OSError as exc:
            reason = exc.strerror or exc.__class__.__name__
            raise StartupError(
                "PV_DATA_DIR",
                f"PV_DATA_DIR {self.data_dir} is not a writable directory ({reason});"
                " create it or point PV_DATA_DIR at one this user can write",
            ) from exc
        return self.data_dir

    @property
    def secret(self) -> bytes:
        """The secret key as bytes (always set after validation)."""
        assert self.secret_key is not None
        return self.secret_key.get_secret_value().encode()


def load_settings(**overrides: Any) -> Settings:
    """Read the settings, with every problem as a `StartupError` whose message holds no value.

    Args:
        **overrides: field values that take precedence over the environment (as for `Settings`).

    Raises:
        StartupError: an invalid or insecure setting; the message names its `PV_` variable.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise _startup_error(exc) from None
    except SourceParsingError as exc:
        # Raised before validation when a list or other structured value is not JSON.
        field = re.search(r'field "([^"]+)"', str(exc))
        setting = _variable(field.group(1)) if field else "PV_ settings"
        raise StartupError(
            setting, f'{setting} cannot be parsed: structured values are JSON, e.g. ["a", "b"]'
        ) from None


def _variable(field: str) -> str:
    """The environment variable of a settings field."""
    return f"{Settings.model_config.get('env_prefix', '')}{field}".upper()


def _startup_error(exc: ValidationError) -> StartupError:
    """One error for all of `exc`'s problems, naming each variable and no value."""
    errors = exc.errors(include_url=False, include_input=False, include_context=True)
    if len(errors) == 1 and isinstance(
        cause := (errors[0].get("ctx") or {}).get("error"), StartupError
    ):
        return cause  # e.g. InsecureSettingsError from the model's checks, as raised
    settings: list[str] = []
    problems: list[str] = []
    for error in errors:
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, StartupError):
            settings.append(cause.setting)
            problems.append(str(cause))
            continue
        field = str(error["loc"][0]) if error["loc"] else ""
        setting = _variable(field) if field else "PV_ settings"
        # A validator's own message (ValueError) names what is wrong; pydantic's do not quote
        # the input either.
        problem = str(cause) if isinstance(cause, ValueError) else error["msg"]
        if setting not in problem:
            problem = f"invalid setting {setting} ({field}): {problem}"
        settings.append(setting)
        problems.append(problem)
    return StartupError(settings[0] if settings else "PV_ settings", "; ".join(problems))
