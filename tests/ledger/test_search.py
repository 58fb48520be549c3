"""Run search on SQLite and PostgreSQL: the where language, ordering, values, injection."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from plinth.entities import MetricPoint
from plinth.errors import NotFoundError, UsageError
from plinth.ledger import Ledger
from plinth.ledger.tables import runs as runs_table


@dataclass
class Scene:
    ledger: Ledger
    ids: dict[str, str]  # run name -> id
    experiments: dict[str, str]

    def names(self, **kwargs: object) -> list[str]:
        rows = self.ledger.search.search_runs(**kwargs)  # type: ignore[arg-type]
        by_id = {v: k for k, v in self.ids.items()}
        return [by_id[r.run.id] for r in rows]

    def found(self, where: str) -> set[str]:
        return set(self.names(where=where, limit=1000))


# name: (experiment, params, tags, metrics {key: [values by step]}, status)
RUNS: dict[str, tuple[str, dict[str, object], dict[str, str], dict[str, list[float]], str]] = {
    "a": (
        "exp1",
        {"lr": 0.1, "model": "gbm", "depth": 3},
        {"team": "ml"},
        {"auc": [0.5, 0.91], "val loss": [1.0, 0.2]},
        "finished",
    ),
    "b": (
        "exp1",
        {"lr": 0.01, "model": "logreg", "depth": "auto"},
        {"team": "ops"},
        {"auc": [0.7, 0.85], "val loss": [0.9, 0.4]},
        "finished",
    ),
    "c": (
        "exp1",
        {"lr": "1e-3", "model": "gbm", "depth": 10},
        {"team": "ml", "note": "it's"},
        {"auc": [0.6, 0.8], "val loss": [math.nan]},
        "failed",
    ),
    "d": ("exp2", {"lr": "fast", "model": "O'Brien"}, {}, {"loss": [3.0]}, "running"),
    "e": ("exp2", {"lr": 0.10, "model": "gbm"}, {"team": "ml"}, {"auc": [math.nan]}, "finished"),
}


@pytest.fixture
def scene(ledger: Ledger) -> Scene:
    project = ledger.projects.ensure_project("p")
    experiments = {
        name: ledger.projects.ensure_experiment(project.id, name).id for name in ("exp1", "exp2")
    }
    ids: dict[str, str] = {}
    for start, (name, (exp, params, tags, metrics, status)) in enumerate(RUNS.items()):
        run = ledger.runs.create_run(experiments[exp], name=name, tags=tags)
        ids[name] = run.id
        ledger.runs.log_params(run.id, params)
        points = [
            MetricPoint(key, value, step, 1000 + step, seq)
            for seq, (key, value, step) in enumerate(
                (k, v, s) for k, values in metrics.items() for s, v in enumerate(values)
            )
        ]
        ledger.runs.log_metrics(run.id, points)
        if status != "running":
            ledger.runs.set_status(run.id, status)
        with ledger.engine.begin() as conn:  # distinct, known start times: a oldest, e newest
            conn.execute(
                runs_table.update()
                .where(runs_table.c.id == run.id)
                .values(start_time=1000 * (start + 1))
            )
    return Scene(ledger, ids, experiments)


def test_default_order_is_newest_first(scene: Scene) -> None:
    assert scene.names() == ["e", "d", "c", "b", "a"]
    assert scene.names(limit=2) == ["e", "d"]


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("metrics.auc > 0.85", {"a"}),
        ("metrics.auc >= 0.85", {"a", "b"}),
        ("metrics.auc < 0.85", {"c"}),
        ("metrics.auc <= 0.85", {"b", "c"}),
        ("metrics.auc = 0.8", {"c"}),
        ("metrics.auc == 0.8", {"c"}),
        ("metrics.auc != 0.8", {"a", "b"}),  # NaN (e) and missing (d) never match
        ("metrics.auc <> 0.8", {"a", "b"}),
        ("metrics.`val loss` < 0.3", {"a"}),
        ('metrics."val loss" > 0', {"a", "b"}),
        ("metrics.loss = 3", {"d"}),
        ("metrics.nothing > -1e9", set()),
    ],
)
def test_metric_comparisons(scene: Scene, where: str, expected: set[str]) -> None:
    assert scene.found(where) == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        # A number compares numerically with the params that look like numbers.
        ("params.lr = 0.1", {"a", "e"}),
        ("params.lr = 1e-1", {"a", "e"}),
        ("params.lr < 0.05", {"b", "c"}),
        ("params.lr >= 0.001", {"a", "b", "c", "e"}),
        ("params.lr != 0.1", {"b", "c"}),  # 'fast' is not a number: never matches
        ("params.depth > 5", {"c"}),
        ("params.depth = 3", {"a"}),
        # A quoted string compares as text.
        ("params.lr = '0.1'", {"a", "e"}),
        ("params.lr = '1e-3'", {"c"}),
        ("params.lr = 'fast'", {"d"}),
        ("params.depth = 'auto'", {"b"}),
        ("params.model = 'O''Brien'", {"d"}),
        ("params.model != 'gbm'", {"b", "d"}),
        ("params.model > 'h'", {"b"}),
    ],
)
def test_param_comparisons(scene: Scene, where: str, expected: set[str]) -> None:
    assert scene.found(where) == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("tags.team = 'ml'", {"a", "c", "e"}),
        ("tags.team != 'ml'", {"b"}),
        ("tags.note = 'it''s'", {"c"}),
        ("status = 'finished'", {"a", "b", "e"}),
        ("status != 'finished'", {"c", "d"}),
        ("attributes.status = 'running'", {"d"}),
        ("name = 'b'", {"b"}),
        ("experiment = 'exp2'", {"d", "e"}),
        ("start_time > 3000", {"d", "e"}),
        ("start_time <= '1970-01-01T00:00:02'", {"a", "b"}),
        ("user = 'tester'", {"a", "b", "c", "d", "e"}),
    ],
)
def test_tags_and_attributes(scene: Scene, where: str, expected: set[str]) -> None:
    assert scene.found(where) == expected


@pytest.mark.parametrize(
    ("where", "expected"),
    [
        ("metrics.auc > 0.8 and params.model = 'gbm' and tags.team = 'ml'", {"a"}),
        ("metrics.auc > 0.9 or params.lr = 'fast'", {"a", "d"}),
        ("(metrics.auc > 0.9 or status = 'failed') and tags.team = 'ml'", {"a", "c"}),
        (
            "metrics.auc > 0.9 or status = 'failed' and tags.team = 'ops'",
            {"a"},
        ),  # and binds tighter
        ("METRICS.auc > 0.9 OR PARAMS.lr = 'fast'", {"a", "d"}),
    ],
)
def test_and_or_parentheses(scene: Scene, where: str, expected: set[str]) -> None:
    assert scene.found(where) == expected


def test_filters_combine_with_where(scene: Scene) -> None:
    exp2 = scene.experiments["exp2"]
    assert scene.names(experiment_ids=[exp2]) == ["e", "d"]
    assert scene.names(status="finished", where="params.model = 'gbm'") == ["e", "a"]
    assert scene.names(status=["failed", "running"]) == ["d", "c"]
    project = scene.ledger.projects.get_project("p")
    assert len(scene.names(project_id=project.id)) == 5
    assert scene.names(project_id="other") == []


def test_order_by_metric_puts_nan_and_missing_last_both_ways(scene: Scene) -> None:
    assert scene.names(order_by=["metrics.auc DESC"])[:3] == ["a", "b", "c"]
    assert scene.names(order_by=["metrics.auc"])[:3] == ["c", "b", "a"]
    # d has no auc and e's is NaN: last either way, then newest first.
    assert scene.names(order_by=["metrics.auc DESC"])[3:] == ["e", "d"]
    assert scene.names(order_by=["metrics.auc asc"])[3:] == ["e", "d"]


def test_order_by_params_is_numeric_then_text(scene: Scene) -> None:
    assert scene.names(order_by=["params.lr"]) == ["c", "b", "e", "a", "d"]
    assert scene.names(order_by=["params.lr DESC"]) == ["e", "a", "b", "c", "d"]
    assert scene.names(order_by=["params.model, name DESC"]) == ["d", "e", "c", "a", "b"]
    assert scene.names(order_by=["tags.team DESC", "start_time"]) == ["b", "a", "c", "e", "d"]


def test_rows_carry_only_the_named_values(scene: Scene) -> None:
    (row,) = scene.ledger.search.search_runs(
        where="metrics.auc > 0.9", order_by=["params.lr"], columns=["tags.team,metrics.`val loss`"]
    )
    assert row.run.name == "a"
    assert row.experiment == "exp1"
    assert row.metrics == {"auc": 0.91, "val loss": 0.2}
    assert row.params == {"lr": "0.1"}
    assert row.tags == {"team": "ml"}
    (nan_row,) = scene.ledger.search.search_runs(where="name = 'e'", columns=["metrics.auc"])
    assert math.isnan(nan_row.metrics["auc"])
    (missing,) = scene.ledger.search.search_runs(where="name = 'd'", columns=["metrics.auc"])
    assert missing.metrics == {}


@pytest.mark.parametrize(
    "where",
    [
        "params.lr = '1' or 1=1 --'",
        "params.lr = '1'' or ''1''=''1'",
        "params.model = 'x''; DROP TABLE runs; --'",
        "tags.`team' OR 1=1 --` = 'ml'",
        'params."lr = 1 or 1" = 1',
        "name = 'a'' OR name LIKE ''%'",
        "metrics.`auc) OR (1=1` > 0",
    ],
)
def test_injection_attempts_find_nothing_extra_and_break_nothing(scene: Scene, where: str) -> None:
    try:
        found = scene.found(where)
    except UsageError:  # rejected by the parser: fine, but never a database error
        found = set()
    assert found == set()
    assert len(scene.names()) == 5  # the table is still there


@pytest.mark.parametrize(
    ("where", "column", "words"),
    [
        ("metrics.auc > and", 15, "expected a value"),
        ("metrics.auc 0.8", 13, "expected an operator"),
        ("metrics.auc > 'high'", 15, "is a number"),
        ('tags.team = "ml"', 13, "single quotes"),
        ("bogus = 1", 1, "unknown attribute"),
        ("metrics.auc > 0.8 params.lr = 1", 19, "unexpected 'params'"),
        ("(metrics.auc > 0.8", 19, "expected ')'"),
        ("status = 'done'", 10, "one of running, finished"),
        ("name = 'x", 8, "no closing"),
        ("metrics.auc > 0.8; DROP TABLE runs", 18, "unexpected character ';'"),
    ],
)
def test_bad_where_is_a_usage_error_with_a_caret(
    scene: Scene, where: str, column: int, words: str
) -> None:
    with pytest.raises(UsageError) as caught:
        scene.ledger.search.search_runs(where=where)
    message = caught.value.message
    assert f"at column {column}:" in message
    assert words in message
    lines = message.splitlines()
    assert lines[1] == f"  {where}"
    assert lines[2] == "  " + " " * (column - 1) + "^"
    assert caught.value.hint


def test_bad_order_by_and_limit(scene: Scene) -> None:
    with pytest.raises(UsageError, match="order_by key at column 13"):
        scene.ledger.search.search_runs(order_by=["metrics.auc sideways"])
    with pytest.raises(UsageError, match="limit"):
        scene.ledger.search.search_runs(limit=0)
    with pytest.raises(UsageError, match="unknown run status"):
        scene.ledger.search.search_runs(status="done")


def test_a_non_numeric_param_never_breaks_a_numeric_comparison(ledger: Ledger) -> None:
    # On PostgreSQL a bare CAST('fast' AS NUMERIC) would fail the whole query.
    project = ledger.projects.ensure_project("p")
    experiment = ledger.projects.ensure_experiment(project.id, "e")
    for value in ("fast", "1.2.3", "1e99999", "nan", "inf", "", " 1", "0x10", "1,5"):
        run = ledger.runs.create_run(experiment.id)
        ledger.runs.log_params(run.id, {"lr": value})
    assert ledger.search.search_runs(where="params.lr > -1e300") == []
    assert len(ledger.search.search_runs(order_by=["params.lr"])) == 9


def test_resolve_run_id_by_unique_prefix(scene: Scene) -> None:
    search = scene.ledger.search
    a = scene.ids["a"]
    assert search.resolve_run_id(a) == a
    assert search.resolve_run_id(a.upper()) == a
    # Ids made in the same minute share their first 8 characters: ambiguous.
    with pytest.raises(UsageError, match="ambiguous") as caught:
        search.resolve_run_id(a[:8])
    assert a in caught.value.message
    unique = next(
        a[:n]
        for n in range(8, 37)
        if not any(i.startswith(a[:n]) for i in scene.ids.values() if i != a)
    )
    assert search.resolve_run_id(unique) == a
    with pytest.raises(UsageError, match="too short"):
        search.resolve_run_id(a[:7])
    with pytest.raises(NotFoundError):
        search.resolve_run_id("ffffffff-ffff")
    with pytest.raises(NotFoundError):
        search.resolve_run_id("%%%%%%%%%%")


def test_summaries_and_samples_are_computed_in_sql(ledger: Ledger) -> None:
    project = ledger.projects.ensure_project("p")
    run = ledger.runs.create_run(ledger.projects.ensure_experiment(project.id, "e").id)
    points = [MetricPoint("loss", 1000.0 - i, i, i, i) for i in range(1000)]
    points += [MetricPoint("acc", math.nan, 0, 0, 1000), MetricPoint("acc", 0.5, 1, 1, 1001)]
    points += [MetricPoint("allnan", math.nan, 0, 0, 1002)]
    ledger.runs.log_metrics(run.id, points)
    summary = {s.key: s for s in ledger.search.metric_summaries(run.id)}
    assert list(summary) == ["acc", "allnan", "loss"]
    loss = summary["loss"]
    assert (loss.last, loss.last_step, loss.min, loss.max, loss.count) == (
        1.0,
        999,
        1.0,
        1000.0,
        1000,
    )
    assert (summary["acc"].min, summary["acc"].max, summary["acc"].count) == (0.5, 0.5, 2)
    assert math.isnan(summary["allnan"].min)
    assert math.isnan(summary["allnan"].last)
    samples = ledger.search.metric_samples(run.id, 50)
    assert len(samples["loss"]) == 50
    assert samples["loss"][0] == sum(1000.0 - i for i in range(20)) / 20
    assert samples["loss"] == sorted(samples["loss"], reverse=True)
    assert math.isnan(samples["acc"][0])
    assert samples["acc"][1] == 0.5
    every = ledger.search.metric_points(run.id)
    assert [p.key for p in every[:2]] == ["acc", "acc"]
    assert len(every) == 1003
    assert ledger.search.latest_metrics_of([run.id, "missing"])[run.id]["loss"] == 1.0


def test_search_reads_no_metric_history(scene: Scene) -> None:
    seen: list[str] = []
    sa.event.listen(
        scene.ledger.engine, "before_cursor_execute", lambda c, cur, sql, *a: seen.append(sql)
    )
    scene.ledger.search.search_runs(
        where="metrics.auc > 0.1", order_by=["metrics.`val loss`"], columns=["metrics.loss"]
    )
    queries = [sql for sql in seen if "SELECT" in sql.upper()]
    assert len(queries) == 1
    assert " metrics " not in queries[0].replace("\n", " ")
