"""Skew: are the features a deployment serves the features its model was trained on?

::

    report = plinth.features.skew("delays_features", deployment="delays", window="1d")
    report.skewed, report.skewed_features, report.training_set
    report.drift.to_html("skew.html")

The served side is the deployment's prediction log over the window (every logged batch
when ``window`` is None); the training side is the training set saved from ``service``
(``get_training_set(..., save_as=NAME)``) that the run which logged the served model
version used or produced, found through lineage. Each feature is compared with the
monitoring drift tests (:func:`plinth.monitoring.drift`: the same methods and
thresholds); by default one skewed feature is skew (``share_threshold=0``). The work is
done by :mod:`plinth.monitoring.skew`, which the monitor check ``feature_skew`` runs too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.monitoring.skew import SkewReport
    from plinth.monitoring.spec import Window

__all__ = ["parse_window", "skew"]


def parse_window(window: Any) -> Window | None:
    """None (every logged batch), a duration (``"1d"``, seconds as a number), ``"N rows"``
    (the newest whole batches holding N rows) or a :class:`~plinth.monitoring.spec.Window`."""
    from plinth.monitoring.spec import Window, parse_duration

    if window is None or isinstance(window, Window):
        return window
    if isinstance(window, str):
        import re

        rows = re.fullmatch(r"\s*(\d+)\s*rows?\s*", window)
        if rows is not None and int(rows.group(1)) > 0:
            return Window(rows=int(rows.group(1)))
    if not isinstance(window, bool):
        try:
            return Window(seconds=parse_duration(window, "window", "window"))
        except UsageError:
            pass
    raise UsageError(
        f"window {window!r} is neither a duration nor a number of rows",
        hint="write a duration such as 1d, 12h or 30m, or a row count such as '5000 rows'",
        field="window",
    )


def skew(
    service: str,
    *,
    deployment: str,
    window: Any = None,
    columns: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    methods: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    share_threshold: float = 0.0,
    unseen_min_count: int = 3,
    null_share_change: float = 0.01,
    ctx: Context | None = None,
) -> SkewReport:
    """Compare the features of ``service`` that ``deployment`` served over ``window`` with
    the training set its model was trained on (see the module docstring).

    A :class:`~plinth.errors.NotFoundError` when the model was not trained on a training set
    of ``service`` (build it with ``get_training_set(..., save_as=NAME)`` inside the run);
    a :class:`~plinth.errors.UsageError` for an empty window or no comparable feature.
    """
    from plinth.context import resolve_context
    from plinth.monitoring.skew import feature_skew

    if not isinstance(service, str) or not service.strip():
        raise UsageError(
            f"service must name a feature service, not {service!r}",
            hint="e.g. skew('delays_features', deployment='delays')",
            field="service",
        )
    if not isinstance(deployment, str) or not deployment.strip():
        raise UsageError(
            f"deployment must name a deployment, not {deployment!r}",
            hint="e.g. skew('delays_features', deployment='delays')",
            field="deployment",
        )
    parsed = parse_window(window)
    context = resolve_context(ctx)
    return feature_skew(
        context,
        deployment,
        service,
        window=parsed,
        columns=columns,
        exclude=exclude,
        methods=methods,
        thresholds=thresholds,
        share_threshold=share_threshold,
        unseen_min_count=unseen_min_count,
        null_share_change=null_share_change,
    )
