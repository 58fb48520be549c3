"""ContentStore details beyond the backend contract: sources, digests, partial reads."""

from __future__ import annotations

from pathlib import Path

import pytest
from blake3 import blake3

from plinth.errors import BlobCorruptedError, NotFoundError, UsageError
from plinth.storage import ContentStore, MemoryBlobStore, blob_key, check_digest, hash_file


@pytest.fixture
def content() -> ContentStore:
    store = MemoryBlobStore("test-content")
    store.clear()
    return ContentStore(store)


def test_blob_key_layout() -> None:
    digest = blake3(b"k").hexdigest()
    assert blob_key(digest) == f"blobs/{digest[:2]}/{digest[2:]}"
    assert check_digest(digest) == digest


def test_hash_file_streams_the_same_digest_as_put(content: ContentStore, tmp_path: Path) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc" * 1_000_000)
    ref = hash_file(path)
    assert ref.digest == blake3(b"abc" * 1_000_000).hexdigest()
    assert ref.size == 3_000_000
    assert not content.exists(ref.digest)  # hashing stores nothing
    assert content.put_file(path) == ref


def test_put_file_of_a_missing_file_is_not_found(content: ContentStore, tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no file to store"):
        content.put_file(tmp_path / "missing.bin")
    with pytest.raises(UsageError, match="cannot read"):
        content.put_file(tmp_path)
    assert list(content.iter_blobs()) == []


def test_a_partial_read_is_not_verified_but_a_full_one_is(content: ContentStore) -> None:
    ref = content.put_bytes(b"0123456789")
    with content.store.stage() as staged:
        staged.write(b"0123456780")
        staged.commit(blob_key(ref.digest))
    with content.open(ref.digest) as reader:
        assert reader.read(5) == b"01234"  # no verdict before the end
        with pytest.raises(BlobCorruptedError):
            reader.read()
        with pytest.raises(BlobCorruptedError):  # and no clean EOF afterwards either
            reader.read()


def test_corruption_error_has_the_cli_shape(content: ContentStore) -> None:
    ref = content.put_bytes(b"a")
    with content.store.stage() as staged:
        staged.write(b"b")
        staged.commit(blob_key(ref.digest))
    with pytest.raises(BlobCorruptedError) as info:
        content.read_bytes(ref.digest)
    error = info.value
    assert error.exit_code == 1
    assert error.digest == ref.digest
    assert (
        error.location
        == content.location(ref.digest)
        == f"memory://test-content/{blob_key(ref.digest)}"
    )
    assert error.to_dict()["errors"][0]["type"] == "BlobCorruptedError"  # type: ignore[index]


def test_content_store_is_a_context_manager_and_memory_blobs_outlive_it(tmp_path: Path) -> None:
    from plinth.storage import open_blob_store

    with ContentStore(open_blob_store("memory://test-close", root=tmp_path)) as content:
        ref = content.put_bytes(b"kept")
    # Memory stores keep their blobs after close: a new one with the same name sees them.
    with ContentStore(open_blob_store("memory://test-close", root=tmp_path)) as again:
        assert again.read_bytes(ref.digest) == b"kept"
        again.store.clear()  # type: ignore[attr-defined]
