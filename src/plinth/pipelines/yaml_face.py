"""The YAML face of a pipeline: the same graph as a ``@plinth.pipeline`` function, written
as data. Checked strictly before anything runs (unknown keys with the closest known one,
steps named in ``from`` that do not exist, cycles, missing inputs)::

    pipeline: nightly              # default: the file's name
    params: {rows: 1000}           # the pipeline's parameters and their defaults
    executor: local                # optional: local | process | ray
    alerts: [{type: log, path: alerts.log}]   # alert routes told when a run fails
    triggers: [{cron: "0 3 * * *"}]           # read by `plinth agent`
    steps:
      load:
        function: steps.py:load    # a .py file next to this one (never outside it)
        inputs: {n: {param: rows}, seed: 3}
      clean:
        function: steps.py:clean
        inputs: {raw: {from: load}}          # {from: load, item: 0} takes one element
        retries: 2
        timeout: 60

A step file runs only because you named it here, in your own project: the YAML may only
point at files inside its own folder (checked with ``safe_join``).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from plinth.errors import InvalidPathError, NotFoundError, UsageError
from plinth.pipelines.api import Pipeline, _load_file
from plinth.pipelines.graph import Graph, Node
from plinth.pipelines.steps import Step, StepOptions, StepOutput

__all__ = ["load_yaml_pipeline", "parse_yaml_pipeline"]

_TOP = ("pipeline", "params", "executor", "alerts", "triggers", "steps", "description")
_STEP = ("function", "inputs", "cache", "retries", "retry_delay", "timeout", "resources")
_INPUT = ("from", "param", "item")


def _closest(key: str, known: Sequence[str]) -> str:
    match = difflib.get_close_matches(key, known, n=1)
    return f"did you mean {match[0]!r}?" if match else f"known keys: {', '.join(known)}"


def _keys(raw: Mapping[str, Any], known: Sequence[str], where: str, source: str) -> None:
    for key in raw:
        if key not in known:
            raise UsageError(
                f"{source}: unknown key {key!r} in {where}",
                hint=_closest(str(key), known),
                field=f"{where}.{key}" if where != "the pipeline" else str(key),
            )


def load_yaml_pipeline(path: Path | str, *, root: Path | str | None = None) -> Pipeline:
    """The pipeline a YAML file describes (relative ``path`` taken from ``root``)."""
    import yaml

    base = Path(root) if root is not None else Path.cwd()
    file = Path(path) if Path(path).is_absolute() else base / path
    if not file.is_file():
        raise NotFoundError(f"no pipeline file {path}", field="target")
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise UsageError(f"{path} is not valid YAML: {exc}", field="target") from None
    return parse_yaml_pipeline(raw, folder=file.parent, source=str(path))


def _options(spec: Mapping[str, Any], name: str, source: str) -> StepOptions:
    try:
        return StepOptions(
            cache=spec.get("cache", True),
            retries=spec.get("retries", 0),
            retry_delay=spec.get("retry_delay", 1.0),
            timeout=spec.get("timeout"),
            resources=dict(spec.get("resources") or {}),
        )
    except UsageError as exc:
        raise UsageError(f"{source}: step {name!r}: {exc.message}", field=name) from None


def _function(ref: Any, folder: Path, name: str, source: str, options: StepOptions) -> Step:
    from plinth.guards.paths import safe_join

    if not isinstance(ref, str) or ":" not in ref:
        raise UsageError(
            f"{source}: step {name!r} function must be FILE.py:FUNCTION, got {ref!r}",
            field=f"steps.{name}.function",
        )
    file, _, attr = ref.rpartition(":")
    if not file.endswith(".py"):
        raise UsageError(f"{source}: step {name!r}: {file!r} is not a .py file", field=name)
    try:
        path = safe_join(folder, file)
    except InvalidPathError as exc:
        raise UsageError(
            f"{source}: step {name!r}: {exc.message}",
            hint="step files must be inside the pipeline file's folder",
            field=f"steps.{name}.function",
        ) from None
    if not path.is_file():
        raise UsageError(f"{source}: step {name!r}: no file {file}", field=name)
    found = getattr(_load_file(path), attr, None)
    if found is None or not callable(found):
        raise UsageError(f"{source}: step {name!r}: {file} has no function {attr!r}", field=name)
    fn = found.fn if isinstance(found, Step) else found
    return Step(fn, options, name=name)


def parse_yaml_pipeline(raw: Any, *, folder: Path, source: str = "pipeline.yaml") -> Pipeline:
    """Check a parsed pipeline mapping and build its :class:`Pipeline` (nothing runs)."""
    if not isinstance(raw, Mapping):
        raise UsageError(f"{source} must be a mapping with a 'steps:' section", field="steps")
    _keys(raw, _TOP, "the pipeline", source)
    name = raw.get("pipeline") or Path(source).stem
    defaults = raw.get("params") or {}
    steps = raw.get("steps")
    if not isinstance(defaults, Mapping):
        raise UsageError(f"{source}: params must be a mapping of defaults", field="params")
    if not isinstance(steps, Mapping) or not steps:
        raise UsageError(
            f"{source}: steps must be a mapping of step name -> spec",
            hint="steps:\n  load: {function: steps.py:load}",
            field="steps",
        )
    triggers = raw.get("triggers") or []
    alerts = raw.get("alerts") or []
    if not isinstance(triggers, list) or not isinstance(alerts, list):
        raise UsageError(f"{source}: triggers and alerts must be lists", field="triggers")
    built: dict[str, tuple[Step, Mapping[str, Any]]] = {}
    for step_name, spec in steps.items():
        if not isinstance(spec, Mapping):
            raise UsageError(f"{source}: step {step_name!r} must be a mapping", field=step_name)
        _keys(spec, _STEP, f"steps.{step_name}", source)
        if "function" not in spec:
            raise UsageError(f"{source}: step {step_name!r} names no function", field=step_name)
        inputs = spec.get("inputs") or {}
        if not isinstance(inputs, Mapping):
            raise UsageError(f"{source}: steps.{step_name}.inputs must be a mapping")
        for pname, value in inputs.items():
            if isinstance(value, Mapping) and ("from" in value or "param" in value):
                _keys(value, _INPUT, f"steps.{step_name}.inputs.{pname}", source)
                if "from" in value and value["from"] not in steps:
                    raise UsageError(
                        f"{source}: step {step_name!r} input {pname!r} comes from unknown "
                        f"step {value['from']!r}",
                        hint=_closest(str(value["from"]), [str(s) for s in steps]),
                        field=f"steps.{step_name}.inputs.{pname}",
                    )
                if "param" in value and value["param"] not in defaults:
                    raise UsageError(
                        f"{source}: step {step_name!r} input {pname!r} uses unknown parameter "
                        f"{value['param']!r}",
                        hint=_closest(str(value["param"]), [str(p) for p in defaults]),
                        field=f"steps.{step_name}.inputs.{pname}",
                    )
        options = _options(spec, str(step_name), source)
        built[str(step_name)] = (
            _function(spec["function"], folder, str(step_name), source, options),
            inputs,
        )

    def graph_for(params: Mapping[str, Any]) -> Graph:
        unknown = [p for p in params if p not in defaults]
        if unknown:
            raise UsageError(
                f"pipeline {name!r} has no parameter {unknown[0]!r}",
                hint=_closest(unknown[0], [str(p) for p in defaults]),
                field="params",
            )
        values = {**defaults, **params}
        graph = Graph(str(name), params=dict(values))
        for step_name, (step_obj, inputs) in built.items():
            args: dict[str, Any] = {}
            for pname, value in inputs.items():
                if isinstance(value, Mapping) and "from" in value:
                    args[pname] = StepOutput(str(value["from"]), value.get("item"))
                elif isinstance(value, Mapping) and "param" in value:
                    args[pname] = values[value["param"]]
                else:
                    args[pname] = value
            graph.nodes[step_name] = Node(step_name, step_obj, args)
        return graph

    return Pipeline(
        None,
        name=str(name),
        triggers=triggers,
        alerts=alerts,
        executor=raw.get("executor"),
        graph_factory=graph_for,
        target=source,
    )
