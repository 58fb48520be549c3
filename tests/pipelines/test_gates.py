"""Gates: a failing validation gate stops a pipeline; a challenger that loses to the champion
(overall, or on a slice beyond its tolerance) stays out; every decision is in the ledger with
its evidence, and failures reach the alert routes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import plinth
from plinth import datasets
from plinth.context import Context
from plinth.pipelines import pipeline, step
from plinth.pipelines.gates import GateFailedError, challenger_gate, validation_gate

SUITE = "suite: flights\nchecks:\n  - {check: between, column: distance, min: 0, max: 5000}\n"
LOG_ROUTE = {"name": "ops", "type": "log", "path": "alerts.log"}


def _add(project: Context, name: str, distances: list[float]) -> str:
    path = project.settings.root / f"{name}.parquet"
    pq.write_table(pa.table({"distance": distances}), path)
    suite = project.settings.root / "suite.yaml"
    suite.write_text(SUITE)
    return datasets.add(path, name, suite=suite).version.ref


def _alerts(project: Context) -> list[dict[str, Any]]:
    path = project.settings.root / "alerts.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_validation_gate_passes_a_good_version_and_records_it(project: Context) -> None:
    ref = _add(project, "flights", [100.0, 250.0])
    decision = validation_gate(ref, project.settings.root / "suite.yaml")
    assert (decision.kind, decision.subject, decision.outcome) == ("gate", ref, "passed")
    assert decision.evidence["error_count"] == 0
    assert decision.evidence["validation_id"] is not None
    (stored,) = project.ledger.pipelines.decisions(project.project.id, subject=ref)
    assert stored.id == decision.id


def test_validation_gate_fails_a_quarantined_version_with_the_failures(project: Context) -> None:
    ref = _add(project, "flights", [100.0, -5.0, 9000.0])
    assert datasets.get(ref).status == "quarantined"
    with pytest.raises(GateFailedError) as raised:
        validation_gate(ref, "suite.yaml", routes=[LOG_ROUTE], ctx=project)
    decision = raised.value.decision
    assert decision.outcome == "failed"
    assert decision.evidence["status"] == "quarantined"
    (failure,) = decision.evidence["failures"]
    assert (failure["check"], failure["column"], failure["failing_count"]) == (
        "between",
        "distance",
        2,
    )
    assert decision.id in str(raised.value)
    (alert,) = _alerts(project)
    assert alert["details"]["decision_id"] == decision.id
    assert alert["severity"] == "critical"


def test_failed_validation_gate_stops_the_pipeline(project: Context) -> None:
    ref = _add(project, "flights", [-1.0])
    trained: list[str] = []

    @step(cache=False)
    def gate(version: str) -> str:
        validation_gate(version, "suite.yaml")
        return version

    @step(cache=False)
    def train(version: str) -> str:
        trained.append(version)
        return version

    @pipeline
    def loop(version: str = ref) -> None:
        train(gate(version))

    result = loop()
    assert result.status == "failed"
    assert result.steps["gate"].status == "failed"
    assert "validation gate" in (result.steps["gate"].error or "")
    assert result.steps["train"].status == "skipped"
    assert trained == []
    (decision,) = project.ledger.pipelines.decisions(project.project.id, pipeline_run_id=result.id)
    assert (decision.kind, decision.outcome, decision.subject) == ("gate", "failed", ref)


# -- challenger gate ---------------------------------------------------------------------
def _frame(seed: int, rows: int = 1500) -> Any:
    """Labels, a column informative everywhere (``good``), one informative only in segment
    ``a`` (``mixed``: pure noise in ``b``), and one that is noise everywhere."""
    import numpy as np
    import pandas as pd

    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, rows)
    segment = np.where(rng.random(rows) < 0.8, "a", "b")
    good = y + rng.normal(scale=0.9, size=rows)
    mixed = np.where(segment == "a", y + rng.normal(scale=0.05, size=rows), rng.normal(size=rows))
    noise = rng.normal(size=rows)
    return pd.DataFrame({"y": y, "segment": segment, "good": good, "mixed": mixed, "noise": noise})


def _register(model: str, column: str) -> int:
    from sklearn.linear_model import LogisticRegression

    frame = _frame(seed=1)
    fitted = LogisticRegression().fit(frame[[column]], frame["y"])
    with plinth.start_run(experiment="gates") as run:
        version = run.log_model(fitted, name=model, input_example=frame[[column]].head())
    return int(version.number)


@pytest.fixture
def holdout(project: Context) -> str:
    pytest.importorskip("sklearn")
    path = project.settings.root / "holdout.parquet"
    _frame(seed=2).to_parquet(path)
    return datasets.add(path, "holdout").version.ref


def test_challenger_that_loses_stays_out(project: Context, holdout: str) -> None:
    champion = _register("m", "good")
    plinth.models.set_alias("m", "champion", champion)
    loser = _register("m", "noise")
    with pytest.raises(GateFailedError) as raised:
        challenger_gate(
            "m", loser, holdout=holdout, target="y", metric="roc_auc", routes=[LOG_ROUTE]
        )
    evidence = raised.value.decision.evidence
    assert evidence["holdout"]["ref"] == holdout
    assert evidence["champion"]["ref"] == f"m@{champion}"
    assert evidence["challenger"]["value"] < evidence["champion"]["value"]
    assert evidence["gain"] < 0
    assert plinth.models.aliases("m") == {"champion": champion}
    (stored,) = project.ledger.pipelines.decisions(project.project.id, subject="m")
    assert (stored.kind, stored.outcome) == ("gate", "failed")
    assert _alerts(project)[0]["details"]["evidence"]["metric"] == "roc_auc"


def test_better_challenger_passes_on_a_loss_metric(project: Context, holdout: str) -> None:
    champion = _register("m", "noise")
    plinth.models.set_alias("m", "champion", champion)
    better = _register("m", "good")
    decision = challenger_gate("m", better, holdout=holdout, target="y", metric="brier")
    assert decision.outcome == "passed"
    assert decision.evidence["higher_is_better"] is False
    assert decision.evidence["challenger"]["value"] < decision.evidence["champion"]["value"]
    # the gate moves nothing: registering and aliasing are the pipeline's next steps
    assert plinth.models.aliases("m") == {"champion": champion}


def test_margin_keeps_out_a_challenger_that_wins_by_too_little(
    project: Context, holdout: str
) -> None:
    champion = _register("m", "noise")
    plinth.models.set_alias("m", "champion", champion)
    better = _register("m", "good")
    passed = challenger_gate("m", better, holdout=holdout, target="y", metric="roc_auc")
    gain = passed.evidence["gain"]
    with pytest.raises(GateFailedError, match="by more than"):
        challenger_gate(
            "m", better, holdout=holdout, target="y", metric="roc_auc", margin=gain + 0.01
        )


def test_slice_regression_beyond_tolerance_fails(project: Context, holdout: str) -> None:
    champion = _register("m", "good")
    plinth.models.set_alias("m", "champion", champion)
    uneven = _register("m", "mixed")  # better overall, no better than chance on segment b
    args: dict[str, Any] = {"holdout": holdout, "target": "y", "metric": "roc_auc"}
    assert challenger_gate("m", uneven, **args).outcome == "passed"  # no slices named
    with pytest.raises(GateFailedError) as raised:
        challenger_gate("m", uneven, slices={"segment": 0.05}, **args)
    evidence = raised.value.decision.evidence
    assert evidence["gain"] > 0
    rows = {row["value"]: row for row in evidence["slices"]}
    assert set(rows) == {"a", "b"}
    assert rows["a"]["passed"] is True
    assert rows["b"]["passed"] is False
    assert rows["b"]["regression"] > 0.05
    assert evidence["reasons"] == [r for r in evidence["reasons"] if "segment='b'" in r]
    # a tolerance wide enough lets it through
    assert challenger_gate("m", uneven, slices={"segment": 0.6}, **args).outcome == "passed"


def test_first_challenger_passes_without_a_champion(project: Context, holdout: str) -> None:
    first = _register("m", "good")
    decision = challenger_gate("m", first, holdout=holdout, target="y", metric="roc_auc")
    assert decision.outcome == "passed"
    assert decision.evidence["champion"] is None
    assert "no m@champion" in decision.evidence["note"]


def test_challenger_gate_on_an_in_memory_holdout_records_its_digest(project: Context) -> None:
    pytest.importorskip("sklearn")
    plinth.models.set_alias("m", "champion", _register("m", "noise"))
    better = _register("m", "good")
    frame = _frame(seed=3)
    first = challenger_gate("m", better, holdout=frame, target="y", metric="roc_auc")
    again = challenger_gate("m", better, holdout=frame.copy(), target="y", metric="roc_auc")
    assert first.evidence["holdout"]["ref"] is None
    assert first.evidence["holdout"]["digest"] == again.evidence["holdout"]["digest"]
    assert first.evidence["holdout"]["rows"] == len(frame)


def test_challenger_gate_names_a_missing_target(project: Context, holdout: str) -> None:
    from plinth.errors import UsageError

    plinth.models.set_alias("m", "champion", _register("m", "noise"))
    with pytest.raises(UsageError, match="no column 'label'") as raised:
        challenger_gate(
            "m", _register("m", "good"), holdout=holdout, target="label", metric="roc_auc"
        )
    assert raised.value.field == "target"


def test_gate_failed_is_a_check_failure(tmp_path: Path) -> None:
    import plinth.errors
    import plinth.pipelines
    from plinth.errors import CheckFailedError, PlinthError

    # One class, in the error tree, under the style guide's name, reachable from the package.
    assert GateFailedError.__name__ == "GateFailedError"
    assert plinth.errors.GateFailedError is GateFailedError
    assert plinth.pipelines.GateFailedError is GateFailedError
    assert issubclass(GateFailedError, CheckFailedError)
    assert issubclass(GateFailedError, PlinthError)
    assert GateFailedError.exit_code == 1
