"""``latest_metrics``: kept current by log_metrics, backfilled by migration 0002; soft delete
and what gc may free."""

from __future__ import annotations

import io
import math
import random
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.config import Config

from plinth.entities import MetricPoint, RecordRef, Run
from plinth.errors import NotFoundError
from plinth.ledger import Ledger, create_ledger_engine
from plinth.ledger.migrate import MIGRATIONS, revisions
from plinth.ledger.tables import latest_metrics, metrics
from plinth.testing.ledger_contract import digest_of


def _run(ledger: Ledger, name: str = "r") -> Run:
    project = ledger.projects.ensure_project("p")
    experiment = ledger.projects.ensure_experiment(project.id, "e")
    return ledger.runs.create_run(experiment.id, name=name)


def _expected(points: list[MetricPoint]) -> dict[str, tuple[float, int, int, int]]:
    """The reference rule: highest (step, timestamp, seq) per key, computed in Python."""
    best: dict[str, MetricPoint] = {}
    for p in points:
        held = best.get(p.key)
        if held is None or (p.step, p.timestamp, p.seq) > (held.step, held.timestamp, held.seq):
            best[p.key] = p
    return {k: (p.value, p.step, p.timestamp, p.seq) for k, p in best.items()}


def _stored(ledger: Ledger, run_id: str) -> dict[str, tuple[float, int, int, int]]:
    query = sa.select(latest_metrics).where(latest_metrics.c.run_id == run_id)
    with ledger.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    return {
        r["key"]: (
            math.nan if r["value"] is None else r["value"],
            r["step"],
            r["timestamp"],
            r["seq"],
        )
        for r in rows
    }


def _same(
    a: dict[str, tuple[float, int, int, int]], b: dict[str, tuple[float, int, int, int]]
) -> bool:
    def norm(d: dict[str, tuple[float, int, int, int]]) -> dict[str, tuple[object, ...]]:
        return {k: ("nan" if math.isnan(v[0]) else v[0], *v[1:]) for k, v in d.items()}

    return norm(a) == norm(b)


def test_out_of_order_batches_replays_and_nan(ledger: Ledger) -> None:
    run = _run(ledger)
    rng = random.Random(7)
    points = [
        MetricPoint(
            rng.choice(["loss", "acc", "val/loss"]),
            math.nan if i % 17 == 0 else rng.random(),
            rng.randrange(0, 30),
            rng.randrange(0, 5),
            i,
        )
        for i in range(600)
    ]
    shuffled = points[:]
    rng.shuffle(shuffled)
    logged: list[MetricPoint] = []
    for start in range(0, 600, 75):  # several batches, steps out of order within and across
        batch = shuffled[start : start + 75]
        ledger.runs.log_metrics(run.id, batch)
        logged += batch
        assert _same(_stored(ledger, run.id), _expected(logged))
    before = _stored(ledger, run.id)
    assert ledger.runs.log_metrics(run.id, shuffled[100:400]) == 0  # a replay
    assert _same(_stored(ledger, run.id), before)
    latest = ledger.runs.latest_metrics(run.id)
    for key, (value, *_rest) in _expected(points).items():
        assert (math.isnan(value) and math.isnan(latest[key])) or latest[key] == value


def test_a_lower_step_never_replaces_a_higher_one_and_ties_go_by_timestamp_then_seq(
    ledger: Ledger,
) -> None:
    run = _run(ledger)
    ledger.runs.log_metrics(run.id, [MetricPoint("loss", 0.5, 10, 100, 0)])
    ledger.runs.log_metrics(run.id, [MetricPoint("loss", 0.9, 9, 999, 1)])
    assert ledger.runs.latest_metrics(run.id) == {"loss": 0.5}
    ledger.runs.log_metrics(run.id, [MetricPoint("loss", 0.4, 10, 101, 2)])
    assert ledger.runs.latest_metrics(run.id) == {"loss": 0.4}
    ledger.runs.log_metrics(run.id, [MetricPoint("loss", 0.3, 10, 101, 3)])  # same step+time
    assert ledger.runs.latest_metrics(run.id) == {"loss": 0.3}
    ledger.runs.log_metrics(run.id, [MetricPoint("loss", math.nan, 11, 0, 4)])
    assert math.isnan(ledger.runs.latest_metrics(run.id)["loss"])
    assert _stored(ledger, run.id)["loss"][1:] == (11, 0, 4)


def test_latest_metrics_of_a_missing_run_is_not_found(ledger: Ledger) -> None:
    with pytest.raises(NotFoundError):
        ledger.runs.latest_metrics("missing")


def test_a_failed_batch_leaves_latest_metrics_alone(ledger: Ledger) -> None:
    run = _run(ledger)
    ledger.runs.log_metrics(run.id, [MetricPoint("loss", 1.0, 0, 0, 0)])
    with pytest.raises(NotFoundError):
        ledger.runs.log_metrics("missing", [MetricPoint("loss", 2.0, 5, 0, 1)])
    assert ledger.runs.latest_metrics(run.id) == {"loss": 1.0}
    with ledger.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(latest_metrics)).scalar() == 1


# -- migration 0002 --------------------------------------------------------------------------


def _migrate_to(url: str, revision: str) -> None:
    engine = create_ledger_engine(url)
    try:
        with engine.connect() as conn, conn.begin():
            cfg = Config(stdout=io.StringIO())
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.set_main_option("path_separator", "os")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)
    finally:
        engine.dispose()


