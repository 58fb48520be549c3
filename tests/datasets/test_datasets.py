"""plinth.datasets on the embedded stores: add, status, diff, checkout, tags, the stat cache."""

from __future__ import annotations

import builtins
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import plinth
from plinth import datasets
from plinth.context import Context
from plinth.datasets.statcache import RACY_WINDOW_NS
from plinth.errors import (
    BlobCorruptedError,
    ConflictError,
    NotFoundError,
    UsageError,
)
from plinth.storage import hash_file

OLD_NS = 1_600_000_000 * 10**9  # a moment well before any test: never "racy"


def make_tree(root: Path, files: dict[str, bytes], *, mtime_ns: int = OLD_NS) -> Path:
    """Files under ``root`` with an old mtime, so that the stat cache may vouch for them."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return root


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


FILES = {
    "a.txt": b"alpha\n",
    "b.bin": os.urandom(3 * 1024 * 1024 + 17),
    "empty": b"",
    "sub/deep/c.txt": b"gamma\n",
    "sub/same.txt": b"alpha\n",  # identical content: one blob
}


def test_add_status_diff_checkout_round_trip(project: Context, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", FILES)
    first = datasets.add(src, "flights", "first")
    v1 = first.version
    assert (first.created, v1.ref, v1.parent, v1.kind, v1.message) == (
        True,
        "flights@1",
        None,
        "directory",
        "first",
    )
    assert (v1.file_count, v1.size) == (5, sum(len(b) for b in FILES.values()))
    assert first.files_read == 5
    assert datasets.status("flights", src).clean

    (src / "a.txt").write_bytes(b"ALPHA\n")
    (src / "sub" / "deep" / "c.txt").unlink()
    make_tree(src, {"new/d.txt": b"delta"})
    st = datasets.status("flights", src)
    assert [c.path for c in st.changes.changed] == ["a.txt"]
    assert [c.path for c in st.changes.removed] == ["sub/deep/c.txt"]
    assert [c.path for c in st.changes.added] == ["new/d.txt"]
    assert st.files_read == 2  # only the two files whose stat changed
    assert datasets.versions("flights") == [v1]  # status writes no version

    second = datasets.add(src, "flights", "second")
    assert (second.version.number, second.version.parent) == (2, 1)
    d = datasets.diff("flights@1", "flights")
    assert [c.path for c in d.changes.changed] == ["a.txt"]
    assert [c.path for c in d.changes.added] == ["new/d.txt"]
    assert [c.path for c in d.changes.removed] == ["sub/deep/c.txt"]
    assert d.rows is None

    out1 = datasets.checkout("flights@1", tmp_path / "out1")
    assert tree_bytes(tmp_path / "out1") == FILES
    assert out1.stats.files == 5
    datasets.checkout("flights@latest", tmp_path / "out2")
    assert tree_bytes(tmp_path / "out2") == tree_bytes(src)


def test_unchanged_content_makes_no_version_and_reads_nothing(
    project: Context, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "src", FILES)
    v1 = datasets.add(src, "d").version
    again = datasets.add(src, "d", "nothing new")
    assert (again.created, again.version, again.files_read) == (False, v1, 0)
    assert [v.number for v in datasets.versions("d")] == [1]


@pytest.mark.remote_token(role="admin")  # on a server, listing all blobs is for admins
def test_identical_content_is_stored_once(project: Context, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", FILES)
    datasets.add(src, "one")
    blobs = {b.digest for b in project.blobs.iter_blobs()}
    assert len(blobs) == 5  # 4 distinct files + 1 manifest
    copy = make_tree(tmp_path / "copy", FILES)
    datasets.add(copy, "two")  # the same files elsewhere: only the same manifest again
    assert {b.digest for b in project.blobs.iter_blobs()} == blobs


def test_the_stat_cache_reads_only_changed_files(
    project: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {f"f{i:03d}.txt": f"content {i}\n".encode() for i in range(200)}
    src = make_tree(tmp_path / "src", files)
    assert datasets.add(src, "many").files_read == 200
    target = src / "f042.txt"
    target.write_bytes(b"changed\n")
    os.utime(target, ns=(OLD_NS + 10**9, OLD_NS + 10**9))

    opened: list[str] = []  # every data file any thread opens, whatever the code path
    real_open = builtins.open

    def spy(file: Any, *args: Any, **kwargs: Any) -> Any:
        if str(file).startswith(str(src)):
            opened.append(Path(file).name)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)
    result = datasets.add(src, "many", "one changed")
    assert (result.created, result.files_read) == (True, 1)
    assert opened == ["f042.txt"]
    opened.clear()
    assert datasets.status("many", src).files_read == 0
    assert opened == []


def test_a_change_that_keeps_size_inode_and_mtime_is_not_seen(
    project: Context, tmp_path: Path
) -> None:
    # The documented trade-off (as in git and DVC): stat says unchanged, so nothing is read.
    src = make_tree(tmp_path / "src", {"x.txt": b"aaaa"})
    v1 = datasets.add(src, "d").version
    path = src / "x.txt"
    before = path.stat()
    with open(path, "r+b") as f:  # same inode, same size
        f.write(b"bbbb")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    status = datasets.status("d", src)
    assert (status.clean, status.files_read) == (True, 0)
    assert datasets.add(src, "d").created is False
    rehashed = datasets.add(src, "d", use_cache=False)
    assert (rehashed.created, rehashed.version.number) == (True, 2)
    assert datasets.diff(v1.ref, "d@2").changes.changed[0].path == "x.txt"


def test_racy_files_are_read_again(project: Context, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    fresh = src / "fresh.txt"
    fresh.write_bytes(b"just written")
    # An mtime ahead of the clock is always within the racy window: never cached.
    ahead = time.time_ns() + 3_600_000_000_123
    os.utime(fresh, ns=(ahead, ahead))
    assert datasets.add(src, "d").files_read == 1
    assert datasets.status("d", src).files_read == 1
    assert datasets.status("d", src).files_read == 1  # still not trusted
    settled = time.time_ns() - RACY_WINDOW_NS - 10_000_000_123
    os.utime(fresh, ns=(settled, settled))
    assert datasets.status("d", src).files_read == 1  # hashed once more, now cached
    assert datasets.status("d", src).files_read == 0


def test_a_single_file_dataset(project: Context, tmp_path: Path) -> None:
    path = make_tree(tmp_path, {"model-input.bin": b"\x00\x01" * 1000}) / "model-input.bin"
    v = datasets.add(path, "blob", "one file").version
    assert (v.kind, v.file_count, v.size) == ("file", 1, 2000)
    assert list(datasets.manifest("blob").files) == ["model-input.bin"]
    datasets.checkout("blob@1", tmp_path / "out")
    assert (tmp_path / "out" / "model-input.bin").read_bytes() == b"\x00\x01" * 1000


def test_tags_name_versions(project: Context, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"a": b"1"})
    datasets.add(src, "d")
    make_tree(src, {"a": b"2"}, mtime_ns=OLD_NS + 10**9)
    datasets.add(src, "d")
    assert datasets.tag("d@1", "gold").tags == ("gold",)
    assert datasets.get("d@gold").number == 1
    with pytest.raises(ConflictError):
        datasets.tag("d@2", "gold")
    assert datasets.tag("d@2", "gold", force=True).number == 2
    assert datasets.get("d@gold").number == 2


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda p: datasets.add(p / "missing", "d"), UsageError, "no file or folder"),
        (lambda p: datasets.add(p, "bad name"), UsageError, "invalid dataset name"),
        (lambda p: datasets.get("nope"), NotFoundError, "no dataset named 'nope'"),
        (lambda p: datasets.get("d@7"), NotFoundError, "has no version 7"),
        (lambda p: datasets.get("d@silver"), NotFoundError, "has no tag 'silver'"),
        (lambda p: datasets.get("d@"), UsageError, "invalid dataset reference"),
        (lambda p: datasets.get("@1"), UsageError, "invalid dataset reference"),
        (lambda p: datasets.get("d@1@2"), UsageError, "invalid dataset reference"),
        (lambda p: datasets.add(p, "d", kind="table"), UsageError, "unsupported file format"),
        (lambda p: datasets.add(p, "d", kind="file"), UsageError, "is a folder"),
        (lambda p: datasets.load("d"), UsageError, "not a table"),
    ],
)
@pytest.mark.remote_token(role="admin")  # on a server, listing all blobs is for admins
def test_bad_input_is_a_clear_error(
    project: Context, tmp_path: Path, call: object, error: type[Exception], match: str
) -> None:
    src = make_tree(tmp_path / "src", {"a.txt": b"1"})
    datasets.add(src, "d")
    blobs = len(list(project.blobs.iter_blobs()))
    with pytest.raises(error, match=match):
        call(src)  # type: ignore[operator]
    assert len(list(project.blobs.iter_blobs())) == blobs  # nothing stored on the way
    assert [d.name for d, _ in datasets.list_datasets()] == ["d"]  # and no name made


@pytest.mark.embedded_only("corrupts a blob file in the local artifacts folder")
def test_checkout_verifies_blobs_and_leaves_nothing_corrupt(
    project: Context, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "src", {"a.txt": b"precious data"})
    datasets.add(src, "d")
    digest = hash_file(src / "a.txt").digest
    blob = Path(project.blobs.location(digest))
    blob.write_bytes(b"precious DATA")
    with pytest.raises(BlobCorruptedError):
        datasets.checkout("d", tmp_path / "out")
    assert not (tmp_path / "out" / "a.txt").exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == []


@pytest.mark.embedded_only("compares inodes with the local artifacts folder's blob files")
def test_checkout_never_links_to_blobs_and_guards_local_edits(
    project: Context, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "src", {"a.txt": b"v1 content"})
    datasets.add(src, "d")
    out = tmp_path / "out"
    datasets.checkout("d", out)
    blob = Path(project.blobs.location(hash_file(src / "a.txt").digest))
    assert (out / "a.txt").stat().st_ino != blob.stat().st_ino
    (out / "a.txt").write_bytes(b"edited in place")
    assert blob.read_bytes() == b"v1 content"  # the store is untouched
    with pytest.raises(ConflictError, match="differ from the version"):
        datasets.checkout("d", out)
    again = datasets.checkout("d", out, force=True)
    assert (out / "a.txt").read_bytes() == b"v1 content"
    assert again.stats.copied + again.stats.reflinked == 1
    assert datasets.checkout("d", out).stats.present == 1


def test_racing_processes_get_distinct_consecutive_versions(
    project: Context, tmp_path: Path
) -> None:
    datasets.add(make_tree(tmp_path / "seed", {"s": b"seed"}), "shared")  # ledger exists
    code = (
        "import sys, plinth\n"
        "ctx = plinth.init(sys.argv[1])\n"
        "print(plinth.datasets.add(sys.argv[2], 'shared').version.number)\n"
    )
    folders = [make_tree(tmp_path / f"w{i}", {"f": f"worker {i}".encode()}) for i in range(4)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(project.settings.root), str(folder)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for folder in folders
    ]
    numbers = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        numbers.append(int(out.strip()))
    assert sorted(numbers) == [2, 3, 4, 5]
    assert [v.number for v in datasets.versions("shared")] == [5, 4, 3, 2, 1]


@pytest.mark.s3
def test_round_trip_on_s3_blobs(
    tmp_path: Path, moto_endpoint: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "proj"
    folder.mkdir()
    monkeypatch.chdir(folder)
    ctx = plinth.init(folder, artifacts=f"s3://{s3_bucket}/data", s3_endpoint_url=moto_endpoint)
    try:
        src = make_tree(tmp_path / "src", FILES)
        v1 = datasets.add(src, "d", ctx=ctx).version
        assert ctx.blobs.location(v1.manifest_digest).startswith(f"s3://{s3_bucket}/data/")
        (src / "a.txt").write_bytes(b"changed on s3")
        st = datasets.status("d", src, ctx=ctx)
        assert [c.path for c in st.changes.changed] == ["a.txt"]
        again = datasets.add(src, "d", ctx=ctx)
        assert (again.version.number, again.files_read) == (2, 1)
        assert [c.path for c in datasets.diff("d@1", "d@2", ctx=ctx).changes.changed] == ["a.txt"]
        datasets.checkout("d@1", tmp_path / "out", ctx=ctx)
        assert tree_bytes(tmp_path / "out") == FILES
        # A fresh store: the stat cache knows the digests, the store does not have the blobs.
        other = tmp_path / "proj2"
        other.mkdir()
        ctx2 = plinth.init(
            other, artifacts=f"s3://{s3_bucket}/other", s3_endpoint_url=moto_endpoint
        )
        try:
            datasets.add(src, "d", ctx=ctx2)
            datasets.checkout("d", tmp_path / "out2", ctx=ctx2)
            assert tree_bytes(tmp_path / "out2") == tree_bytes(src)
        finally:
            ctx2.close()
    finally:
        ctx.close()


@pytest.mark.remote_token(role="admin")  # on a server, deleting a blob is for admins
def test_a_cached_digest_missing_from_the_store_is_stored_again(
    project: Context, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "src", {"a.txt": b"alpha", "b.txt": b"beta"})
    datasets.add(src, "one")
    digest = hash_file(src / "b.txt").digest
    project.blobs.delete(digest)  # as if gc had taken it (no longer referenced)
    result = datasets.add(src, "two")  # same files, new dataset: nothing in its parent
    assert result.files_read == 1
    assert project.blobs.exists(digest)


@pytest.mark.remote_token(role="admin")  # on a server, listing all blobs is for admins
def test_a_failed_first_add_leaves_no_dataset(project: Context, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no file or folder"):
        datasets.add(tmp_path / "missing", "ghost")
    src = make_tree(tmp_path / "src", {"notes.txt": b"n"})
    with pytest.raises(UsageError, match="unsupported file format for a table"):
        datasets.add(src, "ghost", kind="table")
    assert datasets.list_datasets() == []
    assert list(project.blobs.iter_blobs()) == []


def test_a_file_name_that_is_not_utf8_is_a_clear_error(project: Context, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    with open(os.fsencode(src) + b"/bad\xff.txt", "wb") as f:
        f.write(b"x")
    with pytest.raises(UsageError, match="is not valid UTF-8"):
        datasets.add(src, "d")
