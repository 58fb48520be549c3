"""A blob store in a local folder: ``<root>/<key>``, staged in ``<root>/tmp/``.

A write goes to a temp file in ``<root>/tmp/`` (same file system as its target), is
fsynced, and is published with ``os.replace`` — readers see the old blob or the new one,
never half of one. The folder is created on first write.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from plinth.errors import BlobStoreError, InvalidPathError, NotFoundError
from plinth.storage.blobs import BlobInfo, BlobStore, StagedBlob, check_key

__all__ = ["LocalBlobStore"]

#: The staging folder under the root; never a key, never listed.
TMP_DIR = "tmp"


class LocalBlobStore(BlobStore):
    """Blobs as files under ``root``."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().absolute()

    def _path(self, key: str) -> Path:
        check_key(key)
        if key == TMP_DIR or key.startswith(TMP_DIR + "/"):
            raise InvalidPathError(f"invalid blob key {key!r}: '{TMP_DIR}/' is the staging area")
        path = self.root / key
        # Keys are made by plinth and check_key rejects '..', so this is a last line of
        # defence should that check ever be loosened.
        if not os.path.normpath(path).startswith(os.path.join(os.path.normpath(self.root), "")):
            raise InvalidPathError(f"blob key {key!r} escapes the store root {self.root}")
        return path

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def touch(self, key: str) -> bool:
        try:
            os.utime(self._path(key))
        except FileNotFoundError:
            return False
        return True

    def stage(self) -> StagedBlob:
        return _LocalStagedBlob(self)

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return path.open("rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise NotFoundError(f"no blob at {path}") from None
        except OSError as exc:
            raise BlobStoreError(f"cannot read {path}: {exc.strerror or exc}") from exc

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except IsADirectoryError:
            pass
        except OSError as exc:
            raise BlobStoreError(f"cannot delete {path}: {exc.strerror or exc}") from exc

    def list(self, prefix: str = "") -> Iterator[BlobInfo]:
        folder, _, _ = prefix.rpartition("/")
        start = self.root / folder if folder else self.root
        if folder:
            self._path(folder)
        yield from self._walk(start, folder + "/" if folder else "", prefix)

    def _walk(self, folder: Path, key_prefix: str, prefix: str) -> Iterator[BlobInfo]:
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise BlobStoreError(f"cannot list {folder}: {exc.strerror or exc}") from exc
        for entry in entries:
            key = key_prefix + entry.name
            if not key_prefix and entry.name == TMP_DIR:
                continue
            if entry.is_dir(follow_symlinks=False):
                # Descend only into folders that can hold keys with this prefix.
                if key.startswith(prefix) or prefix.startswith(key + "/"):
                    yield from self._walk(Path(entry.path), key + "/", prefix)
            elif entry.is_file(follow_symlinks=False) and key.startswith(prefix):
                try:
                    stat = entry.stat(follow_symlinks=False)
                except FileNotFoundError:  # deleted while listing
                    continue
                yield BlobInfo(key, stat.st_size, stat.st_mtime)

    def location(self, key: str) -> str:
        return str(self._path(key))

    def describe(self) -> str:
        return str(self.root)

    def check(self) -> None:
        # Creating, writing and removing a staged file exercises everything a put needs.
        with _LocalStagedBlob(self) as staged:
            staged.write(b"plinth check\n")
            staged.flush()


class _LocalStagedBlob(StagedBlob):
    def __init__(self, store: LocalBlobStore) -> None:
        super().__init__()
        self._store = store
        tmp_dir = store.root / TMP_DIR
        try:
            tmp_dir.mkdir(parents=True, exist_ok=True)
            self.temp_path = tmp_dir / f"{uuid.uuid4().hex}.tmp"
            # os.open with 0o666 lets the umask decide permissions, like any new file.
            fd = os.open(self.temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as exc:
            raise BlobStoreError(
                f"cannot write to the artifact folder {store.root}: {exc.strerror or exc}",
                hint="check that the folder exists or can be created and that you may write to it",
            ) from exc
        self._file = os.fdopen(fd, "wb")

    def _write(self, data: bytes) -> None:
        try:
            self._file.write(data)
        except OSError as exc:
            raise BlobStoreError(f"cannot write {self.temp_path}: {exc.strerror or exc}") from exc

    def flush(self) -> None:
        try:
            self._file.flush()
        except OSError as exc:
            raise BlobStoreError(f"cannot write {self.temp_path}: {exc.strerror or exc}") from exc

    def _commit(self, key: str) -> None:
        target = self._store._path(key)
        try:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.temp_path, target)
            _fsync_dir(target.parent)
        except OSError as exc:
            raise BlobStoreError(f"cannot write {target}: {exc.strerror or exc}") from exc

    def _abort(self) -> None:
        self._file.close()
        with contextlib.suppress(FileNotFoundError):
            self.temp_path.unlink()


def _fsync_dir(folder: Path) -> None:
    """Make the rename durable; some platforms cannot open folders, which is fine."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
