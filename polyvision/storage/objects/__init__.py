"""Object storage: one interface (`ObjectStore`), a local-directory and an S3 backend.

`open_object_store(settings.objects_url, ...)` picks the backend from the URL:

- `file:///abs/path` — `FileObjectStore`, presigned URLs served by the API's objects router;
- `s3://bucket` — `S3ObjectStore` with the AWS defaults;
- `s3://bucket?endpoint_url=http://host:9000&region=us-east-1` — MinIO, Ceph, moto.

An `s3://` URL also takes `connect_timeout` and `read_timeout`, in seconds (positive numbers;
botocore's 60 s each when absent): how long a request may wait for a connection, and for each read
of the answer, before it counts as failed and is retried. A stalled endpoint then costs seconds,
not minutes (`s3://bucket?read_timeout=5&connect_timeout=2`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, unquote, urlsplit

from polyvision.settings import StartupError
from polyvision.storage.objects.base import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_PART_SIZE,
    MAX_PART_NUMBER,
    MAX_PART_SIZE,
    MIN_PART_SIZE,
    ChecksumMismatch,
    InvalidObjectKey,
    InvalidPart,
    ObjectInfo,
    ObjectNotFound,
    ObjectReader,
    ObjectStore,
    ObjectStoreError,
    PartInfo,
    UploadNotFound,
)
from polyvision.storage.objects.file import FileObjectStore
from polyvision.storage.objects.object_keys import validate_key, validate_prefix
from polyvision.storage.objects.s3 import S3ObjectStore
from polyvision.storage.objects.signing import (
    InvalidSignature,
    object_signature,
    part_signature,
    sign_object_url,
    sign_part_url,
    verify_object_signature,
    verify_part_signature,
)

__all__ = [
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_PART_SIZE",
    "MAX_PART_NUMBER",
    "MAX_PART_SIZE",
    "MIN_PART_SIZE",
    "ChecksumMismatch",
    "FileObjectStore",
    "InvalidObjectKey",
    "InvalidPart",
    "InvalidSignature",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectReader",
    "ObjectStore",
    "ObjectStoreError",
    "ObjectStoreUrl",
    "PartInfo",
    "S3ObjectStore",
    "UploadNotFound",
    "object_signature",
    "open_object_store",
    "parse_object_store_url",
    "part_signature",
    "sign_object_url",
    "sign_part_url",
    "validate_key",
    "validate_prefix",
    "verify_object_signature",
    "verify_part_signature",
]

_S3_OPTIONS = frozenset({"endpoint_url", "region", "connect_timeout", "read_timeout"})
_FORMS = "file:///abs/dir, s3://bucket or s3://bucket?endpoint_url=http://host:9000&region=name"


@dataclass(frozen=True)
class ObjectStoreUrl:
    """A parsed `PV_OBJECTS_URL` (see the module docstring).

    Attributes:
        backend: ``file`` (a local directory) or ``s3``.
        path: file: the absolute directory.
        bucket: s3: the bucket.
        endpoint_url: s3: an S3-compatible endpoint; None: AWS.
        region: s3: the region; None: the AWS default chain.
        connect_timeout: s3: seconds to wait for a connection; None: botocore's default.
        read_timeout: s3: seconds to wait for each read of an answer; None: botocore's default.
    """

    backend: Literal["file", "s3"]
    path: str = ""
    bucket: str = ""
    endpoint_url: str | None = None
    region: str | None = None
    connect_timeout: float | None = None
    read_timeout: float | None = None


def _refuse(problem: str) -> StartupError:
    return StartupError("PV_OBJECTS_URL", f"PV_OBJECTS_URL {problem}")


def _seconds(options: dict[str, list[str]], name: str) -> float | None:
    """The timeout option ``name`` in seconds, None when absent; refused unless a finite
    positive number (the value is not quoted: it is part of the URL)."""
    if name not in options:
        return None
    try:
        value = float(options[name][0])
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise _refuse(f"option {name} must be a positive number of seconds, such as {name}=5")
    return value


def parse_object_store_url(url: str) -> ObjectStoreUrl:
    """Read `url` without opening anything.

    Raises:
        StartupError: (a ValueError) naming PV_OBJECTS_URL, for an unknown scheme, a relative
            path, a missing bucket, credentials in the URL, an unknown option or a timeout that
            is not a positive number; the message never quotes the URL, whose query or user
            part may hold keys.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        raise _refuse(f"is not a URL; expected {_FORMS}") from None
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise _refuse("must be file:///absolute/path (no host)")
        if parts.query or parts.fragment:
            raise _refuse("of the file backend takes no query or fragment")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise _refuse("needs an absolute path: file:///absolute/path")
        return ObjectStoreUrl("file", path=path)
    if parts.scheme == "s3":
        if "@" in parts.netloc:
            raise _refuse(
                "carries credentials; the S3 keys come from the environment"
                " (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or the instance's role"
            )
        if not parts.netloc:
            raise _refuse("needs a bucket: s3://bucket")
        if parts.path not in ("", "/"):
            raise _refuse("takes a bucket, not a key prefix: s3://bucket")
        options = parse_qs(parts.query, keep_blank_values=False, strict_parsing=False)
        if unknown := set(options) - _S3_OPTIONS:
            raise _refuse(
                f"has unknown S3 object store option(s) {sorted(unknown)};"
                f" known: {sorted(_S3_OPTIONS)}"
                " (S3 keys come from the environment, never the URL)"
            )
        if any(len(values) > 1 for values in options.values()):
            raise _refuse("gives an S3 option twice")
        return ObjectStoreUrl(
            "s3",
            bucket=parts.netloc,
            endpoint_url=options.get("endpoint_url", [None])[0],
            region=options.get("region", [None])[0],
            connect_timeout=_seconds(options, "connect_timeout"),
            read_timeout=_seconds(options, "read_timeout"),
        )
    # A scheme is letters, digits, + - . only; anything else may be part of a secret.
    valid = re.fullmatch(r"[a-z][a-z0-9+.-]{0,31}", parts.scheme)
    scheme = repr(parts.scheme) if valid else "(none)"
    raise _refuse(f"has an unknown object store URL scheme {scheme}; expected {_FORMS}")


def open_object_store(url: str, *, secret: bytes, public_base_url: str) -> ObjectStore:
    """Build the object store that `url` names; no network request is made.

    Args:
        url: `file:///absolute/dir`, `s3://bucket` or
            `s3://bucket?endpoint_url=http://host:port&region=name`, each S3 form optionally with
            `read_timeout` and `connect_timeout` in seconds (see the module docstring).
        secret: HMAC key for the file backend's presigned URLs.
        public_base_url: base URL of the API serving `/objects/...` (file backend).

    Raises:
        StartupError: (a ValueError) naming PV_OBJECTS_URL, for an unknown scheme, a relative
            path, a missing bucket, credentials in the URL, an unknown option or a bad timeout.
    """
    parsed = parse_object_store_url(url)
    if parsed.backend == "file":
        return FileObjectStore(parsed.path, secret=secret, public_base_url=public_base_url)
    return S3ObjectStore(
        parsed.bucket,
        endpoint_url=parsed.endpoint_url,
        region=parsed.region,
        connect_timeout=parsed.connect_timeout,
        read_timeout=parsed.read_timeout,
    )
