"""Secrets at rest on the embedded default: the ledger, the artifact folder and its blobs,
and the metric journals are owner-only whatever the umask, so another local user cannot
read what a project recorded."""

from __future__ import annotations

import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

import plinth
from plinth.context import Context
from plinth.project import init_project
from plinth.storage import LocalBlobStore
from plinth.tracking.journal import JournalWriter


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture
def fresh(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, umask_022: None
) -> Iterator[tuple[Path, Context]]:
    """A project made by ``plinth init`` in an empty folder (not the copied test ledger)."""
    folder = tmp_path / "proj"
    folder.mkdir()
    monkeypatch.chdir(folder)
    init_project(folder)
    ctx = plinth.init(folder, system_metrics=False)
    yield folder, ctx
    ctx.close()


def test_world_readable_umask_still_gives_an_owner_only_ledger_and_plinth_folder(
    fresh: tuple[Path, Context],
) -> None:
    folder, _ = fresh
    data = folder / ".plinth"
    assert mode(data) == 0o700
    ledger = data / "plinth.db"
    assert mode(ledger) == 0o600
    with plinth.start_run(experiment="e") as run:  # the ledger is written: its WAL exists
        run.log_param("p", 1)
        wal = ledger.with_name("plinth.db-wal")
        if wal.exists():
            assert mode(wal) & 0o077 == 0
    readable = {p.name for p in data.rglob("*") if p.is_file() and p.stat().st_mode & 0o007}
    assert readable <= {".gitignore"}, "nothing recorded under .plinth is world-readable"


def test_world_readable_umask_still_gives_owner_only_blobs_and_artifact_folder(
    fresh: tuple[Path, Context], tmp_path: Path
) -> None:
    folder, ctx = fresh
    source = tmp_path / "secret.txt"
    source.write_text("s3cret", encoding="utf-8")
    os.chmod(source, 0o644)
    with plinth.start_run(experiment="e") as run:
        run.log_artifact(source)
    artifacts = folder / ".plinth" / "artifacts"
    assert mode(artifacts) == 0o700
    blobs = [p for p in artifacts.rglob("*") if p.is_file()]
    assert blobs, "the artifact was stored as a blob"
    assert {mode(p) for p in blobs} == {0o600}
    ref = ctx.blobs.put_bytes(b"another secret")
    stored = Path(ctx.blobs.store.location(f"blobs/{ref.digest[:2]}/{ref.digest[2:]}"))
    assert stored.read_bytes() == b"another secret"
    assert mode(stored) == 0o600


def test_world_readable_umask_still_gives_owner_only_journals(
    fresh: tuple[Path, Context],
) -> None:
    folder, _ = fresh
    journals = folder / ".plinth" / "journals"
    writer = JournalWriter(journals, "run1", 0)
    try:
        writer.append("loss", 0.5, 0, 0)
        assert mode(journals) == 0o700
        assert mode(writer.path) == 0o600
        assert mode(writer.keys_path) == 0o600
    finally:
        writer.close(remove=True)


def test_artifact_folder_created_by_plinth_is_owner_only_and_a_shared_one_is_left_alone(
    tmp_path: Path, umask_022: None
) -> None:
    private = LocalBlobStore(tmp_path / "new" / "artifacts")
    private.check()
    assert mode(tmp_path / "new" / "artifacts") == 0o700
    assert mode(tmp_path / "new") == 0o755  # only what plinth owns is tightened
    shared_root = tmp_path / "shared"
    shared_root.mkdir(mode=0o750)  # a team folder: its group keeps read access
    shared = LocalBlobStore(shared_root)
    with shared.stage() as staged:
        staged.write(b"x")
        staged.commit("blobs/ab/cd")
    assert mode(shared_root) == 0o750
    assert mode(shared_root / "blobs" / "ab" / "cd") == 0o644
