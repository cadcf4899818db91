"""Object storage: one interface (`ObjectStore`), a local-directory and an S3 backend.

`open_object_store(settings.objects_url, ...)` picks the backend from the URL:

- `file:///abs/path` — `FileObjectStore`, presigned URLs served by the API's objects router;
- `s3://bucket` — `S3ObjectStore` with the AWS defaults;
- `s3://bucket?endpoint_url=http://host:9000&region=us-east-1` — MinIO, Ceph, moto.
"""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

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
    "PartInfo",
    "S3ObjectStore",
    "UploadNotFound",
    "object_signature",
    "open_object_store",
    "part_signature",
    "sign_object_url",
    "sign_part_url",
    "validate_key",
    "validate_prefix",
    "verify_object_signature",
    "verify_part_signature",
]

_S3_OPTIONS = frozenset({"endpoint_url", "region"})


def open_object_store(url: str, *, secret: bytes, public_base_url: str) -> ObjectStore:
    """Build the object store that `url` names; no network request is made.

    Args:
        url: `file:///absolute/dir`, `s3://bucket` or
            `s3://bucket?endpoint_url=http://host:port&region=name`.
        secret: HMAC key for the file backend's presigned URLs.
        public_base_url: base URL of the API serving `/objects/...` (file backend).

    Raises:
        ValueError: unknown scheme, relative path, missing bucket or unknown option.
    """
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(f"file object store URL must be file:///absolute/path, got {url!r}")
        if parts.query or parts.fragment:
            raise ValueError(f"file object store URL takes no query or fragment: {url!r}")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise ValueError(f"file object store path must be absolute: {url!r}")
        return FileObjectStore(path, secret=secret, public_base_url=public_base_url)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"S3 object store URL needs a bucket, s3://bucket: {url!r}")
        if parts.path not in ("", "/"):
            raise ValueError(f"S3 object store URL takes a bucket, not a key prefix: {url!r}")
        options = parse_qs(parts.query, keep_blank_values=False, strict_parsing=False)
        if unknown := set(options) - _S3_OPTIONS:
            raise ValueError(
                f"unknown S3 object store option(s) {sorted(unknown)} in {url!r}; "
                f"known: {sorted(_S3_OPTIONS)}"
            )
        if any(len(values) > 1 for values in options.values()):
            raise ValueError(f"S3 object store option given twice in {url!r}")
        return S3ObjectStore(
            parts.netloc,
            endpoint_url=options.get("endpoint_url", [None])[0],
            region=options.get("region", [None])[0],
        )
    raise ValueError(
        f"unknown object store URL scheme {parts.scheme!r} in {url!r}; use file:// or s3://"
    )
