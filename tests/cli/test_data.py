"""``plinth data``: JSON shapes, human output, exit codes, gc, and the team backends."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from plinth.context import Context

OLD_NS = 1_600_000_000 * 10**9

VERSION_KEYS = {
    "ref", "id", "dataset", "number", "parent", "kind", "size", "file_count", "row_count",
    "schema", "message", "tags", "manifest_digest", "created_at", "created_by", "status",
    "profile_digest",
}  # fmt: skip


def make_tree(root: Path, files: dict[str, bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.utime(path, ns=(OLD_NS, OLD_NS))
    return root


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


FILES = {"a.csv": b"x,y\n1,2\n", "sub/b.bin": os.urandom(200_000), "sub/c.txt": b"c"}


def _round_trip(cli: Callable, project_dir: Path) -> None:
    src = make_tree(project_dir / "data", FILES)
    r = cli("data", "add", "data", "--name", "flights", "-m", "first", "--json")
    assert r.code == 0, r.err
    added = json.loads(r.out)
    assert set(added) == {
        "version",
        "created",
        "files_read",
        "bytes_read",
        "linked",
        "link_note",
        "validation",
    }
    assert added["linked"] == {}
    assert added["link_note"] is None
    assert added["validation"] is None
    assert set(added["version"]) == VERSION_KEYS
    assert (added["created"], added["files_read"], added["version"]["ref"]) == (
        True, 3, "flights@1"
    )  # fmt: skip

    r = cli("data", "add", "data", "--name", "flights", "--json")
    assert (r.code, json.loads(r.out)["created"]) == (0, False)
    r = cli("data", "add", "data", "--name", "flights")
    assert "Unchanged: flights@1 already has this content; no new version" in r.out

    (src / "a.csv").write_bytes(b"x,y\n1,3\n")
    (src / "sub" / "c.txt").unlink()
    r = cli("data", "status", "flights", "data", "--json")
    assert r.code == 0, r.err
    status = json.loads(r.out)
    assert set(status) == {
        "dataset", "version", "clean", "added", "removed", "changed", "unchanged", "files_read"
    }  # fmt: skip
    assert (status["clean"], status["files_read"], status["unchanged"]) == (False, 1, 1)
    assert [c["path"] for c in status["changed"]] == ["a.csv"]
    assert status["removed"] == [{"path": "sub/c.txt", "old_size": 1, "new_size": None}]
    r = cli("data", "status", "flights", "data")
    assert "flights@1: 0 added, 1 removed, 1 changed" in r.out
    assert "changed: a.csv" in r.out

    assert cli("data", "add", "data", "--name", "flights", "-m", "second").code == 0
    r = cli("data", "diff", "flights@1", "flights@2", "--json")
    d = json.loads(r.out)
    assert (d["old"]["ref"], d["new"]["ref"], d["rows"], d["columns"]) == (
        "flights@1", "flights@2", None, None
    )  # fmt: skip
    assert [c["path"] for c in d["changed"]] == ["a.csv"]
    assert [c["path"] for c in d["removed"]] == ["sub/c.txt"]
    r = cli("data", "diff", "flights@1", "flights@2")
    assert "flights@1 -> flights@2: 0 added, 1 removed, 1 changed, 1 unchanged" in r.out

    r = cli("data", "checkout", "flights@1", "out", "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert (out["files"], out["copied"] + out["reflinked"]) == (3, 3)
    assert tree_bytes(project_dir / "out") == FILES

    r = cli("data", "tag", "flights@1", "gold", "--json")
    assert json.loads(r.out)["version"]["tags"] == ["gold"]
    r = cli("data", "show", "flights@gold", "--json", "--files")
    shown = json.loads(r.out)
    assert set(shown) == {
        "version", "used_by", "produced_by", "files", "validations", "erasures"
    }  # fmt: skip
    assert (shown["validations"], shown["erasures"]) == ([], [])
    assert shown["version"]["number"] == 1
    assert [f["path"] for f in shown["files"]] == ["a.csv", "sub/b.bin", "sub/c.txt"]
    r = cli("data", "log", "flights", "--json")
    assert [v["ref"] for v in json.loads(r.out)["versions"]] == ["flights@2", "flights@1"]
    r = cli("data", "list", "--json")
    (listed,) = json.loads(r.out)["datasets"]
    assert (listed["name"], listed["versions"], listed["latest"]["ref"]) == (
        "flights", 2, "flights@2"
    )  # fmt: skip


def test_data_commands_round_trip(project_dir: Path, cli: Callable) -> None:
    assert cli("init").code == 0
    _round_trip(cli, project_dir)
    r = cli("data", "log", "flights")
    assert "flights@1 (gold)" in r.out
    r = cli("data", "list")
    assert "flights" in r.out
    assert "1 dataset" in r.out
    r = cli("data", "show", "flights@1")
    assert "flights@1  first" in r.out
    assert "gold" in r.out


@pytest.mark.embedded_only("configures its own PostgreSQL and S3 backends")
@pytest.mark.postgres
@pytest.mark.s3
def test_data_commands_on_postgres_and_s3(
    project_dir: Path,
    cli: Callable,
    pg_schema: str,
    moto_endpoint: str,
    s3_bucket: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    metadata = f"postgresql+psycopg://root@127.0.0.1:5432/test?options=-csearch_path%3D{pg_schema}"
    monkeypatch.setenv("PLINTH_S3_ENDPOINT_URL", moto_endpoint)
    r = cli("init", "--metadata", metadata, "--artifacts", f"s3://{s3_bucket}/team")
    assert r.code == 0, r.err
    _round_trip(cli, project_dir)
    with Context.open(project_dir) as ctx:
        version = ctx.ledger.datasets.resolve(ctx.ledger.datasets.get(ctx.project.id, "flights"), 1)
        assert ctx.blobs.location(version.manifest_digest).startswith(f"s3://{s3_bucket}/team/")
    assert not (project_dir / ".plinth" / "plinth.db").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["data", "add", "missing", "--name", "d"], "no file or folder at"),
        (["data", "add", "data", "--name", "bad name"], "invalid dataset name 'bad name'"),
        (["data", "status", "nope", "data"], "no dataset named 'nope'"),
        (["data", "show", "d@9"], "dataset 'd' has no version 9"),
        (["data", "show", "d@silver"], "dataset 'd' has no tag 'silver'"),
        (["data", "diff", "d@1", "d@@2"], "invalid dataset reference 'd@@2'"),
        (["data", "checkout", "d@x y", "out"], "invalid dataset reference"),
        (
            ["data", "add", "data/a.txt", "--name", "t", "--kind", "table"],
            "unsupported file format",
        ),
        (["data", "tag", "d@1", "latest"], "invalid tag 'latest'"),
        (["data", "log", "ghost"], "no dataset named 'ghost'"),
    ],
)
def test_bad_input_exits_2_with_one_line(
    project_dir: Path, cli: Callable, args: list[str], message: str
) -> None:
    assert cli("init").code == 0
    make_tree(project_dir / "data", {"a.txt": b"a"})
    assert cli("data", "add", "data", "--name", "d").code == 0
    r = cli(*args)
    assert r.code == 2, (r.out, r.err)
    assert r.err.startswith("error: ")
    assert message in r.err
    assert r.err.count("\n") == 1
    r = cli(*args, "--json")
    assert r.code == 2
    (error,) = json.loads(r.out)["errors"]
    assert message in error["message"]


def test_tag_moves_only_with_force(project_dir: Path, cli: Callable) -> None:
    assert cli("init").code == 0
    src = make_tree(project_dir / "data", {"a.txt": b"1"})
    assert cli("data", "add", "data", "--name", "d").code == 0
    (src / "a.txt").write_bytes(b"2")
    assert cli("data", "add", "data", "--name", "d").code == 0
    assert cli("data", "tag", "d@1", "gold").code == 0
    r = cli("data", "tag", "d@2", "gold")
    assert (r.code, "is on version 1" in r.err) == (2, True)
    r = cli("data", "tag", "d@2", "gold", "--force")
    assert (r.code, r.out.strip()) == (0, "Tagged d@2 as gold")


@pytest.mark.parametrize(
    "command", ["add", "status", "list", "show", "log", "diff", "checkout", "tag"]
)
def test_every_command_has_help_with_an_example(cli: Callable, command: str) -> None:
    r = cli("data", command, "--help")
    assert r.code == 0
    assert f"plinth data {command}" in r.out


@pytest.mark.remote_token(role="admin")  # gc is for project admins on a server
def test_gc_keeps_every_blob_a_dataset_version_lists(project_dir: Path, cli: Callable) -> None:
    assert cli("init").code == 0
    src = make_tree(project_dir / "data", FILES)
    assert cli("data", "add", "data", "--name", "d").code == 0
    (src / "a.csv").write_bytes(b"changed")
    assert cli("data", "add", "data", "--name", "d").code == 0
    with Context.open(project_dir) as ctx:
        orphan = ctx.blobs.put_bytes(b"nobody lists me").digest
        before = {b.digest for b in ctx.blobs.iter_blobs()}
    r = cli("gc", "--yes", "--grace", "0", "--json")
    assert (r.code, json.loads(r.out)["deleted"]) == (0, 1)
    with Context.open(project_dir) as ctx:
        assert {b.digest for b in ctx.blobs.iter_blobs()} == before - {orphan}
    assert cli("data", "checkout", "d@1", "v1").code == 0
    assert tree_bytes(project_dir / "v1") == FILES
