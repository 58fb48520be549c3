"""In-process measurements of the pipelines benchmark, run with plinth's python in a project
folder holding the chain script as ``flow.py`` (see ``_pipelines_flows.plinth_chain``).

    python _pipelines_workers.py worker:NAME '{json args}'

- ``check``: what the ledger holds for a pipeline run (its status, its step runs).
- ``overhead``: a 1-step and a 20-step pipeline, each run with a fresh input (every step
  computes), timed in this process after a warm-up: the per-step cost is the difference / 19.
- ``ray``: the 20-step pipeline on the Ray executor against the in-process one, once the
  cluster is up (a first Ray run, not timed, starts it).
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import dispatch_worker, print_result


def _flow() -> Any:
    import importlib

    sys.path.insert(0, os.getcwd())
    return importlib.import_module("flow")  # the chain script written into this folder


def _statuses(result: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for step in result.steps.values():
        out[step.status] = out.get(step.status, 0) + 1
    return out


def check(args: dict[str, Any]) -> dict[str, Any]:
    import plinth

    ctx = plinth.Context.open(Path.cwd())
    run = ctx.ledger.pipelines.get_run(args["run_id"])
    steps = ctx.ledger.pipelines.steps(args["run_id"])
    statuses: dict[str, int] = {}
    for s in steps:
        statuses[s.status] = statuses.get(s.status, 0) + 1
    return {
        "run_status": run.status,
        "step_runs": len(steps),
        "distinct_steps": len({s.step for s in steps}),
        "statuses": statuses,
        "cache_hits": sum(s.cache_hit for s in steps),
        "with_outputs": sum(bool(s.outputs) for s in steps),
    }


def overhead(args: dict[str, Any]) -> dict[str, Any]:
    flow = _flow()
    n = flow.chain.graph({"start": 0}).nodes
    steps = len(n)
    # Warm-up: imports, the ledger's engine and project, the steps' code digests.
    flow.one(start=-1)
    flow.chain(start=-1)
    one_s, chain_s, bare_s = [], [], []
    statuses: dict[str, int] = {}
    for k in range(args["reps"]):
        started = time.perf_counter()
        r1 = flow.one(start=10_000 + k)  # a new input: nothing cached
        one_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        r20 = flow.chain(start=20_000 + k)
        chain_s.append(time.perf_counter() - started)
        for result in (r1, r20):
            for status, count in _statuses(result).items():
                statuses[status] = statuses.get(status, 0) + count
        started = time.perf_counter()
        x = 30_000 + k
        for i in range(steps):
            x = getattr(flow, f"step_{i:02d}").fn(x)
        bare_s.append(time.perf_counter() - started)
    one, chain = statistics.median(one_s), statistics.median(chain_s)
    return {
        "steps": steps,
        "one_s": one_s,
        "chain_s": chain_s,
        "bare_s": bare_s,
        "per_step_s": (chain - one) / (steps - 1),
        "per_run_s": one - (chain - one) / (steps - 1),
        "statuses": statuses,
    }


def ray(args: dict[str, Any]) -> dict[str, Any]:
    flow = _flow()
    executor = args.get("executor", "ray")
    started = time.perf_counter()
    first = flow.chain.run({"start": -1}, executor=executor)  # starts (or joins) the cluster
    first_s = time.perf_counter() - started
    if first.status != "succeeded":
        raise RuntimeError(f"the first Ray run {first.status}: {first.error}")
    flow.chain(start=-2)  # warm-up of the in-process path too
    local_s, ray_s = [], []
    statuses: dict[str, int] = {}
    for k in range(args["reps"]):
        started = time.perf_counter()
        r_local = flow.chain(start=40_000 + k)
        local_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        r_ray = flow.chain.run({"start": 50_000 + k}, executor=executor)
        ray_s.append(time.perf_counter() - started)
        if r_ray.value(f"step_{len(r_ray.steps) - 1:02d}") != 50_000 + k + sum(
            range(len(r_ray.steps))
        ):
            raise RuntimeError("the Ray run returned a wrong value")
        for result in (r_local, r_ray):
            for status, count in _statuses(result).items():
                statuses[status] = statuses.get(status, 0) + count
    steps = len(r_ray.steps)
    return {
        "steps": steps,
        "first_s": first_s,
        "local_s": local_s,
        "ray_s": ray_s,
        "extra_per_step_s": (statistics.median(ray_s) - statistics.median(local_s)) / steps,
        "statuses": statuses,
    }


WORKERS = {"check": check, "overhead": overhead, "ray": ray}


def main(name: str, args: dict[str, Any]) -> int:
    print_result(WORKERS[name](args))
    return 0


if __name__ == "__main__":
    code = dispatch_worker(sys.argv[1:], main)
    raise SystemExit(2 if code is None else code)
