"""Gates: checks a pipeline must pass before what it made goes further.

Each gate is a plain function that records its decision in the ledger with the evidence
(``ledger.pipelines.decisions``) and returns it when it passes; when it fails, it sends the
decision to the alert routes and raises :class:`GateFailedError`, which a pipeline records as a
failed step (the steps after it are skipped). Call them from a step::

    @plinth.step(cache=False)
    def checked(version: DatasetVersion) -> DatasetVersion:
        validation_gate(version, "suite.yaml")           # stops the run if it fails
        return version

    @plinth.step(cache=False)
    def gate(candidate: ModelVersion) -> ModelVersion:
        challenger_gate("delays", candidate, holdout="flights_holdout@3", target="delayed",
                        metric="roc_auc", margin=0.005, slices={"carrier": 0.02})
        plinth.models.set_alias("delays", "challenger", candidate.number)
        return candidate

``challenger_gate`` scores the champion and the challenger on the same holdout rows: the
challenger must beat the champion on ``metric`` by more than ``margin``, and on no value of a
slice column may it do worse than the champion by more than that column's tolerance.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth.errors import NotFoundError, UsageError
from plinth.pipelines.decisions import GateFailedError, Routes, placed, record

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import DatasetVersion, Decision, ModelVersion
    from plinth.validation import Suite

__all__ = ["LOWER_IS_BETTER", "GateFailedError", "challenger_gate", "validation_gate"]

log = logging.getLogger("plinth.pipelines")

#: Metrics where a smaller value is better (errors and losses); the rest: higher is better.
LOWER_IS_BETTER = frozenset(
    {
        "log_loss",
        "brier",
        "ece",
        "mae",
        "mse",
        "rmse",
        "mape",
        "smape",
        "median_abs_error",
        "q90_abs_error",
        "q95_abs_error",
        "max_abs_error",
        "pinball_q10",
        "pinball_q90",
    }
)
#: Slice values scored per column (the most frequent); the rest are counted, not scored.
MAX_SLICES = 50


# -- the validation gate -------------------------------------------------------------------
def validation_gate(
    dataset: str | DatasetVersion,
    suite: Suite | str | Path | None = None,
    *,
    routes: Routes = (),
    pipeline_run_id: str | None = None,
    ctx: Context | None = None,
) -> Decision:
    """Pass when dataset version ``dataset`` (``NAME@N`` or a DatasetVersion) is not
    quarantined and, with ``suite``, no error-level check of it fails (the result is
    recorded with its report); else record the failures and raise :class:`GateFailedError`."""
    import plinth.datasets as datasets

    context, pipeline_run_id = placed(ctx, pipeline_run_id)
    ref = dataset if isinstance(dataset, str) else dataset.ref
    version = datasets.get(ref, ctx=context)
    reasons: list[str] = []
    evidence: dict[str, Any] = {"dataset_version": version.ref, "status": version.status}
    if version.status != "published":
        reasons.append(f"{version.ref} is {version.status}")
    if suite is not None:
        result = datasets.validate(version.ref, suite, record=True, ctx=context)
        evidence.update(
            suite=result.suite,
            suite_digest=result.suite_digest,
            suite_version=result.suite_version,
            validation_id=result.record_id,
            report_path=result.report_path,
            row_count=result.row_count,
            error_count=len(result.errors),
            warning_count=len(result.warnings),
            failures=[_failure(r.to_dict()) for r in result.failures],
        )
        reasons.extend(
            f"check {r.index + 1} {r.name}"
            + (f" on {r.column}" if r.column else "")
            + f" failed: observed {r.observed!r}, expected {r.expected}"
            for r in result.errors
        )
    evidence["reasons"] = reasons
    return _conclude(
        "validation",
        version.ref,
        evidence,
        reasons,
        title=f"validation gate: {version.ref} failed",
        hint=f"see the failures with: plinth data show {version.ref}",
        ctx=context,
        routes=routes,
        pipeline_run_id=pipeline_run_id,
    )


def _failure(check: Mapping[str, Any]) -> dict[str, Any]:
    keep = ("number", "check", "column", "severity", "observed", "expected", "failing_count")
    return {key: check.get(key) for key in (*keep, "failing_fraction", "message")}


# -- the challenger gate -------------------------------------------------------------------
def challenger_gate(
    model: str,
    challenger: int | str | ModelVersion,
    *,
    holdout: Any,
    target: str,
    metric: str,
    margin: float = 0.0,
    higher_is_better: bool | None = None,
    slices: Mapping[str, float] | None = None,
    champion_alias: str = "champion",
    task: str | None = None,
    threshold: float = 0.5,
    trusted: bool = False,
    routes: Routes = (),
    pipeline_run_id: str | None = None,
    ctx: Context | None = None,
) -> Decision:
    """Pass when version ``challenger`` of ``model`` beats the version ``champion_alias``
    names by more than ``margin`` on ``metric`` over the same ``holdout`` (a dataset
    reference or a table holding the ``target`` column), and does no worse on any value of
    a ``slices`` column than that column's tolerance; else raise :class:`GateFailedError`.

    ``higher_is_better`` defaults by metric (losses and errors: lower, see
    :data:`LOWER_IS_BETTER`). Without a champion yet, the challenger passes (the evidence
    says so). Metrics are those of :mod:`plinth.monitoring.metrics`; a binary classifier is
    scored on its positive-class probability. ``trusted`` loads pickled models.
    """
    from plinth.monitoring.metrics import check_metric
    from plinth.registry import api

    context, pipeline_run_id = placed(ctx, pipeline_run_id)
    check_metric(metric, task=task)
    better_high = metric not in LOWER_IS_BETTER if higher_is_better is None else higher_is_better
    slices = dict(slices or {})
    for column, tolerance in slices.items():
        if not isinstance(tolerance, int | float) or isinstance(tolerance, bool) or tolerance < 0:
            raise UsageError(
                f"the tolerance of slice {column!r} must be a number >= 0, got {tolerance!r}",
                hint="slices={'carrier': 0.02}: no carrier may lose more than 0.02",
                field=f"slices.{column}",
            )
    candidate = (
        challenger
        if not isinstance(challenger, int | str)
        else api.get(f"{model}@{challenger}", ctx=context)
    )
    if candidate.model != model:
        raise UsageError(
            f"{candidate.ref} is not a version of {model!r}", field="challenger_version"
        )
    try:
        champion: ModelVersion | None = api.get(f"{model}@{champion_alias}", ctx=context)
    except NotFoundError:
        champion = None
    if champion is not None and champion.id == candidate.id:
        raise UsageError(
            f"{candidate.ref} is already {model}@{champion_alias}: nothing to compare it with",
            field="challenger_version",
        )
    frame, holdout_doc = _holdout(holdout, target, slices, context)
    labels = frame[target].to_numpy()
    scored = {"challenger": _scores(candidate, frame, trusted, context)}
    if champion is not None:
        scored["champion"] = _scores(champion, frame, trusted, context)
    from plinth.monitoring.metrics import infer_task

    task = infer_task(labels, scored["challenger"], task=task)
    check_metric(metric, task=task)
    values = {role: _metric(task, metric, labels, s, threshold) for role, s in scored.items()}
    evidence: dict[str, Any] = {
        "metric": metric,
        "task": task,
        "higher_is_better": better_high,
        "margin": margin,
        "holdout": holdout_doc,
        "challenger": {"ref": candidate.ref, "value": values["challenger"]},
        "champion": None
        if champion is None
        else {"ref": champion.ref, "alias": champion_alias, "value": values["champion"]},
    }
    reasons: list[str] = []
    if champion is None:
        evidence["note"] = f"no {model}@{champion_alias} yet: the challenger passes unopposed"
    else:
        gain = _gain(values["challenger"], values["champion"], better_high)
        evidence["gain"] = gain
        if gain is None:
            reasons.append(f"{metric} is undefined on the holdout for one of the two versions")
        elif not gain > margin:
            reasons.append(
                f"{candidate.ref} {metric} {values['challenger']:.6g} does not beat "
                f"{champion.ref} {values['champion']:.6g} by more than {margin:g} "
                f"(gain {gain:.6g})"
            )
        table = _slices(frame, labels, scored, slices, task, metric, threshold, better_high)
        evidence["slices"] = table
        reasons.extend(
            f"slice {row['column']}={row['value']!r}: {metric} {row['challenger']:.6g} vs "
            f"{row['champion']:.6g}, a regression of {row['regression']:.6g} > tolerance "
            f"{row['tolerance']:g}"
            for row in table
            if row["passed"] is False
        )
    evidence["reasons"] = reasons
    return _conclude(
        "challenger",
        model,
        evidence,
        reasons,
        title=f"challenger gate: {candidate.ref} stays out",
        hint=f"{model}@{champion_alias} keeps serving; the evidence lists each comparison",
        ctx=context,
        routes=routes,
        pipeline_run_id=pipeline_run_id,
    )


def _holdout(
    holdout: Any, target: str, slices: Mapping[str, float], ctx: Context
) -> tuple[Any, dict[str, Any]]:
    """The holdout as pandas and what the evidence says about it (its reference or digest)."""
    import pandas as pd

    import plinth.datasets as datasets

    if isinstance(holdout, str):
        version = datasets.get(holdout, ctx=ctx)
        frame = datasets.load(version.ref, ctx=ctx)
        doc: dict[str, Any] = {"ref": version.ref, "rows": len(frame)}
    else:
        from plinth.tables import convert

        frame = holdout if isinstance(holdout, pd.DataFrame) else convert(holdout, "pandas")
        digest = pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes()
        from blake3 import blake3

        doc = {"ref": None, "digest": blake3(digest).hexdigest(), "rows": len(frame)}
    missing = [c for c in (target, *slices) if c not in frame.columns]
    if missing:
        raise UsageError(
            f"the holdout has no column {missing[0]!r}",
            hint=f"its columns: {', '.join(map(str, frame.columns))}",
            field="target" if missing[0] == target else f"slices.{missing[0]}",
        )
    if len(frame) == 0:
        raise UsageError("the holdout has no rows", field="holdout")
    return frame, doc


def _scores(version: ModelVersion, frame: Any, trusted: bool, ctx: Context) -> Any:
    """``version``'s predictions on ``frame``: the positive class's probability for a
    binary classifier, else ``predict``."""
    import numpy as np

    from plinth.registry import api

    loaded = api.load(version, trusted=trusted, ctx=ctx)
    signature = loaded.signature
    if signature is not None and not signature.is_tensor:
        names = [spec.name for spec in signature.inputs]
        missing = [n for n in names if n not in frame.columns]
        if missing:
            raise UsageError(
                f"the holdout has no column {missing[0]!r}, an input of {version.ref}",
                field="holdout",
            )
        data = frame[names]
    else:
        data = frame
    try:
        proba = loaded.predict_proba
    except AttributeError:
        proba = None
    if proba is not None:
        out = np.asarray(proba(data))
        if out.ndim == 2 and out.shape[1] == 2:
            return out[:, 1]
    return np.asarray(loaded.predict(data)).ravel()


def _metric(task: str, metric: str, labels: Any, scores: Any, threshold: float) -> float | None:
    from plinth.monitoring.metrics import classification_metrics, regression_metrics

    if task == "classification":
        values = classification_metrics(labels, scores, threshold=threshold)
    else:
        values = regression_metrics(labels, scores)
    value = values.get(metric)
    return None if value is None else float(value)


def _gain(challenger: float | None, champion: float | None, higher: bool) -> float | None:
    """How much better the challenger is (negative: worse); None when either is undefined."""
    if challenger is None or champion is None:
        return None
    return challenger - champion if higher else champion - challenger


def _slices(
    frame: Any,
    labels: Any,
    scored: Mapping[str, Any],
    slices: Mapping[str, float],
    task: str,
    metric: str,
    threshold: float,
    higher: bool,
) -> list[dict[str, Any]]:
    """One row per scored slice value: rows, both values, the regression and whether it
    is within the tolerance (None: the metric is undefined on that slice)."""
    import pandas as pd

    table: list[dict[str, Any]] = []
    for column, tolerance in slices.items():
        counts = frame[column].value_counts(dropna=False)
        for value in counts.index[:MAX_SLICES]:
            column_values = frame[column]
            mask = (column_values.isna() if pd.isna(value) else column_values == value).to_numpy()
            row: dict[str, Any] = {
                "column": column,
                "value": value,
                "rows": int(mask.sum()),
                "tolerance": float(tolerance),
            }
            try:
                new = _metric(task, metric, labels[mask], scored["challenger"][mask], threshold)
                old = _metric(task, metric, labels[mask], scored["champion"][mask], threshold)
            except UsageError as exc:  # e.g. a slice with one class for a probability metric
                new = old = None
                row["note"] = exc.message
            gain = _gain(new, old, higher)
            row.update(
                challenger=new,
                champion=old,
                regression=None if gain is None else -gain,
                passed=None if gain is None else -gain <= tolerance,
            )
            table.append(row)
        if len(counts) > MAX_SLICES:
            log.info(
                "plinth: %s has %d values; scored the %d most frequent",
                column,
                len(counts),
                MAX_SLICES,
            )
    return table


def _conclude(
    gate: str,
    subject: str,
    evidence: dict[str, Any],
    reasons: list[str],
    *,
    title: str,
    hint: str,
    ctx: Context,
    routes: Routes,
    pipeline_run_id: str | None,
) -> Decision:
    """Record the gate's decision; raise :class:`GateFailedError` (after the alert) if it failed."""
    evidence = {"gate": gate, **evidence}
    if not reasons:
        return record("gate", subject, "passed", evidence, ctx=ctx, pipeline_run_id=pipeline_run_id)
    decision = record(
        "gate",
        subject,
        "failed",
        evidence,
        ctx=ctx,
        pipeline_run_id=pipeline_run_id,
        routes=routes,
        severity="critical",
        title=title,
    )
    message = f"{title}: {'; '.join(reasons)} (decision {decision.id})"
    raise GateFailedError(message, decision=decision, hint=hint)
