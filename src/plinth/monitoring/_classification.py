"""Classification metrics over numpy arrays, each in one vectorised pass (no loop over rows).

Used through :mod:`plinth.monitoring.metrics`, which checks the inputs; these functions take
clean float arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Vector = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

#: Probabilities are clipped to [EPS, 1 - EPS] for the log loss.
EPS = 1e-15
#: Reliability bins: ten of width 0.1 over [0, 1], as scikit-learn's ``calibration_curve``.
CALIBRATION_BINS = 10


def ratio(num: float, den: float) -> float | None:
    return float(num / den) if den else None


def roc_auc(positive: Mask, scores: Vector) -> float | None:
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


def average_precision(positive: Mask, scores: Vector) -> float | None:
    """PR AUC as scikit-learn's ``average_precision_score``: the sum over distinct score
    thresholds (highest first) of precision times the gain in recall; None without positives."""
    n_pos = int(np.count_nonzero(positive))
    if n_pos == 0:
        return None
    order = np.argsort(-scores, kind="mergesort")
    ordered = scores[order]
    hits = np.cumsum(positive[order])
    # the last row of each run of tied scores is one threshold
    last = np.r_[np.flatnonzero(ordered[1:] != ordered[:-1]), ordered.size - 1]
    tp = hits[last].astype(np.float64)
    precision = tp / (last + 1.0)
    recall_gain = np.diff(np.r_[0.0, tp]) / n_pos
    return float(np.sum(recall_gain * precision))


def calibration_bins(positive: Mask, probs: Vector) -> list[dict[str, Any]]:
    """Per bin of predicted probability: its bounds, rows, mean prediction and observed
    share of class 1 (empty bins left out); the bins of ``calibration_curve``."""
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    index = np.searchsorted(edges[1:-1], probs)
    rows = np.bincount(index, minlength=CALIBRATION_BINS)
    predicted = np.bincount(index, weights=probs, minlength=CALIBRATION_BINS)
    observed = np.bincount(index, weights=positive.astype(np.float64), minlength=CALIBRATION_BINS)
    return [
        {
            "lower": float(edges[i]),
            "upper": float(edges[i + 1]),
            "rows": int(rows[i]),
            "mean_predicted": float(predicted[i] / rows[i]),
            "observed": float(observed[i] / rows[i]),
        }
        for i in np.flatnonzero(rows).tolist()
    ]


def expected_calibration_error(positive: Mask, probs: Vector) -> float:
    """ECE: the row-weighted mean gap between mean prediction and observed share per bin."""
    bins = calibration_bins(positive, probs)
    gaps = sum(b["rows"] * abs(b["mean_predicted"] - b["observed"]) for b in bins)
    return float(gaps / probs.size)


def binary(labels: Vector, scores: Vector, threshold: float) -> dict[str, float | None]:
    """Metrics of 0/1 labels against hard 0/1 predictions, probabilities or scores."""
    hard = bool(np.isin(scores, (0.0, 1.0)).all())
    positive = labels == 1.0
    predicted = scores == 1.0 if hard else scores >= threshold
    tp = int(np.count_nonzero(positive & predicted))
    fp = int(np.count_nonzero(~positive & predicted))
    fn = int(np.count_nonzero(positive & ~predicted))
    out: dict[str, float | None] = {
        "accuracy": float(np.mean(positive == predicted)),
        "precision": ratio(tp, tp + fp),
        "recall": ratio(tp, tp + fn),
        "f1": ratio(2 * tp, 2 * tp + fp + fn),
    }
    if hard:
        return out
    out["roc_auc"] = roc_auc(positive, scores)
    out["pr_auc"] = average_precision(positive, scores)
    if bool(((scores >= 0.0) & (scores <= 1.0)).all()):
        p = np.clip(scores, EPS, 1.0 - EPS)
        out["log_loss"] = float(-np.mean(np.where(positive, np.log(p), np.log1p(-p))))
        out["brier"] = float(np.mean((scores - positive) ** 2))
        out["ece"] = expected_calibration_error(positive, scores)
    return out


def class_name(value: float) -> str:
    """A class as it appears in a per-class metric name: ``2``, not ``2.0``."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def multiclass(
    labels: Vector, predicted: Vector, classes: Vector, probs: npt.NDArray[np.float64] | None
) -> dict[str, float | None]:
    """accuracy; macro and micro precision, recall and f1 (an undefined per-class value
    counts 0 in the macro mean, as scikit-learn's ``zero_division=0``); per class
    ``precision:C``, ``recall:C``, ``f1:C``; ``log_loss`` from a probability matrix."""
    k = classes.size
    truth = np.searchsorted(classes, labels)
    guess = np.searchsorted(classes, predicted)
    matrix = np.bincount(truth * k + guess, minlength=k * k).reshape(k, k)
    tp = np.diag(matrix).astype(np.float64)
    predicted_n = matrix.sum(axis=0).astype(np.float64)
    actual_n = matrix.sum(axis=1).astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted_n > 0, tp / predicted_n, np.nan)
        recall = np.where(actual_n > 0, tp / actual_n, np.nan)
        f1 = np.where(predicted_n + actual_n > 0, 2 * tp / (predicted_n + actual_n), np.nan)
    total, correct = float(labels.size), float(tp.sum())
    out: dict[str, float | None] = {
        "accuracy": correct / total,
        "precision_macro": float(np.mean(np.nan_to_num(precision))),
        "recall_macro": float(np.mean(np.nan_to_num(recall))),
        "f1_macro": float(np.mean(np.nan_to_num(f1))),
        # one label per row: every micro average is the accuracy
        "precision_micro": correct / total,
        "recall_micro": correct / total,
        "f1_micro": correct / total,
    }
    for i, value in enumerate(classes.tolist()):
        name = class_name(value)
        for metric, values in (("precision", precision), ("recall", recall), ("f1", f1)):
            v = float(values[i])
            out[f"{metric}:{name}"] = None if np.isnan(v) else v
    if probs is not None:
        rows = np.arange(labels.size)
        p = np.clip(probs[rows, truth], EPS, 1.0)
        out["log_loss"] = float(-np.mean(np.log(p)))
    return out
