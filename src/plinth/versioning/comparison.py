"""Comparing two runs: params as strings, final metrics within a relative tolerance.

Pure functions over plain mappings, so they are easy to test and reuse::

    compare_metrics({"auc": 0.91}, {"auc": 0.9100000001}, tolerance=1e-9)  # [MetricDiff(...)]
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "SYSTEM_PREFIX",
    "MetricDiff",
    "ParamDiff",
    "close_enough",
    "compare_metrics",
    "compare_params",
]

#: Metrics under these prefixes measure the machine (CPU, memory, GPU, wall time), not the
#: model, so a reproduction does not compare them.
SYSTEM_PREFIX: tuple[str, ...] = ("system/", "timing/")


@dataclass(frozen=True)
class ParamDiff:
    """A param whose value differs; None where the run does not have it."""

    name: str
    old: str | None
    new: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "old": self.old, "new": self.new}


@dataclass(frozen=True)
class MetricDiff:
    """A final metric value that differs beyond the tolerance; None where it is missing."""

    name: str
    old: float | None
    new: float | None
    #: ``|old - new| / max(|old|, |new|)``; None when a value is missing or not finite.
    rel_diff: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "old": _json_float(self.old),
            "new": _json_float(self.new),
            "rel_diff": self.rel_diff,
        }


def _model_metrics(values: Mapping[str, float]) -> dict[str, float]:
    return {k: v for k, v in values.items() if not k.startswith(SYSTEM_PREFIX)}


def close_enough(a: float, b: float, tolerance: float) -> bool:
    """Equal within ``tolerance`` relative to the larger magnitude; NaN equals NaN."""
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    if a == b:
        return True
    if math.isinf(a) or math.isinf(b):
        return False
    return abs(a - b) <= tolerance * max(abs(a), abs(b))


def _metric_diff(
    name: str, old: Mapping[str, float], new: Mapping[str, float], tolerance: float
) -> MetricDiff | None:
    a, b = old.get(name), new.get(name)
    if a is not None and b is not None and close_enough(a, b, tolerance):
        return None
    rel = None
    if a is not None and b is not None and math.isfinite(a) and math.isfinite(b):
        rel = abs(a - b) / max(abs(a), abs(b))
    return MetricDiff(name, a, b, rel)


def _json_float(value: float | None) -> float | str | None:
    if value is None or math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def compare_params(old: Mapping[str, str], new: Mapping[str, str]) -> list[ParamDiff]:
    """Params present in only one run or with different string values, by name."""
    return [
        ParamDiff(k, old.get(k), new.get(k))
        for k in sorted(old.keys() | new.keys())
        if old.get(k) != new.get(k)
    ]


def compare_metrics(
    old: Mapping[str, float], new: Mapping[str, float], tolerance: float
) -> tuple[list[str], list[MetricDiff]]:
    """(names compared, differences) of final metrics; ``system/*`` metrics are ignored."""
    a, b = _model_metrics(old), _model_metrics(new)
    names = sorted(a.keys() | b.keys())
    return names, [d for k in names if (d := _metric_diff(k, a, b, tolerance))]
