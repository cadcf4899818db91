"""Finding model weights on disk, checked by sha256, fetched only when asked and reachable.

Weights are never in the repository. A worker looks them up in its models directory
(``PV_MODELS_DIR``, ``Settings.models_dir``); where the file is missing it may download it from a
pinned public URL, and fails with a message that says exactly what to put where otherwise.
Nothing here touches the network or the disk at import time.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import threading
import urllib.error
import urllib.request
from pathlib import Path

__all__ = [
    "KNOWN_URL",
    "YOLOX_NANO_NAME",
    "YOLOX_NANO_SHA256",
    "ModelChecksumError",
    "ModelNotFoundError",
    "ModelStoreError",
    "resolve_model",
    "sha256_of",
]

YOLOX_NANO_NAME = "yolox_nano.onnx"
YOLOX_NANO_SHA256 = "695e750a5d5754bb5a8d5325643b59282191a7e7a564e435a415fd3c578eab14"
# Pinned to the commit the digest was taken from (Kazuhito00/YOLOX-ONNX-TFLite-Sample,
# Apache-2.0), so the bytes behind the URL cannot drift.
KNOWN_URL: str | None = (
    "https://github.com/Kazuhito00/YOLOX-ONNX-TFLite-Sample/raw/"
    "3d4f1119d0694200671c08069ecb847aa0d8495a/model/yolox_nano.onnx"
)
DOWNLOAD_TIMEOUT_S = 10.0

# (resolved path) -> (size, mtime_ns, sha256): a 4 MB file hashes in milliseconds, but workers
# resolve the model per activity and bigger models are coming; size+mtime is the same
# staleness test make and rsync use.
_verified: dict[Path, tuple[int, int, str]] = {}
_verified_lock = threading.Lock()


class ModelStoreError(Exception):
    """Base of the model store's errors."""


class ModelNotFoundError(ModelStoreError, FileNotFoundError):
    """The model file is not in the models directory and could not be downloaded."""


class ModelChecksumError(ModelStoreError):
    """The model file's sha256 is not the expected one."""

    def __init__(self, source: Path | str, expected: str, actual: str) -> None:
        super().__init__(
            f"model {source} has sha256 {actual}, expected {expected}; the file is corrupt or a "
            f"different version: replace it (or delete it to download it again)"
        )
        self.source = source
        self.expected = expected
        self.actual = actual


def sha256_of(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def _verify(path: Path, sha256: str) -> None:
    stat = path.stat()
    key = path.resolve()
    with _verified_lock:
        cached = _verified.get(key)
    if cached is not None and cached[:2] == (stat.st_size, stat.st_mtime_ns):
        actual = cached[2]
    else:
        actual = sha256_of(path)
        with _verified_lock:
            _verified[key] = (stat.st_size, stat.st_mtime_ns, actual)
    if actual != sha256.lower():
        raise ModelChecksumError(path, sha256.lower(), actual)


def _download(url: str, target: Path, sha256: str, timeout_s: float) -> None:
    """Fetch ``url`` into ``target`` atomically, checking the digest before the rename."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout_s) as resp:
            while chunk := resp.read(1 << 20):
                digest.update(chunk)
                out.write(chunk)
        actual = digest.hexdigest()
        if actual != sha256.lower():
            raise ModelChecksumError(url, sha256.lower(), actual)
        # Rename last: a reader never sees a half-written or unverified model.
        tmp.replace(target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def resolve_model(
    models_dir: Path,
    name: str = YOLOX_NANO_NAME,
    sha256: str = YOLOX_NANO_SHA256,
    url: str | None = KNOWN_URL,
    *,
    timeout_s: float = DOWNLOAD_TIMEOUT_S,
) -> Path:
    """The path of a verified model file, downloading it only if absent and a URL is given.

    Args:
        models_dir: where models live (``Settings.models_dir``, env ``PV_MODELS_DIR``).
        name: the file name inside ``models_dir``.
        sha256: expected hex digest; checked on every call, but the hash itself is cached by
            file size and modification time.
        url: where to fetch the file when it is absent; ``None`` never touches the network.
        timeout_s: connect/read timeout of the download, so an offline machine fails fast.

    Returns:
        ``models_dir / name``, verified.

    Raises:
        ModelNotFoundError: absent and not downloadable (no URL, or the download failed); the
            message names the file, the directory searched, the digest and how to provide it.
        ModelChecksumError: the file (present or downloaded) has another digest.
    """
    path = Path(models_dir) / name
    if path.is_file():
        _verify(path, sha256)
        return path
    failure = "no download URL was given"
    if url is not None:
        try:
            _download(url, path, sha256, timeout_s)
        except ModelChecksumError:
            raise
        except (urllib.error.URLError, OSError, ValueError) as exc:
            # URLError covers refused/unresolvable hosts, OSError timeouts and disk errors,
            # ValueError malformed URLs: all mean "not available here", reported below.
            failure = f"downloading {url} failed: {exc}"
        else:
            _verify(path, sha256)
            return path
    raise ModelNotFoundError(
        f"model file {name!r} not found in {Path(models_dir).resolve()} ({failure}). "
        f"Put the file with sha256 {sha256.lower()} there, or set PV_MODELS_DIR to a directory "
        f"that holds it."
    )
