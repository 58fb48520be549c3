"""The Grafana dashboard and Prometheus config in ``deploy/`` match what ``/metrics`` exposes."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

import plinth
from plinth.context import Context

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "plinth-serving.json"
PROMETHEUS = ROOT / "deploy" / "prometheus" / "prometheus.yml"

# PromQL words that are followed by '(' and are not metric names.
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_SELECTOR = re.compile(r"\{[^}]*\}")
_RANGE = re.compile(r"\[[^\]]*\]")
_METRIC = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?=[{\[)]|$)")
_HISTOGRAM_SUFFIX = re.compile(r"_(?:bucket|sum|count)$")


def _exprs(panels: list[dict[str, Any]]) -> Iterator[str]:
    for panel in panels:
        yield from _exprs(panel.get("panels", []))
        for target in panel.get("targets", []):
            if target.get("expr"):
                yield target["expr"]


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads, histogram suffixes stripped."""
    bare = _RANGE.sub("[]", _SELECTOR.sub("{}", _GROUPING.sub("", expr)))
    return {_HISTOGRAM_SUFFIX.sub("", name) for name in _METRIC.findall(bare)}


def exposed_names(text: str) -> set[str]:
    """Every metric family and sample name in Prometheus exposition text, suffixes stripped."""
    names: set[str] = set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(maxsplit=3)
            names.add(name)
            if kind == "counter" and not name.endswith("_total"):
                names.add(f"{name}_total")
        elif line and not line.startswith("#"):
            name = re.split(r"[{\s]", line, maxsplit=1)[0]
            names.add(re.sub(r"_(?:bucket|sum|count|created)$", "", name))
    return names


def dashboard_metrics() -> set[str]:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    names: set[str] = set()
    for expr in _exprs(dashboard["panels"]):
        found = metric_names(expr)
        assert found, f"no metric found in {expr!r}"
        names |= found
    return names


def test_the_metric_name_parser() -> None:
    expr = (
        "histogram_quantile(0.95, sum by (le, route) "
        '(rate(plinth_request_duration_seconds_bucket{deployment=~"$d"}[$__rate_interval])))'
        " / clamp_min(sum(rate(plinth_errors_total{}[5m])), 1e-9) + process_resident_memory_bytes"
    )
    assert metric_names(expr) == {
        "plinth_request_duration_seconds",
        "plinth_errors_total",
        "process_resident_memory_bytes",
    }


def test_dashboard_is_a_grafana_dashboard() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["schemaVersion"] >= 36
    assert dashboard["uid"] == "plinth-serving"
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
            assert panel["targets"], panel["title"]


def test_every_dashboard_metric_is_on_a_live_metrics_endpoint(project: Context) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("starlette")
    from sklearn.linear_model import LogisticRegression

    with warnings.catch_warnings():
        # Starlette asks for 'httpx2' over httpx; the client works the same with either.
        warnings.simplefilter("ignore", DeprecationWarning)
        from starlette.testclient import TestClient
    from plinth.serving.app import create_app
    from plinth.serving.metrics import METRIC_NAMES
    from plinth.serving.spec import DeploymentSpec

    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    model = LogisticRegression().fit(frame, [0, 0, 1, 1])
    with plinth.start_run(experiment="t") as run:
        run.log_model(model, name="m", input_example=frame)
    plinth.models.set_alias("m", "champion", 1)
    spec = DeploymentSpec.from_yaml(
        "name: web\nmodel: m@champion\ncanary: {model: m@1, traffic: 0.5}\n"
    )
    app = create_app(spec, ctx=project, seed=0)
    with TestClient(app) as client:
        for n in (1, 3):
            records = frame.head(n).to_dict(orient="records")
            answer = client.post("/v1/predict", json={"records": records})
            assert answer.status_code == 200, answer.text
        assert client.post("/v1/predict", json={"records": [{"a": "x"}]}).status_code == 422
        exposition = client.get("/metrics").text

    exposed = exposed_names(exposition)
    charted = dashboard_metrics()
    assert not charted - exposed, (
        f"the dashboard queries metrics /metrics lacks: {charted - exposed}"
    )
    # ... and every metric the server defines has a panel.
    assert not set(METRIC_NAMES) - charted, f"no panel for {set(METRIC_NAMES) - charted}"
    assert 'plinth_predictions_total{deployment="web"' in exposition


def test_prediction_panel_shows_one_model_versions_buckets_whatever_their_edges() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    [panel] = [
        p
        for p in dashboard["panels"]
        if any("plinth_prediction_value_bucket" in t.get("expr", "") for t in p.get("targets", []))
    ]
    assert panel["type"] == "heatmap"
    # the le labels are the buckets (no re-bucketing by Grafana), so any edges show as they are
    assert panel["options"]["calculate"] is False
    assert panel["options"]["rowsFrame"]["layout"] == "le"
    [target] = panel["targets"]
    assert target["format"] == "heatmap"
    assert target["expr"].startswith("sum by (le) (")
    # versions have different edges: summing their buckets would mix them
    assert 'model_version="$model_version"' in target["expr"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    version = variables["model_version"]
    assert version["multi"] is False
    assert version["includeAll"] is False
    assert "plinth_prediction_value_bucket" in version["definition"]


def test_prometheus_config_scrapes_local_serve_and_annotated_pods() -> None:
    config = yaml.safe_load(PROMETHEUS.read_text(encoding="utf-8"))
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == {"plinth-serve", "kubernetes-pods"}

    local = jobs["plinth-serve"]
    assert local.get("metrics_path", "/metrics") == "/metrics"
    assert local["static_configs"] == [{"targets": ["localhost:8000"]}]

    pods = jobs["kubernetes-pods"]
    assert pods["kubernetes_sd_configs"] == [{"role": "pod"}]
    rules = {tuple(rule.get("source_labels", ())): rule for rule in pods["relabel_configs"]}
    scrape = rules[("__meta_kubernetes_pod_annotation_prometheus_io_scrape",)]
    assert (scrape["action"], scrape["regex"]) == ("keep", "true")
    path = rules[("__meta_kubernetes_pod_annotation_prometheus_io_path",)]
    assert path["target_label"] == "__metrics_path__"
    port = rules[("__address__", "__meta_kubernetes_pod_annotation_prometheus_io_port")]
    assert port["target_label"] == "__address__"
    # The port rule rewrites host:anyport to host:annotated-port, as Prometheus would.
    pattern = re.compile(port["regex"])
    match = pattern.fullmatch("10.0.0.7:9999;8000")
    assert match is not None
    assert match.expand(port["replacement"].replace("$", "\\")) == "10.0.0.7:8000"
