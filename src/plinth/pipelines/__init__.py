"""Automation: steps, pipelines, content-addressed step caching, executors.

Object model::

    @plinth.step fn ──► Step (options: cache, retries, retry_delay, timeout, resources)
    @plinth.pipeline fn ──► Pipeline ──trace(params)──► Graph (Nodes wired by StepOutputs)
    run_pipeline / Pipeline(...) ──► runner ──► Executor (local | process | ray)
        └─► ledger: PipelineRun ─contains─► StepRun ─used/produced/ran─► records
    ──► PipelineResult (.run, .steps[name]: StepResult, .value(name), .outputs)
    validation_gate / challenger_gate ──► Decision (or GateFailedError: the step fails)
    start_canary / watch_canary / rollout ──► CanaryResult (promote or roll back, decided)
    TriggerSpec (parse_triggers) ──► run_agent / agent_pass ──► one pipeline run per event

May import: every pillar's public API (datasets, validation, features, registry, tracking,
monitoring, serving) and the core (ledger, storage, entities, context, guards). Nothing below
imports this package.
"""

import typing as _typing

from plinth._lazy import lazy_attributes
from plinth.errors import GateFailedError

# ``notebook_step`` and ``rollout`` name both a module and its function: bound here, on
# import (neither module imports anything heavy at top level), so that a later
# ``import plinth.pipelines.rollout`` cannot leave the module where the function should be.
from plinth.pipelines.notebook_step import NotebookStep, notebook_step
from plinth.pipelines.rollout import rollout
from plinth.pipelines.steps import Step, StepOptions, StepOutput, step

if _typing.TYPE_CHECKING:
    from plinth.pipelines.agent import AgentReport, agent_pass, run_agent
    from plinth.pipelines.api import Pipeline, load_target, pipeline, resume, run_pipeline
    from plinth.pipelines.executors import (
        Executor,
        InProcessExecutor,
        ProcessExecutor,
        StepCall,
        StepContext,
        StepOutcome,
        current_step,
        run_call,
    )
    from plinth.pipelines.gates import challenger_gate, validation_gate
    from plinth.pipelines.graph import Graph, Node
    from plinth.pipelines.result import PipelineResult, StepResult
    from plinth.pipelines.rollout import CanaryResult, Thresholds, start_canary, watch_canary
    from plinth.pipelines.triggers import TriggerSpec, parse_triggers

# The runner, executors, graph, results, gates, rollouts, triggers and the agent load on
# first use (``plinth lineage`` reads pipeline records without them): name -> module.
_LAZY: dict[str, str] = {
    "Executor": "plinth.pipelines.executors",
    "Graph": "plinth.pipelines.graph",
    "InProcessExecutor": "plinth.pipelines.executors",
    "Node": "plinth.pipelines.graph",
    "Pipeline": "plinth.pipelines.api",
    "PipelineResult": "plinth.pipelines.result",
    "ProcessExecutor": "plinth.pipelines.executors",
    "StepCall": "plinth.pipelines.executors",
    "StepContext": "plinth.pipelines.executors",
    "StepOutcome": "plinth.pipelines.executors",
    "StepResult": "plinth.pipelines.result",
    "current_step": "plinth.pipelines.executors",
    "load_target": "plinth.pipelines.api",
    "pipeline": "plinth.pipelines.api",
    "resume": "plinth.pipelines.api",
    "run_call": "plinth.pipelines.executors",
    "run_pipeline": "plinth.pipelines.api",
    "AgentReport": "plinth.pipelines.agent",
    "CanaryResult": "plinth.pipelines.rollout",
    "Thresholds": "plinth.pipelines.rollout",
    "TriggerSpec": "plinth.pipelines.triggers",
    "agent_pass": "plinth.pipelines.agent",
    "challenger_gate": "plinth.pipelines.gates",
    "parse_triggers": "plinth.pipelines.triggers",
    "run_agent": "plinth.pipelines.agent",
    "start_canary": "plinth.pipelines.rollout",
    "validation_gate": "plinth.pipelines.gates",
    "watch_canary": "plinth.pipelines.rollout",
}

__all__ = [
    "AgentReport",
    "CanaryResult",
    "Executor",
    "GateFailedError",
    "Graph",
    "InProcessExecutor",
    "Node",
    "NotebookStep",
    "Pipeline",
    "PipelineResult",
    "ProcessExecutor",
    "Step",
    "StepCall",
    "StepContext",
    "StepOptions",
    "StepOutcome",
    "StepOutput",
    "StepResult",
    "Thresholds",
    "TriggerSpec",
    "agent_pass",
    "challenger_gate",
    "current_step",
    "load_target",
    "notebook_step",
    "parse_triggers",
    "pipeline",
    "resume",
    "rollout",
    "run_agent",
    "run_call",
    "run_pipeline",
    "start_canary",
    "step",
    "validation_gate",
    "watch_canary",
]

__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, globals())
