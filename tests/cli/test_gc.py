from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from plinth.context import Context
from plinth.entities import RecordRef


def _seed(project_dir: Path) -> tuple[str, str]:
    """One referenced and one orphan blob."""
    with Context.open(project_dir) as ctx:
        exp = ctx.ledger.projects.ensure_experiment(ctx.project.id, "e")
        run = ctx.ledger.runs.create_run(exp.id)
        kept = ctx.blobs.put_bytes(b"referenced" * 100)
        ctx.ledger.artifacts.record(RecordRef("run", run.id), "a.bin", kept.digest, kept.size)
        orphan = ctx.blobs.put_bytes(b"orphan" * 1000)
        return kept.digest, orphan.digest


def test_gc_is_a_dry_run_by_default(project_dir: Path, cli: Callable) -> None:
    assert cli("init").code == 0
    _, orphan = _seed(project_dir)
    r = cli("gc", "--grace", "0", "--json")
    assert r.code == 0, r.err
    data = json.loads(r.out)
    assert data["dry_run"] is True
    assert data["unreferenced"] == 1
    assert data["bytes"] == 6000
    assert data["deleted"] == 0
    with Context.open(project_dir) as ctx:
        assert ctx.blobs.exists(orphan)
        assert ctx.ledger.gc.list_events() == []


def test_gc_yes_deletes_only_orphans_and_logs_it(project_dir: Path, cli: Callable) -> None:
    assert cli("init").code == 0
    kept, orphan = _seed(project_dir)
    r = cli("gc", "--yes", "--grace", "0")
    assert r.code == 0, r.err
    assert "Deleted 1 blob" in r.out
    with Context.open(project_dir) as ctx:
        assert not ctx.blobs.exists(orphan)
        assert ctx.blobs.read_bytes(kept) == b"referenced" * 100
        (event,) = ctx.ledger.gc.list_events()
        assert event.digests == [orphan]
        assert event.bytes_deleted == 6000
        assert event.created_by == ctx.user


def test_gc_keeps_young_blobs(project_dir: Path, cli: Callable) -> None:
    assert cli("init").code == 0
    _, orphan = _seed(project_dir)
    r = cli("gc", "--yes", "--json")  # default grace 1h: the orphan is seconds old
    data = json.loads(r.out)
    assert data["deleted"] == 0
    assert data["kept_young"] == 1
    with Context.open(project_dir) as ctx:
        assert ctx.blobs.exists(orphan)


def test_gc_rejects_bad_arguments(project_dir: Path, cli: Callable) -> None:
    assert cli("init").code == 0
    r = cli("gc", "--grace", "soon")
    assert r.code == 2
    assert "--grace" in r.err
    r = cli("gc", "--yes", "--dry-run")
    assert r.code == 2
