"""The table of ``benchmarks/server.py``: one row per measurement, its target and status.

Where MLflow was not measured (``--no-peers``), ratio targets are checked against the issue's
figures for MLflow's server on this machine kind (``ISSUE_MLFLOW``), and the table says so.
"""

from __future__ import annotations

import statistics
from typing import Any

from _common import TIMES, markdown_table, met_status, section_head

#: Issue 16's figures for MLflow's server on this machine kind: log_metric calls per second
#: over HTTP, artifact files uploaded per second.
ISSUE_MLFLOW = {"metrics_per_s": 18.0, "files_per_s": 152.0}
HEADERS = ["Workload", "plinth", "MLflow", "plinth vs MLflow", "Target", "Status"]


def _start(raw: dict[str, Any]) -> float | None:
    return statistics.median(raw["start_s"]) if raw.get("start_s") else None


def _memory(memory: dict[str, float] | None) -> str | None:
    if not memory:
        return None
    count = int(memory["processes"])
    return f"{memory['rss_mb']:,.0f} MB ({count} process{'es' if count > 1 else ''})"


def _rate(metrics: dict[str, Any] | None) -> float | None:
    if not metrics:
        return None
    return float(metrics["n"] / (metrics["log_s"] + metrics["end_s"]))


def _files_rate(artifacts: dict[str, Any] | None) -> float | None:
    return float(artifacts["files"] / artifacts["seconds"]) if artifacts else None


class Report:
    """Rows from the raw numbers of both tools (either may be absent)."""

    def __init__(self, raw: dict[str, Any], size: dict[str, int]) -> None:
        self.raw, self.size = raw, size
        self.rows: list[dict[str, str]] = []
        self.build()

    def add(
        self,
        workload: str,
        plinth: str | None,
        mlflow: str | None,
        ratio: float | None = None,
        target: str = "(for information)",
        met: bool | None = None,
    ) -> None:
        self.rows.append(
            {
                "workload": workload,
                "plinth": plinth or "—",
                "mlflow": mlflow or "—",
                "ratio": f"{ratio:,.1f}{TIMES}" if ratio else "—",
                "target": target,
                "status": met_status(met) if plinth else "—",
            }
        )

    def build(self) -> None:
        p, m = self.raw.get("plinth", {}), self.raw.get("mlflow", {})
        self.s1(p, m)
        self.ratio_rows(p, m)
        for key, pages, goal in (("pages", "S4", 300.0), ("chart", "S5", 200.0)):
            self.page_rows(pages, p.get(key, {}), goal)

    def s1(self, p: dict[str, Any], m: dict[str, Any]) -> None:
        ps, ms = _start(p), _start(m)
        reps = self.size["starts"]
        self.add(
            f"S1 start to a ready /health (median of {reps})",
            f"{ps:.2f} s" if ps is not None else None,
            f"{ms:.2f} s" if ms is not None else None,
            ms / ps if ps and ms else None,
            "≤ 1 s",
            ps is not None and ps <= 1.0,
        )
        ready = p.get("memory_ready")
        self.add(
            "S1 RSS of all its processes, when ready",
            _memory(ready),
            _memory(m.get("memory_ready")),
            m["memory_ready"]["rss_mb"] / ready["rss_mb"] if ready and m else None,
            "≤ 150 MB",
            ready is not None and ready["rss_mb"] <= 150,
        )
        one = m.get("one_worker")
        if one:
            self.add(
                "S1 MLflow with --workers 1: start; RSS",
                None,
                f"{one['start_s']:.2f} s; {_memory(one['memory_ready'])}",
            )
        if p.get("memory_after") or m.get("memory_after"):
            self.add(
                "RSS of all its processes after S2 and S3",
                _memory(p.get("memory_after")),
                _memory(m.get("memory_after")),
            )

    def ratio_rows(self, p: dict[str, Any], m: dict[str, Any]) -> None:
        n, files, kb = self.size["points"], self.size["files"], self.size["file_kb"]
        for label, rate, unit, key, need in (
            (f"S2 log_metric {TIMES} {n:,} over HTTP, until flushed", _rate, "calls/s",
             "metrics", 100.0),
            (f"S3 {files:,} artifacts of {kb} KB, one log_artifacts", _files_rate, "files/s",
             "artifacts", 10.0),
        ):  # fmt: skip
            pr, mr = rate(p.get(key)), rate(m.get(key))
            base = mr or ISSUE_MLFLOW[f"{key}_per_s" if key == "metrics" else "files_per_s"]
            goal = f"≥ {need:.0f}{TIMES} MLflow" + ("" if mr else " (issue's MLflow figure)")
            self.add(
                label,
                f"{pr:,.0f} {unit}" if pr else None,
                f"{mr:,.1f} {unit}" if mr else None,
                pr / mr if pr and mr else None,
                goal,
                pr is not None and pr >= need * base,
            )
            if key == "metrics" and m.get("metrics_async"):
                ma = _rate(m["metrics_async"])
                self.add(
                    "S2 MLflow with synchronous=False (its async logging)",
                    None,
                    f"{ma:,.1f} {unit}",
                    pr / ma if pr and ma else None,
                )

    def page_rows(self, workload: str, pages: dict[str, Any], goal_ms: float) -> None:
        if workload == "S4":
            what = f"{self.size['runs']:,} runs"
        else:
            what = f"{self.size['chart_points']:,} points"
        for i, (label, page) in enumerate(pages.items()):
            targeted = i == 0 or (workload == "S4" and "HTML" in label)
            goal = f"≤ {goal_ms:.0f} ms server time" if targeted else "(for information)"
            if "median_ms" not in page:
                value = f"not measured (HTTP {page['status']})"
                self.add(f"{workload} {label}, {what}", value, None, None, goal, None)
                continue
            ms = page["median_ms"]
            met = ms <= goal_ms if targeted else None
            self.add(f"{workload} {label}, {what}", f"{ms:,.1f} ms", None, None, goal, met)

    def table(self) -> str:
        return markdown_table(HEADERS, [list(r.values()) for r in self.rows])


def render_section(report: dict[str, Any], table: str) -> str:
    v = report["versions"]
    tools = []
    if "plinth" in v:
        p = v["plinth"]
        tools.append(f"plinth {p['plinth']} (Starlette {p['starlette']}, uvicorn {p['uvicorn']})")
    if "mlflow" in v:
        tools.append(f"MLflow {v['mlflow']['mlflow']} (uvicorn {v['mlflow']['uvicorn']})")
    return "\n".join(
        [
            *section_head("Team server: plinth vs MLflow's tracking server", report, tools),
            "- Each server on SQLite and a local artifact folder, on 127.0.0.1, its defaults "
            "otherwise (MLflow: 4 workers, artifacts proxied; telemetry off). Clients run in a "
            "fresh git repository each; S2 is timed until the run's end has flushed every point.",
            "- S4/S5 times are loopback round trips on a kept-alive connection (medians).",
            "",
            table,
        ]
    )
