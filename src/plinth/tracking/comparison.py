"""Runs side by side: ``plinth.compare_runs``, the Python face of ``plinth runs compare``.

::

    comparison = plinth.compare_runs([run_a, run_b])
    comparison.differing_params            # ["lr"]
    comparison                              # in Jupyter: one table, differences marked
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from plinth.context import Context
from plinth.errors import UsageError
from plinth.tracking.reading import RunInfo, get_run

__all__ = ["RunComparison", "compare_runs"]

SYSTEM_PREFIX = "system/"


def _same(value: Any) -> Any:
    """A hashable stand-in under which NaN equals NaN."""
    return "nan" if isinstance(value, float) and math.isnan(value) else value


def _differing(keys: list[str], per_run: list[dict[str, Any]]) -> list[str]:
    return [k for k in keys if len({_same(values.get(k)) for values in per_run}) > 1]


@dataclass(frozen=True)
class RunComparison:
    """Two or more runs, in the order asked for; a key a run lacks counts as a difference."""

    runs: list[RunInfo]

    @property
    def param_keys(self) -> list[str]:
        """Every param name of any of the runs, sorted."""
        return sorted({key for run in self.runs for key in run.params})

    @property
    def metric_keys(self) -> list[str]:
        """Every metric name of any of the runs, sorted."""
        return sorted({key for run in self.runs for key in run.metrics})

    @property
    def differing_params(self) -> list[str]:
        """Params whose value is not the same in every run."""
        return _differing(self.param_keys, [run.params for run in self.runs])

    @property
    def differing_metrics(self) -> list[str]:
        """Metrics whose latest value is not the same in every run (NaN equals NaN)."""
        return _differing(self.metric_keys, [run.metrics for run in self.runs])

    def __repr__(self) -> str:
        ids = ", ".join(repr(run.id) for run in self.runs)
        return (
            f"RunComparison(runs=[{ids}], differing_params={len(self.differing_params)}, "
            f"differing_metrics={len(self.differing_metrics)})"
        )

    def _repr_html_(self) -> str:
        from plinth.tracking.notebook import comparison_html

        return comparison_html(self)


def compare_runs(
    run_ids: Sequence[str], *, system: bool = False, ctx: Context | None = None
) -> RunComparison:
    """The runs ``run_ids`` side by side: params and latest metrics (``system/`` metrics only
    with ``system=True``). Needs two runs or more; an unknown id raises NotFoundError."""
    if isinstance(run_ids, str) or len(run_ids) < 2:
        raise UsageError(
            "compare_runs needs at least two run ids",
            hint="plinth.compare_runs([run_a.id, run_b.id])",
            field="run_ids",
        )
    runs = [get_run(run_id, ctx=ctx) for run_id in run_ids]
    if not system:
        runs = [
            replace(
                run,
                metrics={k: v for k, v in run.metrics.items() if not k.startswith(SYSTEM_PREFIX)},
            )
            for run in runs
        ]
    return RunComparison(runs)
