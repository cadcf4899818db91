"""Validation of object keys and prefixes, shared by every backend.

Keys become file paths in the file backend and URL paths in signed URLs, so one strict rule set
applies everywhere: a key that is refused on one backend is refused on all of them.
"""

from __future__ import annotations

from polyvision.storage.objects.base import InvalidObjectKey

# S3's own limit on key length, applied to every backend so keys stay portable.
MAX_KEY_BYTES = 1024


def validate_key(key: str) -> str:
    """Check that `key` is a safe, portable object key and return it unchanged.

    A key is a `/`-separated relative path: no leading `/`, no empty segments (so no `//` and no
    trailing `/`), no segment starting with `.` (which refuses `.` and `..` and keeps the file
    backend's hidden bookkeeping out of reach), no backslash, no control characters (NUL
    included), and at most 1024 UTF-8 bytes.

    Raises:
        InvalidObjectKey: the key breaks one of the rules above.
    """
    if not isinstance(key, str):
        raise InvalidObjectKey(f"object key must be a string, not {type(key).__name__}")
    if not key:
        raise InvalidObjectKey("object key is empty")
    if len(key.encode("utf-8", errors="surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidObjectKey(f"object key is longer than {MAX_KEY_BYTES} bytes")
    if key.startswith("/"):
        raise InvalidObjectKey(f"object key must be relative, not absolute: {key!r}")
    if "\\" in key:
        raise InvalidObjectKey(f"object key must not contain a backslash: {key!r}")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in key):
        raise InvalidObjectKey(f"object key must not contain control characters: {key!r}")
    for segment in key.split("/"):
        if not segment:
            raise InvalidObjectKey(f"object key has an empty segment: {key!r}")
        if segment.startswith("."):
            raise InvalidObjectKey(f"object key segment must not start with '.': {key!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """Check a listing prefix and return it unchanged.

    The empty prefix means "everything". Otherwise the prefix follows the key rules, except that
    it may end with `/` (a "directory") and its last segment may be any partial name.

    Raises:
        InvalidObjectKey: the prefix could never match a valid key or could escape the store.
    """
    if prefix == "":
        return prefix
    validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix
