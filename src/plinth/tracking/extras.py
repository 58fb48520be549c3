"""Training-monitoring extras: holdout predictions and model weights, with summaries.

``log_predictions`` stores ``predictions/<name>.parquet`` (id, y_true, y_pred and, when
given, the score) and ``predictions/<name>.summary.json``: a confusion matrix and accuracy
for classes, error quantiles, MAE and RMSE for numbers. ``log_weights`` stores
``weights/<stage>.npz`` (arrays only, loadable with ``allow_pickle=False``) and
``weights/<stage>.summary.json`` with per-parameter statistics.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError

if TYPE_CHECKING:
    import numpy as np

    from plinth.tracking.runs import ActiveRun

__all__ = ["log_predictions", "log_weights", "summarize_predictions", "weight_arrays"]

MAX_CLASSES = 50


def _array(values: Any, name: str) -> np.ndarray:
    import numpy as np

    if values is None:
        raise UsageError(f"log_predictions needs {name}", field=name)
    array = np.asarray(values)
    if array.ndim != 1:
        raise UsageError(f"{name} must be one-dimensional, got shape {array.shape}", field=name)
    return array


def summarize_predictions(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    """Confusion matrix and accuracy for classes; error quantiles for numbers."""
    import numpy as np

    is_float = np.issubdtype(y_true.dtype, np.floating) or np.issubdtype(y_pred.dtype, np.floating)
    labels = np.union1d(np.unique(y_true), np.unique(y_pred)) if not is_float else None
    if labels is not None and len(labels) <= MAX_CLASSES:
        index = {label: i for i, label in enumerate(labels.tolist())}
        matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
        np.add.at(matrix, (np.searchsorted(labels, y_true), np.searchsorted(labels, y_pred)), 1)
        return {
            "kind": "classification",
            "rows": len(y_true),
            "labels": [str(label) for label in index],
            "confusion_matrix": matrix.tolist(),
            "accuracy": float(np.trace(matrix) / max(1, len(y_true))),
        }
    error = y_pred.astype(np.float64) - y_true.astype(np.float64)
    quantiles = [0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99]
    return {
        "kind": "regression",
        "rows": len(y_true),
        "mae": float(np.mean(np.abs(error))),
        "rmse": float(np.sqrt(np.mean(error**2))),
        "error_quantiles": {
            str(q): float(v) for q, v in zip(quantiles, np.quantile(error, quantiles), strict=True)
        },
    }


def log_predictions(
    run: ActiveRun,
    y_true: Any,
    y_pred: Any,
    *,
    ids: Any = None,
    scores: Any = None,
    name: str = "holdout",
) -> dict[str, Any]:
    """Store holdout predictions as Parquet with a summary; returns the summary."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    true, pred = _array(y_true, "y_true"), _array(y_pred, "y_pred")
    if len(true) != len(pred):
        raise UsageError(f"y_true has {len(true)} rows but y_pred has {len(pred)}", field="y_pred")
    columns: dict[str, Any] = {}
    columns["id"] = _array(ids, "ids") if ids is not None else list(range(len(true)))
    columns["y_true"], columns["y_pred"] = true, pred
    if scores is not None:
        columns["score"] = _array(scores, "scores")
    for key, arg in (("id", "ids"), ("score", "scores")):
        if key in columns and len(columns[key]) != len(true):
            raise UsageError(
                f"{arg} has {len(columns[key])} rows but y_true has {len(true)}", field=arg
            )
    buffer = io.BytesIO()
    pq.write_table(pa.table(columns), buffer, compression="zstd")
    summary = summarize_predictions(true, pred)
    run.log_bytes(buffer.getvalue(), f"predictions/{name}.parquet")
    run.log_dict(summary, f"predictions/{name}.summary.json")
    return summary


def weight_arrays(model: Any) -> dict[str, np.ndarray]:
    """Named weight arrays of sklearn linear models and tree ensembles, or torch modules."""
    import numpy as np

    state = getattr(model, "state_dict", None)
    if callable(state):  # torch.nn.Module
        return {k: v.detach().cpu().numpy() for k, v in state().items()}
    out: dict[str, np.ndarray] = {}
    for attr in ("coef_", "intercept_", "feature_importances_", "coefs_", "intercepts_"):
        value = getattr(model, attr, None)
        if value is None:
            continue
        if isinstance(value, list):  # MLP: one array per layer
            for i, layer in enumerate(value):
                out[f"{attr.rstrip('_')}_{i}"] = np.asarray(layer, dtype=np.float64)
        else:
            out[attr.rstrip("_")] = np.asarray(value, dtype=np.float64)
    steps: Sequence[Any] = getattr(model, "steps", [])
    for step_name, step in steps:  # sklearn Pipeline: the estimators inside
        for key, array in weight_arrays(step).items():
            out[f"{step_name}.{key}"] = array
    return out


def log_weights(run: ActiveRun, model: Any, *, stage: str = "final") -> dict[str, Any]:
    """Store a model's weights as ``weights/<stage>.npz`` with per-array statistics."""
    import numpy as np

    if stage not in ("initial", "final"):
        raise UsageError(f"stage must be 'initial' or 'final', got {stage!r}", field="stage")
    arrays = weight_arrays(model)
    if not arrays:
        raise UsageError(
            f"found no weights on {type(model).__name__}",
            hint="log_weights reads coef_/intercept_, feature_importances_ or a torch state_dict",
        )
    stats: dict[str, Any] = {}
    for key, array in arrays.items():
        flat = array.astype(np.float64).ravel()
        stats[key] = {
            "shape": list(array.shape),
            "count": int(flat.size),
            "mean": float(flat.mean()) if flat.size else None,
            "std": float(flat.std()) if flat.size else None,
            "min": float(flat.min()) if flat.size else None,
            "max": float(flat.max()) if flat.size else None,
            "l2_norm": float(np.linalg.norm(flat)),
            "zero_fraction": float(np.mean(flat == 0)) if flat.size else None,
        }
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)  # type: ignore[arg-type]
    run.log_bytes(buffer.getvalue(), f"weights/{stage}.npz")
    summary = {"model": type(model).__name__, "stage": stage, "parameters": stats}
    run.log_dict(json.loads(json.dumps(summary)), f"weights/{stage}.summary.json")
    return summary
