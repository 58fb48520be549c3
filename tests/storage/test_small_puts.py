"""Puts of small files (read whole, hashed, then written) and the read-back of large ones."""

from __future__ import annotations

import errno
import mmap
import os
from pathlib import Path

import pytest
from blake3 import blake3

from plinth.errors import BlobStoreError
from plinth.storage import ContentStore, LocalBlobStore, MemoryBlobStore, blob_key
from plinth.storage import local as local_module
from plinth.storage.blobs import CHUNK_SIZE, StagedBlob


@pytest.fixture
def content(tmp_path: Path) -> ContentStore:
    return ContentStore(LocalBlobStore(tmp_path / "store"))


def _blob_path(content: ContentStore, digest: str) -> Path:
    return Path(content.location(digest))


@pytest.mark.parametrize("size", [0, 1, 4096, CHUNK_SIZE - 1, CHUNK_SIZE, CHUNK_SIZE + 1])
def test_files_around_the_small_file_limit_store_their_exact_bytes(
    content: ContentStore, tmp_path: Path, size: int
) -> None:
    data = os.urandom(size)
    source = tmp_path / "f.bin"
    source.write_bytes(data)
    ref = content.put_file(source)
    assert (ref.digest, ref.size) == (blake3(data).hexdigest(), size)
    assert content.read_bytes(ref.digest) == data
    assert os.listdir(tmp_path / "store" / "tmp") == []  # no temp file left behind


def test_a_small_blob_already_stored_is_not_rewritten(
    content: ContentStore, tmp_path: Path
) -> None:
    (tmp_path / "a").write_bytes(b"same bytes")
    (tmp_path / "b").write_bytes(b"same bytes")
    first = content.put_file(tmp_path / "a")
    before = os.stat(_blob_path(content, first.digest))
    os.utime(_blob_path(content, first.digest), (1_000_000, 1_000_000))
    second = content.put_file(tmp_path / "b")
    after = os.stat(_blob_path(content, second.digest))
    assert second == first
    assert after.st_ino == before.st_ino  # the same file: no temp file renamed over it
    assert after.st_mtime > 1_000_000  # touched, so gc's grace period covers it


def test_a_torn_blob_of_the_wrong_size_is_replaced_by_a_small_put(
    content: ContentStore, tmp_path: Path
) -> None:
    data = b"the whole content"
    (tmp_path / "f").write_bytes(data)
    digest = blake3(data).hexdigest()
    torn = tmp_path / "store" / blob_key(digest)
    torn.parent.mkdir(parents=True)
    torn.write_bytes(data[:5])  # what a crash before writeback can leave
    assert content.put_file(tmp_path / "f").size == len(data)
    assert torn.read_bytes() == data


def test_a_failed_small_write_leaves_nothing_under_the_digest(
    content: ContentStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = b"never fully written"
    (tmp_path / "f").write_bytes(data)

    def full_disk(fd: int, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full_disk)
    with pytest.raises(BlobStoreError, match="No space left on device"):
        content.put_file(tmp_path / "f")
    monkeypatch.undo()
    assert not content.exists(blake3(data).hexdigest())
    assert os.listdir(tmp_path / "store" / "tmp") == []


class _CountingStore(MemoryBlobStore):
    """A memory store that counts staging objects: a backend without the local fast path."""

    stages = 0

    def stage(self) -> StagedBlob:
        type(self).stages += 1
        return super().stage()


def test_other_backends_skip_staging_for_a_small_blob_they_hold(tmp_path: Path) -> None:
    store = _CountingStore("test-small-puts")
    store.clear()
    content = ContentStore(store)
    (tmp_path / "a").write_bytes(b"twice")
    (tmp_path / "b").write_bytes(b"twice")
    refs = content.put_files([tmp_path / "a", tmp_path / "b"])
    assert refs[0] == refs[1]
    assert _CountingStore.stages == 1
    assert content.read_bytes(refs[0].digest) == b"twice"


def test_a_large_file_is_hashed_from_its_staged_copy(content: ContentStore, tmp_path: Path) -> None:
    size = local_module.KERNEL_COPY_MIN + 12345  # the kernel copy, read back while it runs
    data = os.urandom(size)
    (tmp_path / "big").write_bytes(data)
    ref = content.put_file(tmp_path / "big")
    assert (ref.digest, ref.size) == (blake3(data).hexdigest(), size)
    assert content.read_bytes(ref.digest) == data


def test_a_large_file_is_read_back_where_it_cannot_be_mapped(
    content: ContentStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def no_mapping(*args: object, **kwargs: object) -> mmap.mmap:
        calls.append(args)
        raise OSError(errno.ENODEV, "No such device")

    monkeypatch.setattr(mmap, "mmap", no_mapping)
    data = os.urandom(local_module.KERNEL_COPY_MIN + 4097)
    (tmp_path / "big").write_bytes(data)
    ref = content.put_file(tmp_path / "big")
    assert calls  # the mapping was tried, and the read-back took over
    assert ref.digest == blake3(data).hexdigest()
    assert content.read_bytes(ref.digest) == data
