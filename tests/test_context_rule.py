"""One context rule: ``ctx=None`` means the active run's context, else the process default.

Inside ``start_run(ctx=X)``, with X another project than the default, every pillar reads and
writes X; after the run, the default again.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

import plinth
from plinth.context import Context, resolve_context, run_scope
from plinth.errors import NotFoundError

SUITE = {"suite": "s", "checks": [{"check": "unique", "column": "x"}]}


@pytest.fixture
def other(tmp_path: Path) -> Iterator[Context]:
    """A second project, not the process default."""
    folder = tmp_path / "other"
    folder.mkdir()
    with Context.open(folder, system_metrics=False) as ctx:
        yield ctx


def _fit() -> tuple[Any, Any]:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("skops")
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0]})
    return LogisticRegression().fit(frame, [0, 0, 1, 1]), frame


def test_inside_a_run_every_pillar_uses_the_runs_context(project: Context, other: Context) -> None:
    from plinth.validation import Suite

    model, frame = _fit()
    table = pa.table({"x": [1.0, 2.0, None]})
    with plinth.start_run(experiment="e", ctx=other) as run:
        assert resolve_context() is other
        saved = plinth.datasets.save(table, "t")
        assert plinth.datasets.load("t", to="arrow").equals(table)
        run.log_model(model, "m", input_example=frame)
        assert plinth.models.get("m").run_id == run.id
        assert plinth.models.load("m").predict(frame).tolist() == [0, 0, 1, 1]
        result = plinth.validation.validate(table, Suite.from_dict(SUITE), record=True)
        assert plinth.get_run(run.id).id == run.id
        assert [r.run.id for r in plinth.search_runs()] == [run.id]
        inner = plinth.start_run(experiment="inner")  # a nested run: the same project
        inner.end()
    # Everything went to the run's project, nothing to the default one.
    assert other.ledger.runs.get_run(inner.id).parent_run_id == run.id
    assert [r.id for r in other.ledger.validation.results()] == [result.record_id]
    assert [v.ref for v in plinth.datasets.versions("t", ctx=other)] == [saved.version.ref]
    assert run_scope() is None
    assert resolve_context() is project
    for read in (
        lambda: plinth.datasets.get("t"),
        lambda: plinth.models.get("m"),
        lambda: plinth.get_run(run.id),
    ):
        with pytest.raises(NotFoundError):
            read()
    assert project.ledger.validation.results() == []


def test_an_explicit_ctx_wins_over_the_active_run(project: Context, other: Context) -> None:
    table = pa.table({"x": [1]})
    with plinth.start_run(ctx=other):
        plinth.datasets.save(table, "mine", ctx=project)
    assert plinth.datasets.get("mine").number == 1
    with pytest.raises(NotFoundError):
        plinth.datasets.get("mine", ctx=other)
