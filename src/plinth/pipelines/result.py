"""What running a pipeline returns: :class:`PipelineResult` (the run record, one
:class:`StepResult` per step, and the step outputs, loaded on demand)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from plinth.errors import NotFoundError

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import PipelineRun, StepRun

__all__ = ["PipelineResult", "StepResult"]


@dataclass
class StepResult:
    """One step of a run: status (succeeded, cached, failed, skipped), whether its outputs
    came from the cache, attempts made, seconds taken, its output entries and error."""

    name: str
    status: str
    cache_hit: bool = False
    attempts: int = 0
    duration: float = 0.0
    outputs: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None
    step_run: StepRun | None = None
    run_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("succeeded", "cached")

    def to_dict(self) -> dict[str, Any]:
        return {
            "step": self.name,
            "status": self.status,
            "cache_hit": self.cache_hit,
            "attempts": self.attempts,
            "duration_s": round(self.duration, 6),
            "outputs": self.outputs,
            "error": self.error,
            "step_run_id": self.step_run.id if self.step_run else None,
            "run_id": self.run_id,
        }


class PipelineResult:
    """A finished pipeline run. ``run`` is its ledger record, ``steps`` its step results in
    run order; :meth:`value` loads one step's output (from memory when this process computed
    it, else from the artifact store)."""

    def __init__(
        self,
        run: PipelineRun,
        steps: Mapping[str, StepResult],
        ctx: Context,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        self.run = run
        self.steps = dict(steps)
        self._ctx = ctx
        self._values = dict(values or {})

    @property
    def status(self) -> str:
        return self.run.status

    @property
    def ok(self) -> bool:
        return self.run.status == "succeeded"

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def error(self) -> str | None:
        return self.run.error

    def value(self, step: str) -> Any:
        """The value step ``step`` returned (NotFoundError if it did not succeed)."""
        result = self.steps.get(step)
        if result is None:
            raise NotFoundError(
                f"pipeline {self.run.pipeline!r} has no step {step!r}",
                hint=f"its steps: {', '.join(self.steps)}",
                field="step",
            )
        if not result.ok:
            raise NotFoundError(f"step {step!r} has no output: it {result.status}", field="step")
        if step not in self._values:
            from plinth.pipelines.outputs import load_outputs

            self._values[step] = load_outputs(result.outputs, self._ctx)
        return self._values[step]

    @property
    def outputs(self) -> _Outputs:
        """Every succeeded step's value by step name, each loaded on first access."""
        return _Outputs(self)

    def to_dict(self) -> dict[str, Any]:
        return {**run_dict(self.run), "steps": [s.to_dict() for s in self.steps.values()]}

    def __repr__(self) -> str:
        return f"<PipelineResult {self.run.pipeline} {self.run.id} {self.run.status}>"


def run_dict(run: PipelineRun) -> dict[str, Any]:
    """A pipeline run record as JSON (``plinth pipeline run|show --json``), without steps."""
    return {
        "id": run.id,
        "pipeline": run.pipeline,
        "status": run.status,
        "trigger": run.trigger,
        "reason": run.reason,
        "params": run.params,
        "executor": run.executor,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "error": run.error,
        "resumes": run.resumes,
    }


class _Outputs(Mapping[str, Any]):
    def __init__(self, result: PipelineResult) -> None:
        self._result = result

    def __getitem__(self, step: str) -> Any:
        return self._result.value(step)

    def __iter__(self) -> Iterator[str]:
        return (name for name, s in self._result.steps.items() if s.ok)

    def __len__(self) -> int:
        return sum(1 for s in self._result.steps.values() if s.ok)
