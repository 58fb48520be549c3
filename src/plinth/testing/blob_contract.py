"""The contract every :class:`BlobStore` must pass, for plinth's backends and plugins alike.

Subclass :class:`BlobStoreContract` in a test module and provide a ``blob_store`` fixture
returning a fresh, empty store::

    import pytest
    from plinth.testing.blob_contract import BlobStoreContract

    class TestMyStore(BlobStoreContract):
        @pytest.fixture
        def blob_store(self, tmp_path):
            with MyBlobStore(tmp_path) as store:
                yield store
"""

from __future__ import annotations

import io
import os
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from blake3 import blake3

from plinth.errors import BlobCorruptedError, NotFoundError, UsageError
from plinth.storage.blobs import BlobStore
from plinth.storage.content import ContentStore, blob_key, hash_file

__all__ = ["BlobStoreContract"]

MiB = 1024 * 1024


def _write_random_file(path: Path, size: int) -> None:
    with path.open("wb") as out:
        for start in range(0, size, MiB):
            out.write(os.urandom(min(MiB, size - start)))


def _overwrite(store: BlobStore, key: str, data: bytes) -> None:
    with store.stage() as staged:
        staged.write(data)
        staged.commit(key)


def _fail_while_staging(store: BlobStore) -> None:
    with store.stage() as staged:
        staged.write(b"failed half way")
        raise RuntimeError("boom")


def _read_in_small_pieces(content: ContentStore, digest: str) -> None:
    with content.open(digest) as reader:
        while reader.read(4):
            pass


