"""The graph is checked before anything runs: missing inputs, type hints, cycles (YAML),
unknown keys; the type rule itself."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Optional

import pytest

import plinth
from plinth.context import Context
from plinth.errors import UsageError
from plinth.pipelines import run_pipeline
from plinth.pipelines.graph import compatible

STEPS = """
import plinth

def _called(name):
    with open("calls.log", "a") as log:
        log.write(name + "\\n")

@plinth.step
def make(n: int) -> str:
    _called("make")
    return "x" * n

@plinth.step
def half(x: int) -> int:
    _called("half")
    return x // 2

@plinth.step
def size(text: str) -> int:
    _called("size")
    return len(text)

@plinth.pipeline
def mistyped(n: int = 2):
    half(make(n))

@plinth.pipeline
def missing():
    size()
"""


@pytest.fixture
def steps(write_flow: Callable[[str, str], str]) -> str:
    return write_flow("steps.py", STEPS)


def test_a_type_mismatch_stops_the_run_before_any_step(
    project: Context, steps: str, calls: Callable[[], list[str]]
) -> None:
    with pytest.raises(UsageError, match=r"'half' parameter 'x' wants int but step 'make'"):
        run_pipeline("steps.py:mistyped")
    assert calls() == []
    assert project.ledger.pipelines.runs(project.project.id) == []


def test_a_missing_input_is_named(project: Context, steps: str) -> None:
    with pytest.raises(UsageError, match=r"step 'size'.*missing a required argument: 'text'"):
        run_pipeline("steps.py:missing")


def test_a_missing_pipeline_parameter_is_named(
    project: Context, flows_text: str, write_flow: Callable[[str, str], str]
) -> None:
    write_flow("flows.py", flows_text)
    with pytest.raises(UsageError, match="missing a required argument: 'path'"):
        run_pipeline("flows.py:words")


YAML = """
pipeline: looped
steps:
  a:
    function: steps.py:size
    inputs: {text: {from: b}}
  b:
    function: steps.py:make
    inputs: {n: {from: a}}
"""


def test_a_cycle_in_yaml_is_refused(project: Context, steps: str, project_dir: Path) -> None:
    (project_dir / "pipeline.yaml").write_text(YAML)
    with pytest.raises(UsageError, match=r"cycle: (a -> b -> a|b -> a -> b)"):
        run_pipeline("pipeline.yaml")


def test_yaml_unknown_keys_and_steps_name_the_closest(
    project: Context, steps: str, project_dir: Path
) -> None:
    (project_dir / "p.yaml").write_text(YAML.replace("inputs: {n: {from: a}}", "input: {n: 1}"))
    with pytest.raises(UsageError, match="unknown key 'input'") as info:
        run_pipeline("p.yaml")
    assert "inputs" in (info.value.hint or "")
    (project_dir / "p.yaml").write_text(YAML.replace("{from: a}", "{from: aa}"))
    with pytest.raises(UsageError, match="unknown step 'aa'"):
        run_pipeline("p.yaml")
    (project_dir / "p.yaml").write_text(YAML.replace("steps.py:make", "../steps.py:make"))
    with pytest.raises(UsageError, match="step 'b'"):
        run_pipeline("p.yaml")


def test_a_yaml_pipeline_runs_with_params_and_caches(
    project: Context, steps: str, project_dir: Path, calls: Callable[[], list[str]]
) -> None:
    (project_dir / "ok.yaml").write_text(
        """
pipeline: sizes
params: {n: 3}
triggers: [{manual: true}]
steps:
  make: {function: steps.py:make, inputs: {n: {param: n}}}
  size: {function: steps.py:size, inputs: {text: {from: make}}, retries: 1}
"""
    )
    result = run_pipeline("ok.yaml", {"n": "4"})
    assert result.ok
    assert result.value("size") == 4
    assert result.run.pipeline == "sizes"
    assert run_pipeline("ok.yaml", {"n": "4"}).steps["size"].cache_hit
    assert calls() == ["make", "size"]
    from plinth.pipelines import load_target

    assert load_target("ok.yaml", root=project_dir).triggers == [{"manual": True}]
    with pytest.raises(UsageError, match="no parameter 'm'"):
        run_pipeline("ok.yaml", {"m": 1})


class Base: ...


class Child(Base): ...


@pytest.mark.parametrize(
    ("produced", "wanted", "ok"),
    [
        (int, int, True),
        (Child, Base, True),
        (Base, Child, False),
        (int, float, True),
        (str, int, False),
        (Any, int, True),
        (int, Optional[int], True),  # noqa: UP045 - the Optional spelling is what is tested
        (None, int | None, True),
        (int | None, int, False),
        (list[int], list, True),
        (dict[str, int], list[int], False),
    ],
)
def test_the_type_rule(produced: Any, wanted: Any, ok: bool) -> None:
    assert compatible(produced, wanted) is ok


def test_steps_are_plain_functions_outside_a_pipeline() -> None:
    @plinth.step(retries=2)
    def add(a: int, b: int) -> int:
        return a + b

    assert add(1, 2) == 3
    assert add.options.retries == 2
    with pytest.raises(UsageError, match="retries must be an integer"):
        plinth.step(retries=-1)
    with pytest.raises(UsageError, match="unknown resource 'gpus'"):
        plinth.step(resources={"gpus": 1})


KWARGS = """
import plinth

def _called(name):
    with open("calls.log", "a") as log:
        log.write(name + "\\n")

@plinth.step
def make(n: int) -> int:
    _called("make")
    return n * 10

@plinth.step
def gather(**kw):
    _called("gather")
    return {key: kw[key] for key in sorted(kw)}

@plinth.step
def spread(*parts, sep: str = "-"):
    return sep.join(str(p) for p in parts)

@plinth.pipeline
def keyed(n: int = 1, label: str = "a"):
    gather(made=make(n), label=label)

@plinth.pipeline
def unkeyed():
    spread(sep="+")

@plinth.pipeline
def positional():
    spread(1, 2)
"""


def test_kwargs_reach_a_step_by_their_own_names_and_key_its_cache(
    project: Context, write_flow: Callable[[str, str], str], calls: Callable[[], list[str]]
) -> None:
    write_flow("kw.py", KWARGS)
    result = run_pipeline("kw.py:keyed", {"n": 2})
    assert result.ok, result.error
    # each keyword is its own input, a wired output among them (not {"kw": {...}})
    assert result.value("gather") == {"label": "a", "made": 20}
    assert calls() == ["make", "gather"]
    assert run_pipeline("kw.py:keyed", {"n": 2}).ok
    assert calls() == []  # same keywords: a cache hit
    changed = run_pipeline("kw.py:keyed", {"n": 2, "label": "b"})
    assert changed.value("gather") == {"label": "b", "made": 20}
    assert calls() == ["gather"]  # a changed keyword is a changed cache key


def test_star_args_are_refused_by_name_unless_empty(
    project: Context, write_flow: Callable[[str, str], str]
) -> None:
    write_flow("kw.py", KWARGS)
    assert run_pipeline("kw.py:unkeyed").value("spread") == ""
    refused = r"step 'spread' got 2 positional argument\(s\) for \*parts"
    with pytest.raises(UsageError, match=refused):
        run_pipeline("kw.py:positional")
