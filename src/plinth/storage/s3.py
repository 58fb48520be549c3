"""A blob store in an S3 bucket (AWS or any S3-compatible server): ``s3://BUCKET/PREFIX``.

boto3 is imported when a store is created, never when this module is, so plinth works
without the 's3' extra until an ``s3://`` URI is used. Credentials come only from boto3's
usual chain (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_PROFILE``, instance
roles); the endpoint from the ``s3_endpoint_url`` setting (``PLINTH_S3_ENDPOINT_URL``).

Staged bytes go to a local temp file; :meth:`StagedBlob.commit` uploads it with boto3's
transfer manager (one PUT below 8 MiB, a multipart upload above), and S3 shows an object
only once its upload is complete.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

from plinth._extras import require
from plinth.errors import (
    BlobStoreError,
    ConfigError,
    InvalidPathError,
    NotFoundError,
)
from plinth.settings import redact
from plinth.storage.blobs import BlobInfo, BlobStore, StagedBlob, check_key

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

__all__ = ["S3BlobStore"]

_ENDPOINT_HINT = (
    "check the s3_endpoint_url setting (PLINTH_S3_ENDPOINT_URL) and that the server is running"
)
_CHECK = "look up the bucket"
_CREDENTIALS_HINT = (
    "set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) in the environment"
)


_MAX_COPY_BYTES = 5 * 1024**3


class S3BlobStore(BlobStore):
    #: A re-put of stored content refreshes LastModified only when it is older than this.
    touch_after_s: float = 300.0
    """Blobs as objects ``PREFIX/<key>`` in ``bucket``."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        connect_timeout: float = 5.0,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if self.prefix:
            check_key(self.prefix)
        self._key_prefix = self.prefix + "/" if self.prefix else ""
        self.endpoint_url = endpoint_url
        require("boto3", feature=f"artifacts={redact(self.describe_uri())}", field="artifacts")
        import boto3
        import botocore.exceptions
        from boto3.s3.transfer import TransferConfig
        from botocore.config import Config

        self._exceptions: Any = botocore.exceptions
        self._transfer_config = TransferConfig()
        config = Config(connect_timeout=connect_timeout, retries={"max_attempts": 2})
        try:
            # A session of its own: boto3's default session caches credentials and is
            # not thread-safe.
            session = boto3.session.Session()
            self._client: Any = session.client("s3", endpoint_url=endpoint_url, config=config)
        except ValueError as exc:  # a malformed endpoint URL
            raise ConfigError(
                f"setting 's3_endpoint_url' is not a valid URL: {redact(endpoint_url or '')!r}",
                hint="use a URL such as http://127.0.0.1:9000",
                field="s3_endpoint_url",
            ) from exc
        except botocore.exceptions.BotoCoreError as exc:  # e.g. AWS_PROFILE names no profile
            raise BlobStoreError(
                f"cannot set up the S3 client for {self.describe()}: {exc}",
                hint=_CREDENTIALS_HINT,
            ) from exc

    @classmethod
    def from_uri(
        cls, uri: str, *, endpoint_url: str | None = None, connect_timeout: float = 5.0
    ) -> S3BlobStore:
        """The store for ``s3://BUCKET/PREFIX``."""
        rest = uri[len("s3://") :]
        bucket, _, prefix = rest.partition("/")
        problem = None
        if not bucket:
            problem = "names no bucket"
        elif "?" in rest or "#" in rest or "@" in bucket:
            problem = "has a query, fragment or user part (credentials belong in AWS_* variables)"
        elif prefix.strip("/"):
            try:
                check_key(prefix.strip("/"))
            except InvalidPathError:
                problem = "has an invalid prefix (empty, '.' or '..' segments, or backslashes)"
        if problem:
            raise ConfigError(
                f"setting 'artifacts' {problem}: {redact(uri)!r}",
                hint="use s3://BUCKET or s3://BUCKET/PREFIX",
                field="artifacts",
            )
        return cls(bucket, prefix, endpoint_url=endpoint_url, connect_timeout=connect_timeout)

    def describe_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def _key(self, key: str) -> str:
        return self._key_prefix + check_key(key)

    @property
    def _endpoint(self) -> str:
        return redact(self.endpoint_url) if self.endpoint_url else "the default AWS endpoint"

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn boto3's exceptions into plinth's, naming the bucket and endpoint."""
        exc_mod = self._exceptions
        try:
            yield
        except (NotFoundError, BlobStoreError):
            raise
        except Exception as exc:
            cause: BaseException | None = exc
            while cause is not None and not isinstance(
                cause, exc_mod.ClientError | exc_mod.BotoCoreError
            ):
                cause = cause.__cause__ or cause.__context__
            if cause is None:
                raise
            raise self._translate(cause, action) from exc

    def _translate(self, exc: BaseException, action: str) -> BlobStoreError:
        e = self._exceptions
        where = f"bucket '{self.bucket}' at {self._endpoint}"
        if isinstance(exc, e.NoCredentialsError | e.PartialCredentialsError):
            return BlobStoreError(
                f"no AWS credentials to {action} in {where}", hint=_CREDENTIALS_HINT
            )
        if isinstance(exc, e.EndpointConnectionError | e.ConnectTimeoutError):
            return BlobStoreError(
                f"cannot reach {where} (while trying to {action})", hint=_ENDPOINT_HINT
            )
        if isinstance(exc, e.ClientError):
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "NoSuchBucket" or (code in ("404", "NotFound") and action == _CHECK):
                return BlobStoreError(
                    f"{where} does not exist",
                    hint=f"create the bucket or fix the 'artifacts' setting; {_ENDPOINT_HINT}",
                )
            if status == 403 or code in ("AccessDenied", "InvalidAccessKeyId"):
                return BlobStoreError(
                    f"access denied to {where} when trying to {action} ({code})",
                    hint=f"check the AWS credentials and the bucket policy; {_CREDENTIALS_HINT}",
                )
            message = str(error.get("Message", ""))
            return BlobStoreError(f"S3 error {code or status} from {where} on {action}: {message}")
        return BlobStoreError(
            f"S3 request to {where} failed on {action}: {type(exc).__name__}", hint=_ENDPOINT_HINT
        )

    def exists(self, key: str) -> bool:
        full = self._key(key)
        with self._errors(f"look up {full}"):
            try:
                self._client.head_object(Bucket=self.bucket, Key=full)
            except self._exceptions.ClientError as exc:
                if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                    return False
                raise
        return True

    def touch(self, key: str, size: int | None = None) -> bool:
        full = self._key(key)
        with self._errors(f"look up {full}"):
            try:
                head = self._client.head_object(Bucket=self.bucket, Key=full)
            except self._exceptions.ClientError as exc:
                if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                    return False
                raise
        if size is not None and int(head.get("ContentLength", -1)) != size:
            return False  # not what this put would store: overwrite it
        age = time.time() - head["LastModified"].timestamp()
        # Refresh LastModified by copying the object onto itself, at most every few minutes
        # (a server-side copy; single-request copies stop at 5 GiB).
        if age > self.touch_after_s and head.get("ContentLength", 0) < _MAX_COPY_BYTES:
            with self._errors(f"touch {full}"):
                self._client.copy_object(
                    Bucket=self.bucket,
                    Key=full,
                    CopySource={"Bucket": self.bucket, "Key": full},
                    MetadataDirective="REPLACE",
                )
        return True

    def stage(self) -> StagedBlob:
        return _S3StagedBlob(self)

    def open(self, key: str) -> BinaryIO:
        full = self._key(key)
        with self._errors(f"read {full}"):
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=full)
            except self._exceptions.ClientError as exc:
                if exc.response.get("Error", {}).get("Code") == "NoSuchKey":
                    raise NotFoundError(f"no blob at {self.location(key)}") from None
                raise
        return io.BufferedReader(_BodyReader(self, response["Body"], full), 1024 * 1024)

    def delete(self, key: str) -> None:
        full = self._key(key)
        with self._errors(f"delete {full}"):
            self._client.delete_object(Bucket=self.bucket, Key=full)

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        paginator = self._client.get_paginator("list_objects_v2")
        start = len(self._key_prefix)
        with self._errors(f"list {self._key_prefix + prefix or '/'}"):
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key_prefix + prefix):
                for obj in page.get("Contents", ()):
                    yield BlobInfo(
                        obj["Key"][start:], int(obj["Size"]), obj["LastModified"].timestamp()
                    )

    def presign(self, key: str, method: str, expires_s: int = 900) -> str:
        """A URL that lets its holder ``GET`` or ``PUT`` ``key`` directly, for ``expires_s``
        seconds: the team server hands these out so that artifacts bypass it."""
        operation = {"GET": "get_object", "PUT": "put_object"}[method]
        full = self._key(key)
        with self._errors(f"presign {method} {full}"):
            url: str = self._client.generate_presigned_url(
                operation, Params={"Bucket": self.bucket, "Key": full}, ExpiresIn=expires_s
            )
        return url

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def describe(self) -> str:
        if self.endpoint_url:
            return f"{self.describe_uri()} at {self._endpoint}"
        return self.describe_uri()

    def check(self) -> None:
        with self._errors(_CHECK):
            self._client.head_bucket(Bucket=self.bucket)
        probe = f"{self._key_prefix}tmp/plinth-check-{uuid.uuid4().hex}"
        with self._errors(f"write {probe}"):
            self._client.put_object(Bucket=self.bucket, Key=probe, Body=b"plinth check\n")
            self._client.delete_object(Bucket=self.bucket, Key=probe)

    def close(self) -> None:
        self._client.close()


class _BodyReader(io.RawIOBase):
    """botocore's streaming body as a raw file, read piece by piece."""

    def __init__(self, store: S3BlobStore, body: Any, key: str) -> None:
        self._store = store
        self._body = body
        self._key = key

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: WriteableBuffer) -> int:
        out = memoryview(buffer).cast("B")
        with self._store._errors(f"read {self._key}"):
            data: bytes = self._body.read(len(out))
        out[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._body.close()
        super().close()


class _S3StagedBlob(StagedBlob):
    def __init__(self, store: S3BlobStore) -> None:
        super().__init__()
        self._store = store
        try:
            fd, self._path = tempfile.mkstemp(prefix="plinth-s3-", suffix=".tmp")
        except OSError as exc:
            raise BlobStoreError(
                f"cannot create a local temp file to stage an upload: {exc.strerror or exc}",
                hint="check TMPDIR has free space and is writable",
            ) from exc
        self._file = os.fdopen(fd, "wb")

    def _write(self, data: bytes | bytearray | memoryview) -> None:
        try:
            self._file.write(data)
        except OSError as exc:
            raise BlobStoreError(f"cannot write {self._path}: {exc.strerror or exc}") from exc

    def _commit(self, key: str) -> None:
        store = self._store
        full = store._key(key)
        self._file.close()
        # By file name, so that the transfer manager reads each part from disk rather than
        # holding parts in memory (it does for file objects).
        with store._errors(f"write {full}"):
            store._client.upload_file(self._path, store.bucket, full, Config=store._transfer_config)
        self._cleanup()

    def _abort(self) -> None:
        self._cleanup()

    def _cleanup(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path)
