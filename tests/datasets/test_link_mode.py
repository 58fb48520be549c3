"""``datasets.add(link=...)`` / ``plinth data add --link``: files stored as hard links or
reflinks instead of copies, only where the user opted in, and refused precisely elsewhere."""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import tempfile
from pathlib import Path

import pytest
from tests.datasets.test_datasets import make_tree, tree_bytes

from plinth import datasets
from plinth.context import Context
from plinth.errors import BlobCorruptedError, ConfigError, NotFoundError, UsageError
from plinth.settings import load_settings
from plinth.storage import BlobRef, hash_file
from plinth.storage.local import LinkRefusedError, LocalBlobStore

FILES = {"a.bin": os.urandom(200_000), "sub/b.txt": b"beta\n", "sub/c.txt": b"gamma\n"}


def _blob(project: Context, path: Path) -> Path:
    return Path(project.blobs.location(hash_file(path).digest))


def _other_file_system(near: Path) -> Path | None:
    """A writable folder on another file system than ``near`` (tmpfs), if there is one."""
    for candidate in ("/dev/shm", "/run/user", tempfile.gettempdir()):
        folder = Path(candidate)
        try:
            usable = folder.is_dir() and os.access(folder, os.W_OK)
            if usable and folder.stat().st_dev != near.stat().st_dev:
                return Path(tempfile.mkdtemp(dir=folder, prefix="plinth-link-"))
        except OSError:
            continue
    return None


def _reflinks_work(folder: Path) -> bool:
    a, b = folder / ".probe-a", folder / ".probe-b"
    a.write_bytes(b"probe")
    try:
        with open(a, "rb") as src, open(b, "wb") as dst:
            fcntl.ioctl(dst.fileno(), 0x40049409, src.fileno())
        return True
    except OSError:
        return False
    finally:
        a.unlink()
        b.unlink(missing_ok=True)


@pytest.mark.embedded_only("compares inodes with the local artifacts folder's blob files")
def test_hardlink_stores_the_file_itself_read_only_and_content_intact(
    project: Context, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "src", FILES)
    added = datasets.add(src, "d", link="hardlink")
    assert added.linked == {"hardlink": 3}
    assert added.link_note is None
    for rel in FILES:
        path = src / rel
        blob = _blob(project, path)
        assert blob.stat().st_ino == path.stat().st_ino  # no copy was written
        assert path.stat().st_mode & 0o222 == 0, f"{rel} was left writable"
    out = tmp_path / "out"
    datasets.checkout("d", out)
    assert tree_bytes(out) == FILES
    # chmod changed only the ctime: the stat cache still vouches for every file
    again = datasets.add(src, "d", link="hardlink")
    assert (again.created, again.files_read) == (False, 0)
    assert datasets.status("d", src).clean


@pytest.mark.embedded_only("edits a blob file through its hard link")
def test_an_edit_in_place_after_a_hard_link_is_caught_never_served(
    project: Context, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "src", {"a.txt": b"precious data"})
    datasets.add(src, "d", link="hardlink")
    path = src / "a.txt"
    os.chmod(path, 0o644)  # a user who forces the edit past the read-only mode
    with open(path, "r+b") as f:
        f.write(b"PRECIOUS")  # same size, in place: the stored blob is this inode
    with pytest.raises(BlobCorruptedError):
        datasets.checkout("d", tmp_path / "out")
    assert not (tmp_path / "out" / "a.txt").exists()
    changed = datasets.status("d", src)
    assert [c.path for c in changed.changes.changed] == ["a.txt"]


def test_copy_stays_the_default_and_links_nothing(project: Context, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", FILES)
    added = datasets.add(src, "d")
    assert added.linked == {}
    assert added.link_note is None
    assert (src / "a.bin").stat().st_mode & 0o200, "a copied file keeps its mode"
    assert (src / "a.bin").stat().st_nlink == 1


def test_a_hard_link_across_file_systems_is_refused_precisely(
    project: Context, tmp_path: Path, plinth_mode: str
) -> None:
    elsewhere = _other_file_system(Path.cwd())
    if elsewhere is None:
        pytest.skip("no writable folder on a second file system here")
    try:
        src = make_tree(elsewhere / "src", {"a.txt": b"far away"})
        expected = (
            "they are on different file systems"
            if plinth_mode == "embedded"
            else "needs the artifacts in a local folder"
        )
        with pytest.raises(LinkRefusedError, match=expected) as refused:
            datasets.add(src, "d", link="hardlink")
        assert refused.value.exit_code == 2
        assert refused.value.field == "link"
        with pytest.raises(NotFoundError):
            datasets.get("d")  # a refused add leaves no dataset
        auto = datasets.add(src, "d", link="auto")
        assert auto.created
        assert auto.linked == {}
        assert auto.link_note is not None
        assert "copied" in auto.link_note
        assert (src / "a.txt").stat().st_nlink == 1  # copied, not linked
    finally:
        for path in sorted(elsewhere.rglob("*"), reverse=True):
            path.chmod(0o700)
            path.rmdir() if path.is_dir() else path.unlink()
        elsewhere.rmdir()


@pytest.mark.embedded_only("probes the local file system for reflink support")
def test_reflink_clones_where_it_can_and_is_refused_where_it_cannot(
    project: Context, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "src", {"a.txt": b"cloned or refused"})
    if _reflinks_work(tmp_path):
        added = datasets.add(src, "d", link="reflink")
        assert added.linked == {"reflink": 1}
        blob = _blob(project, src / "a.txt")
        assert blob.stat().st_ino != (src / "a.txt").stat().st_ino  # copy-on-write, not shared
        return
    with pytest.raises(LinkRefusedError, match="does not share blocks between files"):
        datasets.add(src, "d", link="reflink")
    # auto: no reflinks here, so a hard link; nothing copied, nothing to note
    auto = datasets.add(src, "d", link="auto")
    assert auto.linked == {"hardlink": 1}
    assert auto.link_note is None


def test_links_in_remote_mode_are_refused_and_auto_copies(
    project: Context, tmp_path: Path, plinth_mode: str
) -> None:
    src = make_tree(tmp_path / "src", {"a.txt": b"to the server"})
    if plinth_mode == "embedded":
        pytest.skip("the embedded store is a local folder: see the tests above")
    with pytest.raises(LinkRefusedError, match="needs the artifacts in a local folder"):
        datasets.add(src, "d", link="hardlink")
    added = datasets.add(src, "d", link="auto")
    assert added.created
    assert added.linked == {}
    assert added.link_note is not None
    assert "local artifact folder" in added.link_note
    assert (src / "a.txt").stat().st_mode & 0o200, "a copied file keeps its mode"


def test_an_unknown_link_mode_is_a_usage_error(project: Context, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src", {"a.txt": b"x"})
    with pytest.raises(UsageError, match="unknown link mode 'symlink'") as refused:
        datasets.add(src, "d", link="symlink")
    assert refused.value.field == "link"


def test_the_data_link_setting_is_checked(tmp_path: Path) -> None:
    (tmp_path / "plinth.yaml").write_text("data_link: symlink\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="'data_link' is 'symlink'") as bad:
        load_settings(tmp_path)
    assert bad.value.exit_code == 2
    (tmp_path / "plinth.yaml").write_text("data_link: hardlink\n", encoding="utf-8")
    assert load_settings(tmp_path).data_link == "hardlink"
    assert load_settings(tmp_path, env={"PLINTH_DATA_LINK": "auto"}).data_link == "auto"


@pytest.mark.embedded_only("edits the file between its hash and its link")
def test_a_file_changed_while_being_linked_is_refused_and_unlinked(
    project: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plinth.storage import content as content_module

    src = make_tree(tmp_path / "src", {"a.txt": b"first words"})
    real_hash = content_module.hash_file

    def hash_then_edit(path: Path | str) -> BlobRef:
        ref = real_hash(path)
        Path(path).write_bytes(b"other words, longer")  # after the hash, before the link
        return ref

    monkeypatch.setattr(content_module, "hash_file", hash_then_edit)
    with pytest.raises(UsageError, match="changed while it was being added"):
        datasets.add(src, "d", link="hardlink")
    store = project.blobs.store
    assert isinstance(store, LocalBlobStore)
    blobs = store.root / "blobs"
    leftovers = [p for p in blobs.rglob("*") if p.is_file()] if blobs.exists() else []
    assert all(p.stat().st_ino != (src / "a.txt").stat().st_ino for p in leftovers)
    assert (src / "a.txt").stat().st_nlink == 1


@pytest.mark.embedded_only("reads the blob file's times")
def test_touching_a_linked_blob_keeps_the_users_mtime_and_ages_it_by_ctime(
    project: Context, tmp_path: Path
) -> None:
    src = make_tree(tmp_path / "src", {"a.txt": b"old file"})  # mtime years ago
    datasets.add(src, "one", link="hardlink")
    before = (src / "a.txt").stat().st_mtime_ns
    # the same content under another name touches the existing (linked) blob
    datasets.add(make_tree(tmp_path / "again", {"a.txt": b"old file"}), "two")
    assert (src / "a.txt").stat().st_mtime_ns == before
    listed = {b.digest: b for b in project.blobs.iter_blobs()}
    digest = hash_file(src / "a.txt").digest
    # gc's grace period counts from the link (ctime), not from the user's old mtime
    assert listed[digest].modified >= (src / "a.txt").stat().st_ctime - 1
    assert listed[digest].modified > before / 1e9 + 3600
    mode = stat.S_IMODE((src / "a.txt").stat().st_mode)
    assert mode & 0o222 == 0


def test_link_errors_name_the_errno_they_came_from() -> None:
    from plinth.storage.local import _refused

    cross = _refused("hardlink", "/a/f", "/b/store", OSError(errno.EXDEV, "Invalid cross-device"))
    assert isinstance(cross, LinkRefusedError)
    assert "cannot hard-link /a/f into the artifact folder /b/store" in cross.message
    assert "different file systems" in cross.message
    other = _refused("hardlink", "/a/f", "/b/store", OSError(errno.EIO, "I/O error"))
    assert not isinstance(other, LinkRefusedError)  # a real failure, not "links can't work"
    assert "I/O error" in str(other)
