"""What run searches return: a run with the values asked for, and per-metric summaries."""

from __future__ import annotations

from dataclasses import dataclass, field

from plinth.entities.records import Run


@dataclass(frozen=True)
class RunRow:
    """A run found by a search, with its experiment's name and the requested values only.

    ``metrics`` holds latest values (NaN included) of the metrics the search named, in
    ``where``, ``order_by`` or ``columns``; a run without such a metric has no entry.
    """

    run: Run
    experiment: str
    metrics: dict[str, float] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class MetricSummary:
    """One metric of one run, summarised in SQL: its latest value, range and point count.

    ``min`` and ``max`` skip NaN (they are NaN only when every value is NaN).
    """

    key: str
    last: float
    last_step: int
    min: float
    max: float
    count: int


@dataclass(frozen=True)
class MetricBucket:
    """One point of a downsampled metric series: the points of a range of steps, in SQL.

    ``step`` and ``last`` are the step and value of the range's latest point (the one a
    line chart draws); ``min`` and ``max`` bound the range (NaN skipped, as in
    :class:`MetricSummary`); ``count`` is how many points it stands for.
    """

    step: int
    last: float
    min: float
    max: float
    count: int
