from __future__ import annotations

import math
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import plinth
from plinth.context import Context
from plinth.errors import ConflictError, UsageError


def test_run_records_params_metrics_tags_and_finishes(project: Context) -> None:
    with plinth.start_run(experiment="delays", name="baseline", params={"lr": 0.1}) as run:
        assert plinth.active_run() is run
        for step in range(5):
            run.log_metric("loss", 1.0 / (step + 1))
        run.log_metrics({"auc": 0.7, "acc": 0.8}, step=3)
        run.set_tags({"team": "ml"})
        run.log_param("depth", 6)
    assert plinth.active_run() is None
    info = plinth.get_run(run.id)
    assert info.status == "finished"
    assert info.end_time is not None
    assert info.end_time >= info.start_time
    assert info.params == {"lr": "0.1", "depth": "6"}
    assert info.tags == {"team": "ml"}
    assert info.metrics == {"loss": 0.2, "auc": 0.7, "acc": 0.8}
    history = plinth.metric_history(run.id, "loss")
    assert history.steps == [0, 1, 2, 3, 4]
    assert history.values == [1.0, 0.5, 1 / 3, 0.25, 0.2]
    assert all(t > 0 for t in history.timestamps)


def test_a_raising_block_fails_the_run_with_the_error(project: Context) -> None:
    def train() -> None:
        with plinth.start_run() as run:
            run.log_metric("loss", 1.0)
            ids.append(run.id)
            raise ValueError("bad batch")

    ids: list[str] = []
    with pytest.raises(ValueError, match="bad batch"):
        train()
    (run_id,) = ids
    info = plinth.get_run(run_id)
    assert info.status == "failed"
    assert info.error == "ValueError: bad batch"
    assert info.metrics == {"loss": 1.0}, "points logged before the failure are kept"


def test_keyboard_interrupt_kills_the_run(project: Context) -> None:
    with pytest.raises(KeyboardInterrupt), plinth.start_run() as run:
        raise KeyboardInterrupt
    assert plinth.get_run(run.id).status == "killed"


def test_param_values_are_immutable(project: Context) -> None:
    with plinth.start_run(params={"lr": 0.1}) as run:
        run.log_param("lr", 0.1)  # the same value again is fine
        with pytest.raises(ConflictError) as info:
            run.log_param("lr", 0.2)
    assert "0.1" in info.value.message
    assert "0.2" in info.value.message
    assert "lr" in info.value.message


def test_nested_runs_are_children(project: Context) -> None:
    with plinth.start_run(name="sweep") as parent:
        with plinth.start_run(name="trial") as child:
            assert plinth.active_run() is child
        with plinth.start_run(name="free", nested=False) as free:
            pass
        assert plinth.active_run() is parent
    assert plinth.get_run(child.id).parent_run_id == parent.id
    assert plinth.get_run(free.id).parent_run_id is None


def test_bad_metric_input_is_rejected_precisely(project: Context) -> None:
    with plinth.start_run() as run:
        with pytest.raises(UsageError, match="'loss' must be a number"):
            run.log_metric("loss", "high")  # type: ignore[arg-type]
        with pytest.raises(UsageError, match="step"):
            run.log_metric("loss", 1.0, step=1.5)  # type: ignore[arg-type]
        with pytest.raises(UsageError, match="non-empty"):
            run.log_metric("", 1.0)
        run.log_metric("loss", float("nan"))
        run.log_metric("loss", float("inf"))
        run.log_metric("flag", True)  # type: ignore[arg-type]
    history = plinth.metric_history(run.id, "loss")
    assert math.isnan(history.values[0])
    assert history.values[1] == math.inf
    assert plinth.get_run(run.id).metrics["flag"] == 1.0


def test_resumed_run_keeps_earlier_points(project: Context) -> None:
    with plinth.start_run() as run:
        run.log_metric("loss", 1.0, step=0)
    with plinth.start_run(run_id=run.id) as again:
        again.log_metric("loss", 0.5, step=1)
    assert plinth.metric_history(run.id, "loss").values == [1.0, 0.5]
    assert plinth.get_run(run.id).status == "finished"


