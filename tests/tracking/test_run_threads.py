"""A run's helper threads start only when it lives long enough to need them."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import plinth
from plinth.context import Context
from plinth.tracking.deferred import call_later


def _threads_of(run_id: str) -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.endswith(run_id[:8])]


def test_a_short_run_starts_no_thread_and_stores_everything(project_dir: Path) -> None:
    ctx = plinth.init(project_dir, system_metrics=True)  # sampling every 10 s (the default)
    try:
        with plinth.start_run() as run:
            for step in range(3):
                run.log_metric("loss", 1.0 / (step + 1))
            assert _threads_of(run.id) == []
        assert _threads_of(run.id) == []
        info = plinth.get_run(run.id)
        assert info.status == "finished"
        assert plinth.metric_history(run.id, "loss").values == [1.0, 0.5, 1 / 3]
        # The sampler's one sample, taken when the run ended.
        assert len(plinth.metric_history(run.id, "system/cpu_percent")) == 1
    finally:
        ctx.close()


def test_a_longer_run_is_ingested_while_it_is_active(project: Context) -> None:
    with plinth.start_run() as run:
        run.log_metric("loss", 0.5)
        deadline = time.monotonic() + 10
        seen: list[float] = []
        while time.monotonic() < deadline and not seen:
            time.sleep(0.05)
            seen = list(project.ledger.runs.metric_history(run.id, "loss"))
        assert [p.value for p in seen] == [0.5], "the ingest thread should store the point"
        assert plinth.get_run(run.id).status == "running"
        assert any(name.startswith("plinth-ingest-") for name in _threads_of(run.id))


def test_flush_stores_the_points_of_a_young_run(project: Context) -> None:
    with plinth.start_run() as run:
        run.log_metrics({"a": 1.0, "b": 2.0})
        assert run.flush(10.0) is True
        assert project.ledger.runs.latest_metrics(run.id) == {"a": 1.0, "b": 2.0}


def test_deferred_calls_run_in_order_unless_cancelled() -> None:
    done: list[str] = []
    event = threading.Event()
    later = call_later(0.2, lambda: (done.append("later"), event.set()))
    cancelled = call_later(0.05, lambda: done.append("cancelled"))
    call_later(0.1, lambda: done.append("sooner"))
    cancelled.cancel()
    assert event.wait(10)
    assert done == ["sooner", "later"]
    assert not later.pending
    assert not cancelled.pending
