"""Data drift: does the current data follow the reference's distribution, column by column?

::

    report = plinth.monitoring.drift(train_df, last_week_df)
    report.drifted, report.share, [c.column for c in report.columns if c.drifted]
    report.to_html("drift-report.html")

Each common column gets one test, chosen by its type and the sample size unless
``methods`` names one: numeric columns ``ks`` (two-sample Kolmogorov-Smirnov, p-value)
when the smaller side has at most 1,000 rows, else ``wasserstein`` (Wasserstein-1 over
the reference's standard deviation); categorical, boolean and numeric columns of at
most 5 distinct reference values ``chisquare`` (p-value) or ``jensenshannon``
(distance). ``psi`` (population stability index on the reference's deciles, or on the
categories) and ``unseen`` (the share of current rows whose category the reference
never had) are there to ask for. A test with a p-value flags drift when its
Benjamini-Hochberg adjusted p-value is below the threshold; a distance when it reaches
the threshold. ``p_value`` is always the adjusted p-value of the column's two-sample
test (KS, or chi-squared on the counts), shown beside distances too. Against a profile's
approximate sketch it is None past 1,000 rows a side, and conservative below (the KS
statistic less the sketch's rank error). The dataset drifts when the share of drifted
columns reaches ``share_threshold``.

Two data-quality results sit beside distribution drift, each with its own status:
``new_categories`` (categories the reference never had, flagged at any share once one has
``unseen_min_count`` rows) and ``null_shares`` (a two-proportion z-test of each column's
missing share, flagged when its adjusted p-value is at most 0.05 and the share moved by
``null_share_change`` or more). ``ColumnDrift.score`` is the one normalised score: at or
above 1 means drifted, whatever the method.

Not tested, and listed in ``DriftReport.skipped`` with the reason: ``exclude``d columns
(a model's target, non-inputs), temporal columns, types other than numbers, strings and
booleans, id-like columns (strings with more distinct values than half the rows,
consecutive distinct integers, columns named like ids with mostly distinct values),
columns whose types differ between the sides, and columns without values on a side.
Missing values (null, NaN, infinities) are dropped before the drift test.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError

if TYPE_CHECKING:
    from plinth.monitoring._sides import ComparisonSource
    from plinth.profiles import TableProfile
    from plinth.progress import Progress

__all__ = [
    "DEFAULT_THRESHOLDS",
    "METHODS",
    "ColumnDrift",
    "DriftReport",
    "drift",
    "drift_against_profile",
]

#: Every method, and the default threshold of each (p-value methods: the significance
#: level of the adjusted p-value; the others: the statistic that counts as drift).
DEFAULT_THRESHOLDS: dict[str, float] = {
    "ks": 0.05,
    "wasserstein": 0.1,
    "psi": 0.1,
    "chisquare": 0.05,
    "jensenshannon": 0.1,
    "unseen": 0.01,
}
METHODS = tuple(DEFAULT_THRESHOLDS)
P_VALUE_METHODS = ("ks", "chisquare")
#: Significance level of the null-share test (Benjamini-Hochberg adjusted).
NULL_ALPHA = 0.05
#: The smallest p-value a score divides by: p can underflow to 0, a score must stay finite.
_TINY_P = 1e-300


def normalised_score(
    method: str, statistic: float | None, threshold: float, p_value: float | None
) -> float:
    """Statistic / threshold for distances, threshold / p-value for tests: at or above 1
    exactly when the column drifted. Finite (p = 0 counts as 1e-300), 0 when unknown."""
    if method in P_VALUE_METHODS:
        if p_value is None or not math.isfinite(p_value):
            return 0.0
        return threshold / max(p_value, _TINY_P)
    if statistic is None or not math.isfinite(statistic):
        return 0.0
    return statistic / threshold


@dataclass(frozen=True)
class ColumnDrift:
    """One column's test: ``drifted`` says whether ``statistic`` (or, for ``ks`` and
    ``chisquare``, the adjusted ``p_value``) crossed ``threshold``.

    The rest is for reading the result: the unadjusted p-value, non-missing and missing
    rows per side, the share of current rows in categories the reference lacks, and both
    distributions binned for a chart (``bins`` labels, ``edges`` for numeric columns,
    shares of rows per bin) — summaries, never rows.
    """

    column: str
    kind: str
    method: str
    statistic: float
    threshold: float
    p_value: float | None
    drifted: bool
    raw_p_value: float | None = None
    exact: bool = True
    reference_count: int = 0
    current_count: int = 0
    reference_nulls: int = 0
    current_nulls: int = 0
    unseen_share: float | None = None
    bins: tuple[str, ...] = ()
    edges: tuple[float, ...] = ()
    reference_hist: tuple[float, ...] = ()
    current_hist: tuple[float, ...] = ()
    #: Categories the reference never had, most frequent first, with their current rows
    #: (None when a side kept only its frequent values, so new ones cannot be told).
    new_categories: tuple[tuple[str, int], ...] | None = ()
    new_categories_flagged: bool = False
    null_p_value: float | None = None
    null_changed: bool = False

    @property
    def score(self) -> float:
        """The normalised score: at or above 1 when drifted (see :func:`normalised_score`)."""
        return normalised_score(self.method, self.statistic, self.threshold, self.p_value)

    @property
    def null_shares(self) -> tuple[float, float]:
        """The share of missing values in the reference and in the current data."""
        ref_rows = self.reference_count + self.reference_nulls
        cur_rows = self.current_count + self.current_nulls
        return (
            self.reference_nulls / ref_rows if ref_rows else 0.0,
            self.current_nulls / cur_rows if cur_rows else 0.0,
        )

    def to_dict(self) -> dict[str, Any]:
        """``column, kind, method, statistic, threshold, p_value, score, drifted,
        null_share, new_categories``."""
        ref_nulls, cur_nulls = self.null_shares
        return {
            "column": self.column,
            "kind": self.kind,
            "method": self.method,
            "statistic": _finite(self.statistic),
            "threshold": self.threshold,
            "p_value": _finite(self.p_value),
            "score": self.score,
            "drifted": self.drifted,
            "null_share": {
                "reference": ref_nulls,
                "current": cur_nulls,
                "p_value": _finite(self.null_p_value),
                "changed": self.null_changed,
            },
            "new_categories": None if self.new_categories is None else dict(self.new_categories),
        }


@dataclass(frozen=True)
class DriftReport:
    """Per-column results, ranked (drifted first, then by score), and the verdict."""

    drifted: bool
    share: float
    share_threshold: float
    columns: list[ColumnDrift]
    skipped: dict[str, str] = field(default_factory=dict)
    reference_rows: int = 0
    current_rows: int = 0
    unseen_min_count: int = 3
    null_share_change: float = 0.01

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    @property
    def new_categories(self) -> dict[str, dict[str, int]]:
        """Flagged columns: each new category with its current rows."""
        return {
            c.column: dict(c.new_categories or ()) for c in self.columns if c.new_categories_flagged
        }

    @property
    def null_changes(self) -> list[str]:
        """Columns whose share of missing values changed."""
        return [c.column for c in self.columns if c.null_changed]

    def to_dict(self) -> dict[str, Any]:
        """``{"drifted", "share", "columns": [...], "new_categories": {...},
        "null_shares": {...}, "skipped": {column: reason}}``."""
        return {
            "drifted": self.drifted,
            "share": self.share,
            "columns": [c.to_dict() for c in self.columns],
            "new_categories": {
                "status": "alert" if self.new_categories else "ok",
                "min_count": self.unseen_min_count,
                "columns": self.new_categories,
            },
            "null_shares": {
                "status": "alert" if self.null_changes else "ok",
                "min_change": self.null_share_change,
                "columns": {
                    c.column: dict(zip(("reference", "current"), c.null_shares, strict=True))
                    for c in self.columns
                    if c.null_changed
                },
            },
            "skipped": dict(self.skipped),
        }

    def to_html(self, path: Any = None) -> str:
        """The self-contained HTML report (no scripts, no rows); written to ``path`` too."""
        from plinth.monitoring.report import render_html

        text = render_html(self)
        if path is not None:
            from pathlib import Path

            Path(path).write_text(text, encoding="utf-8")
        return text

    def _repr_html_(self) -> str:
        """The report as tables and small histograms in Jupyter (escaped, no scripts)."""
        from plinth.monitoring.report import notebook_html

        return notebook_html(self)

    def __repr__(self) -> str:
        return (
            f"DriftReport(drifted={self.drifted}, share={self.share:.3g}, "
            f"columns={len(self.columns)}, drifted_columns={len(self.drifted_columns)})"
        )


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def drift(
    reference: Any,
    current: Any,
    *,
    columns: Sequence[str] | None = None,
    exclude: Mapping[str, str] | Sequence[str] | None = None,
    methods: Mapping[str, str] | None = None,
    thresholds: Mapping[str, float] | None = None,
    share_threshold: float = 0.5,
    unseen_min_count: int = 3,
    null_share_change: float = 0.01,
    progress: Progress | None = None,
) -> DriftReport:
    """Compare ``current`` with ``reference``, column by column (see the module docstring).

    Either side is a pyarrow Table, a pandas or polars DataFrame, or a
    :class:`~plinth.profiles.TableProfile` (a stored reference, or merged batch profiles).
    ``columns`` limits the comparison; ``exclude`` leaves columns out, listed as skipped
    (a mapping gives each one's reason, e.g. ``{"price": "the model's target"}``);
    ``methods`` maps a column to a method of :data:`METHODS`; ``thresholds`` maps a method
    to its threshold. ``progress`` (:mod:`plinth.progress`) hears of each column compared.
    """
    from plinth.monitoring._compare import compare
    from plinth.monitoring._sides import source
    from plinth.progress import reporter

    ref, cur = source(reference, "reference"), source(current, "current")
    limits = _thresholds(thresholds)
    if not 0.0 <= share_threshold <= 1.0:
        raise UsageError(
            f"share_threshold must be between 0 and 1, not {share_threshold}",
            field="share_threshold",
        )
    if isinstance(unseen_min_count, bool) or not isinstance(unseen_min_count, int):
        raise UsageError(
            f"unseen_min_count must be a whole number, not {unseen_min_count!r}",
            field="unseen_min_count",
        )
    if unseen_min_count < 1:
        raise UsageError(
            f"unseen_min_count must be 1 or more, not {unseen_min_count}",
            hint="1 flags a single row of a new category",
            field="unseen_min_count",
        )
    if not 0.0 <= null_share_change <= 1.0:
        raise UsageError(
            f"null_share_change must be between 0 and 1, not {null_share_change}",
            field="null_share_change",
        )
    names, skipped = _select(ref, cur, columns)
    excluded = _excluded(exclude)
    # a typo in exclude would silently test the column it meant to leave out (the target)
    for name in excluded:
        if name not in ref.names and name not in cur.names:
            raise _unknown_column(name, ref.label, ref.names, field="exclude")
    skipped.update({n: why for n, why in excluded.items() if n in ref.names or n in cur.names})
    names = [n for n in names if n not in excluded]
    chosen = _methods(methods, names)
    results: list[ColumnDrift] = []
    done = reporter(progress)
    done.start(len(names), "columns", label="comparing")
    try:
        for name in names:
            outcome = compare(name, ref, cur, chosen.get(name), limits, unseen_min_count)
            if isinstance(outcome, str):
                skipped[name] = outcome
            else:
                results.append(outcome)
            done.advance()
    finally:
        done.finish()
    order = dict.fromkeys([*ref.names, *cur.names])  # skipped columns in table order
    skipped = {n: skipped[n] for n in order if n in skipped}
    results = _null_changes(_decide(results), null_share_change)
    results.sort(key=lambda c: (not c.drifted, -c.score, c.column))
    n_drifted = sum(c.drifted for c in results)
    share = n_drifted / len(results) if results else 0.0
    return DriftReport(
        drifted=n_drifted > 0 and share >= share_threshold,
        share=share,
        share_threshold=share_threshold,
        columns=results,
        skipped=skipped,
        reference_rows=ref.rows,
        current_rows=cur.rows,
        unseen_min_count=unseen_min_count,
        null_share_change=null_share_change,
    )


def drift_against_profile(profile: TableProfile, current: Any, **options: Any) -> DriftReport:
    """:func:`drift` of ``current`` against a stored reference profile."""
    return drift(profile, current, **options)


def _thresholds(given: Mapping[str, float] | None) -> dict[str, float]:
    limits = dict(DEFAULT_THRESHOLDS)
    for method, value in (given or {}).items():
        if method not in DEFAULT_THRESHOLDS:
            raise UsageError(
                f"unknown drift method {method!r} in thresholds",
                hint=f"use one of {', '.join(METHODS)}",
                field="thresholds",
            )
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise UsageError(
                f"the threshold of {method} must be a number, not {value!r}", field="thresholds"
            )
        top = 1.0 if method in P_VALUE_METHODS or method == "unseen" else math.inf
        if not 0.0 < value <= top:
            bound = "between 0 and 1" if top == 1.0 else "above 0"
            raise UsageError(
                f"the threshold of {method} must be {bound}, not {value}", field="thresholds"
            )
        limits[method] = float(value)
    return limits


def _excluded(given: Mapping[str, str] | Sequence[str] | None) -> dict[str, str]:
    if given is None:
        return {}
    if isinstance(given, str):
        given = [given]
    if isinstance(given, Mapping):
        return {str(n): str(why) for n, why in given.items()}
    return dict.fromkeys((str(n) for n in given), "excluded")


def _select(
    ref: ComparisonSource, cur: ComparisonSource, columns: Sequence[str] | None
) -> tuple[list[str], dict[str, str]]:
    in_cur = set(cur.names)
    if columns is not None:
        wanted = [columns] if isinstance(columns, str) else list(columns)
        for name in wanted:
            for side in (ref, cur):
                if name not in side.names:
                    raise _unknown_column(name, side.label, side.names)
        return list(dict.fromkeys(wanted)), {}
    names = [n for n in ref.names if n in in_cur]
    if not names:
        raise UsageError(
            "the reference and current data have no column in common",
            hint=f"the reference has {_listing(ref.names)}; the current data has "
            f"{_listing(cur.names)}",
            field="columns",
        )
    skipped = {n: "only in the reference" for n in ref.names if n not in in_cur}
    in_ref = set(ref.names)
    skipped.update({n: "only in the current data" for n in cur.names if n not in in_ref})
    return names, skipped


def _unknown_column(
    name: str, label: str, names: Sequence[str], field: str = "columns"
) -> UsageError:
    return UsageError(
        f"column {name!r} is not in the {label} data{_closest(name, names)}",
        hint=f"its columns are {_listing(names)}",
        field=field,
    )


def _listing(names: Sequence[str], limit: int = 10) -> str:
    shown = ", ".join(repr(n) for n in names[:limit])
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return (shown + more) or "no columns"


def _methods(given: Mapping[str, str] | None, names: list[str]) -> dict[str, str]:
    chosen = dict(given or {})
    for column, method in chosen.items():
        if method not in METHODS:
            raise UsageError(
                f"unknown drift method {method!r} for column {column!r}",
                hint=f"use one of {', '.join(METHODS)}",
                field="methods",
            )
        if column not in names:
            close = _closest(column, names)
            raise UsageError(
                f"a method is set for column {column!r}, which is not compared{close}",
                hint=f"compared columns are {_listing(names)}",
                field="methods",
            )
    return chosen


def _closest(name: str, names: Sequence[str]) -> str:
    from difflib import get_close_matches

    close = get_close_matches(name, list(names), n=1, cutoff=0.6)
    if not close:  # a case slip reads as far as a typo to difflib
        close = [n for n in names if n.lower() == name.lower()][:1]
    return f" (did you mean {close[0]!r}?)" if close else ""


def _decide(results: list[ColumnDrift]) -> list[ColumnDrift]:
    """Adjust the p-values across columns (Benjamini-Hochberg), then judge each column."""
    import numpy as np

    from plinth.monitoring._stats import benjamini_hochberg

    tested = [i for i, c in enumerate(results) if c.raw_p_value is not None]
    adjusted = benjamini_hochberg(np.array([results[i].raw_p_value for i in tested], dtype=float))
    out = list(results)
    for i, p in zip(tested, adjusted.tolist(), strict=True):
        out[i] = replace(out[i], p_value=p)
    # One rule for every method, the normalised score, so that score >= 1 means drifted.
    return [replace(c, drifted=c.score >= 1.0) for c in out]


def _null_changes(results: list[ColumnDrift], min_change: float) -> list[ColumnDrift]:
    """Test each column's missing share (two-proportion z-test, adjusted across columns)."""
    import numpy as np

    from plinth.monitoring._stats import benjamini_hochberg, two_proportion_p_value

    if not results:
        return results
    raw = np.array(
        [
            two_proportion_p_value(
                c.reference_nulls,
                c.reference_count + c.reference_nulls,
                c.current_nulls,
                c.current_count + c.current_nulls,
            )
            for c in results
        ],
        dtype=float,
    )
    adjusted = benjamini_hochberg(raw).tolist()
    out = []
    for c, p in zip(results, adjusted, strict=True):
        ref_share, cur_share = c.null_shares
        changed = p <= NULL_ALPHA and abs(cur_share - ref_share) >= min_change
        out.append(replace(c, null_p_value=p, null_changed=bool(changed)))
    return out