def test_artifacts(project: Context, tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    folder = tmp_path / "out"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.txt").write_text("A")
    (folder / "sub" / "b.csv").write_text("x,y\n1,2\n")
    with plinth.start_run() as run:
        single = run.log_artifact(folder / "a.txt", "docs")
        many = run.log_artifacts(folder, "tree")
        run.log_text("hello", "notes/hello.txt")
        run.log_dict({"a": 1}, "config/params.json")
        run.log_dict({"a": 1}, "config/params.yaml")
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3])
        run.log_figure(fig, "plots/curve")
        plt.close(fig)
        with pytest.raises(UsageError):
            run.log_text("x", "../escape.txt")
    assert single.path == "docs/a.txt"
    assert sorted(a.path for a in many) == ["tree/a.txt", "tree/sub/b.csv"]
    paths = {a.path: a for a in plinth.get_run(run.id).artifacts}
    assert {
        "notes/hello.txt",
        "config/params.json",
        "config/params.yaml",
        "plots/curve.png",
    } <= set(paths)
    assert project.blobs.read_bytes(paths["notes/hello.txt"].digest) == b"hello"
    assert project.blobs.read_bytes(paths["plots/curve.png"].digest)[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["config/params.yaml"].media_type in (
        "application/yaml",
        "application/x-yaml",
        None,
    )


def test_seed_everything_seeds_and_records(project: Context) -> None:
    import random

    import numpy as np

    plinth.seed_everything(42)
    a = (random.random(), np.random.rand())
    with plinth.start_run() as run:
        pass
    plinth.seed_everything(42)
    assert (random.random(), np.random.rand()) == a
    assert plinth.get_run(run.id).params == {"seed": "42"}
    with pytest.raises(UsageError):
        plinth.seed_everything(-1)


def test_system_metrics_are_sampled(project_dir: Path) -> None:
    ctx = plinth.init(project_dir, system_metrics_interval=0.05)
    try:
        with plinth.start_run() as run:
            sum(i * i for i in range(300_000))
            import time

            time.sleep(0.3)
        metrics = plinth.get_run(run.id).metrics
        for key in (
            "system/cpu_percent",
            "system/process_cpu_percent",
            "system/process_rss_bytes",
            "system/memory_used_bytes",
            "system/disk_read_bytes",
            "system/network_sent_bytes",
        ):
            assert key in metrics, key
        assert metrics["system/process_rss_bytes"] > 10_000_000
        assert len(plinth.metric_history(run.id, "system/cpu_percent")) >= 3
    finally:
        ctx.close()


def test_sigterm_marks_the_run_killed(project_dir: Path) -> None:
    script = textwrap.dedent(
        """
        import sys, time, plinth
        plinth.init(system_metrics=False)
        with plinth.start_run() as run:
            run.log_metric("loss", 1.0)
            print(run.id, flush=True)
            time.sleep(60)
        """
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], cwd=project_dir, stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    proc.stdout.close()
    ctx = plinth.init(project_dir)
    try:
        info = plinth.get_run(run_id)
        assert info.status == "killed"
        assert info.metrics == {"loss": 1.0}
    finally:
        ctx.close()


def test_bad_params_at_start_write_no_run(project: Context) -> None:
    with pytest.raises(UsageError, match="param name"):
        plinth.start_run(experiment="bad", params={"": 1})
    assert plinth.active_run() is None
    assert project.ledger.runs.list_runs() == [], "the run, its tags and params: all or nothing"


def test_a_run_that_cannot_start_is_not_left_running(
    project: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    import plinth.tracking.runs as runs_module

    def no_journal(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runs_module, "JournalWriter", no_journal)
    with pytest.raises(OSError, match="No space left"):
        plinth.start_run(experiment="bad", params={"lr": 1})
    assert plinth.active_run() is None
    (run,) = project.ledger.runs.list_runs()
    assert run.status == "failed"
    assert (run.error or "").startswith("could not start: OSError")
    assert project.ledger.runs.get_params(run.id) == {"lr": "1"}
