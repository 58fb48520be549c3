"""A project's content-addressed blobs over HTTP: the routes behind ``HttpBlobStore``.

Every byte a client sends is hashed here again: a blob whose content does not hash to the
digest it was sent under is refused (422) and nothing is stored. Digests in paths are
checked as 64 lowercase hex characters and uploads ids as 32; no route ever reads a
filesystem path a client names. Routes (``P`` = ``/api/v1/projects/{project}``)::

    GET    P/blobs                      what the store offers (presigned URLs, limits)
    HEAD   P/blobs/{digest}             200 with X-Blob-Size, or 404
    GET    P/blobs/{digest}             the bytes, streamed
    PUT    P/blobs/{digest}             one blob (re-hashed)
    POST   P/blobs:batch                many small blobs in one body of frames
    POST   P/blobs/{digest}:touch       is it stored (?size=N)? refreshes it for gc
    POST   P/blobs/{digest}:presign     a presigned GET URL (S3 stores only)
    GET    P/blobs:list                 stored blobs, paginated (admin: gc)
    DELETE P/blobs/{digest}             remove one (admin: gc)
    POST   P/uploads                    start a resumable upload -> {"id"}
    GET    P/uploads/{id}               {"offset": bytes committed so far}
    PUT    P/uploads/{id}?offset=N      append a chunk at N (409 with the offset otherwise)
    POST   P/uploads/{id}:presign       a presigned PUT URL for the whole content (S3 only)
    POST   P/uploads/{id}:commit?digest=D   hash the parts, publish the blob, drop the parts

Upload parts live in the project's own blob store (``uploads/<id>/<offset>``), so any
replica can take the next chunk.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from blake3 import blake3

from plinth.api.routes import Call, Endpoint, plain_response, stream_response
from plinth.errors import ConflictError, NotFoundError, RequestError
from plinth.storage import ContentStore, blob_key, check_digest
from plinth.storage.blobs import CHUNK_SIZE, BlobInfo
from plinth.storage.http_blobs import FRAME_HEADER

if TYPE_CHECKING:
    from starlette.responses import Response

__all__ = ["ENDPOINTS"]

P = "/api/v1/projects/{project}"
#: Body limits: a batch of small files, one chunk of a resumable upload, one plain PUT.
BATCH_BODY = 32 << 20
CHUNK_BODY = 16 << 20
PUT_BODY = 16 << 20
_UPLOAD_ID = re.compile(r"[0-9a-f]{32}")
_UPLOADS = "uploads/"


def _json(payload: Any, status: int = 200) -> Response:
    return plain_response(
        json.dumps(payload).encode(), status_code=status, media_type="application/json"
    )


def _digest(call: Call) -> str:
    digest = str(call.request.path_params["digest"])
    try:
        return check_digest(digest)
    except Exception:
        raise RequestError(
            "the blob digest in the path is not 64 lowercase hex characters", field="digest"
        ) from None


def _upload_id(call: Call) -> str:
    upload = str(call.request.path_params["upload"])
    if not _UPLOAD_ID.fullmatch(upload):
        raise NotFoundError("no such upload", field="upload")
    return upload


def _s3(store: ContentStore) -> Any:
    """The S3 store under ``store``, or None (presigned URLs exist only for S3)."""
    inner = store.store
    return inner if hasattr(inner, "presign") else None


def _stat(store: ContentStore, key: str) -> BlobInfo | None:
    return next((info for info in store.store.list(key) if info.key == key), None)


# -- reads -------------------------------------------------------------------------------


def info(call: Call) -> Response:
    return _json(
        {
            "presign": _s3(call.blobs()) is not None,
            "batch_bytes": BATCH_BODY,
            "chunk_bytes": CHUNK_BODY,
        }
    )


def head(call: Call) -> Response:
    found = _stat(call.blobs(), blob_key(_digest(call)))
    if found is None:
        return plain_response(status_code=404)
    size = str(found.size)
    return plain_response(status_code=200, headers={"x-blob-size": size, "content-length": size})


def touch(call: Call) -> Response:
    """Whether a blob of ``?size=N`` is stored, refreshing its time for gc's grace period
    (what a put of content already stored does instead of writing it again)."""
    digest = _digest(call)
    text = call.request.query_params.get("size")
    try:
        size = int(text) if text is not None else None
    except ValueError:
        raise RequestError("size must be a whole number", field="size") from None
    return _json({"present": call.blobs().store.touch(blob_key(digest), size)})


def get(call: Call) -> Response:
    digest = _digest(call)
    reader = call.blobs().open(digest, verify=False)

    def chunks() -> Iterator[bytes]:
        with reader:
            while chunk := reader.read(CHUNK_SIZE):
                yield chunk

    return stream_response(chunks(), media_type="application/octet-stream")


def _presigned(call: Call, key: str, method: str) -> Response:
    """A presigned ``method`` URL of the S3 object ``key``; 404 when the store is not S3."""
    s3 = _s3(call.blobs())
    if s3 is None:
        raise NotFoundError("this server's blob store hands out no presigned URLs")
    return _json({"url": s3.presign(key, method)})


def presign_get(call: Call) -> Response:
    return _presigned(call, blob_key(_digest(call)), "GET")


def listing(call: Call) -> Response:
    after = call.request.query_params.get("after", "")
    try:
        limit = min(max(int(call.request.query_params.get("limit", "1000")), 1), 10_000)
    except ValueError:
        raise RequestError("limit must be a whole number", field="limit") from None
    blobs = sorted(call.blobs().iter_blobs(), key=lambda b: b.digest)
    page = [b for b in blobs if b.digest > after][:limit]
    more = len(page) == limit and page[-1].digest != blobs[-1].digest
    items = [{"digest": b.digest, "size": b.size, "modified": b.modified} for b in page]
    return _json({"blobs": items, "next": page[-1].digest if more else None})


# -- writes ------------------------------------------------------------------------------


def put(call: Call) -> Response:
    digest = _digest(call)
    actual = blake3(call.body).hexdigest()
    if actual != digest:
        raise RequestError(
            f"the body hashes to {actual}, not to {digest}: nothing was stored", field="body"
        )
    ref = call.blobs().put_bytes(call.body)
    call.audit("blob.put", digest, {"size": ref.size})
    return _json({"digest": ref.digest, "size": ref.size}, 201)


def batch(call: Call) -> Response:
    """Frames of (digest, length, bytes); all are checked before any is stored."""
    body = memoryview(call.body)
    frames: list[tuple[str, memoryview]] = []
    offset = 0
    while offset < len(body):
        if len(body) - offset < FRAME_HEADER.size:
            raise RequestError("the batch ends inside a frame header", field="body")
        raw, size = FRAME_HEADER.unpack_from(body, offset)
        offset += FRAME_HEADER.size
        digest = raw.decode("ascii", "replace")
        data = body[offset : offset + size]
        offset += size
        if len(data) != size:
            raise RequestError(f"the batch ends inside the bytes of blob {digest}", field="body")
        frames.append((digest, data))
    problems = [
        (f"body[{i}]", f"the bytes sent as {d[:64]!r} hash to {blake3(data).hexdigest()}")
        for i, (d, data) in enumerate(frames)
        if blake3(data).hexdigest() != d
    ]
    if problems:
        raise RequestError.naming(problems)
    store = call.blobs()
    for _, data in frames:
        store.put_bytes(bytes(data))
    call.audit("blob.batch", f"{len(frames)} blobs", {"count": len(frames)})
    return _json({"stored": len(frames)})


def delete(call: Call) -> Response:
    digest = _digest(call)
    call.blobs().delete(digest)
    call.audit("blob.delete", digest)
    return plain_response(status_code=204)


# -- resumable uploads -------------------------------------------------------------------


def _parts(store: ContentStore, upload: str) -> list[BlobInfo]:
    return sorted(store.store.list(f"{_UPLOADS}{upload}/"), key=lambda info: info.key)


def _offset(parts: list[BlobInfo]) -> int:
    return sum(part.size for part in parts)


def start_upload(call: Call) -> Response:
    return _json({"id": uuid.uuid4().hex}, 201)


def upload_offset(call: Call) -> Response:
    return _json({"offset": _offset(_parts(call.blobs(), _upload_id(call)))})


def upload_chunk(call: Call) -> Response:
    upload = _upload_id(call)
    store = call.blobs()
    try:
        offset = int(call.request.query_params.get("offset", ""))
    except ValueError:
        raise RequestError("offset must be a whole number", field="offset") from None
    committed = _offset(_parts(store, upload))
    if offset != committed:
        raise ConflictError(
            f"upload {upload} holds {committed} bytes; a chunk at offset {offset} does not fit",
            hint=f"GET the upload's offset and send from {committed}",
            field="offset",
        )
    if call.body:
        with store.store.stage() as staged:
            staged.write(call.body)
            staged.commit(f"{_UPLOADS}{upload}/{offset:016d}")
    return _json({"offset": committed + len(call.body)})


def presign_upload(call: Call) -> Response:
    return _presigned(call, f"{_UPLOADS}{_upload_id(call)}/{0:016d}", "PUT")


def commit_upload(call: Call) -> Response:
    upload = _upload_id(call)
    try:
        digest = check_digest(call.request.query_params.get("digest", ""))
    except Exception:
        raise RequestError("digest must be 64 lowercase hex characters", field="digest") from None
    store = call.blobs()
    parts = _parts(store, upload)
    if not parts:
        raise NotFoundError(f"upload {upload} has no bytes", field="upload")
    try:
        ref = store.put_stream(_Joined(store, parts, digest))
    except _Mismatch as exc:
        raise RequestError(
            f"the upload hashes to {exc.actual}, not to {digest}: nothing was stored",
            field="digest",
        ) from None
    finally:
        for part in parts:
            store.store.delete(part.key)
    call.audit("blob.upload", digest, {"size": ref.size})
    return _json({"digest": ref.digest, "size": ref.size}, 201)


class _Mismatch(Exception):
    def __init__(self, actual: str) -> None:
        self.actual = actual


class _Joined:
    """The parts of an upload read in order, hashed; raises at EOF on a digest mismatch,
    so the staged blob is aborted before it is published."""

    def __init__(self, store: ContentStore, parts: list[BlobInfo], digest: str) -> None:
        self._keys = iter([part.key for part in parts])
        self._store = store
        self._digest = digest
        self._hasher = blake3()
        self._current: Any = None

    def read(self, size: int = -1, /) -> bytes:
        while True:
            if self._current is None:
                key = next(self._keys, None)
                if key is None:
                    actual = self._hasher.hexdigest()
                    if actual != self._digest:
                        raise _Mismatch(actual)
                    return b""
                self._current = self._store.store.open(key)
            data: bytes = self._current.read(size if size > 0 else CHUNK_SIZE)
            if data:
                self._hasher.update(data)
                return data
            self._current.close()
            self._current = None


ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", f"{P}/blobs", info, "What the blob store offers.", "project", "read"),
    Endpoint("GET", f"{P}/blobs:list", listing, "Stored blobs, paginated.", "project", "admin"),
    Endpoint(
        "POST",
        f"{P}/blobs:batch",
        batch,
        "Many small blobs in one request.",
        "project",
        "write",
        max_body=BATCH_BODY,
    ),
    Endpoint(
        "HEAD",
        f"{P}/blobs/{{digest}}",
        head,
        "Whether a blob is stored, and its size.",
        "project",
        "read",
    ),
    Endpoint("GET", f"{P}/blobs/{{digest}}", get, "A blob's bytes, streamed.", "project", "read"),
    Endpoint(
        "PUT",
        f"{P}/blobs/{{digest}}",
        put,
        "Store one blob (its digest re-checked).",
        "project",
        "write",
        max_body=PUT_BODY,
    ),
    Endpoint("DELETE", f"{P}/blobs/{{digest}}", delete, "Remove a blob (gc).", "project", "admin"),
    Endpoint(
        "POST",
        f"{P}/blobs/{{digest}}:touch",
        touch,
        "Whether a blob is stored; refreshes it for gc's grace period.",
        "project",
        "write",
    ),
    Endpoint(
        "POST",
        f"{P}/blobs/{{digest}}:presign",
        presign_get,
        "A presigned GET URL (S3 stores).",
        "project",
        "read",
    ),
    Endpoint("POST", f"{P}/uploads", start_upload, "Start a resumable upload.", "project", "write"),
    Endpoint(
        "GET",
        f"{P}/uploads/{{upload}}",
        upload_offset,
        "An upload's committed offset.",
        "project",
        "write",
    ),
    Endpoint(
        "PUT",
        f"{P}/uploads/{{upload}}",
        upload_chunk,
        "Append a chunk at ?offset=N.",
        "project",
        "write",
        max_body=CHUNK_BODY,
    ),
    Endpoint(
        "POST",
        f"{P}/uploads/{{upload}}:presign",
        presign_upload,
        "A presigned PUT URL for an upload (S3 stores).",
        "project",
        "write",
    ),
    Endpoint(
        "POST",
        f"{P}/uploads/{{upload}}:commit",
        commit_upload,
        "Check an upload's digest and publish the blob.",
        "project",
        "write",
    ),
]
