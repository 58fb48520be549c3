"""The local folder backend: on-disk layout, staging area, and keys that cannot escape."""

from __future__ import annotations

import errno
import itertools
import os
from pathlib import Path

import pytest
from blake3 import blake3

from plinth.errors import BlobStoreError, InvalidPathError, NotFoundError
from plinth.storage import ContentStore, LocalBlobStore, hash_file, local, open_blob_store
from plinth.storage.blobs import CHUNK_SIZE
from plinth.storage.local import KERNEL_COPY_MIN


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


def test_new_files_in_a_shared_folder_follow_the_umask(tmp_path: Path) -> None:
    (tmp_path / "artifacts").mkdir(mode=0o755)
    store = LocalBlobStore(tmp_path / "artifacts")
    old = os.umask(0o022)
    try:
        with store.stage() as staged:
            staged.write(b"x")
            staged.commit("shared/file")
    finally:
        os.umask(old)
    assert (store.root / "shared" / "file").stat().st_mode & 0o777 == 0o644


# -- large files: copied inside the kernel, hashed from the staged copy --------------------


def _random_file(path: Path, size: int) -> bytes:
    data = os.urandom(size)
    path.write_bytes(data)
    return data


def test_large_file_is_stored_exactly(store: LocalBlobStore, tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    data = _random_file(source, KERNEL_COPY_MIN + 3 * CHUNK_SIZE + 17)
    content = ContentStore(store)
    ref = content.put_file(source)
    assert ref == hash_file(source)
    assert ref.digest == blake3(data).hexdigest()
    assert content.read_bytes(ref.digest) == data
    assert os.listdir(store.root / "tmp") == []


def test_large_file_appends_to_what_was_staged(store: LocalBlobStore, tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    data = _random_file(source, KERNEL_COPY_MIN + 5)
    seen = bytearray()
    with store.stage() as staged, open(source, "rb", buffering=0) as reader:
        staged.write(b"head:")
        reader.seek(3)  # from the reader's position, like read() would
        assert staged.write_from(reader, seen.extend) == len(data) - 3
        assert reader.read() == b"", "the reader is left at EOF"
        staged.write(b":tail")
        assert staged.size == len(data) - 3 + 10
        staged.commit("blob")
    assert bytes(seen) == data[3:]
    assert (store.root / "blob").read_bytes() == b"head:" + data[3:] + b":tail"


@pytest.mark.parametrize("unsupported", [["copy_file_range"], ["copy_file_range", "sendfile"]])
def test_large_file_without_kernel_copy(
    store: LocalBlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, unsupported: list[str]
) -> None:
    # copy_file_range cannot cross file systems on some kernels; sendfile is refused by
    # some file systems: each falls back to the next way of copying.
    def refuse(*args: object) -> int:
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    for name in unsupported:
        monkeypatch.setattr(os, name, refuse)
    source = tmp_path / "model.bin"
    data = _random_file(source, KERNEL_COPY_MIN + CHUNK_SIZE + 1)
    content = ContentStore(store)
    assert content.read_bytes(content.put_file(source).digest) == data


def test_a_failing_copy_leaves_nothing(
    store: LocalBlobStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "copy_file_range", fail)
    source = tmp_path / "model.bin"
    _random_file(source, KERNEL_COPY_MIN)
    with pytest.raises(BlobStoreError, match="No space left"):
        ContentStore(store).put_file(source)
    assert list(store.list()) == []
    assert os.listdir(store.root / "tmp") == []


# -- durability ----------------------------------------------------------------------------


def test_sync_without_syncfs_fsyncs_each_blob_and_folder(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    content = ContentStore(store)
    refs = [content.put_bytes(data) for data in (b"a", b"b")]
    synced: list[str] = []
    fsync = os.fsync

    def recording_fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        fsync(fd)

    monkeypatch.setattr(local, "_syncfs", lambda: None)
    monkeypatch.setattr(os, "fsync", recording_fsync)
    content.sync(ref.digest for ref in refs)
    blobs = {content.location(ref.digest) for ref in refs}
    assert blobs | {os.path.dirname(path) for path in blobs} == set(synced)


def test_blob_fsync_setting_syncs_each_put(tmp_path: Path) -> None:
    from plinth.context import Context
    from plinth.settings import load_settings

    settings = load_settings(tmp_path, env={"PLINTH_BLOB_FSYNC": "true"}, discover=False)
    with Context(settings) as ctx:
        assert ctx.blobs.fsync
    assert not ContentStore(LocalBlobStore(tmp_path)).fsync


def test_a_taken_temp_name_is_not_reused(
    store: LocalBlobStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A forked child continues its parent's counter: the second name must not clobber.
    monkeypatch.setattr(local, "_TEMP_COUNTER", itertools.count(7))
    (store.root / "tmp").mkdir(parents=True)
    taken = store.root / "tmp" / f"{local._TEMP_PREFIX}7.tmp"
    taken.write_bytes(b"another writer's")
    ref = ContentStore(store).put_bytes(b"mine")
    assert taken.read_bytes() == b"another writer's"
    assert ContentStore(store).read_bytes(ref.digest) == b"mine"
