"""``plinth.datasets.forget`` / ``plinth data forget``: rows removed from a dataset's history,
older versions erased, their blobs deleted, the erasure audited; bad input writes nothing."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import plinth
from plinth import datasets
from plinth.context import Context
from plinth.datasets import erasure as forget_module
from plinth.datasets.manifests import Manifest
from plinth.errors import NotFoundError, UsageError
from plinth.gc import collect_garbage, plan_gc

# Against a team server, erasure (it rewrites history) and gc take a project admin, and the
# audit trail names the token's user: ``dpo``, as the embedded project's ``user`` setting.
pytestmark = pytest.mark.remote_token(role="admin", user="dpo")


def users(*ids: int) -> pa.Table:
    return pa.table(
        {
            "user_id": list(ids),
            "email": [None if i == 3 else f"user{i}@example.com" for i in ids],
        }
    )


@pytest.fixture
def project(project_dir: Path) -> Iterator[Context]:
    """A project whose user (``dpo``) the audit trail must name."""
    ctx = plinth.init(project_dir, system_metrics=False, user="dpo")
    yield ctx
    ctx.close()


def file_digest(ctx: Context, ref: str) -> str:
    manifest: Manifest = datasets.manifest(ref, ctx=ctx)
    (digest,) = manifest.digests
    return digest


def blobs(ctx: Context) -> set[str]:
    return {b.digest for b in ctx.blobs.iter_blobs()}


@pytest.fixture
def history(project: Context) -> dict[str, str]:
    """users@1 without user 42, users@2 and @3 with it, and a 'backup' dataset that holds
    the very file users@2 holds."""
    datasets.save(users(1, 2), "users", "first")
    datasets.save(users(1, 2, 42), "users", "42 signs up")
    datasets.save(users(1, 2, 42, 7, 3), "users", "7 and 3 sign up")
    datasets.save(users(1, 2, 42), "backup", "a copy of users@2")
    digests = {ref: file_digest(project, ref) for ref in ("users@1", "users@2", "users@3")}
    assert file_digest(project, "backup@1") == digests["users@2"]
    return digests


def state(ctx: Context) -> Any:
    dataset = ctx.ledger.datasets.get(ctx.project.id, "users")
    return (
        [(v.number, v.status) for v in datasets.versions("users")],
        ctx.ledger.datasets.erasures(dataset),
        blobs(ctx),
        ctx.ledger.gc.list_events(),
    )


def test_forget_writes_a_version_without_the_rows_and_erases_the_older_ones(
    project: Context, history: dict[str, str]
) -> None:
    before = blobs(project)
    profiles = {ref: datasets.get(ref).profile_digest for ref in ("users@2", "users@3", "backup")}
    assert None not in profiles.values()
    assert profiles["users@2"] == profiles["backup"]  # same rows, same profile blob
    result = datasets.forget("users", "user_id = 42", "erasure request")

    assert result.version is not None
    assert (result.version.ref, result.version.message) == ("users@4", "erasure: erasure request")
    assert result.rows_removed == 1
    assert datasets.load("users", to="arrow").equals(users(1, 2, 7, 3))
    assert [v.ref for v in result.erased] == ["users@2", "users@3"]
    assert [(v.number, v.status) for v in datasets.versions("users")] == [
        (4, "published"),
        (3, "erased"),
        (2, "erased"),
        (1, "published"),
    ]
    assert datasets.load("users@1", to="arrow").equals(users(1, 2))
    assert datasets.load("backup", to="arrow").equals(users(1, 2, 42))

    # Only users@3's file was listed by erased versions alone; users@2's is backup@1's.
    after = blobs(project)
    assert history["users@3"] not in after
    assert {history["users@1"], history["users@2"]} <= after
    # Profiles quote values (top values), so the erased versions' profiles go too, unless
    # a version left published shares the blob (backup@1 has users@2's rows).
    assert before - after == {history["users@3"], profiles["users@3"]}
    assert profiles["backup"] in after
    assert [v.profile_digest for v in result.erased] == [None, None]
    assert (result.blobs_deleted, result.blobs_still_referenced) == (2, 2)
    assert result.bytes_deleted > 0
    (event,) = project.ledger.gc.list_events()
    assert sorted(event.digests) == sorted([history["users@3"], profiles["users@3"]])


def test_erased_versions_cannot_be_loaded_or_checked_out(
    project: Context, history: dict[str, str], tmp_path: Path
) -> None:
    datasets.forget("users", "user_id = 42", "erasure request")
    today = time.strftime("%Y-%m-%d")
    for ref in ("users@2", "users@3"):
        with pytest.raises(NotFoundError) as caught:
            datasets.load(ref)
        assert str(caught.value) == f"{ref} was erased on {today} by dpo: erasure request"
        assert "users@4" in caught.value.hint
        with pytest.raises(NotFoundError, match=f"{ref} was erased on {today} by dpo"):
            datasets.checkout(ref, tmp_path / "out")
    assert datasets.checkout("users@1", tmp_path / "v1").stats.files == 1


def test_the_erasure_is_audited(project: Context, history: dict[str, str]) -> None:
    profiles = {datasets.get(ref).profile_digest for ref in ("users@2", "users@3")}
    result = datasets.forget("users", "user_id = 42", "ticket 123")
    dataset = project.ledger.datasets.get(project.project.id, "users")
    (erasure,) = project.ledger.datasets.erasures(dataset)
    assert erasure == result.erasure
    assert (erasure.created_by, erasure.predicate, erasure.message) == (
        "dpo",
        "user_id = 42",
        "ticket 123",
    )
    assert (erasure.rows_removed, erasure.new_number, erasure.erased_numbers) == (1, 4, (2, 3))
    # The erased versions' files and profiles are no longer kept for the dataset.
    assert erasure.released_blobs == tuple(
        sorted({history["users@2"], history["users@3"], *profiles})
    )


def test_rows_only_older_versions_hold_are_erased_without_a_new_version(
    project: Context, history: dict[str, str]
) -> None:
    datasets.save(users(1, 2, 7), "users", "42 left")
    result = datasets.forget("users", "user_id = 42", "erasure request")
    assert (result.version, result.rows_removed) == (None, 0)
    assert [v.ref for v in result.erased] == ["users@2", "users@3"]
    assert datasets.get("users").ref == "users@4"
    assert result.erasure.new_number is None


def test_null_counts_as_no_match_and_erased_versions_are_not_read_again(
    project: Context, history: dict[str, str]
) -> None:
    datasets.forget("users", "user_id = 42", "first request")
    result = datasets.forget("users", "email LIKE 'user7@%'", "second request")
    assert datasets.load("users", to="arrow").equals(users(1, 2, 3))  # NULL email kept
    assert [v.ref for v in result.erased] == ["users@4"]
    assert datasets.get("users@1").status == "published"


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("user_id = ", "--where 'user_id = ' is not one SQL expression: Parser Error"),
        ("userid = 42", 'Binder Error: Referenced column "userid" not found'),
        ("user_id", "--where 'user_id' is a BIGINT expression on users@3, not a condition"),
        ("true) AS hit FROM forget_rows; SELECT (true", "is not one SQL expression"),
        ("user_id IN (SELECT * FROM read_csv('/etc/passwd'))", "cannot evaluate"),
    ],
)
def test_bad_sql_is_a_usage_error_and_writes_nothing(
    project: Context, history: dict[str, str], where: str, message: str
) -> None:
    before = state(project)
    with pytest.raises(UsageError) as caught:
        datasets.forget("users", where, "erasure request")
    assert message in str(caught.value)
    assert caught.value.field == "where"
    assert state(project) == before


def test_a_column_missing_from_an_older_version_stops_before_writing(
    project: Context, history: dict[str, str]
) -> None:
    datasets.save(users(1, 2, 42).append_column("team", pa.array(["a", "b", "c"])), "users")
    before = state(project)
    with pytest.raises(UsageError, match=r"on users@3: Binder Error.*\"team\""):
        datasets.forget("users", "team = 'c'", "erasure request")
    assert state(project) == before


def test_a_predicate_matching_nothing_writes_nothing(
    project: Context, history: dict[str, str]
) -> None:
    before = state(project)
    with pytest.raises(NotFoundError, match=r"no rows of users match --where 'user_id = 999' "
                       r"\(checked versions 1, 2, 3\); nothing was written"):  # fmt: skip
        datasets.forget("users", "user_id = 999", "erasure request")
    assert state(project) == before
    for where, why in (("user_id = 42", " "), (" ", "why")):
        with pytest.raises(UsageError, match="forget needs a non-empty"):
            datasets.forget("users", where, why)
    assert state(project) == before


def test_only_tables_can_be_forgotten(project: Context, tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("user 42\n")
    datasets.add(tmp_path / "notes.txt", "notes")
    with pytest.raises(UsageError, match="notes@1 is a file, not a table"):
        datasets.forget("notes", "true", "erasure request")


def test_gc_finishes_an_interrupted_forget(
    project: Context, history: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(forget_module, "_delete_released", lambda ctx, sizes: ([], 0))
    datasets.forget("users", "user_id = 42", "erasure request")
    assert history["users@3"] in blobs(project)  # "crashed" before deleting
    collect_garbage(project, plan_gc(project, grace_seconds=0))
    assert history["users@3"] not in blobs(project)
    assert {history["users@1"], history["users@2"]} <= blobs(project)
    assert datasets.load("users@1", to="arrow").equals(users(1, 2))


# -- the CLI -------------------------------------------------------------------------------


def test_cli_forget_prints_and_exits(project_dir: Path, cli: Callable[..., Any]) -> None:
    assert cli("init").code == 0
    with Context.open(project_dir) as ctx:
        datasets.save(users(1, 2, 42), "users", "first", ctx=ctx)
    r = cli("data", "forget", "users", "--where", "user_id = 42", "-m", "ticket 9")
    assert r.code == 0, r.err
    assert "Wrote users@2 without 1 row" in r.out
    assert "Erased users@1" in r.out
    r = cli("data", "forget", "users", "--where", "user_id = 1", "-m", "ticket 10", "--json")
    assert r.code == 0, r.err
    out = json.loads(r.out)
    assert (out["version"]["ref"], out["rows_removed"], out["erased"]) == (
        "users@3",
        1,
        ["users@2"],
    )
    assert (out["erasure"]["message"], out["erasure"]["predicate"]) == ("ticket 10", "user_id = 1")

    for args, message in (
        (["--where", "user_id = ", "-m", "x"], "--where 'user_id = ' is not one SQL expression"),
        (["--where", "user_id = 999", "-m", "x"], "no rows of users match"),
        (["--where", "user_id = 2", "-m", " "], "forget needs a non-empty message"),
    ):
        r = cli("data", "forget", "users", *args)
        assert (r.code, r.err.startswith("error: "), message in r.err) == (2, True, True), r.err
        r = cli("data", "forget", "users", *args, "--json")
        assert r.code == 2
        assert message in json.loads(r.out)["errors"][0]["message"]
    assert cli("data", "forget", "users", "--where", "user_id = 2").code == 2  # no -m
    assert cli("data", "show", "users@1").code == 0  # the record stays; its rows are gone
    r = cli("data", "scan", "users@1")
    assert (r.code, "users@1 was erased on" in r.err) == (2, True)
    assert cli("data", "forget", "--help").code == 0


@pytest.mark.postgres
def test_forget_on_postgres(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pg_schema: str
) -> None:
    monkeypatch.chdir(tmp_path)
    metadata = f"postgresql+psycopg://root@127.0.0.1:5432/test?options=-csearch_path%3D{pg_schema}"
    ctx = plinth.init(tmp_path, metadata=metadata, system_metrics=False, user="dpo")
    try:
        datasets.save(users(1, 2), "users", "first")
        datasets.save(users(1, 2, 42), "users", "second")
        gone = file_digest(ctx, "users@2")
        result = datasets.forget("users", "user_id = 42", "erasure request")
        assert [v.ref for v in result.erased] == ["users@2"]
        assert datasets.load("users", to="arrow").equals(users(1, 2))
        assert gone not in blobs(ctx)
        with pytest.raises(NotFoundError, match=r"users@2 was erased on .* by dpo"):
            datasets.load("users@2")
        (erasure,) = ctx.ledger.datasets.erasures(ctx.ledger.datasets.get(ctx.project.id, "users"))
        assert (erasure.created_by, erasure.new_number) == ("dpo", 3)
    finally:
        ctx.close()
