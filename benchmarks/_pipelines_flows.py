"""The scripts the pipelines benchmark runs: one per tool and workload, written as text.

Every chain has the same 20 trivial steps: step ``i`` returns ``prev + i``, so a chain from
0 ends on 190. Each tool gets its own natural spelling (plinth ``@step``/``@pipeline``,
Kedro nodes on a ``SequentialRunner``, a Metaflow ``FlowSpec``, Prefect ``@task``/``@flow``,
plain functions for the floor). A script prints one ``RESULT {json}`` line (Metaflow's end
step writes ``out.json`` instead: its steps run in subprocesses whose output is prefixed).
"""

from __future__ import annotations

STEPS = 20
EXPECTED = sum(range(STEPS))  # the chain's last value, from 0
FITS = 16


def _defs(decorator: str, *, kedro: bool = False) -> str:
    lines = []
    for i in range(STEPS):
        if decorator:
            lines.append(decorator)
        sig = "(prev)" if kedro else "(prev: int) -> int"
        lines += [f"def step_{i:02d}{sig}:", f"    return prev + {i}", "", ""]
    return "\n".join(lines)


def _chain_calls(indent: str = "    ") -> str:
    return "\n".join(f"{indent}x = step_{i:02d}(x)" for i in range(STEPS))


def plinth_chain() -> str:
    """20 plinth steps chained (and ``one``: the first alone, for the per-step overhead);
    as a script it runs ``chain`` and prints the run's id, status, cache hits and last value."""
    return f"""import json
import sys

import plinth


{_defs("@plinth.step")}
@plinth.pipeline
def chain(start: int = 0) -> None:
    x = start
{_chain_calls()}


@plinth.pipeline
def one(start: int = 0) -> None:
    step_00(start)


if __name__ == "__main__":
    result = chain(start=int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    steps = result.steps.values()
    print("RESULT " + json.dumps({{
        "run_id": result.id,
        "status": result.status,
        "steps": len(result.steps),
        "cache_hits": sum(s.cache_hit for s in steps),
        "value": result.value("step_{STEPS - 1:02d}"),
    }}), flush=True)
"""


def floor_chain() -> str:
    """The same 20 functions, called in a plain loop: the floor."""
    return f"""import json


{_defs("")}
x = 0
{_chain_calls("")}
print("RESULT " + json.dumps({{"value": x, "steps": {STEPS}}}), flush=True)
"""


def kedro_api() -> str:
    """20 Kedro nodes on in-memory datasets, run by a ``SequentialRunner`` in-process."""
    nodes = ",\n".join(
        f'    node(step_{i:02d}, "{"start" if i == 0 else f"x{i - 1:02d}"}", "x{i:02d}", '
        f'name="step_{i:02d}")'
        for i in range(STEPS)
    )
    return f"""import json

from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline, node
from kedro.runner import SequentialRunner


{_defs("", kedro=True)}
pipeline = Pipeline([
{nodes},
])
catalog = DataCatalog({{"start": MemoryDataset(0)}})
out = SequentialRunner().run(pipeline, catalog)
last = out["x{STEPS - 1:02d}"]
value = last.load() if hasattr(last, "load") else last
print("RESULT " + json.dumps({{"value": value, "steps": len(pipeline.nodes)}}), flush=True)
"""


def kedro_project_pipeline() -> str:
    """The ``pipeline_registry.py`` of a minimal Kedro project (``kedro run``); the last node
    also writes ``out.json`` (what the run computed, for the check)."""
    nodes = ",\n".join(
        f'        node(step_{i:02d}, "{"params:start" if i == 0 else f"x{i - 1:02d}"}", '
        f'"x{i:02d}", name="step_{i:02d}")'
        for i in range(STEPS)
    )
    defs = _defs("", kedro=True).replace(
        f"    return prev + {STEPS - 1}\n",
        f"    value = prev + {STEPS - 1}\n"
        f'    Path("out.json").write_text(json.dumps({{"value": value, "steps": {STEPS}}}))\n'
        "    return value\n",
    )
    return f"""import json
from pathlib import Path

from kedro.pipeline import Pipeline, node


{defs}
def register_pipelines():
    pipeline = Pipeline([
{nodes},
    ])
    return {{"__default__": pipeline}}
"""


def metaflow_chain() -> str:
    """A local Metaflow flow of 20 steps (``start``, 18 more, ``end``)."""
    names = ["start", *(f"step_{i:02d}" for i in range(1, STEPS - 1)), "end"]
    body = []
    for i, name in enumerate(names):
        body += ["    @step", f"    def {name}(self):"]
        body.append("        self.x = 0" if i == 0 else f"        self.x = self.x + {i}")
        if name == "end":
            body += [
                '        with open("out.json", "w") as f:',
                f'            json.dump({{"value": self.x, "steps": {STEPS}}}, f)',
            ]
        else:
            body.append(f"        self.next(self.{names[i + 1]})")
        body.append("")
    return (
        "import json\n\nfrom metaflow import FlowSpec, step\n\n\n"
        "class Chain(FlowSpec):\n" + "\n".join(body) + '\n\nif __name__ == "__main__":\n'
        "    Chain()\n"
    )


def prefect_chain() -> str:
    """A Prefect flow of 20 tasks, run without a server (its ephemeral API)."""
    return f"""import json

from prefect import flow, task


{_defs("@task")}
@flow
def chain(start: int = 0) -> int:
    x = start
{_chain_calls()}
    return x


if __name__ == "__main__":
    value = chain()
    print("RESULT " + json.dumps({{"value": value, "steps": {STEPS}}}), flush=True)
"""


_FIT = """def fit(seed: int, rows: int, features: int) -> float:
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    X, y = make_classification(
        n_samples=rows, n_features=features, n_informative=features // 2, random_state=seed
    )
    return float(LogisticRegression(max_iter=1000).fit(X, y).score(X, y))
"""


def plinth_fits() -> str:
    """16 independent ``fit`` steps (LogisticRegression) on plinth's given executor."""
    return f"""import json
import sys
import time

import plinth


@plinth.step
{_FIT}

@plinth.pipeline
def fits(rows: int, features: int) -> None:
    for seed in range({FITS}):
        fit(seed, rows, features)


if __name__ == "__main__":
    rows, features, executor = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    started = time.perf_counter()
    result = fits.run({{"rows": rows, "features": features}}, executor=executor)
    elapsed = time.perf_counter() - started
    scores = [result.value(name) for name in result.steps]
    print("RESULT " + json.dumps({{
        "status": result.status,
        "steps": len(result.steps),
        "cache_hits": sum(s.cache_hit for s in result.steps.values()),
        "scores": scores,
        "run_s": elapsed,
    }}), flush=True)
"""


def loop_fits() -> str:
    """The same 16 fits in a plain loop (the baseline)."""
    return f"""import json
import resource
import sys
import time


{_FIT}

rows, features = int(sys.argv[1]), int(sys.argv[2])
started = time.perf_counter()
scores = [fit(seed, rows, features) for seed in range({FITS})]
elapsed = time.perf_counter() - started
usage = resource.getrusage(resource.RUSAGE_SELF)
print("RESULT " + json.dumps({{
    "scores": scores,
    "run_s": elapsed,
    "cpu_s": usage.ru_utime + usage.ru_stime,
}}), flush=True)
"""
