"""``plinth.search_runs``: the search language from Python, as ``plinth runs list`` uses it."""

from __future__ import annotations

import pytest

import plinth
from plinth.context import Context
from plinth.errors import NotFoundError, UsageError


def _run(experiment: str, auc: float, lr: float) -> str:
    with plinth.start_run(experiment=experiment, params={"lr": lr}) as run:
        run.log_metric("auc", auc)
    return run.id


def test_where_order_by_limit_and_experiment(project: Context) -> None:
    low, high, other = _run("a", 0.7, 0.1), _run("a", 0.9, 0.2), _run("b", 0.95, 0.1)
    found = plinth.search_runs("metrics.auc > 0.8", order_by="metrics.auc DESC")
    assert [r.run.id for r in found] == [other, high]
    assert found[0].metrics == {"auc": 0.95}
    assert [r.run.id for r in plinth.search_runs(experiment="a", order_by=["params.lr"])] == [
        low,
        high,
    ]
    assert [r.run.id for r in plinth.search_runs("params.lr = 0.1", limit=1)] == [other]
    assert len(plinth.search_runs(experiment=["a", "b"])) == 3


def test_an_unknown_experiment_or_bad_syntax_is_named(project: Context) -> None:
    _run("a", 0.5, 0.1)
    with pytest.raises(NotFoundError, match="no experiment 'nope'") as err:
        plinth.search_runs(experiment="nope")
    assert err.value.hint == "experiments: a"
    with pytest.raises(UsageError, match="where"):
        plinth.search_runs("metrics.auc >")
