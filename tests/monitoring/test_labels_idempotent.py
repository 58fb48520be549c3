"""Issue 13, problem 1: label batches are identified by content, a key labelled twice keeps
its latest label, and batches can be listed, shown and deleted (audited)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from plinth.context import Context
from plinth.errors import ConflictError, UsageError
from plinth.ids import new_id, now_ms
from plinth.monitoring.monitors import run_monitor
from plinth.monitoring.performance import record_labels
from plinth.monitoring.spec import MonitorSpec
from plinth.serving.predlog import PredictionLog

N = 40


@pytest.fixture
def ids(project: Context) -> list[str]:
    """Deployment ``web`` with N logged one-row requests predicting 0.9 (i even) or 0.1."""
    digest = project.blobs.put_bytes(b"name: web\nmodel: m@1\n").digest
    deployment = project.ledger.deployments.save(
        project.project.id, "web", digest, {"model": "m@1"}
    )
    log = PredictionLog(project, deployment)
    out = []
    stamp = now_ms()
    for i in range(N):
        rid = new_id()
        log.append(rid, stamp + i, "m@1", {"x": [float(i)]}, [0.9 if i % 2 == 0 else 0.1])
        out.append(rid)
    log.close()
    return out


def _write(path: Path, keys: list[str], labels: list[int]) -> Path:
    pq.write_table(pa.table({"request_id": keys, "label": labels}), path)
    return path


def _right(ids: list[str]) -> list[int]:
    return [1 if i % 2 == 0 else 0 for i in range(len(ids))]


def _monitor(ctx: Context, folder: Path) -> dict[str, Any]:
    path = folder / "monitor.yaml"
    path.write_text(
        f"deployment: web\nwindow: {{rows: {N}}}\n"
        "checks: {performance: {min: {accuracy: 0.9}}}\n",
        encoding="utf-8",
    )
    check: dict[str, Any] = run_monitor(MonitorSpec.load(path), ctx=ctx).checks[0]
    return check


def test_recording_the_same_labels_twice_is_a_noop_that_says_so(
    project: Context, ids: list[str], tmp_path: Path, cli: Callable[..., Any]
) -> None:
    path = _write(tmp_path / "labels.parquet", ids, _right(ids))
    first = cli("monitor", "labels", "web", str(path), "--json")
    assert first.code == 0, first.err
    again = cli("monitor", "labels", "web", str(path))
    assert again.code == 0, again.err
    assert f"Already recorded as label batch {json.loads(first.out)['label_batch_id']}" in (
        again.out
    )
    repeat = cli("monitor", "labels", "record", "web", str(path), "--json")
    out = json.loads(repeat.out)
    assert out["already_recorded"] is True
    assert out["label_batch_id"] == json.loads(first.out)["label_batch_id"]
    assert out["report_id"] == json.loads(first.out)["report_id"]
    # Nothing written: one batch, one report.
    assert len(project.ledger.monitoring.label_batches(project.project.id)) == 1
    assert len(project.ledger.monitoring.reports(project.project.id, kind="performance")) == 1
    # The API says the same.
    result = record_labels("web", path, ctx=project)
    assert result.already_recorded
    assert result.label_batch_id == out["label_batch_id"]


def test_labels_recorded_twice_never_poison_later_monitor_runs(
    project: Context, ids: list[str], tmp_path: Path, cli: Callable[..., Any]
) -> None:
    wrong = [1 - y for y in _right(ids)]
    record_labels("web", _write(tmp_path / "wrong.parquet", ids, wrong), ctx=project)
    # The same keys again, now right: the latest batch wins, counted, not an error.
    record_labels("web", _write(tmp_path / "right.parquet", ids, _right(ids)), ctx=project)
    check = _monitor(project, tmp_path)
    assert check["status"] == "ok", check
    assert check["metrics"]["accuracy"] == 1.0
    assert check["labels_superseded"] == N
    assert "latest wins" in check["summary"]
    assert "more than once" not in json.dumps(check)


def test_a_key_labelled_twice_in_one_file_keeps_the_last_row(
    project: Context, ids: list[str], tmp_path: Path
) -> None:
    keys = [*ids, ids[0]]
    labels = [*_right(ids)[:1], *_right(ids)[1:]]
    labels[0] = 0  # wrong first, corrected by the last row
    path = _write(tmp_path / "dup.parquet", keys, [*labels, 1])
    result = record_labels("web", path, window="all", ctx=project)
    assert result.duplicates == 1
    assert (result.rows, result.matched) == (N + 1, N)
    assert result.windows[0]["metrics"]["accuracy"] == 1.0
    assert result.to_dict()["duplicates"] == 1


def test_label_batches_are_listed_shown_and_deleted_with_an_audit(
    project: Context, ids: list[str], tmp_path: Path, cli: Callable[..., Any]
) -> None:
    from plinth.monitoring import delete_label_batch, list_label_batches, show_label_batch

    old = record_labels(
        "web", _write(tmp_path / "a.parquet", ids, [1 - y for y in _right(ids)]), ctx=project
    )
    new = record_labels(
        "web", _write(tmp_path / "b.parquet", ids[:10], _right(ids)[:10]), ctx=project
    )
    listed = json.loads(cli("monitor", "labels", "list", "web", "--json").out)
    assert [b["id"] for b in listed] == [old.label_batch_id, new.label_batch_id]
    shown = json.loads(cli("monitor", "labels", "show", old.label_batch_id, "--json").out)
    assert (shown["keys"], shown["in_use"], shown["superseded_by_later"]) == (N, N - 10, 10)
    assert (
        "10 keys labelled again by a later batch"
        in cli("monitor", "labels", "show", old.label_batch_id).out
    )

    assert _monitor(project, tmp_path)["status"] == "alert"  # the wrong labels count
    no_reason = cli("monitor", "labels", "delete", old.label_batch_id)
    assert no_reason.code == 2
    assert list_label_batches("web", ctx=project)[0].id == old.label_batch_id  # not deleted
    deleted = cli(
        "monitor", "labels", "delete", old.label_batch_id, "--reason", "inverted export", "--json"
    )
    assert deleted.code == 0, deleted.err
    gone = json.loads(deleted.out)
    assert (gone["deleted"], gone["delete_reason"]) == (True, "inverted export")
    assert gone["deleted_by"]
    assert gone["deleted_at"]
    assert [b.id for b in list_label_batches("web", ctx=project)] == [new.label_batch_id]
    kept = list_label_batches("web", include_deleted=True, ctx=project)
    assert kept[0].delete_reason == "inverted export"
    assert "inverted export" in cli("monitor", "labels", "list", "--deleted").out
    assert show_label_batch(old.label_batch_id, ctx=project).in_use == 0
    # Performance no longer reads the deleted batch: only the 10 right labels count.
    check = _monitor(project, tmp_path)
    assert (check["status"], check["rows"]) == ("ok", 10)
    with pytest.raises(ConflictError, match="already deleted"):
        delete_label_batch(old.label_batch_id, reason="again", ctx=project)
    with pytest.raises(UsageError, match="needs a reason"):
        delete_label_batch(new.label_batch_id, reason=" ", ctx=project)
    assert cli("monitor", "labels", "show", "nope").code == 2