def test_migration_0002_backfills_latest_metrics_from_existing_points(ledger_url: str) -> None:
    assert revisions()[:2] == ["0001_foundation", "0002_run_search"]
    _migrate_to(ledger_url, "0001_foundation")
    rng = random.Random(3)
    points = {
        run_id: [
            MetricPoint(
                rng.choice("abc"),
                rng.choice([rng.random(), math.nan]),
                rng.randrange(9),
                rng.randrange(3),
                seq,
            )
            for seq in range(200)
        ]
        for run_id in ("run-1", "run-2")
    }
    engine = create_ledger_engine(ledger_url)
    try:
        with engine.begin() as conn:  # rows written by a plinth that only knew 0001
            conn.execute(sa.text("INSERT INTO projects VALUES ('p', 'p', 1, 'old')"))
            conn.execute(sa.text("INSERT INTO experiments VALUES ('e', 'p', 'e', 1, 'old')"))
            for run_id, run_points in points.items():
                conn.execute(
                    sa.text(
                        "INSERT INTO runs (id, experiment_id, status, start_time, source, "
                        "created_at, created_by) VALUES (:id, 'e', 'finished', 1, '{}', 1, 'old')"
                    ),
                    {"id": run_id},
                )
                conn.execute(
                    metrics.insert(),
                    [
                        {
                            "run_id": run_id,
                            "seq": p.seq,
                            "key": p.key,
                            "step": p.step,
                            "timestamp": p.timestamp,
                            "value": None if math.isnan(p.value) else p.value,
                        }
                        for p in run_points
                    ],
                )
    finally:
        engine.dispose()
    with Ledger.open(ledger_url, user="tester") as ledger:
        assert ledger.migrations_applied[0] == "0002_run_search"
        for run_id, run_points in points.items():
            assert _same(_stored(ledger, run_id), _expected(run_points))
            assert ledger.runs.get_run(run_id).deleted_at is None
        (row,) = ledger.search.search_runs(
            order_by=["metrics.a DESC"], limit=1, where="id = 'run-1'"
        )
        assert row.run.id == "run-1"


# -- soft delete -----------------------------------------------------------------------------


def test_deleted_runs_leave_lists_but_not_get_run(ledger: Ledger) -> None:
    kept, gone = _run(ledger, "kept"), _run(ledger, "gone")
    deleted = ledger.runs.delete_run(gone.id)
    assert deleted.deleted_at is not None
    assert ledger.runs.delete_run(gone.id).deleted_at == deleted.deleted_at  # first time kept
    assert [r.id for r in ledger.runs.list_runs()] == [kept.id]
    assert {r.id for r in ledger.runs.list_runs(include_deleted=True)} == {kept.id, gone.id}
    assert [r.run.id for r in ledger.search.search_runs()] == [kept.id]
    assert ledger.runs.get_run(gone.id).deleted_at == deleted.deleted_at
    assert ledger.runs.restore_run(gone.id).deleted_at is None
    assert {r.id for r in ledger.runs.list_runs()} == {kept.id, gone.id}
    for call in (ledger.runs.delete_run, ledger.runs.restore_run):
        with pytest.raises(NotFoundError):
            call("missing")


def test_artifacts_of_deleted_runs_are_unreferenced(ledger: Ledger) -> None:
    alive, doomed = _run(ledger, "alive"), _run(ledger, "doomed")
    shared, own = digest_of("shared"), digest_of("own")
    ledger.artifacts.record(RecordRef("run", alive.id), "model.bin", shared, 1)
    ledger.artifacts.record(RecordRef("run", doomed.id), "model.bin", shared, 1)
    ledger.artifacts.record(RecordRef("run", doomed.id), "plot.png", own, 1)
    ledger.artifacts.record(RecordRef("dataset_version", doomed.id), "x", digest_of("ds"), 1)
    assert {shared, own} <= ledger.gc.referenced_digests()
    ledger.runs.delete_run(doomed.id)
    # The shared blob is still used by a live run; a non-run owner with the same id counts.
    assert ledger.gc.referenced_digests() == {shared, digest_of("ds")}
    ledger.runs.restore_run(doomed.id)
    assert own in ledger.gc.referenced_digests()


def test_top_runs_by_a_metric_never_scan_the_metrics_table(tmp_path: Path) -> None:
    with Ledger.open(f"sqlite:///{tmp_path / 'plinth.db'}", user="tester") as ledger:
        for i in range(30):
            run = _run(ledger, f"r{i}")
            ledger.runs.log_params(run.id, {f"p{j}": i * j for j in range(10)})
            ledger.runs.set_tags(run.id, {"a": 1, "b": 2, "c": 3})
            ledger.runs.log_metrics(
                run.id,
                [
                    MetricPoint(f"m{j}", i + j / 10, s, s, j * 5 + s)
                    for j in range(10)
                    for s in range(5)
                ],
            )
        seen: list[tuple[str, object]] = []

        def record(_conn: object, _cursor: object, sql: str, params: object, *_: object) -> None:
            seen.append((sql, params))

        sa.event.listen(ledger.engine, "before_cursor_execute", record)
        for kwargs in (
            {"order_by": ["metrics.m3 DESC"], "limit": 10},
            {"where": "metrics.m3 > 10 and params.p1 >= 2", "order_by": ["metrics.m3"]},
        ):
            seen.clear()
            rows = ledger.search.search_runs(**kwargs)  # type: ignore[arg-type]
            assert rows
            (query,) = [(sql, p) for sql, p in seen if sql.lstrip().upper().startswith("SELECT")]
            with ledger.engine.connect() as conn:
                plan = [
                    row[-1]
                    for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + query[0], query[1])
                ]
            assert all(" metrics " not in f" {step} " for step in plan), plan
            assert not any(step.startswith("SCAN") for step in plan), plan
        top = ledger.search.search_runs(order_by=["metrics.m3 DESC"], limit=10)
        assert [r.run.name for r in top] == [f"r{i}" for i in range(29, 19, -1)]
