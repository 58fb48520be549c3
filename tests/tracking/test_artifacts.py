"""Logging files and folders as run artifacts: what is recorded, and when blobs are synced."""

from __future__ import annotations

from pathlib import Path

import pytest

import plinth
from plinth.storage import LocalBlobStore, blob_key


def _tree(folder: Path) -> dict[str, bytes]:
    files = {"a.txt": b"A", "a/b.csv": b"x,y\n", "a.b/c": b"", "z/dup.txt": b"A"}
    for name, data in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_bytes(data)
    return files


def test_log_artifacts_records_every_file_in_path_order(tmp_path: Path, project_dir: Path) -> None:
    files = _tree(tmp_path / "out")
    ctx = plinth.init(project_dir, system_metrics=False)
    with plinth.start_run() as run:
        logged = run.log_artifacts(tmp_path / "out", "tree")
    assert [a.path for a in logged] == [
        "tree/a/b.csv",
        "tree/a.b/c",
        "tree/a.txt",
        "tree/z/dup.txt",
    ]
    for artifact in logged:
        data = files[artifact.path.removeprefix("tree/")]
        assert (artifact.size, ctx.blobs.read_bytes(artifact.digest)) == (len(data), data)
    assert logged[2].digest == logged[3].digest
    assert logged[0].media_type == "text/csv"
    ctx.close()


@pytest.mark.parametrize("fsync", [True, False])  # the local blob store's fsync: embedded only
def test_blob_fsync_syncs_once_per_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fsync: bool
) -> None:
    _tree(tmp_path / "out")
    synced: list[list[str]] = []
    original = LocalBlobStore.sync

    def recording_sync(self: LocalBlobStore, keys: object) -> None:
        synced.append(list(keys))  # type: ignore[call-overload]
        original(self, synced[-1])

    monkeypatch.setattr(LocalBlobStore, "sync", recording_sync)
    ctx = plinth.init(tmp_path / "proj", system_metrics=False, blob_fsync=fsync)
    with plinth.start_run() as run:
        logged = run.log_artifacts(tmp_path / "out")
        single = run.log_artifact(tmp_path / "out" / "a.txt", "single")
    ctx.close()
    if not fsync:
        assert synced == []
        return
    # One sync for the folder's four blobs (other puts, like a run's source diff, sync
    # on their own).
    assert [sorted(keys) for keys in synced if len(keys) > 1] == [
        sorted(blob_key(a.digest) for a in logged)
    ]
    assert [blob_key(single.digest)] in synced
