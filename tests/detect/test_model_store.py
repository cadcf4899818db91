"""Model lookup: present, absent, corrupt, cached verification; downloads from localhost only."""

from __future__ import annotations

import hashlib
import http.server
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from activities.detect import model_store
from activities.detect.model_store import (
    ModelChecksumError,
    ModelNotFoundError,
    resolve_model,
)
from polyvision.ports import free_port

PAYLOAD = b"not really an onnx model, but bytes with a digest" * 100
DIGEST = hashlib.sha256(PAYLOAD).hexdigest()


@pytest.fixture
def models_dir(tmp_path: Path) -> Path:
    d = tmp_path / "models"
    d.mkdir()
    return d


@pytest.fixture
def http_server(tmp_path: Path) -> Iterator[str]:
    """A throwaway HTTP server on 127.0.0.1 serving ``tmp_path/www``."""
    root = tmp_path / "www"
    root.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, format, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_present_file_with_right_digest_resolves(models_dir: Path) -> None:
    (models_dir / "m.onnx").write_bytes(PAYLOAD)
    assert resolve_model(models_dir, "m.onnx", DIGEST, url=None) == models_dir / "m.onnx"
    # Digests are compared case-insensitively.
    assert resolve_model(models_dir, "m.onnx", DIGEST.upper(), url=None).is_file()


def test_verification_is_cached_by_size_and_mtime(
    models_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = models_dir / "m.onnx"
    path.write_bytes(PAYLOAD)
    calls: list[Path] = []
    real = model_store.sha256_of

    def counting(p: Path, chunk_size: int = 1 << 20) -> str:
        calls.append(p)
        return real(p, chunk_size)

    monkeypatch.setattr(model_store, "sha256_of", counting)
    for _ in range(3):
        resolve_model(models_dir, "m.onnx", DIGEST, url=None)
    assert len(calls) == 1
    # Same size, new content and mtime: must be hashed again, and caught.
    path.write_bytes(PAYLOAD[::-1])
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    with pytest.raises(ModelChecksumError):
        resolve_model(models_dir, "m.onnx", DIGEST, url=None)
    assert len(calls) == 2


def test_corrupt_file_names_both_digests(models_dir: Path) -> None:
    (models_dir / "m.onnx").write_bytes(PAYLOAD + b"!")
    with pytest.raises(ModelChecksumError) as err:
        resolve_model(models_dir, "m.onnx", DIGEST, url=None)
    actual = hashlib.sha256(PAYLOAD + b"!").hexdigest()
    assert DIGEST in str(err.value) and actual in str(err.value)
    assert err.value.expected == DIGEST and err.value.actual == actual


def test_absent_without_url_says_what_to_do(models_dir: Path) -> None:
    with pytest.raises(ModelNotFoundError) as err:
        resolve_model(models_dir, "yolox_nano.onnx", DIGEST, url=None)
    message = str(err.value)
    assert "yolox_nano.onnx" in message and str(models_dir.resolve()) in message
    assert DIGEST in message and "PV_MODELS_DIR" in message
    assert isinstance(err.value, FileNotFoundError)


def test_absent_with_unreachable_url_fails_fast_and_cleanly(models_dir: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/yolox_nano.onnx"  # nothing listens there
    started = time.monotonic()
    with pytest.raises(ModelNotFoundError, match="downloading") as err:
        resolve_model(models_dir, "yolox_nano.onnx", DIGEST, url=url, timeout_s=2.0)
    assert time.monotonic() - started < 5
    assert "PV_MODELS_DIR" in str(err.value)
    assert list(models_dir.iterdir()) == []  # no partial download left behind


def test_download_from_reachable_url_is_verified_then_kept(
    models_dir: Path, http_server: str, tmp_path: Path
) -> None:
    (tmp_path / "www" / "good.onnx").write_bytes(PAYLOAD)
    path = resolve_model(models_dir, "m.onnx", DIGEST, url=f"{http_server}/good.onnx")
    assert path.read_bytes() == PAYLOAD
    # Next call finds it on disk: the server may vanish.
    assert resolve_model(models_dir, "m.onnx", DIGEST, url=None) == path


def test_download_with_wrong_digest_is_refused_and_removed(
    models_dir: Path, http_server: str, tmp_path: Path
) -> None:
    (tmp_path / "www" / "bad.onnx").write_bytes(b"tampered")
    with pytest.raises(ModelChecksumError):
        resolve_model(models_dir, "m.onnx", DIGEST, url=f"{http_server}/bad.onnx")
    assert list(models_dir.iterdir()) == []
    with pytest.raises(ModelNotFoundError, match="404"):
        resolve_model(models_dir, "m.onnx", DIGEST, url=f"{http_server}/missing.onnx")
