"""The local folder backend: on-disk layout, staging area, and keys that cannot escape."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from blake3 import blake3

from plinth.errors import BlobStoreError, InvalidPathError, NotFoundError
from plinth.storage import ContentStore, LocalBlobStore, open_blob_store


def _put(store: LocalBlobStore, key: str, data: bytes) -> None:
    with store.stage() as staged:
        staged.write(data)
        staged.commit(key)


def _fail_while_staging(store: LocalBlobStore) -> None:
    with store.stage() as staged:
        staged.write(b"half")
        raise ValueError("boom")


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "artifacts")


def test_blobs_land_under_blobs_and_two_hex_digits(store: LocalBlobStore) -> None:
    ref = ContentStore(store).put_bytes(b"layout")
    digest = blake3(b"layout").hexdigest()
    path = store.root / "blobs" / digest[:2] / digest[2:]
    assert path.read_bytes() == b"layout"
    assert ContentStore(store).location(ref.digest) == str(path)
    assert os.listdir(store.root / "tmp") == []


def test_abort_removes_the_temp_file(store: LocalBlobStore) -> None:
    staged = store.stage()
    staged.write(b"half")
    assert len(os.listdir(store.root / "tmp")) == 1
    staged.abort()
    assert os.listdir(store.root / "tmp") == []
    with pytest.raises(ValueError, match="boom"):
        _fail_while_staging(store)
    assert os.listdir(store.root / "tmp") == []


def test_committed_blob_is_readable_by_a_fresh_store(tmp_path: Path) -> None:
    ref = ContentStore(open_blob_store("artifacts", root=tmp_path)).put_bytes(b"persisted")
    fresh = ContentStore(open_blob_store(str(tmp_path / "artifacts"), root=Path("/")))
    assert fresh.read_bytes(ref.digest) == b"persisted"
    assert [b.digest for b in fresh.iter_blobs()] == [ref.digest]


def test_staging_area_is_neither_a_key_nor_listed(store: LocalBlobStore) -> None:
    with store.stage() as staged:
        staged.write(b"in flight")
        assert list(store.list()) == []
        assert list(store.list("t")) == []
        with pytest.raises(InvalidPathError, match="staging"):
            store.exists("tmp/anything")
        with pytest.raises(InvalidPathError, match="staging"):
            staged.commit("tmp/x")


@pytest.mark.parametrize("key", ["../outside", "a/../../outside", "/etc/passwd", "a\\..\\b"])
def test_keys_cannot_escape_the_root(store: LocalBlobStore, key: str, tmp_path: Path) -> None:
    with pytest.raises(InvalidPathError):
        store.open(key)
    with pytest.raises(InvalidPathError):
        _put(store, key, b"x")
    assert not (tmp_path / "outside").exists()


def test_a_folder_is_not_a_blob(store: LocalBlobStore) -> None:
    with store.stage() as staged:
        staged.write(b"x")
        staged.commit("dir/file")
    assert not store.exists("dir")
    with pytest.raises(NotFoundError):
        store.open("dir")
    store.delete("dir")  # not a blob: nothing to delete
    assert store.exists("dir/file")


def test_check_fails_when_the_root_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "artifacts").write_text("not a folder")
    store = LocalBlobStore(tmp_path / "artifacts")
    with pytest.raises(BlobStoreError, match="artifacts") as info:
        store.check()
    assert "folder" in info.value.hint


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores file permissions")
def test_check_fails_when_the_folder_is_read_only(tmp_path: Path) -> None:
    root = tmp_path / "artifacts"
    root.mkdir()
    root.chmod(0o500)
    try:
        with pytest.raises(BlobStoreError):
            LocalBlobStore(root).check()
    finally:
        root.chmod(0o700)


def test_new_files_follow_the_umask(store: LocalBlobStore) -> None:
    old = os.umask(0o022)
    try:
        with store.stage() as staged:
            staged.write(b"x")
            staged.commit("shared/file")
    finally:
        os.umask(old)
    assert (store.root / "shared" / "file").stat().st_mode & 0o777 == 0o644
