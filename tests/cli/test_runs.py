"""``plinth runs``: list, show, compare, delete, restore and export runs made with the API."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import plinth
from plinth.context import Context


@dataclass
class Project:
    dir: Path
    ids: dict[str, str]  # run name -> id


def _unique_prefix(run_id: str, others: list[str]) -> str:
    return next(
        run_id[:n] for n in range(8, 37) if not any(o.startswith(run_id[:n]) for o in others)
    )


@pytest.fixture
def project(project_dir: Path, cli: Callable) -> Project:
    """Three finished runs in experiment 'delays' and one failed in 'other'."""
    assert cli("init").code == 0
    ctx = plinth.init(project_dir, system_metrics=False)
    ids: dict[str, str] = {}
    try:
        for i, lr in enumerate([0.1, 0.01, 0.001]):
            with plinth.start_run(
                experiment="delays",
                name=f"lr-{lr}",
                params={"lr": lr, "model": "gbm"},
                tags={"team": "ml"},
            ) as run:
                for step in range(100):
                    run.log_metric("loss", 1 / (step + 1) + lr, step=step)
                    run.log_metric("auc", 0.5 + 0.1 * i + step / 1000, step=step)
                run.log_metric("system/cpu", 50.0)
                run.log_text(f"notes of run {i}", "notes/readme.txt")
                ids[run.info.name or ""] = run.id
        with pytest.raises(ValueError, match="boom"):
            _failing_run(ids)
    finally:
        ctx.close()
    return Project(project_dir, ids)


def _failing_run(ids: dict[str, str]) -> None:
    with plinth.start_run(experiment="other", name="broken", params={"lr": "fast"}) as run:
        run.log_metric("auc", math.nan)
        ids["broken"] = run.id
        raise ValueError("boom")


def _json(result: Any) -> Any:
    assert result.code == 0, result.err
    return json.loads(result.out)


# -- list -------------------------------------------------------------------------------------


def test_list_newest_first_with_default_metric_columns(project: Project, cli: Callable) -> None:
    data = _json(cli("runs", "list", "--json"))
    assert [r["name"] for r in data["runs"]] == ["broken", "lr-0.001", "lr-0.01", "lr-0.1"]
    assert data["columns"] == ["metrics.auc", "metrics.loss"]  # system/ metrics left out
    first = data["runs"][1]
    assert first["id"] == project.ids["lr-0.001"]
    assert first["experiment"] == "delays"
    assert first["status"] == "finished"
    assert first["values"]["metrics.auc"] == pytest.approx(0.799)
    assert data["runs"][0]["values"] == {"metrics.auc": None, "metrics.loss": None}  # NaN, missing
    assert data["runs"][0]["status"] == "failed"

    r = cli("runs", "list")
    assert r.code == 0, r.err
    assert "lr-0.001" in r.out
    assert "4 run(s)" in r.out
    short = {line.split()[0] for line in r.out.splitlines()[1:5]}
    assert len(short) == 4  # short ids tell the runs apart


def test_list_where_order_by_limit_columns(project: Project, cli: Callable) -> None:
    data = _json(
        cli(
            "runs", "list", "--where", "metrics.auc > 0.6 and params.lr < 0.05",
            "--order-by", "metrics.auc DESC", "--columns", "params.model", "--json",
        )
    )  # fmt: skip
    assert [r["name"] for r in data["runs"]] == ["lr-0.001", "lr-0.01"]
    assert data["columns"] == ["metrics.auc", "params.lr", "params.model"]
    assert data["runs"][0]["values"]["params.lr"] == "0.001"

    data = _json(cli("runs", "list", "--order-by", "metrics.loss", "--limit", "1", "--json"))
    assert [r["name"] for r in data["runs"]] == ["lr-0.001"]
    r = cli("runs", "list", "--limit", "1")
    assert "more with --limit" in r.out

    data = _json(cli("runs", "list", "--columns", "user,params.lr", "--limit", "1", "--json"))
    assert data["columns"] == ["user", "params.lr"]
    assert data["runs"][0]["values"] == {"user": data["runs"][0]["created_by"], "params.lr": "fast"}
    assert "params.lr" in cli("runs", "list", "--columns", "user,params.lr").out

    data = _json(cli("runs", "list", "--experiment", "other", "--json"))
    assert [r["name"] for r in data["runs"]] == ["broken"]
    data = _json(
        cli("runs", "list", "--status", "finished", "--where", "params.lr = 'fast'", "--json")
    )
    assert data["runs"] == []


def test_bad_where_exits_2_with_a_caret(project: Project, cli: Callable) -> None:
    r = cli("runs", "list", "--where", "metrics.auc > and x")
    assert r.code == 2
    assert "at column 15" in r.err
    assert "  metrics.auc > and x\n" in r.err
    assert "\n                ^" in r.err
    assert "example:" in r.err
    r = cli("runs", "list", "--where", "metrics.auc >", "--json")
    assert r.code == 2
    (error,) = json.loads(r.out)["errors"]
    assert error["type"] == "UsageError"
    assert error["field"] == "where"


def test_unknown_experiment_exits_2_naming_the_known_ones(project: Project, cli: Callable) -> None:
    r = cli("runs", "list", "--experiment", "nope")
    assert r.code == 2
    assert "'nope'" in r.err
    assert "delays, other" in r.err


# -- show -------------------------------------------------------------------------------------


def test_show_by_prefix(project: Project, cli: Callable) -> None:
    run_id = project.ids["lr-0.01"]
    prefix = _unique_prefix(run_id, [i for i in project.ids.values() if i != run_id])
    data = _json(cli("runs", "show", prefix, "--json"))
    assert data["id"] == run_id
    assert data["params"] == {"lr": "0.01", "model": "gbm"}
    assert data["tags"] == {"team": "ml"}
    metrics = {m["key"]: m for m in data["metrics"]}
    assert set(metrics) == {"auc", "loss", "system/cpu"}
    loss = metrics["loss"]
    assert (loss["count"], loss["last_step"]) == (100, 99)
    assert loss["max"] == pytest.approx(1.01)
    assert loss["min"] == pytest.approx(0.02)
    assert len(loss["samples"]) == 40
    assert data["artifacts"][0]["path"] == "notes/readme.txt"
    assert data["environment"]["packages"] > 0
    assert data["source"]["entry_point"]

    r = cli("runs", "show", prefix)
    assert r.code == 0, r.err
    for text in (run_id, "lr-0.01", "params", "metrics", "notes/readme.txt", "environment"):
        assert text in r.out
    loss_line = next(line for line in r.out.splitlines() if line.startswith("loss"))
    assert "█" in loss_line
    assert "▁" in loss_line


def test_show_of_a_failed_run_has_its_error(project: Project, cli: Callable) -> None:
    data = _json(cli("runs", "show", project.ids["broken"], "--json"))
    assert data["status"] == "failed"
    assert "ValueError: boom" in data["error"]
    assert data["metrics"][0]["last"] is None  # NaN


@pytest.mark.parametrize("command", ["show", "export", "restore"])
def test_unknown_short_or_ambiguous_ids_exit_2(
    project: Project, cli: Callable, command: str
) -> None:
    r = cli("runs", command, "ffffffff-0000")
    assert r.code == 2
    assert "no run id starts with 'ffffffff-0000'" in r.err
    r = cli("runs", command, "0123")
    assert r.code == 2
    assert "too short" in r.err
    first = project.ids["lr-0.1"][:8]  # runs made in the same minute share 8 characters
    r = cli("runs", command, first)
    assert r.code == 2
    assert "ambiguous" in r.err


# -- compare ----------------------------------------------------------------------------------


def test_compare_marks_what_differs(project: Project, cli: Callable) -> None:
    a, b = project.ids["lr-0.1"], project.ids["lr-0.01"]
    data = _json(cli("runs", "compare", a, b, "--json"))
    assert [r["id"] for r in data["runs"]] == [a, b]
    params = {p["key"]: p for p in data["params"]}
    assert params["lr"] == {"key": "lr", "values": ["0.1", "0.01"], "differs": True}
    assert params["model"]["differs"] is False
    assert {m["key"] for m in data["metrics"]} == {"auc", "loss"}
    data = _json(cli("runs", "compare", a, b, "--only-diff", "--system", "--json"))
    assert [p["key"] for p in data["params"]] == ["lr"]
    assert "system/cpu" not in {m["key"] for m in data["metrics"]}  # same value in both

    r = cli("runs", "compare", a, b)
    assert r.code == 0, r.err
    rows = {line.split()[-3]: line for line in r.out.splitlines() if len(line.split()) >= 3}
    assert rows["lr"].startswith("*")
    assert rows["auc"].startswith("*")
    assert not rows["model"].startswith("*")
    r = cli("runs", "compare", a, b, project.ids["broken"])
    assert r.code == 0, r.err
    assert "fast" in r.out
    assert cli("runs", "compare", a).code == 2


# -- delete, restore, gc ----------------------------------------------------------------------


def test_delete_needs_yes_then_hides_the_run_until_restored(
    project: Project, cli: Callable
) -> None:
    run_id = project.ids["lr-0.1"]
    r = cli("runs", "delete", run_id)
    assert r.code == 2
    assert "--yes" in r.err
    assert len(_json(cli("runs", "list", "--json"))["runs"]) == 4  # nothing changed

    assert _json(cli("runs", "delete", run_id, "--yes", "--json")) == {"deleted": [run_id]}
    names = [r["name"] for r in _json(cli("runs", "list", "--json"))["runs"]]
    assert "lr-0.1" not in names
    listed = _json(cli("runs", "list", "--deleted", "--json"))["runs"]
    assert next(r for r in listed if r["id"] == run_id)["deleted_at"] is not None
    assert "(deleted)" in cli("runs", "list", "--deleted").out
    assert _json(cli("runs", "show", run_id, "--json"))["deleted_at"] is not None

    data = _json(cli("runs", "restore", run_id, "--json"))
    assert data == {"restored": run_id, "missing_artifacts": []}
    assert len(_json(cli("runs", "list", "--json"))["runs"]) == 4


@pytest.mark.remote_token(role="admin")  # gc is for project admins on a server
def test_gc_frees_the_blobs_of_deleted_runs(project: Project, cli: Callable) -> None:
    run_id = project.ids["lr-0.1"]
    with Context.open(project.dir) as ctx:
        (artifact,) = ctx.ledger.artifacts.list(plinth.entities.RecordRef("run", run_id))
    assert _json(cli("gc", "--grace", "0", "--json"))["unreferenced"] == 0
    assert cli("runs", "delete", run_id, "--yes").code == 0
    data = _json(cli("gc", "--yes", "--grace", "0", "--json"))
    assert data["deleted"] == 1
    with Context.open(project.dir) as ctx:
        assert not ctx.blobs.exists(artifact.digest)
        (event,) = ctx.ledger.gc.list_events()
        assert event.digests == [artifact.digest]
    r = cli("runs", "restore", run_id)
    assert r.code == 0
    assert "notes/readme.txt" in r.err
    assert "gone" in r.err


# -- export -----------------------------------------------------------------------------------


def test_export_json_and_csv(project: Project, cli: Callable, tmp_path: Path) -> None:
    run_id = project.ids["lr-0.001"]
    data = _json(cli("runs", "export", run_id, "--format", "json"))
    assert data["id"] == run_id
    assert data["params"]["lr"] == "0.001"
    loss = data["metrics"]["loss"]
    assert loss["steps"] == list(range(100))
    assert loss["values"][0] == pytest.approx(1.001)
    assert len(loss["timestamps"]) == 100

    out = tmp_path / "points.csv"
    r = cli("runs", "export", run_id, "--format", "csv", "-o", str(out))
    assert r.code == 0, r.err
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert len(rows) == 201
    assert rows[0] == {"key": "auc", "step": "0", "timestamp": rows[0]["timestamp"], "value": "0.7"}
    assert {row["key"] for row in rows} == {"auc", "loss", "system/cpu"}

    broken = cli("runs", "export", project.ids["broken"], "--format", "csv").out
    assert broken.splitlines()[1].endswith(",nan")
    assert cli("runs", "export", run_id, "--format", "xml").code == 2


# -- the rest ---------------------------------------------------------------------------------


def test_points_of_a_killed_process_show_up(project_dir: Path, cli: Callable) -> None:
    assert cli("init").code == 0
    script = textwrap.dedent(
        """
        import os, signal, plinth
        plinth.init(".", system_metrics=False)
        run = plinth.start_run(experiment="e", name="killed")
        for step in range(500):
            run.log_metric("loss", 1.0 / (step + 1), step=step)
        os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    src = str(Path(plinth.__file__).parents[1])
    env = {**os.environ, "PYTHONPATH": src}
    done = subprocess.run([sys.executable, "-c", script], cwd=project_dir, env=env, check=False)
    assert done.returncode == -9
    (run,) = _json(cli("runs", "list", "--json"))["runs"]
    assert run["name"] == "killed"
    assert run["status"] == "crashed"
    assert run["values"]["metrics.loss"] == pytest.approx(1 / 500)
    shown = _json(cli("runs", "show", run["id"], "--json"))
    assert shown["metrics"][0]["count"] == 500


@pytest.mark.parametrize("command", ["list", "show", "compare", "delete", "restore", "export"])
def test_every_subcommand_has_help_with_an_example(cli: Callable, command: str) -> None:
    r = cli("runs", command, "--help")
    assert r.code == 0
    assert "Example" in r.out
    assert command in cli("runs", "--help").out