class BlobStoreContract:
    """Behaviour a user relies on, whatever backend holds their artifacts."""

    #: Size of the file streamed in :meth:`test_streaming_put_keeps_memory_bounded`.
    large_file_size = 24 * MiB

    @pytest.fixture
    def content(self, blob_store: BlobStore) -> ContentStore:
        return ContentStore(blob_store)

    # -- content addressing -------------------------------------------------------------

    def test_put_and_read_back(self, content: ContentStore) -> None:
        ref = content.put_bytes(b"hello plinth")
        assert ref.digest == blake3(b"hello plinth").hexdigest()
        assert ref.size == len(b"hello plinth")
        assert content.exists(ref.digest)
        assert content.read_bytes(ref.digest) == b"hello plinth"
        with content.open(ref.digest) as reader:
            assert reader.read() == b"hello plinth"

    def test_empty_blob_roundtrips(self, content: ContentStore) -> None:
        ref = content.put_bytes(b"")
        assert ref.size == 0
        assert content.read_bytes(ref.digest) == b""

    def test_file_stream_and_bytes_agree(self, content: ContentStore, tmp_path: Path) -> None:
        source = tmp_path / "data.bin"
        _write_random_file(source, 3 * MiB + 17)
        data = source.read_bytes()
        by_file = content.put_file(source)
        assert by_file == content.put_stream(io.BytesIO(data))
        assert by_file == content.put_bytes(data)
        assert by_file == hash_file(source)
        assert content.read_bytes(by_file.digest) == data

    def test_identical_content_is_stored_once(
        self, content: ContentStore, blob_store: BlobStore, tmp_path: Path
    ) -> None:
        source = tmp_path / "same.txt"
        source.write_bytes(b"same bytes")
        refs = {content.put_bytes(b"same bytes"), content.put_file(source)}
        refs.add(content.put_stream(io.BytesIO(b"same bytes")))
        assert len(refs) == 1
        assert [b.digest for b in content.iter_blobs()] == [refs.pop().digest]
        assert len(list(blob_store.list("blobs/"))) == 1

    def test_put_skips_content_already_present(
        self, content: ContentStore, blob_store: BlobStore
    ) -> None:
        # Observable through a blob damaged in place: a second put does not rewrite it.
        ref = content.put_bytes(b"original")
        _overwrite(blob_store, blob_key(ref.digest), b"damaged!")
        assert content.put_bytes(b"original") == ref
        with pytest.raises(BlobCorruptedError):
            content.read_bytes(ref.digest)

    def test_put_rewrites_a_stored_blob_of_the_wrong_size(
        self, content: ContentStore, blob_store: BlobStore
    ) -> None:
        # What an OS crash can leave of a blob written without fsync: a short or empty file.
        ref = content.put_bytes(b"original content")
        for torn in (b"orig", b""):
            _overwrite(blob_store, blob_key(ref.digest), torn)
            with pytest.raises(BlobCorruptedError):
                content.read_bytes(ref.digest)
            assert content.put_bytes(b"original content") == ref
            assert content.read_bytes(ref.digest) == b"original content"

    def test_put_files_stores_each_file_in_order(
        self, blob_store: BlobStore, tmp_path: Path
    ) -> None:
        content = ContentStore(blob_store, fsync=True)  # one sync for the batch
        paths = []
        for i, data in enumerate([b"one", b"two", b"one", b""]):
            paths.append(tmp_path / f"{i}.bin")
            paths[-1].write_bytes(data)
        refs = content.put_files(paths)
        assert refs == [hash_file(path) for path in paths]
        assert [content.read_bytes(ref.digest) for ref in refs] == [b"one", b"two", b"one", b""]
        assert content.put_file(paths[1]) == refs[1]  # single puts sync too
        content.sync([refs[0].digest])

    def test_put_of_present_content_refreshes_its_age(
        self, content: ContentStore, blob_store: BlobStore
    ) -> None:
        # gc keeps blobs younger than a grace period; a re-put must count as young again.
        if hasattr(blob_store, "touch_after_s"):
            blob_store.touch_after_s = 0.0
        ref = content.put_bytes(b"touch me")
        (first,) = [b.modified for b in content.iter_blobs() if b.digest == ref.digest]
        time.sleep(1.1)  # S3's LastModified has one-second resolution
        content.put_bytes(b"touch me")
        (second,) = [b.modified for b in content.iter_blobs() if b.digest == ref.digest]
        assert second >= first + 1.0

    def test_streaming_put_keeps_memory_bounded(
        self, content: ContentStore, tmp_path: Path
    ) -> None:
        size = self.large_file_size
        source = tmp_path / "large.bin"
        _write_random_file(source, size)
        started = not tracemalloc.is_tracing()
        if started:
            tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            before, _ = tracemalloc.get_traced_memory()
            ref = content.put_file(source)
            after, peak = tracemalloc.get_traced_memory()
        finally:
            if started:
                tracemalloc.stop()
        assert ref.size == size
        # An in-memory backend keeps the blob itself; what must stay small is everything
        # else held at once while streaming (one more copy of the file would be `size`).
        retained = max(after - before, 0)
        assert peak - before - retained < size // 2, (peak - before, retained)
        assert hash_file(source) == ref

    # -- verification ------------------------------------------------------------------

    def test_corrupted_blob_is_detected_on_read(
        self, content: ContentStore, blob_store: BlobStore
    ) -> None:
        ref = content.put_bytes(b"the real content")
        _overwrite(blob_store, blob_key(ref.digest), b"not the real content")
        with pytest.raises(BlobCorruptedError) as info:
            content.read_bytes(ref.digest)
        message = str(info.value)
        assert ref.digest in message
        assert content.location(ref.digest) in message
        assert blake3(b"not the real content").hexdigest() in message
        with pytest.raises(BlobCorruptedError):
            _read_in_small_pieces(content, ref.digest)
        # Unverified reads return the stored bytes, for forensics.
        assert content.read_bytes(ref.digest, verify=False) == b"not the real content"

    def test_truncated_blob_is_detected(self, content: ContentStore, blob_store: BlobStore) -> None:
        ref = content.put_bytes(b"x" * 5000)
        _overwrite(blob_store, blob_key(ref.digest), b"x" * 4999)
        with pytest.raises(BlobCorruptedError):
            content.read_bytes(ref.digest)

    def test_wrong_recorded_size_is_detected(self, content: ContentStore) -> None:
        ref = content.put_bytes(b"twelve bytes")
        assert content.read_bytes(ref.digest, size=12) == b"twelve bytes"
        with pytest.raises(BlobCorruptedError, match="13"):
            content.read_bytes(ref.digest, size=13)

    def test_copy_to_writes_the_blob(self, content: ContentStore, tmp_path: Path) -> None:
        ref = content.put_bytes(b"model weights")
        dest = tmp_path / "out" / "deep" / "model.bin"
        assert content.copy_to(ref.digest, dest) == ref
        assert dest.read_bytes() == b"model weights"
        assert sorted(p.name for p in dest.parent.iterdir()) == ["model.bin"]

    def test_copy_to_leaves_nothing_on_corruption(
        self, content: ContentStore, blob_store: BlobStore, tmp_path: Path
    ) -> None:
        ref = content.put_bytes(b"good")
        _overwrite(blob_store, blob_key(ref.digest), b"evil")
        checkout = tmp_path / "checkout"
        fresh = checkout / "fresh" / "file.bin"
        with pytest.raises(BlobCorruptedError):
            content.copy_to(ref.digest, fresh)
        assert not fresh.exists()
        assert list(fresh.parent.iterdir()) == []
        # An existing file at the destination is left as it was.
        existing = checkout / "existing.bin"
        existing.write_bytes(b"previous checkout")
        with pytest.raises(BlobCorruptedError):
            content.copy_to(ref.digest, existing)
        assert existing.read_bytes() == b"previous checkout"
        assert sorted(p.name for p in checkout.iterdir()) == ["existing.bin", "fresh"]

    # -- missing, invalid, deleted -----------------------------------------------------

    def test_missing_digest_is_not_found(self, content: ContentStore, tmp_path: Path) -> None:
        digest = blake3(b"never stored").hexdigest()
        assert not content.exists(digest)
        for action in (
            lambda: content.open(digest),
            lambda: content.read_bytes(digest),
            lambda: content.copy_to(digest, tmp_path / "nothing.bin"),
        ):
            with pytest.raises(NotFoundError) as info:
                action()
            assert digest in str(info.value)
            assert content.location(digest) in str(info.value)
        assert not (tmp_path / "nothing.bin").exists()

    @pytest.mark.parametrize("digest", ["", "abc", "A" * 64, "g" * 64, "a" * 63, "../" + "a" * 61])
    def test_invalid_digest_is_a_usage_error(self, content: ContentStore, digest: str) -> None:
        with pytest.raises(UsageError, match="invalid blob digest"):
            content.read_bytes(digest)

    def test_delete(self, content: ContentStore, blob_store: BlobStore) -> None:
        keep = content.put_bytes(b"keep")
        drop = content.put_bytes(b"drop")
        content.delete(drop.digest)
        assert not content.exists(drop.digest)
        with pytest.raises(NotFoundError):
            content.read_bytes(drop.digest)
        content.delete(drop.digest)  # already gone: not an error
        blob_store.delete("never/was/here")
        assert [b.digest for b in content.iter_blobs()] == [keep.digest]

    # -- listing -----------------------------------------------------------------------

    def test_iter_blobs_reports_sizes(self, content: ContentStore) -> None:
        started = time.time()
        refs = {content.put_bytes(b"a" * n) for n in (0, 1, 1000, MiB + 1)}
        blobs = list(content.iter_blobs())
        assert {(b.digest, b.size) for b in blobs} == {(r.digest, r.size) for r in refs}
        # Clocks of remote servers drift and some keep whole seconds: a day's slack.
        assert all(abs(b.modified - started) < 86_400 for b in blobs)

    def test_iter_blobs_ignores_other_keys(
        self, content: ContentStore, blob_store: BlobStore
    ) -> None:
        ref = content.put_bytes(b"real")
        _overwrite(blob_store, "blobs/zz/not-a-digest", b"x")
        _overwrite(blob_store, "blobs/stray.tmp", b"x")
        _overwrite(blob_store, "manifests/run.json", b"{}")
        assert [b.digest for b in content.iter_blobs()] == [ref.digest]

    def test_list_by_prefix(self, blob_store: BlobStore) -> None:
        for key, data in {"a/1": b"1", "a/2": b"22", "ab/3": b"333", "b/4": b"4444"}.items():
            _overwrite(blob_store, key, data)
        assert {(i.key, i.size) for i in blob_store.list("a/")} == {("a/1", 1), ("a/2", 2)}
        assert {i.key for i in blob_store.list("a")} == {"a/1", "a/2", "ab/3"}
        assert {i.key for i in blob_store.list()} == {"a/1", "a/2", "ab/3", "b/4"}
        assert list(blob_store.list("nothing/")) == []

    # -- the BlobStore interface itself ------------------------------------------------

    def test_open_exists_and_replace(self, blob_store: BlobStore) -> None:
        assert not blob_store.exists("notes/a.txt")
        with pytest.raises(NotFoundError, match=r"notes/a\.txt"):
            blob_store.open("notes/a.txt")
        _overwrite(blob_store, "notes/a.txt", b"first")
        _overwrite(blob_store, "notes/a.txt", b"second")
        assert blob_store.exists("notes/a.txt")
        assert not blob_store.exists("notes")
        with blob_store.open("notes/a.txt") as reader:
            assert reader.read() == b"second"
        assert "notes/a.txt" in blob_store.location("notes/a.txt")

    def test_staged_blob_is_invisible_until_commit(self, blob_store: BlobStore) -> None:
        with blob_store.stage() as staged:
            staged.write(b"partial")
            assert not blob_store.exists("k/v")
            assert list(blob_store.list()) == []
            staged.commit("k/v")
        assert blob_store.exists("k/v")

    def test_aborted_stage_leaves_nothing(self, blob_store: BlobStore) -> None:
        staged = blob_store.stage()
        staged.write(b"x" * 1000)
        staged.abort()
        staged.abort()  # twice is fine
        with blob_store.stage() as staged:
            staged.write(b"left without commit")
        with pytest.raises(RuntimeError, match="boom"):
            _fail_while_staging(blob_store)
        assert list(blob_store.list()) == []

    def test_staged_blob_is_single_use(self, blob_store: BlobStore) -> None:
        with blob_store.stage() as staged:
            staged.write(b"once")
            staged.commit("once")
            with pytest.raises(UsageError, match="committed"):
                staged.write(b"twice")
            with pytest.raises(UsageError):
                staged.commit("twice")
        assert not blob_store.exists("twice")

    @pytest.mark.parametrize("key", ["", "/abs", "a//b", "a/../b", "./a", "a\\b", "a/\x00"])
    def test_invalid_keys_are_refused(self, blob_store: BlobStore, key: str) -> None:
        with pytest.raises(UsageError):
            blob_store.exists(key)
        with pytest.raises(UsageError), blob_store.stage() as staged:
            staged.commit(key)

    def test_describe_and_check(self, blob_store: BlobStore) -> None:
        assert blob_store.describe()
        blob_store.check()
        assert list(blob_store.list()) == []  # check() leaves nothing behind

    # -- concurrency -------------------------------------------------------------------

    def test_concurrent_puts_of_the_same_content(self, content: ContentStore) -> None:
        data = os.urandom(2 * MiB)
        barrier = threading.Barrier(8)

        def put(_: int) -> tuple[str, int]:
            barrier.wait()
            ref = content.put_bytes(data)
            return ref.digest, ref.size

        with ThreadPoolExecutor(8) as pool:
            results = set(pool.map(put, range(8)))
        assert results == {(blake3(data).hexdigest(), len(data))}
        assert [b.digest for b in content.iter_blobs()] == [blake3(data).hexdigest()]
        assert content.read_bytes(blake3(data).hexdigest()) == data

    def test_concurrent_puts_of_different_content(self, content: ContentStore) -> None:
        payloads = [os.urandom(100_000) for _ in range(16)]
        with ThreadPoolExecutor(8) as pool:
            refs = list(pool.map(content.put_bytes, payloads))
        assert {b.digest for b in content.iter_blobs()} == {r.digest for r in refs}
        for ref, data in zip(refs, payloads, strict=True):
            assert content.read_bytes(ref.digest) == data
