"""``plinth runs artifacts RUN [PATH] [-o DIR]`` (issue 13, point 9): list a run's artifacts,
download one or all, verified, every ledger path joined safely under DIR."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import plinth
from plinth.context import Context
from plinth.ledger import tables


@pytest.fixture
def run_id(project: Context, tmp_path: Path) -> str:
    plots = tmp_path / "plots"
    (plots / "sub").mkdir(parents=True)
    (plots / "a.txt").write_text("A")
    (plots / "sub" / "b.txt").write_text("BB")
    with plinth.start_run(experiment="t") as run:
        run.log_artifacts(plots, "plots")
        run.log_dict({"x": 1}, "cfg.json")
    return run.id


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_runs_artifacts_lists_path_size_and_digest_by_run_id_prefix(
    run_id: str, cli: Callable[..., Any]
) -> None:
    listed = cli("runs", "artifacts", run_id[:13], "--json")
    assert listed.code == 0, listed.err
    rows = json.loads(listed.out)["artifacts"]
    assert [(r["path"], r["size"]) for r in rows] == [
        ("cfg.json", 12),
        ("plots/a.txt", 1),
        ("plots/sub/b.txt", 2),
    ]
    assert all(len(r["digest"]) == 64 for r in rows)
    text = cli("runs", "artifacts", run_id[:13]).out
    assert "plots/sub/b.txt" in text
    assert "2 B" in text


def test_runs_artifacts_downloads_one_a_folder_or_all(
    run_id: str, cli: Callable[..., Any], tmp_path: Path
) -> None:
    one = cli("runs", "artifacts", run_id, "cfg.json", "-o", str(tmp_path / "one"))
    assert one.code == 0, one.err
    assert json.loads((tmp_path / "one" / "cfg.json").read_text()) == {"x": 1}
    assert _files(tmp_path / "one").keys() == {"cfg.json"}
    folder = cli("runs", "artifacts", run_id, "plots", "-o", str(tmp_path / "f"))
    assert folder.code == 0, folder.err
    assert _files(tmp_path / "f") == {"plots/a.txt": b"A", "plots/sub/b.txt": b"BB"}
    every = cli("runs", "artifacts", run_id, "-o", str(tmp_path / "all"))
    assert every.code == 0
    assert set(_files(tmp_path / "all")) == {"cfg.json", "plots/a.txt", "plots/sub/b.txt"}
    missing = cli("runs", "artifacts", run_id, "nope.txt", "-o", str(tmp_path / "none"))
    assert missing.code == 2
    assert "has no artifact 'nope.txt'" in missing.err
    assert "cfg.json" in missing.err  # the hint lists what there is
    assert not (tmp_path / "none").exists()


@pytest.mark.embedded_only("corrupts a blob file in the local artifacts folder")
def test_a_corrupted_artifact_blob_is_refused_and_nothing_left_at_its_path(
    project: Context, run_id: str, cli: Callable[..., Any], tmp_path: Path
) -> None:
    artifact = project.ledger.artifacts.get(plinth.entities.RecordRef("run", run_id), "cfg.json")
    blob = Path(project.blobs.location(artifact.digest))
    blob.chmod(0o644)
    blob.write_bytes(b'{"x": 2}\n   ')  # same size, other content
    result = cli("runs", "artifacts", run_id, "cfg.json", "-o", str(tmp_path / "out"))
    assert result.code != 0
    assert "is corrupted" in result.err, result.err
    assert not (tmp_path / "out").exists() or _files(tmp_path / "out") == {}


@pytest.mark.embedded_only("tampers with the ledger rows through its SQL engine")
@pytest.mark.parametrize("entry", ["../escaped.txt", "{tmp}/escaped.txt", "a/../../escaped.txt"])
def test_runs_artifacts_with_a_tampered_dotdot_path_is_refused_and_nothing_written(
    project: Context, run_id: str, cli: Callable[..., Any], tmp_path: Path, entry: str
) -> None:
    entry = entry.format(tmp=tmp_path)  # an absolute path aimed at this test's folder
    rows = tables.artifacts
    with project.ledger.engine.begin() as conn:
        conn.execute(
            sa.update(rows)
            .where((rows.c.owner_id == run_id) & (rows.c.path == "plots/sub/b.txt"))
            .values(path=entry)
        )
    dest = tmp_path / "dl" / "inner"
    before = set(_files(tmp_path))
    result = cli("runs", "artifacts", run_id, "-o", str(dest))
    assert result.code == 2
    # The message names the path (shortened past 80 characters) and why it is refused.
    assert "invalid artifact path" in result.err
    assert "escaped.txt" in result.err or "it is absolute" in result.err
    new = {p for p in set(_files(tmp_path)) - before if "/.plinth/" not in p}
    assert new == set()  # not even the safe artifacts listed before it
    assert not dest.exists()
