"""A :class:`BlobStore` over a team server's blob endpoints (``/api/v1/projects/{p}/blobs``).

With the ``server`` setting, ``Context.blobs`` is a :class:`ContentStore` over this store.
It holds content-addressed blobs only (keys ``blobs/ab/cdef...``) and the server hashes
every byte it receives again, refusing a blob whose content does not match its digest:

- small blobs put inside :meth:`HttpBlobStore.batch` (``ContentStore.put_files`` opens one)
  go together in one ``POST .../blobs:batch`` request (frames of digest, length, bytes);
- up to :data:`SINGLE_PUT` bytes, one ``PUT .../blobs/{digest}``;
- larger ones as a resumable upload: ``POST .../uploads`` gives an id, chunks go to
  ``PUT .../uploads/{id}?offset=N``; after a cut connection the client asks
  ``GET .../uploads/{id}`` for the committed offset and goes on from there;
  ``POST .../uploads/{id}:commit?digest=D`` checks the digest and publishes. When the server's
  store is S3, the bytes go straight to a presigned URL instead, then the same commit;
- reads stream ``GET .../blobs/{digest}`` (or a presigned S3 URL), and the
  :class:`ContentStore` verifies the digest as it reads, as with any backend.
"""

from __future__ import annotations

import builtins
import contextlib
import struct
import tempfile
import threading
import time
from collections.abc import Iterator
from typing import IO, Any, BinaryIO

from plinth.errors import BlobStoreError, NotFoundError, PlinthError, UsageError
from plinth.guards.team_client import TeamClient, open_direct
from plinth.storage.blobs import BlobInfo, BlobStore, StagedBlob
from plinth.storage.content import BLOB_PREFIX, blob_key, check_digest

__all__ = ["BATCH_BYTES", "FRAME_HEADER", "SINGLE_PUT", "SMALL", "HttpBlobStore"]

#: Blobs up to this size put inside :meth:`HttpBlobStore.batch` wait for one batch request.
SMALL = 1 << 20
#: A batch request is sent once its blobs reach this many bytes.
BATCH_BYTES = 16 << 20
#: Blobs up to this size go in one PUT; larger ones as resumable uploads.
SINGLE_PUT = 8 << 20
#: Bytes per chunk of a resumable upload.
CHUNK = 8 << 20
#: A batch frame: the 64 hex characters of the digest and the length (8 bytes, big-endian).
FRAME_HEADER = struct.Struct(">64sQ")
_RETRIES = 5


def _digest_of(key: str) -> str:
    parts = key.split("/")
    if len(parts) != 3 or f"{parts[0]}/" != BLOB_PREFIX or len(parts[1]) != 2:
        raise UsageError(
            f"the team server stores content-addressed blobs only, not {key!r:.80}",
            hint="use a ContentStore over this store",
        )
    return check_digest(parts[1] + parts[2])


