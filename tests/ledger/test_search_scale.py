"""What the runs pages need from ``ledger.search`` at scale: metrics downsampled in SQL
(``metric_series``), pages (``offset``), a page's params at once (``params_of``), and
numeric sorting of params in every written form (SQLite skips its REGEXP for plain ones)."""

from __future__ import annotations

import math

import pytest

from plinth.entities import MetricPoint
from plinth.errors import UsageError
from plinth.ledger import Ledger


def _run(ledger: Ledger, name: str) -> str:
    project = ledger.projects.ensure_project("p")
    experiment = ledger.projects.ensure_experiment(project.id, "e")
    return ledger.runs.create_run(experiment.id, name=name).id


def test_buckets_hold_min_max_count_and_the_latest_point(ledger: Ledger) -> None:
    run = _run(ledger, "a")
    # steps 0..999, value = step, except one dip at step 250
    points = [MetricPoint("loss", float(s), s, 1000 + s, s) for s in range(1000)]
    points[250] = MetricPoint("loss", -5.0, 250, 1250, 250)
    ledger.runs.log_metrics(run, points)
    buckets = ledger.search.metric_series([run], "loss", points=10)[run]
    assert [b.step for b in buckets] == [99 + 100 * i for i in range(10)]
    assert [b.count for b in buckets] == [100] * 10
    assert [b.last for b in buckets] == [99.0 + 100 * i for i in range(10)]
    assert buckets[2].min == -5.0
    assert buckets[2].max == 299.0
    assert buckets[0].min == 0.0


def test_the_point_logged_last_at_a_step_is_the_bucket_value(ledger: Ledger) -> None:
    run = _run(ledger, "a")
    ledger.runs.log_metrics(
        run,
        [
            MetricPoint("acc", 0.1, 0, 1000, 0),
            MetricPoint("acc", 0.5, 1, 1001, 1),
            MetricPoint("acc", 0.7, 1, 1002, 2),  # same step, logged later: wins
            MetricPoint("acc", math.nan, 2, 1003, 3),
        ],
    )
    buckets = ledger.search.metric_series([run], "acc", points=500)[run]
    assert [(b.step, b.count) for b in buckets] == [(0, 1), (1, 2), (2, 1)]
    assert buckets[1].last == 0.7
    assert (buckets[1].min, buckets[1].max) == (0.5, 0.7)
    assert math.isnan(buckets[2].last)
    assert math.isnan(buckets[2].min)


def test_several_runs_each_get_their_own_buckets(ledger: Ledger) -> None:
    a, b, c = _run(ledger, "a"), _run(ledger, "b"), _run(ledger, "c")
    ledger.runs.log_metrics(a, [MetricPoint("loss", 1.0 / (s + 1), s, s, s) for s in range(50)])
    ledger.runs.log_metrics(b, [MetricPoint("loss", 2.0, s * 10, s, s) for s in range(5)])
    found = ledger.search.metric_series([a, b, c, a], "loss", points=25)
    assert list(found) == [a, b, c]
    assert len(found[a]) == 25
    assert sum(x.count for x in found[a]) == 50
    assert [x.step for x in found[b]] == [0, 10, 20, 30, 40]
    assert found[c] == []
    assert ledger.search.metric_series([a], "missing")[a] == []


@pytest.mark.parametrize("points", [0, -1, 10_000, True, 1.5])
def test_bad_point_counts_are_refused(ledger: Ledger, points: object) -> None:
    run = _run(ledger, "a")
    with pytest.raises(UsageError, match="points"):
        ledger.search.metric_series([run], "loss", points=points)  # type: ignore[arg-type]


def test_search_pages_with_offset(ledger: Ledger) -> None:
    runs = [_run(ledger, f"r{i}") for i in range(5)]
    for i, run in enumerate(runs):
        ledger.runs.log_metrics(run, [MetricPoint("acc", i / 10, 0, 0, 0)])
    order = ["metrics.acc DESC"]
    first = ledger.search.search_runs(order_by=order, limit=2)
    second = ledger.search.search_runs(order_by=order, limit=2, offset=2)
    last = ledger.search.search_runs(order_by=order, limit=2, offset=4)
    names = [r.run.name for r in first + second + last]
    assert names == ["r4", "r3", "r2", "r1", "r0"]
    assert ledger.search.search_runs(order_by=order, offset=5) == []
    filtered = ledger.search.search_runs(where="metrics.acc < 0.25", order_by=order, offset=1)
    assert [r.run.name for r in filtered] == ["r1", "r0"]
    with pytest.raises(UsageError, match="offset"):
        ledger.search.search_runs(offset=-1)


def test_params_sort_numerically_in_every_written_form(ledger: Ledger) -> None:
    values = ["10", "9", "1e1", "2.5", ".5", "12.", "-3", "+4", "1.2.3", "abc", "1e", "0.01"]
    ids: dict[str, str] = {}
    for value in values:
        run = _run(ledger, value)
        ledger.runs.log_params(run, {"lr": value})
        ids[run] = value
    found = [ids[r.run.id] for r in ledger.search.search_runs(order_by=["params.lr"])]
    # numbers first ("10" and "1e1" tie at ten: then as text), then the rest as text
    assert found == ["-3", "0.01", ".5", "2.5", "+4", "9", "10", "1e1", "12.", "1.2.3", "1e", "abc"]
    params = ledger.search.params_of(list(ids))
    assert {params[i]["lr"] for i in ids} == set(values)
