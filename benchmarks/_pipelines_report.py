"""The pipelines benchmark's report: its tables, targets and RESULTS.md section."""

from __future__ import annotations

import statistics
from typing import Any

from _common import TIMES, Targets, human_seconds, markdown_table, section_head

#: Issue 15's targets.
TARGET_CHAIN_S = 0.5
TARGET_PER_STEP_S = 0.005
TARGET_RERUN_OVER_STARTUP_S = 0.3
TARGET_RAY_PER_STEP_S = 0.005

CHAIN_TOOLS = {
    "floor": "20 functions in a plain loop (floor)",
    "plinth": "plinth, fresh project (20 step runs in its ledger)",
    "kedro-api": "Kedro, SequentialRunner via its API",
    "kedro-run": "Kedro, `kedro run` in a `kedro new` project",
    "metaflow": "Metaflow, local flow",
    "prefect": "Prefect, flow of 20 tasks, ephemeral API",
}


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def tables(raw: dict[str, Any], summary: dict[str, Any]) -> tuple[list[str], bool]:
    """The run's tables and whether every target was met."""
    out: list[str] = []
    targets = Targets()
    plinth = summary["plinth"]["wall_s"]
    floor = summary["floor"]["wall_s"]
    rows = []
    for key, label in CHAIN_TOOLS.items():
        s = summary.get(key)
        if s is None:
            continue
        rows.append(
            [
                label,
                human_seconds(s["wall_s"]),
                f"{s['wall_s'] / floor:.0f}{TIMES}",
                "—" if key == "plinth" else f"{s['wall_s'] / plinth:.1f}{TIMES}",
                str(s["processes"]),
            ]
        )
    out.append(
        markdown_table(
            ["20 trivial steps, whole process", "median", "vs floor", "vs plinth", "processes"],
            rows,
        )
    )

    start = summary["python -c pass"]["wall_s"]
    imp = summary["python -c 'import plinth'"]["wall_s"]
    rerun = summary["plinth-rerun"]["wall_s"]
    ov = raw["overhead"]
    one, chain = statistics.median(ov["one_s"]), statistics.median(ov["chain_s"])
    parts = [
        ["`python -c pass` (Python start-up)", human_seconds(start)],
        ["`python -c 'import plinth'`", human_seconds(imp)],
        ["first run, 20 steps computed (whole process)", human_seconds(plinth)],
        ["no-change rerun, 20 cache hits (whole process)", human_seconds(rerun)],
        ["rerun over Python start-up", human_seconds(rerun - start)],
        ["rerun over `import plinth`", human_seconds(rerun - imp)],
        ["in-process: 1-step pipeline run (median)", _ms(one)],
        ["in-process: 20-step pipeline run (median)", _ms(chain)],
        ["in-process: the 20 functions called bare", _ms(statistics.median(ov["bare_s"]))],
        ["per step: (t20 - t1) / 19", _ms(ov["per_step_s"])],
        ["per run, fixed: t1 - per step", _ms(ov["per_run_s"])],
    ]
    out.append(markdown_table(["plinth, where the time goes", "median"], parts))

    fit_rows = []
    for size in ("small", "second"):
        loop = summary.get(f"fits/{size}/loop")
        proc = summary.get(f"fits/{size}/plinth-process")
        if loop is None or proc is None:
            continue
        local = summary.get(f"fits/{size}/plinth-local")
        fit_rows.append(
            [
                size,
                _ms(loop["run_s"] / 16),
                human_seconds(loop["wall_s"]),
                f"{loop['cpu_s'] / loop['run_s']:.1f}",
                human_seconds(proc["wall_s"]),
                f"{proc['wall_s'] / loop['wall_s']:.2f}{TIMES}",
                "—" if local is None else human_seconds(local["wall_s"]),
            ]
        )
    out.append(
        markdown_table(
            [
                "16 LogisticRegression fits",
                "one fit (loop)",
                "plain loop",
                "loop CPU / wall",
                "plinth process executor",
                "plinth / loop",
                "plinth in-process",
            ],
            fit_rows,
        )
    )

    ray = raw.get("ray")
    if ray:
        out.append(
            markdown_table(
                ["Ray executor, 20 trivial steps, cluster up", "median"],
                [
                    ["first Ray run (starts the cluster)", human_seconds(ray["first_s"])],
                    ["in-process executor", _ms(statistics.median(ray["local_s"]))],
                    ["Ray executor", _ms(statistics.median(ray["ray_s"]))],
                    ["extra per step", _ms(ray["extra_per_step_s"])],
                ],
            )
        )

    targets.add(
        "20 trivial steps, whole process, all recorded",
        human_seconds(plinth),
        f"≤ {TARGET_CHAIN_S} s",
        plinth <= TARGET_CHAIN_S,
    )
    targets.add(
        "per-step overhead",
        _ms(ov["per_step_s"]),
        f"≤ {TARGET_PER_STEP_S * 1000:.0f} ms",
        ov["per_step_s"] <= TARGET_PER_STEP_S,
    )
    targets.add(
        "no-change rerun over Python start-up",
        human_seconds(rerun - start),
        f"≤ {TARGET_RERUN_OVER_STARTUP_S} s",
        rerun - start <= TARGET_RERUN_OVER_STARTUP_S,
    )
    for size, goal in (("small", "no slower than the loop"), ("second", "faster than the loop")):
        loop = summary.get(f"fits/{size}/loop")
        proc = summary.get(f"fits/{size}/plinth-process")
        if loop is None or proc is None:
            continue
        ratio = proc["wall_s"] / loop["wall_s"]
        met = ratio <= 1.0 if size == "small" else ratio < 1.0
        if size == "second" and loop["run_s"] / 16 < 1.0:
            goal += " (a fit here took < 1 s: for information)"
            met = None
        targets.add(f"16 fits ({size}), process pool / loop", f"{ratio:.2f}{TIMES}", goal, met)
    if ray:
        extra = ray["extra_per_step_s"]
        targets.add(
            "Ray executor, extra per step",
            _ms(extra),
            f"≤ {TARGET_RAY_PER_STEP_S * 1000:.0f} ms",
            extra <= TARGET_RAY_PER_STEP_S,
        )
    else:
        targets.add("Ray executor, extra per step", "not measured", "≤ 5 ms", None)
    out.append(targets.table())
    return out, targets.met


def render_section(report: dict[str, Any], all_tables: list[str]) -> str:
    versions = report["versions"]
    tools = [
        f"plinth {versions['plinth']['plinth']} (scikit-learn "
        f"{versions['plinth']['scikit-learn']}, Ray {versions['plinth']['ray']}, SQLAlchemy "
        f"{versions['plinth']['sqlalchemy']}), Python {versions['plinth']['python']}"
    ]
    tools += [f"{peer} {v[peer]}" for peer, v in versions.items() if peer != "plinth"]
    lines = section_head("Pipelines: plinth vs Kedro, Metaflow, Prefect (issue 15)", report, tools)
    lines += [
        f"- Medians of {report['reps']} rounds, tools interleaved; every plinth run checked "
        "in its ledger by a separate process (20 step runs, each with its output; the rerun's "
        "20 all cache hits).",
        "",
    ]
    for table in all_tables:
        lines += [table, ""]
    return "\n".join(lines)