class HttpBlobStore(BlobStore):
    """The blobs of one team server project."""

    def __init__(self, client: TeamClient, project: str) -> None:
        from urllib.parse import quote

        self._client = client
        self._project = project
        self._base = f"/api/v1/projects/{quote(project, safe='')}"
        self._local = threading.local()
        self._info: dict[str, Any] | None = None

    # -- what the server offers --------------------------------------------------------------
    def _presign(self) -> bool:
        if self._info is None:
            info = self._client.request("GET", f"{self._base}/blobs").json()
            self._info = info if isinstance(info, dict) else {}
        return bool(self._info.get("presign"))

    # -- reads -------------------------------------------------------------------------------
    def exists(self, key: str) -> bool:
        return self._size(key) is not None

    def _size(self, key: str) -> int | None:
        digest = _digest_of(key)
        answer = self._client.request("HEAD", f"{self._base}/blobs/{digest}", ok=(404,))
        if answer.status == 404:
            return None
        return int(answer.headers.get("x-blob-size", answer.headers.get("content-length", -1)))

    def touch(self, key: str, size: int | None = None) -> bool:
        if self._pending() is not None:
            return False  # the batch's receiver dedups: no round trip per blob
        query = {} if size is None else {"size": size}
        path = f"{self._base}/blobs/{_digest_of(key)}:touch"
        return bool(self._client.request("POST", path, query=query).json()["present"])

    def open(self, key: str) -> BinaryIO:
        digest = _digest_of(key)
        if self._presign():
            url = self._client.call(f"{self._base}/blobs/{digest}:presign", {})["url"]
            status, body = open_direct("GET", url, timeout=self._timeout)
            if status == 200:
                return body
            body.close()
            if status == 404:
                raise NotFoundError(f"blob {digest} not found at {self.location(key)}")
            raise BlobStoreError(f"reading blob {digest} from its presigned URL: HTTP {status}")
        return self._client.stream(f"{self._base}/blobs/{digest}")

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        after = ""
        while True:
            answer = self._client.request(
                "GET", f"{self._base}/blobs:list", query={"after": after, "limit": 10_000}
            ).json()
            for item in answer["blobs"]:
                key = blob_key(item["digest"])
                if key.startswith(prefix):
                    yield BlobInfo(key, int(item["size"]), float(item["modified"]))
            if not answer.get("next"):
                return
            after = str(answer["next"])

    def delete(self, key: str) -> None:
        digest = _digest_of(key)
        self._client.request("DELETE", f"{self._base}/blobs/{digest}", ok=(404,))

    def location(self, key: str) -> str:
        return f"{self._client.url}{self._base}/blobs/{_digest_of(key)}"

    def describe(self) -> str:
        return f"team server {self._client.url}, project {self._project}"

    def check(self) -> None:
        self._info = None
        self._presign()

    def close(self) -> None:
        self._client.close()

    @property
    def _timeout(self) -> float:
        return self._client.timeout

    # -- writes ------------------------------------------------------------------------------
    def stage(self) -> StagedBlob:
        return _HttpStaged(self)

    def _pending(self) -> builtins.list[tuple[str, bytes]] | None:
        pending: builtins.list[tuple[str, bytes]] | None = getattr(self._local, "pending", None)
        return pending

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        """Small puts inside the block go in batch requests, the last when it ends."""
        if self._pending() is not None:  # nested: the outer block sends
            yield
            return
        self._local.pending = []
        self._local.pending_bytes = 0
        try:
            yield
            self._send_batch()
        finally:
            self._local.pending = None

    def _send_batch(self) -> None:
        pending = self._pending()
        if not pending:
            return
        frames = b"".join(
            FRAME_HEADER.pack(digest.encode("ascii"), len(data)) + data for digest, data in pending
        )
        self._client.request(
            "POST",
            f"{self._base}/blobs:batch",
            body=frames,
            headers={"Content-Type": "application/octet-stream"},
        )
        pending.clear()
        self._local.pending_bytes = 0

    def _put(self, digest: str, source: IO[bytes], size: int) -> None:
        pending = self._pending()
        if pending is not None and size <= SMALL:
            source.seek(0)
            data = source.read()
            pending.append((digest, data))
            # A running total: summing the queue on every put made 1,000 files quadratic.
            self._local.pending_bytes += len(data)
            if self._local.pending_bytes >= BATCH_BYTES:
                self._send_batch()
            return
        if size <= SINGLE_PUT:
            source.seek(0)
            self._client.request(
                "PUT",
                f"{self._base}/blobs/{digest}",
                body=source.read(),
                headers={"Content-Type": "application/octet-stream"},
            )
            return
        upload = self._client.call(f"{self._base}/uploads", {})["id"]
        if self._presign():
            self._put_presigned(upload, source, size)
        else:
            self._put_chunks(upload, source, size)
        self._client.request(
            "POST", f"{self._base}/uploads/{upload}:commit", query={"digest": digest}
        )

    def _put_presigned(self, upload: str, source: IO[bytes], size: int) -> None:
        url = self._client.call(f"{self._base}/uploads/{upload}:presign", {})["url"]
        source.seek(0)
        status, body = open_direct(
            "PUT", url, timeout=self._timeout, body=source, headers={"Content-Length": str(size)}
        )
        body.close()
        if not 200 <= status < 300:
            raise BlobStoreError(f"uploading to the presigned URL answered HTTP {status}")

    def _put_chunks(self, upload: str, source: IO[bytes], size: int) -> None:
        """Send ``source`` in chunks; after a failure, resume from the server's offset."""
        path = f"{self._base}/uploads/{upload}"
        offset, failures = 0, 0
        while offset < size:
            source.seek(offset)
            chunk = source.read(CHUNK)
            try:
                answer = self._client.request(
                    "PUT",
                    path,
                    body=chunk,
                    query={"offset": offset},
                    headers={"Content-Type": "application/octet-stream"},
                )
                offset = int(answer.json()["offset"])
                failures = 0
            except PlinthError as exc:
                failures += 1
                if failures > _RETRIES or not _transient(exc):
                    raise
                time.sleep(min(0.2 * 2**failures, 5.0))
                with contextlib.suppress(PlinthError):  # down still: the next PUT says so
                    offset = int(self._client.request("GET", path).json()["offset"])


def _transient(exc: PlinthError) -> bool:
    """A cut connection or a server error: the upload may go on from its offset."""
    from plinth.errors import BackendError, ConflictError

    return isinstance(exc, (BackendError, ConflictError))


class _HttpStaged(StagedBlob):
    """Bytes spooled in memory (on disk past :data:`SMALL`), sent on commit."""

    def __init__(self, store: HttpBlobStore) -> None:
        super().__init__()
        self._store = store
        self._file = tempfile.SpooledTemporaryFile(max_size=SMALL, prefix="plinth-http-")  # noqa: SIM115

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        self._file.write(data)

    def _commit(self, key: str) -> None:
        try:
            self._store._put(_digest_of(key), self._file, self.size)
        finally:
            self._file.close()

    def _abort(self) -> None:
        self._file.close()
