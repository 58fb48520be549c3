"""Ready steps: thin wrappers of plinth's public API, so any plinth operation is a step.

Each runs in the pipeline's context (:func:`~plinth.pipelines.executors.current_step`) and
returns a record (a dataset or model version) or a JSON summary, so its output is stored by
reference and its lineage recorded (``step_run -produced-> dataset_version``)::

    from plinth.pipelines import library as lib

    @plinth.pipeline
    def retrain(path: Path):
        version = lib.add_dataset_version(path, "flights")
        checked = lib.validate_dataset(version, Path("suite.yaml"))
        model = lib.train_and_log(checked, target="delay", model="delays")
        lib.move_alias(model, "challenger")      # train_and_log registered the version

A step of your own that opens ``plinth.start_run`` gets its run recorded on the step run
(``step_run -ran-> run``) the same way :func:`train_and_log` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError
from plinth.pipelines.steps import step

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import DatasetVersion, ModelVersion

__all__ = [
    "add_dataset_version",
    "build_training_set",
    "deploy",
    "evaluate",
    "move_alias",
    "train_and_log",
    "validate_dataset",
]


def _ctx() -> Context:
    from plinth.context import resolve_context
    from plinth.pipelines.executors import current_step

    here = current_step()
    return here.ctx if here is not None else resolve_context(None)


def _ref(version: DatasetVersion) -> str:
    return f"{version.dataset}@{version.number}"


@step
def add_dataset_version(path: Path, name: str, message: str | None = None) -> DatasetVersion:
    """Snapshot ``path`` as a version of dataset ``name`` (unchanged content: the latest)."""
    import plinth.datasets

    return plinth.datasets.add(path, name, message, ctx=_ctx()).version


@step
def validate_dataset(
    version: DatasetVersion, suite: Path, routes: list[dict[str, Any]] | None = None
) -> DatasetVersion:
    """Validate a dataset version with a suite file through
    :func:`~plinth.pipelines.gates.validation_gate`: the result is recorded with its report
    and the gate's decision with its evidence; a failing version (an error-level check
    failed, or it is quarantined) raises :class:`~plinth.errors.GateFailedError` after
    alerting ``routes`` (monitor-style route mappings), failing the step and stopping
    everything downstream. Returns the version."""
    from plinth.pipelines.gates import validation_gate

    validation_gate(version, suite, routes=routes or (), ctx=_ctx())
    return version


@step
def build_training_set(service: str, save_as: str, message: str | None = None) -> DatasetVersion:
    """A point-in-time training set of a feature service, saved as a dataset version."""
    import plinth.datasets
    from plinth.features.training import get_training_set

    ctx = _ctx()
    get_training_set(service=service, save_as=save_as, message=message, ctx=ctx)
    return plinth.datasets.get(f"{save_as}@latest", ctx=ctx)


def _load_xy(version: DatasetVersion, target: str) -> tuple[Any, Any]:
    import plinth.datasets

    frame = plinth.datasets.load(version.dataset, version.number, to="pandas", ctx=_ctx())
    if target not in frame.columns:
        raise UsageError(
            f"dataset {_ref(version)} has no column {target!r}",
            hint=f"its columns: {', '.join(map(str, frame.columns))}",
        )
    return frame.drop(columns=[target]), frame[target]


@step
def train_and_log(
    data: DatasetVersion,
    target: str,
    model: str,
    estimator: str = "linear",
    experiment: str | None = None,
) -> ModelVersion:
    """Fit a scikit-learn model (``linear``: LinearRegression, ``logistic``:
    LogisticRegression, ``forest``: RandomForestRegressor) on ``data`` in a tracked run and
    register it as a version of ``model``."""
    from plinth._extras import require
    from plinth.tracking import start_run

    require("sklearn", feature="the train_and_log step")
    from sklearn.ensemble import RandomForestRegressor
    from sklearn.linear_model import LinearRegression, LogisticRegression

    kinds: dict[str, Any] = {
        "linear": LinearRegression,
        "logistic": LogisticRegression,
        "forest": RandomForestRegressor,
    }
    if estimator not in kinds:
        raise UsageError(f"unknown estimator {estimator!r}; use {', '.join(kinds)}")
    x, y = _load_xy(data, target)
    with start_run(
        experiment=experiment or model,
        params={"estimator": estimator, "data": _ref(data)},
        ctx=_ctx(),
    ) as run:
        fitted = kinds[estimator]().fit(x, y)
        run.log_metric("train_score", float(fitted.score(x, y)))
        version: ModelVersion = run.log_model(fitted, name=model, input_example=x.head(5))
    return version


@step
def evaluate(model: ModelVersion, data: DatasetVersion, target: str) -> dict[str, float]:
    """Score a model version on a dataset version: ``r2`` and ``rmse`` for a float target,
    else ``accuracy``; and ``rows``."""
    from plinth.registry import api as models

    loaded = models.load(model, ctx=_ctx())
    x, y = _load_xy(data, target)
    predict = getattr(loaded, "predict", None)
    if predict is None:
        raise UsageError(f"model {model.model}@{model.number} cannot predict")
    import numpy as np

    predicted = np.asarray(predict(x))
    actual = np.asarray(y)
    result = {"rows": float(len(actual))}
    if np.issubdtype(actual.dtype, np.floating):
        total = float(((actual - actual.mean()) ** 2).sum())
        residual = float(((actual - predicted) ** 2).sum())
        result["r2"] = 1.0 - residual / total if total else 0.0
        result["rmse"] = float(np.sqrt(residual / max(len(actual), 1)))
    else:
        result["accuracy"] = float((predicted == actual).mean())
    return result


@step
def move_alias(model: ModelVersion, alias: str, reason: str | None = None) -> ModelVersion:
    """Point ``alias`` of the model at this version (audited in the registry)."""
    from plinth.registry import api as models

    ctx = _ctx()
    models.set_alias(model.model, alias, model.number, reason=reason, ctx=ctx)
    return ctx.ledger.models.get_version_by_id(model.id)


@step
def deploy(model: ModelVersion, name: str, alias: str | None = None) -> dict[str, Any]:
    """Write (or replace) deployment ``name`` serving this model (``NAME@ALIAS`` when
    ``alias`` is given, else ``NAME@N``); returns the recorded deployment version."""
    from plinth.serving.spec import DeploymentSpec, save_deployment

    ref = f"{model.model}@{alias}" if alias else f"{model.model}@{model.number}"
    spec = DeploymentSpec.from_dict({"name": name, "model": ref})
    saved = save_deployment(spec, _ctx())
    return {"deployment": name, "model": ref, "version": getattr(saved, "number", None)}
