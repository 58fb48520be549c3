"""Model quality metrics as pure numpy functions, each task in one vectorised pass.

Regression: ``r2``, ``mae``, ``mse``, ``rmse``, ``mape`` and ``smape`` (fractions: 0.2 is
20 %), ``bias`` (mean of prediction minus label), ``median_abs_error``, ``q90_abs_error``,
``q95_abs_error``, ``max_abs_error`` and ``pinball_q10``/``pinball_q90`` (the pinball loss
of the predictions read as the 10 %/90 % quantile).

Binary classification (labels 0/1 or booleans): ``accuracy``, ``precision``, ``recall``
and ``f1`` (class 1 when the score is at or above ``threshold``, default 0.5); with scores
also ``roc_auc`` and ``pr_auc`` (average precision); with probabilities in [0, 1] also
``log_loss``, ``brier`` and ``ece`` (expected calibration error over ten bins, see
:func:`calibration_bins`). Hard 0/1 predictions get the first four only.

Multi-class (other labels, hard class predictions or a probability matrix): ``accuracy``,
``precision_macro``/``_micro``, ``recall_macro``/``_micro``, ``f1_macro``/``_micro``, per
class ``precision:C``, ``recall:C``, ``f1:C``, and ``log_loss`` from probabilities.

An undefined metric (``roc_auc`` over one class, ``precision`` with no predicted positive,
``r2`` over constant labels) is None. Every name is usable as a monitor bound.
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Any

import numpy as np
import numpy.typing as npt

from plinth.errors import UsageError
from plinth.monitoring import _classification as _cls
from plinth.monitoring._classification import EPS

Vector = npt.NDArray[np.float64]

__all__ = [
    "CLASSIFICATION_METRICS",
    "EPS",
    "MULTICLASS_METRICS",
    "REGRESSION_METRICS",
    "TASKS",
    "Vector",
    "as_vector",
    "calibration_bins",
    "check_metric",
    "classification_metrics",
    "infer_task",
    "regression_metrics",
    "task_metrics",
]

TASKS = ("classification", "regression")
CLASSIFICATION_METRICS = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
    "ece",
)
MULTICLASS_METRICS = (
    "accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "precision_micro",
    "recall_micro",
    "f1_micro",
    "log_loss",
)
REGRESSION_METRICS = (
    "r2",
    "mae",
    "mse",
    "rmse",
    "mape",
    "smape",
    "bias",
    "median_abs_error",
    "q90_abs_error",
    "q95_abs_error",
    "max_abs_error",
    "pinball_q10",
    "pinball_q90",
)
#: ``precision:C``, ``recall:C``, ``f1:C``: a per-class metric of a multi-class model.
_PER_CLASS = re.compile(r"^(precision|recall|f1):\S+$")


# -- inputs ------------------------------------------------------------------------------
def as_vector(values: Any, what: str) -> Vector:
    try:
        array = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError):
        raise UsageError(f"{what} must be numbers", field=what) from None
    if array.ndim != 1:
        raise UsageError(f"{what} must hold one number per row, got shape {array.shape}")
    bad = np.flatnonzero(~np.isfinite(array))
    if bad.size:
        raise UsageError(f"{what} hold a missing or infinite value at row {int(bad[0])}")
    return array


def _pair(y_true: Any, y_pred: Any) -> tuple[Vector, Vector]:
    labels = as_vector(y_true, "labels")
    predictions = as_vector(y_pred, "predictions")
    if labels.size != predictions.size:
        raise UsageError(f"{labels.size} labels for {predictions.size} predictions")
    if labels.size == 0:
        raise UsageError("no rows to score")
    return labels, predictions


def _binary(values: Vector) -> bool:
    return bool(np.isin(values, (0.0, 1.0)).all())


# -- classification ------------------------------------------------------------------------
def _probability_matrix(y_true: Any, y_score: Any, classes: Any) -> tuple[Vector, Vector, Any]:
    """Labels, the classes (sorted) and the (rows, classes) probability matrix."""
    labels = as_vector(y_true, "labels")
    probs = np.asarray(y_score, dtype=np.float64)
    if probs.shape[0] != labels.size:
        raise UsageError(f"{labels.size} labels for {probs.shape[0]} rows of probabilities")
    if labels.size == 0:
        raise UsageError("no rows to score")
    if not np.isfinite(probs).all() or (probs < 0).any():
        raise UsageError("probabilities must be finite and not negative")
    names = np.arange(probs.shape[1], dtype=np.float64) if classes is None else classes
    order = np.argsort(as_vector(names, "classes"))
    names = np.asarray(names, dtype=np.float64)[order]
    if names.size != probs.shape[1]:
        raise UsageError(f"{names.size} classes for {probs.shape[1]} columns of probabilities")
    unknown = np.setdiff1d(labels, names)
    if unknown.size:
        raise UsageError(
            f"label {_cls.class_name(float(unknown[0]))} is not one of the classes",
            hint="pass classes= in the order of the probability columns",
            field="classes",
        )
    probs = probs[:, order]
    return labels, names, probs / probs.sum(axis=1, keepdims=True)


def classification_metrics(
    y_true: Any, y_score: Any, *, threshold: float = 0.5, classes: Any = None
) -> dict[str, float | None]:
    """The metrics of the module docstring for binary or multi-class labels::

        classification_metrics([0, 1, 1], [0.2, 0.9, 0.4])  # accuracy 2/3, roc_auc 1.0
        classification_metrics([0, 2, 1], [0, 2, 2])         # f1_macro, recall:2, ...

    ``y_score``: one number per row (a probability or score of class 1, or a hard class),
    or a (rows, classes) probability matrix whose columns are ``classes`` (default 0..k-1).
    """
    if np.ndim(y_score) == 2:
        labels, names, probs = _probability_matrix(y_true, y_score, classes)
        predicted = names[np.argmax(probs, axis=1)]
        return _cls.multiclass(labels, predicted, names, probs)
    labels, scores = _pair(y_true, y_score)
    if _binary(labels):
        return _cls.binary(labels, scores, threshold)
    if not np.array_equal(scores, np.round(scores)):
        raise UsageError(
            "labels hold classes other than 0 and 1, but the predictions are scores",
            hint="log the predicted class of a multi-class model, or pass its probability "
            "matrix (one column per class) to classification_metrics",
        )
    return _cls.multiclass(labels, scores, np.union1d(labels, scores), None)


def calibration_bins(y_true: Any, y_prob: Any) -> list[dict[str, Any]]:
    """The reliability diagram of binary labels and class-1 probabilities: for each of ten
    bins of width 0.1, ``lower``, ``upper``, ``rows``, ``mean_predicted`` and ``observed``
    (the share of class 1); empty bins are left out."""
    labels, probs = _pair(y_true, y_prob)
    if not _binary(labels) or not bool(((probs >= 0.0) & (probs <= 1.0)).all()):
        raise UsageError("calibration bins need 0/1 labels and probabilities in [0, 1]")
    return _cls.calibration_bins(labels == 1.0, probs)


# -- regression ------------------------------------------------------------------------------
def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float | None]:
    """The regression metrics of the module docstring; ``mape`` divides by max(|label|,
    machine epsilon) like scikit-learn, ``smape`` is mean(2|error| / (|label| + |prediction|))
    with 0/0 counted as 0, and ``r2`` is None when every label is the same."""
    labels, predictions = _pair(y_true, y_pred)
    error = predictions - labels
    absolute = np.abs(error)
    mse = float(np.mean(error * error))
    spread = float(np.sum((labels - labels.mean()) ** 2))
    denominator = np.abs(labels) + np.abs(predictions)
    with np.errstate(divide="ignore", invalid="ignore"):
        symmetric = np.where(denominator > 0, 2.0 * absolute / denominator, 0.0)
    under = labels - predictions  # positive where the prediction is below the label
    q50, q90, q95 = np.quantile(absolute, (0.5, 0.9, 0.95)).tolist()
    return {
        "r2": 1.0 - float(np.sum(error * error)) / spread if spread > 0 else None,
        "mae": float(np.mean(absolute)),
        "mse": mse,
        "rmse": math.sqrt(mse),
        "mape": float(np.mean(absolute / np.maximum(np.abs(labels), np.finfo(np.float64).eps))),
        "smape": float(np.mean(symmetric)),
        "bias": float(np.mean(error)),
        "median_abs_error": float(q50),
        "q90_abs_error": float(q90),
        "q95_abs_error": float(q95),
        "max_abs_error": float(absolute.max()),
        "pinball_q10": float(np.mean(np.maximum(0.1 * under, -0.9 * under))),
        "pinball_q90": float(np.mean(np.maximum(0.9 * under, -0.1 * under))),
    }


# -- tasks and names --------------------------------------------------------------------------
#: At most this many distinct whole-number labels, predicted as whole numbers among them,
#: read as classes (a multi-class model's predicted labels) rather than as a regression.
MAX_INFERRED_CLASSES = 50


def infer_task(labels: Any, predictions: Any, *, task: str | None = None) -> str:
    """``task`` when given; else "classification" when every label is 0 or 1 (or a boolean)
    and every prediction lies in [0, 1], or when labels and predictions are whole numbers
    drawn from at most :data:`MAX_INFERRED_CLASSES` label values with at least five rows per
    value (a multi-class model's classes); "regression" otherwise. Pass ``task`` to decide."""
    if task is not None:
        if task not in TASKS:
            raise UsageError(f"task must be one of {', '.join(TASKS)}; got {task!r}", field="task")
        return task
    y, p = _pair(labels, predictions)
    if _binary(y) and bool(((p >= 0.0) & (p <= 1.0)).all()):
        return "classification"
    classes = np.unique(y)
    whole = np.array_equal(y, np.round(y)) and np.array_equal(p, np.round(p))
    # enough rows per class that whole-number predictions among the labels are not chance
    evidence = y.size >= 5 * classes.size
    if (
        whole
        and evidence
        and classes.size <= MAX_INFERRED_CLASSES
        and bool(np.isin(p, classes).all())
    ):
        return "classification"
    return "regression"


def task_metrics(task: str, labels: Vector, predictions: Vector, threshold: float) -> Any:
    if task == "classification":
        return classification_metrics(labels, predictions, threshold=threshold)
    return regression_metrics(labels, predictions)


def _known(task: str | None) -> tuple[str, ...]:
    if task == "regression":
        return REGRESSION_METRICS
    classification = tuple(dict.fromkeys(CLASSIFICATION_METRICS + MULTICLASS_METRICS))
    if task == "classification":
        return classification
    return classification + REGRESSION_METRICS


def check_metric(name: str, *, task: str | None = None, field: str = "metric") -> str:
    """``name`` when it is a metric of ``task`` (any task when None), else a UsageError
    with the closest name and the list::

        check_metric("r_2", task="regression")  # UsageError: ... did you mean 'r2'?
    """
    known = _known(task)
    if name in known or (task != "regression" and _PER_CLASS.fullmatch(str(name))):
        return name
    close = difflib.get_close_matches(str(name), list(known), n=1, cutoff=0.6)
    guess = f" — did you mean {close[0]!r}?" if close else ""
    what = "metric" if task is None else f"{task} metric"
    per_class = "" if task == "regression" else ", or precision:C, recall:C, f1:C for class C"
    hint = f"choose from {', '.join(known)}{per_class}"
    if task == "regression" and (name in _known("classification") or _PER_CLASS.fullmatch(name)):
        hint = (
            f"{name!r} is a classification metric, but the labels were read as a regression: "
            "pass --task classification (task: classification under a monitor file's "
            "performance check)"
        )
    raise UsageError(f"unknown {what} {name!r}{guess}", hint=hint, field=field)
