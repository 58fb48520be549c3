"""Model quality metrics as pure numpy functions: binary classification and regression.

Classification is binary: labels 0/1 (or booleans) and predictions that are probabilities
of class 1 (every metric) or hard 0/1 labels (no ``roc_auc``, no ``log_loss``). Real-valued
scores outside [0, 1] get ``roc_auc`` and the threshold metrics, no ``log_loss``.
Multi-class labels with hard class predictions get ``accuracy`` only. Regression gets
``mae``, ``rmse`` and ``bias`` (mean of prediction minus label). An undefined metric
(``roc_auc`` over one class, ``precision`` with no predicted positive) is None.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from plinth.errors import UsageError

Vector = npt.NDArray[np.float64]

__all__ = [
    "CLASSIFICATION_METRICS",
    "EPS",
    "REGRESSION_METRICS",
    "TASKS",
    "Vector",
    "as_vector",
    "classification_metrics",
    "infer_task",
    "regression_metrics",
    "task_metrics",
]

TASKS = ("classification", "regression")
CLASSIFICATION_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc", "log_loss")
REGRESSION_METRICS = ("mae", "rmse", "bias")
#: Probabilities are clipped to [EPS, 1 - EPS] for the log loss.
EPS = 1e-15


# -- metrics -------------------------------------------------------------------------------
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


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def _roc_auc(positive: npt.NDArray[np.bool_], scores: Vector) -> float | None:
    """The Mann-Whitney U statistic over average ranks (ties count one half); None when
    only one class is present."""
    n = scores.size
    n_pos = int(np.count_nonzero(positive))
    n_neg = n - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    ordered = scores[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], n]
    ranks = np.empty(n)
    ranks[order] = np.repeat((starts + ends + 1) / 2.0, ends - starts)
    u = float(ranks[positive].sum()) - n_pos * (n_pos + 1) / 2.0
    return u / (n_pos * n_neg)


def classification_metrics(
    y_true: Any, y_score: Any, *, threshold: float = 0.5
) -> dict[str, float | None]:
    """accuracy, precision, recall, f1 (class 1 when score >= threshold), roc_auc and
    log_loss (probabilities only) of binary labels; see the module docstring for the rest::

        classification_metrics([0, 1, 1], [0.2, 0.9, 0.4])  # accuracy 2/3, roc_auc 1.0
    """
    labels, scores = _pair(y_true, y_score)
    if not _binary(labels):
        if not np.array_equal(scores, np.round(scores)):
            raise UsageError(
                "labels hold classes other than 0 and 1, but the predictions are scores",
                hint="performance metrics over scores are binary only; log hard class "
                "predictions to get the accuracy of a multi-class model",
            )
        return {"accuracy": float(np.mean(labels == scores))}
    hard = _binary(scores)
    positive = labels == 1.0
    predicted = scores == 1.0 if hard else scores >= threshold
    tp = int(np.count_nonzero(positive & predicted))
    fp = int(np.count_nonzero(~positive & predicted))
    fn = int(np.count_nonzero(positive & ~predicted))
    out: dict[str, float | None] = {
        "accuracy": float(np.mean(positive == predicted)),
        "precision": _ratio(tp, tp + fp),
        "recall": _ratio(tp, tp + fn),
        "f1": _ratio(2 * tp, 2 * tp + fp + fn),
    }
    if not hard:
        out["roc_auc"] = _roc_auc(positive, scores)
        if bool(((scores >= 0.0) & (scores <= 1.0)).all()):
            p = np.clip(scores, EPS, 1.0 - EPS)
            out["log_loss"] = float(-np.mean(np.where(positive, np.log(p), np.log1p(-p))))
    return out


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float | None]:
    """mae, rmse and bias (mean of prediction minus label)."""
    labels, predictions = _pair(y_true, y_pred)
    error = predictions - labels
    return {
        "mae": float(np.mean(np.abs(error))),
        "rmse": math.sqrt(float(np.mean(error * error))),
        "bias": float(np.mean(error)),
    }


def infer_task(labels: Any, predictions: Any, *, task: str | None = None) -> str:
    """``task`` when given; else "classification" when every label is 0 or 1 (or a boolean)
    and every prediction lies in [0, 1], "regression" otherwise."""
    if task is not None:
        if task not in TASKS:
            raise UsageError(f"task must be one of {', '.join(TASKS)}; got {task!r}", field="task")
        return task
    y, p = _pair(labels, predictions)
    if _binary(y) and bool(((p >= 0.0) & (p <= 1.0)).all()):
        return "classification"
    return "regression"


def task_metrics(task: str, labels: Vector, predictions: Vector, threshold: float) -> Any:
    if task == "classification":
        return classification_metrics(labels, predictions, threshold=threshold)
    return regression_metrics(labels, predictions)


# -- windows -------------------------------------------------------------------------------
