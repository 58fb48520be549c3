from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import plinth
from plinth.context import Context
from plinth.entities import RecordRef
from plinth.errors import UntrustedModelError
from plinth.registry.model_files import load_model

pd = pytest.importorskip("pandas")
pytest.importorskip("skops")


class Halver:
    def predict(self, data: Any) -> Any:
        return np.asarray(data["x"]) / 2


def _fit() -> tuple[Any, Any]:
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"x": [0.0, 1.0, 2.0, 3.0], "y": [1.0, 0.0, 1.0, 0.0]})
    return LogisticRegression().fit(frame, [0, 0, 1, 1]), frame


def test_log_model_registers_a_version_with_its_run(project: Context) -> None:
    model, frame = _fit()
    with plinth.start_run() as run:
        run.log_metric("loss", 0.5)
        run.log_metric("loss", 0.25)
        version = run.log_model(model, "delays", input_example=frame, description="first")
    record = project.ledger.runs.get_run(run.id)
    assert (version.model, version.number, version.flavor) == ("delays", 1, "sklearn")
    assert version.run_id == run.id
    assert version.environment_id == record.environment_id
    assert version.metrics == {"loss": 0.25}
    assert version.trusted_digests == ()
    assert version.signature is not None
    assert [f["name"] for f in version.signature["inputs"]] == ["x", "y"]
    paths = {a.path for a in project.ledger.artifacts.list(RecordRef("run", run.id))}
    assert {"models/delays/model.skops", "models/delays/plinth-model.json"} <= paths
    edges = project.ledger.lineage.edges_from(RecordRef("run", run.id))
    assert (RecordRef("model_version", version.id), "produced") in {
        (e.dst, e.relation) for e in edges
    }
    loaded = load_model("delays@1", ctx=project)
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))
    assert loaded.signature is not None
    assert loaded.signature.check(frame) == []


def test_each_log_is_a_new_version_and_latest_loads(project: Context) -> None:
    model, frame = _fit()
    with plinth.start_run() as run:
        run.log_model(model, "a", input_example=frame)
    with plinth.start_run() as run:
        second = run.log_model(model, "a")
    assert second.number == 2
    assert second.signature is None
    assert load_model("a", ctx=project).flavor == "sklearn"


def test_python_function_model_loads_only_when_trusted(project: Context) -> None:
    frame = pd.DataFrame({"x": [2.0, 4.0]})
    with plinth.start_run() as run:
        version = run.log_model(Halver(), "halver", input_example=frame)
    assert version.flavor == "python_function"
    assert len(version.trusted_digests) == 1
    with pytest.raises(UntrustedModelError, match="pickled"):
        load_model("halver@1", ctx=project)
    loaded = load_model(version, trusted=True, ctx=project)
    assert loaded.predict(frame).tolist() == [1.0, 2.0]
