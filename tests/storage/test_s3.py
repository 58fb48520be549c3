"""The S3 backend against moto's S3 server: key layout, uploads, and a missing bucket."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path
from typing import Any

import boto3
import pytest
from blake3 import blake3

from plinth.errors import BlobStoreError, NotFoundError
from plinth.storage import ContentStore, open_blob_store
from plinth.storage.s3 import S3BlobStore

pytestmark = pytest.mark.s3

MiB = 1024 * 1024


def _client(endpoint: str) -> Any:
    return boto3.session.Session().client("s3", endpoint_url=endpoint)


def _put(store: S3BlobStore, key: str, data: bytes) -> None:
    with store.stage() as staged:
        staged.write(data)
        staged.commit(key)


def _store(bucket: str, endpoint: str, tmp_path: Path, prefix: str = "team/proj") -> S3BlobStore:
    store = open_blob_store(f"s3://{bucket}/{prefix}", root=tmp_path, endpoint_url=endpoint)
    assert isinstance(store, S3BlobStore)
    return store


def test_blobs_live_under_the_prefix(s3_bucket: str, moto_endpoint: str, tmp_path: Path) -> None:
    with _store(s3_bucket, moto_endpoint, tmp_path) as store:
        ref = ContentStore(store).put_bytes(b"in the bucket")
        digest = blake3(b"in the bucket").hexdigest()
        key = f"team/proj/blobs/{digest[:2]}/{digest[2:]}"
        assert ContentStore(store).location(ref.digest) == f"s3://{s3_bucket}/{key}"
        assert store.describe() == f"s3://{s3_bucket}/team/proj at {moto_endpoint}"
    client = _client(moto_endpoint)
    body = client.get_object(Bucket=s3_bucket, Key=key)["Body"]
    assert body.read() == b"in the bucket"


def test_stores_with_other_prefixes_do_not_see_each_other(
    s3_bucket: str, moto_endpoint: str, tmp_path: Path
) -> None:
    with (
        _store(s3_bucket, moto_endpoint, tmp_path, "a") as a,
        _store(s3_bucket, moto_endpoint, tmp_path, "ab") as ab,
    ):
        ref = ContentStore(a).put_bytes(b"only in a")
        assert not ContentStore(ab).exists(ref.digest)
        assert list(ab.list()) == []
        assert [i.key for i in a.list()] == [f"blobs/{ref.digest[:2]}/{ref.digest[2:]}"]


def test_large_blobs_use_a_multipart_upload(
    s3_bucket: str, moto_endpoint: str, tmp_path: Path
) -> None:
    data = os.urandom(20 * MiB)
    with _store(s3_bucket, moto_endpoint, tmp_path) as store:
        content = ContentStore(store)
        ref = content.put_stream(io.BytesIO(data))
        head = _client(moto_endpoint).head_object(
            Bucket=s3_bucket, Key="team/proj/" + "blobs/" + ref.digest[:2] + "/" + ref.digest[2:]
        )
        assert "-" in head["ETag"]  # the ETag of a multipart upload is "<md5>-<parts>"
        assert head["ContentLength"] == len(data)
        assert content.read_bytes(ref.digest) == data


def test_staging_files_are_removed(
    s3_bucket: str, moto_endpoint: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    staging = tmp_path / "staging"
    staging.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(staging))
    with _store(s3_bucket, moto_endpoint, tmp_path) as store:
        with store.stage() as staged:
            staged.write(b"committed")
            assert len(list(staging.iterdir())) == 1
            staged.commit("k")
        with store.stage() as staged:
            staged.write(b"aborted")
        assert list(staging.iterdir()) == []


def test_missing_bucket_is_a_blob_store_error(
    moto_endpoint: str, aws_env: dict[str, str], tmp_path: Path
) -> None:
    with _store("plinth-no-such-bucket", moto_endpoint, tmp_path) as store:
        with pytest.raises(BlobStoreError, match="plinth-no-such-bucket") as info:
            store.check()
        assert "does not exist" in str(info.value)
        assert "create the bucket" in info.value.hint
        with pytest.raises(BlobStoreError, match="plinth-no-such-bucket"):
            list(store.list())
        with pytest.raises(BlobStoreError, match="plinth-no-such-bucket"):
            _put(store, "k", b"x")
        with pytest.raises(BlobStoreError, match="plinth-no-such-bucket"):
            store.open("k")
        assert not store.exists("k")


def test_missing_key_is_not_found(s3_bucket: str, moto_endpoint: str, tmp_path: Path) -> None:
    store = _store(s3_bucket, moto_endpoint, tmp_path)
    with store, pytest.raises(NotFoundError, match=f"s3://{s3_bucket}/team/proj/nothing"):
        store.open("nothing")
