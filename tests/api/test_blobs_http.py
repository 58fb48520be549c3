"""Blobs over HTTP: digests re-checked, batches, resumable uploads, presigned S3 URLs."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from blake3 import blake3

from plinth.errors import BlobStoreError
from plinth.guards.team_client import TeamClient
from plinth.storage import ContentStore, blob_key
from plinth.storage.http_blobs import CHUNK, FRAME_HEADER, HttpBlobStore
from plinth.testing.server import ServerHandle, start_server
from plinth.testing.tcpproxy import TcpProxy

httpx = pytest.importorskip("httpx")
pytest.importorskip("starlette")

PROJECT = "blobs"
P = f"/api/v1/projects/{PROJECT}"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerHandle]:
    handle = start_server(tmp_path_factory.mktemp("server"), token_limit=100_000)
    handle.create_project(PROJECT)
    yield handle
    handle.stop()


@pytest.fixture(scope="module")
def token(server: ServerHandle) -> str:
    return server.token("ada", PROJECT, "write")


def _content(url: str, token: str) -> ContentStore:
    client = TeamClient(url, token=token, unavailable=BlobStoreError)
    return ContentStore(HttpBlobStore(client, PROJECT))


def _stored(server: ServerHandle, digest: str) -> bool:
    local = server.root / "projects" / PROJECT / "artifacts" / blob_key(digest)
    return local.is_file()


def test_a_blob_whose_bytes_do_not_match_its_digest_is_refused(
    server: ServerHandle, token: str
) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    claimed = blake3(b"what I said").hexdigest()
    answer = httpx.put(f"{server.url}{P}/blobs/{claimed}", content=b"what I sent", headers=auth)
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "body"
    assert not _stored(server, claimed)
    assert httpx.head(f"{server.url}{P}/blobs/{claimed}", headers=auth).status_code == 404
    bad = httpx.put(f"{server.url}{P}/blobs/..%2F..%2Fetc", content=b"x", headers=auth)
    assert bad.status_code in (404, 422)
    good = blake3(b"what I sent").hexdigest()
    assert httpx.put(
        f"{server.url}{P}/blobs/{good}", content=b"what I sent", headers=auth
    ).is_success
    assert _stored(server, good)
    got = httpx.get(f"{server.url}{P}/blobs/{good}", headers=auth)
    assert got.content == b"what I sent"
    head = httpx.head(f"{server.url}{P}/blobs/{good}", headers=auth)
    assert head.headers["x-blob-size"] == str(len(b"what I sent"))


def test_many_small_files_go_in_one_request(
    server: ServerHandle, token: str, tmp_path: Path
) -> None:
    files = []
    for i in range(200):
        path = tmp_path / f"f{i}.txt"
        path.write_bytes(f"small file {i}\n".encode())
        files.append(path)
    content = _content(server.url, token)
    from plinth.ledger.accounts import AccountStore

    accounts = AccountStore.open(server.config.accounts_url)
    before = len(accounts.audit_log(project=PROJECT, limit=10_000))
    refs = content.put_files(files)
    after = accounts.audit_log(project=PROJECT, limit=10_000)
    accounts.close()
    new = after[: len(after) - before]
    assert [(e.action, e.detail) for e in new] == [("blob.batch", {"count": 200})]
    assert all(_stored(server, ref.digest) for ref in refs)
    assert content.read_bytes(refs[7].digest) == b"small file 7\n"
    content.close()


def test_a_batch_with_one_forged_frame_stores_nothing(server: ServerHandle, token: str) -> None:
    good, bad = b"honest bytes", b"forged bytes"
    body = FRAME_HEADER.pack(blake3(good).hexdigest().encode(), len(good)) + good
    body += FRAME_HEADER.pack(blake3(b"something else").hexdigest().encode(), len(bad)) + bad
    answer = httpx.post(
        f"{server.url}{P}/blobs:batch", content=body, headers={"Authorization": f"Bearer {token}"}
    )
    assert answer.status_code == 422
    assert answer.json()["errors"][0]["field"] == "body[1]"
    assert not _stored(server, blake3(good).hexdigest())
    truncated = body[: FRAME_HEADER.size + 3]
    answer = httpx.post(
        f"{server.url}{P}/blobs:batch",
        content=truncated,
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 422


def test_the_resumable_upload_protocol(server: ServerHandle, token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    data = os.urandom(3000)
    digest = blake3(data).hexdigest()
    upload = httpx.post(f"{server.url}{P}/uploads", headers=auth).json()["id"]
    url = f"{server.url}{P}/uploads/{upload}"
    assert httpx.put(url, params={"offset": 0}, content=data[:1000], headers=auth).is_success
    late = httpx.put(url, params={"offset": 0}, content=data[:1000], headers=auth)
    assert late.status_code == 409  # the chunk already landed: ask where to go on
    assert httpx.get(url, headers=auth).json() == {"offset": 1000}
    assert httpx.put(url, params={"offset": 1000}, content=data[1000:], headers=auth).is_success
    wrong = httpx.post(f"{url}:commit", params={"digest": "0" * 64}, headers=auth)
    assert wrong.status_code == 422
    assert not _stored(server, "0" * 64)
    assert not _stored(server, digest)
    assert httpx.get(f"{server.url}{P}/uploads/{'f' * 8}", headers=auth).status_code == 404


def test_a_large_upload_goes_on_after_the_connection_is_cut(
    server: ServerHandle, token: str, tmp_path: Path
) -> None:
    data = os.urandom(3 * CHUNK + 123)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    parts = server.root / "projects" / PROJECT / "artifacts" / "uploads"
    cut_at: list[int] = []

    def cut_after_the_first_chunk(proxy: TcpProxy) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            found = list(parts.glob("*/*")) if parts.exists() else []
            if found:
                cut_at.append(len(found))
                proxy.block()  # the server "goes away" mid-upload
                time.sleep(0.3)
                proxy.unblock()
                return
            time.sleep(0.002)

    with TcpProxy(("127.0.0.1", server.port)) as proxy:
        watcher = threading.Thread(target=cut_after_the_first_chunk, args=(proxy,))
        watcher.start()
        content = _content(f"http://127.0.0.1:{proxy.port}", token)
        ref = content.put_file(path)
        watcher.join()
        assert cut_at == [1], "the connection was cut after the first of four chunks"
        assert ref.digest == blake3(data).hexdigest()
        assert content.read_bytes(ref.digest) == data
        content.close()
    assert _stored(server, ref.digest)
    assert not list(parts.glob("*/*")), "the upload's parts are removed once committed"


@pytest.mark.s3
def test_an_s3_store_hands_out_presigned_urls(
    tmp_path_factory: pytest.TempPathFactory, s3_bucket: str, moto_endpoint: str, tmp_path: Path
) -> None:
    import boto3

    handle = start_server(
        tmp_path_factory.mktemp("s3server"),
        artifacts=f"s3://{s3_bucket}/team",
        s3_endpoint=moto_endpoint,
    )
    try:
        handle.create_project(PROJECT)
        token = handle.token("ada", PROJECT, "write")
        auth = {"Authorization": f"Bearer {token}"}
        assert httpx.get(f"{handle.url}{P}/blobs", headers=auth).json()["presign"] is True
        # the protocol: a presigned PUT straight to S3, then the server checks the digest
        data = os.urandom(5000)
        upload = httpx.post(f"{handle.url}{P}/uploads", headers=auth).json()["id"]
        url = httpx.post(f"{handle.url}{P}/uploads/{upload}:presign", headers=auth).json()["url"]
        assert url.startswith(moto_endpoint)
        assert httpx.put(url, content=data).is_success
        wrong = httpx.post(
            f"{handle.url}{P}/uploads/{upload}:commit",
            params={"digest": blake3(b"other").hexdigest()},
            headers=auth,
        )
        assert wrong.status_code == 422
        # the client: a large file goes to S3 directly, and is read back from S3 directly
        big = os.urandom(9 << 20)
        (tmp_path / "big.bin").write_bytes(big)
        content = _content(handle.url, token)
        ref = content.put_file(tmp_path / "big.bin")
        assert content.read_bytes(ref.digest) == big
        s3 = boto3.client("s3", endpoint_url=moto_endpoint)
        keys = {o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket).get("Contents", [])}
        assert f"team/{PROJECT}/{blob_key(ref.digest)}" in keys
        assert not any("/uploads/" in key for key in keys)
        assert f"team/{PROJECT}/{blob_key(blake3(data).hexdigest())}" not in keys
        content.close()
    finally:
        handle.stop()
