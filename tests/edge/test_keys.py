"""The device key file: created 0600, refused when others can read it, loads what was saved."""

from __future__ import annotations

import os
import stat
import uuid
from pathlib import Path

import pytest

from edge.keys import (
    KEY_FILENAME,
    DeviceConfig,
    KeyFileError,
    NotProvisionedError,
    generate_key,
    load_device_config,
    load_key,
    load_or_generate_key,
    resolve_state_dir,
    save_device_config,
)


def test_generated_key_is_private_and_round_trips(tmp_path: Path) -> None:
    state = tmp_path / "state"
    key = generate_key(state)
    path = state / KEY_FILENAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(state.stat().st_mode) & 0o077 == 0
    loaded = load_key(state)
    assert bytes(loaded) == bytes(key)
    assert bytes(loaded.verify_key) == bytes(key.verify_key)
    # A second call loads, never regenerates.
    assert bytes(load_or_generate_key(state)) == bytes(key)


def test_key_is_private_even_with_a_permissive_umask(tmp_path: Path) -> None:
    previous = os.umask(0)
    try:
        generate_key(tmp_path)
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / KEY_FILENAME).stat().st_mode) == 0o600


def test_refuses_a_key_readable_by_others(tmp_path: Path) -> None:
    generate_key(tmp_path)
    (tmp_path / KEY_FILENAME).chmod(0o644)
    with pytest.raises(KeyFileError, match="0644"):
        load_key(tmp_path)
    with pytest.raises(KeyFileError, match="group/other"):
        load_or_generate_key(tmp_path)


def test_never_overwrites_an_existing_key(tmp_path: Path) -> None:
    key = generate_key(tmp_path)
    with pytest.raises(KeyFileError, match="already exists"):
        generate_key(tmp_path)
    assert bytes(load_key(tmp_path)) == bytes(key)


def test_missing_or_malformed_key(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="no device key"):
        load_key(tmp_path)
    fd = os.open(tmp_path / KEY_FILENAME, os.O_CREAT | os.O_WRONLY, 0o600)
    os.write(fd, b"not hex\n")
    os.close(fd)
    with pytest.raises(KeyFileError, match="hex"):
        load_key(tmp_path)


def test_device_config_round_trip(tmp_path: Path) -> None:
    with pytest.raises(NotProvisionedError):
        load_device_config(tmp_path)
    config = DeviceConfig("http://api:8000", uuid.uuid4(), uuid.uuid4(), "pitch 1")
    save_device_config(tmp_path, config)
    assert load_device_config(tmp_path) == config


def test_state_dir_resolution(tmp_path: Path) -> None:
    assert resolve_state_dir(str(tmp_path), {"PV_EDGE_STATE_DIR": "/elsewhere"}) == tmp_path
    assert resolve_state_dir(None, {"PV_EDGE_STATE_DIR": str(tmp_path)}) == tmp_path
    assert resolve_state_dir(None, {}) == Path("~/.polyvision-edge").expanduser()
