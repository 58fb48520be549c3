"""Automation: steps, pipelines, content-addressed step caching, executors.

Object model::

    @plinth.step fn ──► Step (options: cache, retries, retry_delay, timeout, resources)
    @plinth.pipeline fn ──► Pipeline ──trace(params)──► Graph (Nodes wired by StepOutputs)
    run_pipeline / Pipeline(...) ──► runner ──► Executor (local | process | ray)
        └─► ledger: PipelineRun ─contains─► StepRun ─used/produced/ran─► records
    ──► PipelineResult (.run, .steps[name]: StepResult, .value(name), .outputs)

May import: every pillar's public API (datasets, validation, features, registry, tracking,
monitoring, serving) and the core (ledger, storage, entities, context, guards). Nothing below
imports this package.
"""

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
from plinth.pipelines.graph import Graph, Node
from plinth.pipelines.notebook_step import NotebookStep, notebook_step
from plinth.pipelines.result import PipelineResult, StepResult
from plinth.pipelines.steps import Step, StepOptions, StepOutput, step

__all__ = [
    "Executor",
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
    "current_step",
    "load_target",
    "notebook_step",
    "pipeline",
    "resume",
    "run_call",
    "run_pipeline",
    "step",
]
