"""Object store on a local directory: the embedded default for one machine, no setup.

Layout under the root:
    <key>                       object content, at the path the key names
    <dir>/.<name>.meta.json     sidecar: sha256 and content type of <dir>/<name>
    .staging/tmp/               temporary files, renamed into place when complete
    .staging/uploads/<id>/      multipart uploads: `upload.json`, one file per part and, beside
                                each part, `part-NNNNN.json` with its size and sha256

Keys can never start a segment with `.`, so neither sidecars nor staging can be addressed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import shutil
import stat as stat_module
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO, Final

from polyvision.fencing import ensure_current_attempt
from polyvision.storage.objects.base import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_PART_SIZE,
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
    check_part_number,
    check_sha256_hex,
    guess_content_type,
)
from polyvision.storage.objects.object_keys import validate_key, validate_prefix
from polyvision.storage.objects.signing import sign_object_url, sign_part_url

_STAGING: Final = ".staging"
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_PART_FILE = re.compile(r"part-(\d{5})")
# Small chunks from an HTTP body are gathered up to this size before a write, so a streamed
# upload costs one thread hop per MiB rather than one per network read.
_WRITE_BUFFER = 1024 * 1024


class FileObjectStore(ObjectStore):
    """Objects as files under `root`; writes are atomic (temp file, fsync, `os.replace`).

    A crash can leave stray files under `.staging/` but never a partial object at a key. The
    sidecar records the inode, size and mtime of the file it describes, so a crash between
    renaming the object and its sidecar yields "sha256 unknown", never a wrong sha256.
    """

    def __init__(self, root: str | os.PathLike[str], *, secret: bytes, public_base_url: str):
        """Open (and create if needed) the store at `root`.

        Args:
            root: absolute directory holding the objects.
            secret: HMAC key for presigned URLs.
            public_base_url: base URL of the API that serves `/objects/...` (presigned URLs).
        """
        path = Path(root)
        if not path.is_absolute():
            raise ValueError(f"file object store root must be absolute: {str(path)!r}")
        path.mkdir(parents=True, exist_ok=True)
        self.root = path.resolve()
        self._tmp = self.root / _STAGING / "tmp"
        self._uploads = self.root / _STAGING / "uploads"
        self._tmp.mkdir(parents=True, exist_ok=True)
        self._uploads.mkdir(parents=True, exist_ok=True)
        self._secret = secret
        self._public_base_url = public_base_url

    def __repr__(self) -> str:
        return f"FileObjectStore({str(self.root)!r})"

    # ---- paths ----------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        validate_key(key)
        path = self.root.joinpath(*key.split("/"))
        # Defence in depth: validation already forbids every way out of the root.
        if os.path.commonpath([self.root, os.path.normpath(path)]) != str(self.root):
            raise InvalidObjectKey(f"object key escapes the store: {key!r}")
        return path

    @staticmethod
    def _meta_path(path: Path) -> Path:
        return path.with_name(f".{path.name}.meta.json")

    def _new_temp(self) -> Path:
        return self._tmp / uuid.uuid4().hex

    # ---- synchronous helpers (run on worker threads) --------------------------------------

    def _info(self, key: str, path: Path, st: os.stat_result) -> ObjectInfo:
        sha256: str | None = None
        content_type: str | None = None
        try:
            meta = json.loads(self._meta_path(path).read_text("utf-8"))
        except (OSError, ValueError):
            meta = None
        if (
            isinstance(meta, dict)
            and meta.get("ino") == st.st_ino
            and meta.get("size") == st.st_size
            and meta.get("mtime_ns") == st.st_mtime_ns
        ):
            sha256 = meta.get("sha256")
            content_type = meta.get("content_type")
        return ObjectInfo(
            key=key,
            size=st.st_size,
            sha256=sha256,
            content_type=content_type,
            modified=datetime.fromtimestamp(st.st_mtime, UTC),
        )

    def _commit(self, temp: Path, key: str, sha256: str, content_type: str) -> ObjectInfo:
        """Rename a complete, fsynced temp file to `key`, then write its sidecar."""
        path = self._path(key)
        try:
            st = os.stat(temp)
            self._place(temp, path)
            meta = {
                "sha256": sha256,
                "content_type": content_type,
                "ino": st.st_ino,
                "size": st.st_size,
                "mtime_ns": st.st_mtime_ns,
            }
            meta_temp = self._new_temp()
            meta_temp.write_text(json.dumps(meta), "utf-8")
            self._place(meta_temp, self._meta_path(path))
        finally:
            temp.unlink(missing_ok=True)
        return ObjectInfo(
            key=key,
            size=st.st_size,
            sha256=sha256,
            content_type=content_type,
            modified=datetime.fromtimestamp(st.st_mtime, UTC),
        )

    def _place(self, temp: Path, path: Path) -> None:
        # A concurrent delete may remove the parent directory between mkdir and replace; the
        # second attempt recreates it.
        for attempt in range(2):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                os.replace(temp, path)
                return
            except FileNotFoundError:
                if attempt:
                    raise
            except (NotADirectoryError, FileExistsError, IsADirectoryError) as exc:
                # S3 allows both `a` and `a/b`; a directory tree cannot.
                raise ObjectStoreError(
                    f"object {path.relative_to(self.root).as_posix()!r} conflicts with an "
                    "existing object or prefix in the file store"
                ) from exc

    @staticmethod
    def _write_and_sync(handle: BinaryIO, data: bytes | bytearray | None = None) -> None:
        if data:
            handle.write(data)
        handle.flush()
        # fsync before the rename: otherwise a power loss can leave the renamed file empty.
        os.fsync(handle.fileno())
        handle.close()

    def _put_sync(self, key: str, data: bytes, sha256: str, content_type: str) -> ObjectInfo:
        temp = self._new_temp()
        try:
            with open(temp, "xb") as handle:
                self._write_and_sync(handle, data)
            return self._commit(temp, key, sha256, content_type)
        finally:
            temp.unlink(missing_ok=True)

    def _open_sync(self, key: str) -> tuple[BinaryIO, ObjectInfo]:
        path = self._path(key)
        try:
            handle = open(path, "rb")  # noqa: SIM115 - closed by the reader
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError) as exc:
            raise ObjectNotFound(key) from exc
        try:
            st = os.fstat(handle.fileno())
            if not stat_module.S_ISREG(st.st_mode):
                raise ObjectNotFound(key)
            return handle, self._info(key, path, st)
        except BaseException:
            handle.close()
            raise

    def _stat_sync(self, key: str) -> ObjectInfo:
        path = self._path(key)
        try:
            st = os.stat(path)
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ObjectNotFound(key) from exc
        if not stat_module.S_ISREG(st.st_mode):
            raise ObjectNotFound(key)
        return self._info(key, path, st)

    def _list_sync(self, prefix: str) -> list[ObjectInfo]:
        validate_prefix(prefix)
        directory, _, partial = prefix.rpartition("/")
        base = self.root.joinpath(*directory.split("/")) if directory else self.root
        found: list[ObjectInfo] = []

        def walk(path: Path, key_prefix: str, name_filter: str) -> None:
            try:
                entries = list(os.scandir(path))
            except (FileNotFoundError, NotADirectoryError):
                return
            for entry in entries:
                # Dot-names are sidecars and staging, never objects.
                if entry.name.startswith(".") or not entry.name.startswith(name_filter):
                    continue
                key = f"{key_prefix}{entry.name}"
                if entry.is_dir(follow_symlinks=False):
                    walk(Path(entry.path), f"{key}/", "")
                elif entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    found.append(
                        ObjectInfo(
                            key=key,
                            size=st.st_size,
                            sha256=None,
                            content_type=None,
                            modified=datetime.fromtimestamp(st.st_mtime, UTC),
                        )
                    )

        walk(base, f"{directory}/" if directory else "", partial)
        # Code-point order equals S3's UTF-8 byte order.
        found.sort(key=lambda info: info.key)
        return found

    def _delete_sync(self, key: str) -> bool:
        path = self._path(key)
        try:
            if not path.is_file():
                return False
            path.unlink()
        except FileNotFoundError:
            return False
        finally:
            self._meta_path(path).unlink(missing_ok=True)
        # S3 has no directories: drop the ones this delete emptied so listings stay cheap.
        parent = path.parent
        while parent != self.root:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent
        return True

    def _delete_prefix_sync(self, prefix: str) -> int:
        validate_prefix(prefix)
        if not prefix:
            raise InvalidObjectKey("refusing to delete with an empty prefix (the whole store)")
        return sum(self._delete_sync(info.key) for info in self._list_sync(prefix))

    # ---- single objects -------------------------------------------------------------------

    async def put(
        self,
        key: str,
        data: bytes,
        *,
        content_type: str | None = None,
        sha256: str | None = None,
    ) -> ObjectInfo:
        await ensure_current_attempt()
        validate_key(key)
        digest = hashlib.sha256(data).hexdigest()
        if sha256 is not None and check_sha256_hex(sha256) != digest:
            raise ChecksumMismatch(f"{key!r}: data has sha256 {digest}, expected {sha256}")
        return await asyncio.to_thread(
            self._put_sync, key, data, digest, guess_content_type(key, content_type)
        )

    async def put_stream(
        self,
        key: str,
        chunks: AsyncIterable[bytes],
        *,
        content_type: str | None = None,
        sha256: str | None = None,
        part_size: int = DEFAULT_PART_SIZE,
    ) -> ObjectInfo:
        await ensure_current_attempt()
        validate_key(key)
        expected = check_sha256_hex(sha256) if sha256 is not None else None
        digest = hashlib.sha256()
        temp = self._new_temp()
        handle = await asyncio.to_thread(open, temp, "xb")
        try:
            buffer = bytearray()
            async for chunk in chunks:
                digest.update(chunk)
                buffer += chunk
                if len(buffer) >= _WRITE_BUFFER:
                    await asyncio.to_thread(handle.write, buffer)
                    buffer = bytearray()
            await asyncio.to_thread(self._write_and_sync, handle, buffer)
            if expected is not None and digest.hexdigest() != expected:
                raise ChecksumMismatch(
                    f"{key!r}: stream has sha256 {digest.hexdigest()}, expected {expected}"
                )
            return await asyncio.to_thread(
                self._commit, temp, key, digest.hexdigest(), guess_content_type(key, content_type)
            )
        finally:
            await asyncio.to_thread(handle.close)
            await asyncio.to_thread(temp.unlink, missing_ok=True)

    async def open_read(self, key: str, *, chunk_size: int = DEFAULT_CHUNK_SIZE) -> ObjectReader:
        handle, info = await asyncio.to_thread(self._open_sync, key)

        async def chunks() -> AsyncGenerator[bytes, None]:
            while chunk := await asyncio.to_thread(handle.read, chunk_size):
                yield chunk

        async def close() -> None:
            await asyncio.to_thread(handle.close)

        return ObjectReader(info, chunks(), close)

    async def stat(self, key: str) -> ObjectInfo:
        return await asyncio.to_thread(self._stat_sync, key)

    async def list_prefix(self, prefix: str = "") -> AsyncIterator[ObjectInfo]:
        for info in await asyncio.to_thread(self._list_sync, prefix):
            yield info

    async def delete(self, key: str) -> None:
        await ensure_current_attempt()
        await asyncio.to_thread(self._delete_sync, key)

    async def delete_prefix(self, prefix: str) -> int:
        await ensure_current_attempt()
        return await asyncio.to_thread(self._delete_prefix_sync, prefix)

    # ---- multipart ------------------------------------------------------------------------

    def _upload_dir(self, key: str, upload_id: str) -> tuple[Path, dict[str, str | None]]:
        validate_key(key)
        # The id becomes a path: only ids this store could have made are accepted.
        if not _UPLOAD_ID.fullmatch(upload_id):
            raise UploadNotFound(key, upload_id)
        directory = self._uploads / upload_id
        try:
            upload = json.loads((directory / "upload.json").read_text("utf-8"))
        except FileNotFoundError as exc:
            raise UploadNotFound(key, upload_id) from exc
        if upload.get("key") != key:
            raise UploadNotFound(key, upload_id)
        return directory, upload

    def _create_multipart_sync(self, key: str, content_type: str, sha256: str | None) -> str:
        upload_id = uuid.uuid4().hex
        directory = self._uploads / upload_id
        directory.mkdir()
        upload = {"key": key, "content_type": content_type, "sha256": sha256}
        (directory / "upload.json").write_text(json.dumps(upload), "utf-8")
        return upload_id

    @staticmethod
    def _part_path(directory: Path, number: int) -> Path:
        return directory / f"part-{number:05d}"

    def _store_part(
        self, key: str, upload_id: str, directory: Path, number: int, temp: Path, sha256: str
    ) -> PartInfo:
        """Rename a complete, fsynced part into place, then record its size and sha256.

        The record names the part file's inode, so a crash between the two renames (or a part
        replaced later) makes `list_parts` skip the part rather than report a wrong sha256.
        """
        st = os.stat(temp)
        part = self._part_path(directory, number)
        meta_temp = directory / f".meta-{number:05d}.{uuid.uuid4().hex}"
        try:
            os.replace(temp, part)
            meta = {"size": st.st_size, "sha256": sha256, "ino": st.st_ino}
            meta_temp.write_text(json.dumps(meta), "utf-8")
            os.replace(meta_temp, part.with_name(f"{part.name}.json"))
        except FileNotFoundError as exc:
            # The upload directory vanished underneath: completed or aborted meanwhile.
            raise UploadNotFound(key, upload_id) from exc
        finally:
            meta_temp.unlink(missing_ok=True)
        return PartInfo(number=number, etag=sha256, size=st.st_size, sha256=sha256)

    def _upload_part_sync(
        self, key: str, upload_id: str, number: int, data: bytes, sha256: str
    ) -> PartInfo:
        directory, _ = self._upload_dir(key, upload_id)
        temp = directory / f".part-{number:05d}.{uuid.uuid4().hex}"
        try:
            with open(temp, "xb") as handle:
                self._write_and_sync(handle, data)
            return self._store_part(key, upload_id, directory, number, temp, sha256)
        finally:
            temp.unlink(missing_ok=True)

    def _list_parts_sync(self, key: str, upload_id: str) -> list[PartInfo]:
        directory, _ = self._upload_dir(key, upload_id)
        parts: list[PartInfo] = []
        for entry in os.scandir(directory):
            match = _PART_FILE.fullmatch(entry.name)
            if match is None:
                continue
            try:
                st = entry.stat(follow_symlinks=False)
                meta = json.loads(Path(f"{entry.path}.json").read_text("utf-8"))
            except (OSError, ValueError):
                continue  # a part whose record is missing counts as not uploaded
            if (
                not isinstance(meta, dict)
                or meta.get("ino") != st.st_ino
                or meta.get("size") != st.st_size
                or not isinstance(meta.get("sha256"), str)
            ):
                continue
            number = int(match.group(1))
            parts.append(
                PartInfo(number=number, etag=meta["sha256"], size=st.st_size, sha256=meta["sha256"])
            )
        parts.sort(key=lambda part: part.number)
        return parts

    def _complete_multipart_sync(
        self, key: str, upload_id: str, parts: Sequence[PartInfo]
    ) -> ObjectInfo:
        directory, upload = self._upload_dir(key, upload_id)
        if not parts:
            raise InvalidPart("a multipart upload needs at least one part")
        previous = 0
        files: list[Path] = []
        for index, part in enumerate(parts):
            check_part_number(part.number)
            if part.number <= previous:
                raise InvalidPart("parts must be listed in strictly ascending part-number order")
            previous = part.number
            file = directory / f"part-{part.number:05d}"
            try:
                size = file.stat().st_size
            except FileNotFoundError as exc:
                if not (directory / "upload.json").exists():
                    # Completed or aborted meanwhile by another request.
                    raise UploadNotFound(key, upload_id) from exc
                raise InvalidPart(f"part {part.number} was not uploaded") from exc
            if index < len(parts) - 1 and size < MIN_PART_SIZE:
                raise InvalidPart(
                    f"part {part.number} is {size} bytes; all parts but the last need "
                    f"at least {MIN_PART_SIZE}"
                )
            files.append(file)

        whole = hashlib.sha256()
        temp = self._new_temp()
        try:
            with open(temp, "xb") as out:
                for part, file in zip(parts, files, strict=True):
                    part_digest = hashlib.sha256()
                    try:
                        with open(file, "rb") as source:
                            while chunk := source.read(DEFAULT_CHUNK_SIZE):
                                part_digest.update(chunk)
                                whole.update(chunk)
                                out.write(chunk)
                    except FileNotFoundError as exc:
                        # The part was there a moment ago: a concurrent completion or abort
                        # removed the upload.
                        raise UploadNotFound(key, upload_id) from exc
                    if part.etag != part_digest.hexdigest():
                        raise InvalidPart(f"part {part.number}: etag does not match its content")
                self._write_and_sync(out)
            declared = upload.get("sha256")
            if declared is not None and declared != whole.hexdigest():
                raise ChecksumMismatch(
                    f"{key!r}: assembled object has sha256 {whole.hexdigest()}, declared {declared}"
                )
            content_type = upload.get("content_type") or guess_content_type(key, None)
            info = self._commit(temp, key, whole.hexdigest(), content_type)
        finally:
            temp.unlink(missing_ok=True)
        self._remove_upload_dir(directory)
        return info

    def _remove_upload_dir(self, directory: Path) -> None:
        """Remove a multipart upload's staging directory, renamed away first so that a
        concurrent completion sees the whole upload vanish at once, never half of it."""
        gone = self._tmp / f"{uuid.uuid4().hex}.gone"
        try:
            os.rename(directory, gone)
        except FileNotFoundError:
            return  # a concurrent completion or abort removed it
        shutil.rmtree(gone, ignore_errors=True)

    async def create_multipart(
        self,
        key: str,
        *,
        content_type: str | None = None,
        sha256: str | None = None,
        checksum_parts: bool = True,
    ) -> str:
        # `checksum_parts` concerns S3 only: this backend hashes every part it stores.
        validate_key(key)
        declared = check_sha256_hex(sha256) if sha256 is not None else None
        return await asyncio.to_thread(
            self._create_multipart_sync, key, guess_content_type(key, content_type), declared
        )

    async def upload_part(
        self, key: str, upload_id: str, number: int, data: bytes, *, sha256: str | None = None
    ) -> PartInfo:
        check_part_number(number)
        digest = hashlib.sha256(data).hexdigest()
        if sha256 is not None and check_sha256_hex(sha256) != digest:
            raise ChecksumMismatch(
                f"{key!r} part {number}: data has sha256 {digest}, expected {sha256}"
            )
        return await asyncio.to_thread(self._upload_part_sync, key, upload_id, number, data, digest)

    async def complete_multipart(
        self, key: str, upload_id: str, parts: Sequence[PartInfo]
    ) -> ObjectInfo:
        await ensure_current_attempt()
        return await asyncio.to_thread(self._complete_multipart_sync, key, upload_id, parts)

    async def put_part_stream(
        self, key: str, upload_id: str, number: int, chunks: AsyncIterable[bytes]
    ) -> PartInfo:
        """Store one part from an async stream (the body of a signed part URL's PUT).

        The part replaces any earlier upload of the same number only once it is complete, so a
        broken connection leaves the previous part (or none) in place.

        Raises:
            InvalidPart: bad part number, or the part is larger than S3's 5 GiB limit.
            UploadNotFound: no such upload.
        """
        check_part_number(number)
        directory, _ = await asyncio.to_thread(self._upload_dir, key, upload_id)
        temp = directory / f".part-{number:05d}.{uuid.uuid4().hex}"
        digest = hashlib.sha256()
        size = 0
        try:
            try:
                handle = await asyncio.to_thread(open, temp, "xb")
            except FileNotFoundError as exc:
                raise UploadNotFound(key, upload_id) from exc
            try:
                buffer = bytearray()
                async for chunk in chunks:
                    size += len(chunk)
                    if size > MAX_PART_SIZE:
                        raise InvalidPart(f"part {number} is larger than {MAX_PART_SIZE} bytes")
                    digest.update(chunk)
                    buffer += chunk
                    if len(buffer) >= _WRITE_BUFFER:
                        await asyncio.to_thread(handle.write, buffer)
                        buffer = bytearray()
                await asyncio.to_thread(self._write_and_sync, handle, buffer)
            finally:
                await asyncio.to_thread(handle.close)
            return await asyncio.to_thread(
                self._store_part, key, upload_id, directory, number, temp, digest.hexdigest()
            )
        finally:
            await asyncio.to_thread(temp.unlink, missing_ok=True)

    async def list_parts(self, key: str, upload_id: str) -> list[PartInfo]:
        return await asyncio.to_thread(self._list_parts_sync, key, upload_id)

    async def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            directory, _ = await asyncio.to_thread(self._upload_dir, key, upload_id)
        except UploadNotFound:
            return
        await asyncio.to_thread(self._remove_upload_dir, directory)

    # ---- presigned URLs -------------------------------------------------------------------

    def _presign(self, key: str, method: str, expires_in: int) -> str:
        if expires_in <= 0:
            raise ValueError(f"expires_in must be positive, not {expires_in}")
        expires = int(time.time()) + expires_in
        return sign_object_url(self._public_base_url, self._secret, key, method, expires)

    async def presign_get(self, key: str, *, expires_in: int = 3600) -> str:
        return self._presign(key, "GET", expires_in)

    async def presign_put(
        self, key: str, *, expires_in: int = 3600, content_type: str | None = None
    ) -> str:
        # The objects router stores the request's own Content-Type; nothing to bind here.
        return self._presign(key, "PUT", expires_in)

    async def presign_part(
        self, key: str, upload_id: str, number: int, *, expires_in: int = 3600
    ) -> str:
        check_part_number(number)
        if expires_in <= 0:
            raise ValueError(f"expires_in must be positive, not {expires_in}")
        expires = int(time.time()) + expires_in
        return sign_part_url(self._public_base_url, self._secret, key, upload_id, number, expires)

    # ---- lifecycle ------------------------------------------------------------------------

    def _check_sync(self) -> None:
        for directory in (self.root, self._tmp, self._uploads):
            if not directory.is_dir():
                raise ObjectStoreError(f"object store directory is missing: {str(directory)!r}")
            if not os.access(directory, os.W_OK | os.X_OK):
                raise ObjectStoreError(f"object store directory not writable: {str(directory)!r}")

    async def check(self) -> None:
        await asyncio.to_thread(self._check_sync)

    async def close(self) -> None:
        """Nothing to release: every operation opens and closes its own files."""
