"""Monitor files: parsed strictly, every mistake named with its key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from plinth.errors import UsageError
from plinth.monitoring.spec import MonitorSpec, parse_duration

FULL = """\
name: delays-monitor
deployment: delays
reference: flights@9
window: {time: 6h}
checks:
  drift: {share: 0.25, columns: [distance, carrier], thresholds: {wasserstein: 0.2}}
  prediction_drift: {method: psi, threshold: 0.3}
  validation: {suite: suite.yaml}
  performance: {min: {roc_auc: 0.7}, max: {log_loss: 0.6}}
  server: {url: "http://127.0.0.1:8000", p95_ms: 50, error_rate: 0.01}
alerts:
  cooldown: 30m
  routes:
    - {name: ops, type: log, path: alerts.log}
"""


def test_a_full_monitor_file_parses(tmp_path: Path) -> None:
    path = tmp_path / "monitor.yaml"
    path.write_text(FULL, encoding="utf-8")
    spec = MonitorSpec.load(path)
    assert (spec.name, spec.deployment, spec.dataset) == ("delays-monitor", "delays", None)
    assert spec.reference == "flights@9"
    assert (spec.window.rows, spec.window.seconds) == (None, 6 * 3600)
    assert list(spec.checks) == [
        "drift",
        "prediction_drift",
        "validation",
        "performance",
        "server",
    ]
    assert spec.checks["drift"]["share"] == 0.25
    assert spec.cooldown_seconds == 1800
    assert spec.routes == [{"name": "ops", "type": "log", "path": "alerts.log"}]
    assert spec.base_dir == tmp_path
    assert len(spec.digest) == 64
    assert spec.to_dict()["routes"] == ["ops"]


def test_defaults_watch_drift_over_a_day_through_lineage() -> None:
    spec = MonitorSpec.from_yaml("deployment: delays\n")
    assert (spec.name, spec.reference, spec.window.seconds) == ("delays", "lineage", 86400)
    assert spec.checks == {"drift": {}}
    assert (spec.routes, spec.cooldown_seconds) == ([], 3600)
    dataset = MonitorSpec.from_yaml("dataset: flights\n")
    assert (dataset.dataset, dataset.reference) == ("flights", "previous")


@pytest.mark.parametrize(
    ("text", "field", "message"),
    [
        ("deployment: d\nwindw: {rows: 5}\n", "windw", "did you mean 'window'"),
        ("name: x\n", "deployment", "exactly one of 'deployment' or 'dataset'"),
        ("deployment: d\ndataset: f\n", "deployment", "exactly one of"),
        ("deployment: 'a b'\n", "deployment", "must be a name"),
        ("deployment: d\nwindow: {rows: 5, time: 1h}\n", "window", "not both or neither"),
        ("deployment: d\nwindow: {rows: 0}\n", "window.rows", "positive whole number"),
        ("deployment: d\nwindow: {time: soon}\n", "window.time", "must be a duration"),
        ("deployment: d\nchecks: {drfit: {}}\n", "checks.drfit", "did you mean 'checks.drift'"),
        ("deployment: d\nchecks: {drift: {share: 2}}\n", "checks.drift.share", "in (0, 1]"),
        ("deployment: d\nchecks: {drift: {colour: 1}}\n", "checks.drift.colour", "unknown"),
        ("deployment: d\nchecks: {performance: {}}\n", "checks.performance", "needs a threshold"),
        (
            "deployment: d\nchecks: {performance: {min: {auc: high}}}\n",
            "checks.performance.min.auc",
            "must be a number",
        ),
        ("deployment: d\nchecks: {server: {url: 'ftp://x'}}\n", "checks.server.url", "http(s)"),
        ("deployment: d\nchecks: {validation: {}}\n", "checks.validation.suite", "suite file"),
        ("dataset: f\nchecks: {server: {url: 'http://x'}}\n", "checks.server", "needs a deploy"),
        ("deployment: d\nchecks: {drift: false}\n", "checks", "enables no check"),
        ("deployment: d\nalerts: {routes: {type: log}}\n", "alerts.routes", "list of mappings"),
        ("deployment: d\nalerts: {cooldown: forever}\n", "alerts.cooldown", "duration"),
        ("deployment: [d\n", "monitor", "malformed YAML"),
        ("- deployment\n", "monitor", "a monitor is a mapping"),
    ],
)
def test_every_mistake_names_its_key(text: str, field: str, message: str) -> None:
    with pytest.raises(UsageError, match=re.escape(message)) as caught:
        MonitorSpec.from_yaml(text, where="m.yaml")
    assert caught.value.field == field
    assert "m.yaml" in str(caught.value)


def test_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="no monitor file"):
        MonitorSpec.load(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("value", "seconds"), [("30s", 30), ("15m", 900), ("1h", 3600), ("2d", 172800), (5, 5)]
)
def test_durations(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize("value", ["0s", "-1h", "1y", True, None, 0])
def test_bad_durations(value: object) -> None:
    with pytest.raises(UsageError, match="must be a duration"):
        parse_duration(value)
