"""The edge agent's state directory: its Ed25519 key and what provisioning told it.

Layout of the state directory (default ``~/.polyvision-edge``, else ``--state-dir`` or
``PV_EDGE_STATE_DIR``)::

    device.key    the private key: the 32-byte seed, hex, mode 0600
    device.json   {"api_url", "device_id", "organization_id", "name"}
    spool.sqlite  the upload spool (`edge.spool`)

The key file is created with mode 0600 in the same system call that creates it, so it is never
readable by anyone else, not even for an instant; a key file that group or others can read is
refused rather than silently fixed, because it may already have leaked.
"""

from __future__ import annotations

import json
import os
import stat
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from nacl.signing import SigningKey

STATE_DIR_ENV = "PV_EDGE_STATE_DIR"
KEY_FILENAME = "device.key"
CONFIG_FILENAME = "device.json"
SPOOL_FILENAME = "spool.sqlite"


class KeyFileError(RuntimeError):
    """The key file is missing, malformed or readable by others."""


class NotProvisionedError(RuntimeError):
    """The state directory holds no ``device.json``: run ``polyvision-edge provision`` first."""


@dataclass(frozen=True)
class DeviceConfig:
    """What provisioning returned, kept in ``device.json``.

    Attributes:
        api_url: Base URL of the Polyvision API.
        device_id: The id the API gave this device.
        organization_id: The organization the device belongs to.
        name: The device's display name.
    """

    api_url: str
    device_id: uuid.UUID
    organization_id: uuid.UUID
    name: str = ""


def resolve_state_dir(explicit: str | None, environ: Mapping[str, str]) -> Path:
    """The state directory: ``explicit``, else ``$PV_EDGE_STATE_DIR``, else the default."""
    if explicit:
        return Path(explicit).expanduser()
    if environ.get(STATE_DIR_ENV):
        return Path(environ[STATE_DIR_ENV]).expanduser()
    return Path("~/.polyvision-edge").expanduser()


def ensure_state_dir(state_dir: Path) -> Path:
    """Create ``state_dir`` (mode 0700) when missing and return it."""
    state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    return state_dir


def generate_key(state_dir: Path) -> SigningKey:
    """Generate a new key and write it to ``state_dir/device.key`` with mode 0600.

    Raises:
        KeyFileError: a key file already exists (it is never overwritten: the API knows its
            public half).
    """
    ensure_state_dir(state_dir)
    path = state_dir / KEY_FILENAME
    key = SigningKey.generate()
    try:
        # O_EXCL: never clobber an existing key; 0o600 at creation: never readable by others.
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError as exc:
        raise KeyFileError(f"{path} already exists; refusing to overwrite a device key") from exc
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(bytes(key).hex() + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return key


def load_key(state_dir: Path) -> SigningKey:
    """Load ``state_dir/device.key``.

    Raises:
        KeyFileError: the file is missing, malformed, or group/other can read or write it.
    """
    path = state_dir / KEY_FILENAME
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError as exc:
        raise KeyFileError(f"no device key at {path}; run `polyvision-edge provision`") from exc
    with os.fdopen(fd, "r", encoding="ascii") as handle:
        # fstat on the open descriptor: the mode checked is the mode of the file we read.
        mode = stat.S_IMODE(os.fstat(handle.fileno()).st_mode)
        if mode & 0o077:
            raise KeyFileError(
                f"{path} has mode {mode:04o}: group/other may read it; the key may have leaked. "
                f"If it has not, restrict it with `chmod 600 {path}`"
            )
        text = handle.read().strip()
    try:
        seed = bytes.fromhex(text)
    except ValueError as exc:
        raise KeyFileError(f"{path} is not a hex Ed25519 seed") from exc
    if len(seed) != 32:
        raise KeyFileError(f"{path} must hold a 32-byte seed, found {len(seed)} bytes")
    return SigningKey(seed)


def load_or_generate_key(state_dir: Path) -> SigningKey:
    """The device key: loaded when ``device.key`` exists, generated otherwise."""
    if (state_dir / KEY_FILENAME).exists():
        return load_key(state_dir)
    return generate_key(state_dir)


def save_device_config(state_dir: Path, config: DeviceConfig) -> Path:
    """Write ``device.json`` atomically (a reader never sees half a file)."""
    ensure_state_dir(state_dir)
    path = state_dir / CONFIG_FILENAME
    temporary = path.with_suffix(".json.tmp")
    document = {
        "api_url": config.api_url,
        "device_id": str(config.device_id),
        "organization_id": str(config.organization_id),
        "name": config.name,
    }
    temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    os.replace(temporary, path)
    return path


def load_device_config(state_dir: Path) -> DeviceConfig:
    """Read ``device.json``.

    Raises:
        NotProvisionedError: the file is missing or malformed.
    """
    path = state_dir / CONFIG_FILENAME
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        return DeviceConfig(
            api_url=str(document["api_url"]),
            device_id=uuid.UUID(str(document["device_id"])),
            organization_id=uuid.UUID(str(document["organization_id"])),
            name=str(document.get("name", "")),
        )
    except FileNotFoundError as exc:
        raise NotProvisionedError(
            f"{path} not found; run `polyvision-edge provision` first"
        ) from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise NotProvisionedError(f"{path} is malformed: {exc}") from exc
