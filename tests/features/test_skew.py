"""Skew: the features a deployment served against the training set its model was trained
on (found through lineage), from the Python API, the CLI and the monitor check."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import plinth
from plinth.context import Context
from plinth.entities import DeploymentVersion
from plinth.errors import NotFoundError, UsageError
from plinth.features.definitions import Entity, FeatureService, FeatureView
from plinth.features.skew import parse_window, skew
from plinth.features.training import get_training_set
from plinth.ids import new_id, now_ms
from plinth.monitoring.monitors import run_monitor
from plinth.monitoring.spec import MonitorSpec, Window
from plinth.serving.predlog import PredictionLog

pytest.importorskip("sklearn")
pytest.importorskip("skops")

TRAIN_ROWS = 1000
#: The seed of the training values: a sample whose tests against fresh samples are quiet.
TRAIN_SEED = 4
SERVED_ROWS = 800
D = datetime(2024, 1, 1)
USER = Entity("user", ["user"])
VIEW = FeatureView(
    "stats",
    [USER],
    "profiles",
    "ts",
    features={"x": "float64", "n": "int64", "c": "string"},
)
SERVICE = FeatureService("svc", [VIEW])
LOG_ROUTE = """\
alerts:
  cooldown: 1h
  routes:
    - {name: ops, type: log, path: alerts.log}
"""


def _values(seed: int, rows: int, shift: float = 0.0) -> dict[str, Any]:
    """x normal (shifted by ``shift``), n whole numbers 0..59, c three categories."""
    rng = np.random.default_rng(seed)
    return {
        "x": rng.normal(shift, 1.0, rows),
        "n": rng.integers(0, 60, rows),
        "c": rng.choice(["a", "b", "c"], rows, p=[0.5, 0.3, 0.2]),
    }


@dataclass
class Scene:
    ctx: Context
    deployment: DeploymentVersion
    folder: Path

    def serve(self, values: dict[str, Any], name: str = "web") -> None:
        """Log one batch of served rows: the model's inputs x, n and the looked-up c."""
        deployment = self.ctx.ledger.deployments.get(self.ctx.project.id, name)
        log = PredictionLog(self.ctx, deployment)
        rows = len(values["x"])
        columns = {
            "user": [f"u{i}" for i in range(rows)],
            "x": values["x"].tolist(),
            "n": values["n"].tolist(),
            "c": values["c"].tolist(),
        }
        log.append(new_id(), now_ms(), "m@1", columns, [0.5] * rows)
        assert log.flush() is not None

    def monitor(self, text: str) -> MonitorSpec:
        path = self.folder / "monitor.yaml"
        path.write_text(text, encoding="utf-8")
        return MonitorSpec.load(path)


def _deploy(ctx: Context, name: str, model: str, service: str | None) -> DeploymentVersion:
    spec: dict[str, Any] = {"name": name, "model": model}
    if service is not None:
        spec["features"] = {"service": service}
    digest = ctx.blobs.put_bytes(json.dumps(spec).encode()).digest
    return ctx.ledger.deployments.save(ctx.project.id, name, digest, spec)


@pytest.fixture
def scene(project: Context) -> Scene:
    """profiles (a dataset) -> view stats -> service svc -> training set svc-train@1 (saved
    with lineage) -> a run that loads it and logs model m@1 -> deployment web."""
    from sklearn.linear_model import LogisticRegression

    values = _values(TRAIN_SEED, TRAIN_ROWS)
    users = [f"u{i}" for i in range(TRAIN_ROWS)]
    profiles = pa.table(
        {"user": users, "ts": pa.array([D] * TRAIN_ROWS, pa.timestamp("us")), **values}
    )
    plinth.datasets.save(profiles, "profiles", ctx=project)
    entities = pa.table(
        {
            "user": users,
            "event_timestamp": pa.array([D + timedelta(days=1)] * TRAIN_ROWS, pa.timestamp("us")),
            "label": (values["x"] > 0).astype(int),
        }
    )
    with plinth.start_run() as run:
        get_training_set(entities, SERVICE, save_as="svc-train", ctx=project)
        data = plinth.datasets.load("svc-train", ctx=project)
        model = LogisticRegression().fit(data[["x", "n"]], data["label"])
        run.log_model(model, name="m", input_example=data[["x", "n"]].head())
    deployment = _deploy(project, "web", "m@1", "svc")
    folder = project.settings.root / "monitoring"  # log routes must stay in the project
    folder.mkdir()
    return Scene(project, deployment, folder)


def test_features_served_like_the_training_set_show_no_skew(scene: Scene) -> None:
    scene.serve(_values(1, SERVED_ROWS))
    report = skew("svc", deployment="web", ctx=scene.ctx)
    assert (report.model, report.training_set, report.trained_service) == (
        "m@1",
        "svc-train@1",
        "svc@1",
    )
    assert not report.skewed
    assert report.skewed_features == []
    assert {c.column for c in report.drift.columns} == {"x", "n", "c"}
    assert (report.drift.reference_rows, report.drift.current_rows) == (TRAIN_ROWS, SERVED_ROWS)
    assert report.rows == SERVED_ROWS
    doc = report.to_dict()
    assert doc["skewed"] is False
    assert doc["window"]["rows"] == SERVED_ROWS


def test_a_shifted_feature_is_skew_and_only_that_feature(scene: Scene) -> None:
    scene.serve(_values(2, SERVED_ROWS, shift=1.0))
    report = skew("svc", deployment="web", window="1d", ctx=scene.ctx)
    assert report.skewed
    assert report.skewed_features == ["x"]
    x = report.drift.columns[0]
    assert (x.column, x.method, x.drifted) == ("x", "ks", True)
    assert all(not c.drifted for c in report.drift.columns[1:])
    # the share rule of drift applies when asked: one of three is below a half
    assert not skew("svc", deployment="web", share_threshold=0.5, ctx=scene.ctx).skewed


def test_the_window_picks_the_logged_batches(scene: Scene) -> None:
    scene.serve(_values(3, SERVED_ROWS, shift=1.0))
    scene.serve(_values(14, 300))
    newest = skew("svc", deployment="web", window="300 rows", ctx=scene.ctx)
    assert newest.rows == 300
    assert not newest.skewed, newest.drift.columns
    assert skew("svc", deployment="web", ctx=scene.ctx).rows == SERVED_ROWS + 300
    assert parse_window("12h") == Window(seconds=43200.0)
    assert parse_window("5000 rows") == Window(rows=5000)
    for bad in ("soon", "0 rows", True):
        with pytest.raises(UsageError) as info:
            parse_window(bad)
        assert info.value.field == "window"


def test_a_training_set_produced_in_the_run_is_found_too(scene: Scene) -> None:
    """Trained on get_training_set's result directly: the run produced the version."""
    from sklearn.linear_model import LogisticRegression

    ctx = scene.ctx
    entities = pa.table(
        {
            "user": [f"u{i}" for i in range(TRAIN_ROWS)],
            "event_timestamp": pa.array([D + timedelta(days=2)] * TRAIN_ROWS, pa.timestamp("us")),
        }
    )
    with plinth.start_run() as run:
        ts = get_training_set(entities, "svc", save_as="svc-train-2", full_names=True, ctx=ctx)
        frame = ts.to_pandas()
        y = (frame["stats__x"] > 0).astype(int)
        model = LogisticRegression().fit(frame[["stats__x", "stats__n"]], y)
        run.log_model(model, name="m2", input_example=frame[["stats__x", "stats__n"]].head())
    _deploy(ctx, "web2", "m2@1", "svc")
    scene.serve(_values(5, SERVED_ROWS, shift=1.0), name="web2")
    report = skew("svc", deployment="web2", ctx=ctx)
    assert report.training_set == "svc-train-2@1"
    assert report.skewed_features == ["x"], [c.to_dict() for c in report.drift.columns]


def test_a_model_not_trained_on_the_service_is_a_precise_error(scene: Scene) -> None:
    from sklearn.linear_model import LogisticRegression

    ctx = scene.ctx
    values = _values(6, 200)
    plain = pa.table({"x": values["x"], "n": values["n"], "label": values["n"] > 30})
    plinth.datasets.save(plain, "plain", ctx=ctx)
    with plinth.start_run() as run:
        data = plinth.datasets.load("plain", ctx=ctx)
        model = LogisticRegression().fit(data[["x", "n"]], data["label"])
        run.log_model(model, name="plain-model", input_example=data[["x", "n"]].head())
    _deploy(ctx, "plain-web", "plain-model@1", "svc")
    with pytest.raises(NotFoundError) as info:
        skew("svc", deployment="plain-web", ctx=ctx)
    message = info.value.one_line()
    assert "plain-model@1 (served by plain-web) was not trained on a training set of " in message
    assert "feature service 'svc'" in message
    assert "get_training_set(entity_df, 'svc', save_as='NAME')" in message
    assert info.value.field == "service"
    with pytest.raises(NotFoundError, match="no feature service 'nope'"):
        skew("nope", deployment="web", ctx=ctx)
    with pytest.raises(NotFoundError):
        skew("svc", deployment="no-such-deployment", ctx=ctx)
    with pytest.raises(UsageError, match="has no logged predictions") as empty:
        skew("svc", deployment="web", ctx=ctx)
    assert empty.value.field == "window"


def test_cli_prints_the_table_and_exits_by_the_verdict(scene: Scene, cli: Any) -> None:
    scene.serve(_values(7, SERVED_ROWS, shift=1.0))
    shown = cli("features", "skew", "svc", "--deployment", "web")
    assert shown.code == 0, shown.err
    assert "SKEW" in shown.out
    assert "vs svc-train@1 (built from svc@1): feature skew" in " ".join(shown.out.split())
    failed = cli("features", "skew", "svc", "--deployment", "web", "--fail-on-skew")
    assert failed.code == 1
    assert "feature skew: x served unlike svc-train@1" in failed.err
    as_json = cli("features", "skew", "svc", "--deployment", "web", "--json", "--fail-on-skew")
    assert as_json.code == 1
    doc = json.loads(as_json.out)
    assert (doc["skewed"], doc["skewed_features"], doc["training_set"]) == (
        True,
        ["x"],
        "svc-train@1",
    )
    html = scene.folder / "skew.html"
    only_n = cli(
        "features", "skew", "svc", "--deployment", "web", "--columns", "n", "--fail-on-skew",
        "--html", str(html),
    )  # fmt: skip
    assert only_n.code == 0, only_n.err
    assert "<svg" in html.read_text(encoding="utf-8")
    assert cli("features", "skew", "svc", "--deployment", "nowhere").code == 2
    bad_window = cli("features", "skew", "svc", "--deployment", "web", "--window", "soon")
    assert bad_window.code == 2
    assert "window 'soon' is neither a duration nor a number of rows" in bad_window.err
    unknown = cli("features", "skew", "svc", "--deployment", "web", "--columns", "zz")
    assert unknown.code == 2
    assert "'zz' is not a feature of service 'svc'" in unknown.err


def test_cli_lineage_missing_exits_2(scene: Scene, cli: Any) -> None:
    _deploy(scene.ctx, "bare", "m@1", None)
    # m@1 was trained on svc's training set: asking for another service is refused
    scene.ctx.ledger.features.save_definition(
        scene.ctx.project.id, "feature_service", "other", "0" * 64, {"features": []}
    )
    result = cli("features", "skew", "other", "--deployment", "bare")
    assert result.code == 2
    assert "its run used training sets of svc" in result.err


def test_the_monitor_check_alerts_on_skew_and_records_the_report(scene: Scene) -> None:
    spec = scene.monitor(
        "deployment: web\nwindow: {rows: 800}\nchecks: {feature_skew: {}}\n" + LOG_ROUTE
    )
    quiet = run_monitor(spec, ctx=scene.ctx)
    assert [c["status"] for c in quiet.checks] == ["skipped"]  # nothing logged yet
    scene.serve(_values(8, SERVED_ROWS))
    clean = run_monitor(spec, ctx=scene.ctx)
    assert clean.status == "ok", clean.checks
    scene.serve(_values(9, SERVED_ROWS, shift=1.0))
    outcome = run_monitor(spec, ctx=scene.ctx)
    assert outcome.status == "alert"
    (check,) = outcome.checks
    assert check["check"] == "feature_skew"
    assert check["drifted_columns"] == ["x"]
    assert check["training_set"] == "svc-train@1"
    assert "1 of 3 features of svc skewed against svc-train@1" in check["summary"]
    html = scene.ctx.blobs.read_bytes(check["report_digest"]).decode()
    assert "<svg" in html
    stored = scene.ctx.ledger.monitoring.reports(scene.ctx.project.id, monitor="web", limit=1)
    assert stored[0].results["checks"][0]["drifted_columns"] == ["x"]
    alerts = (scene.folder / "alerts.log").read_text(encoding="utf-8")
    assert "web: feature_skew failed" in alerts


def test_the_monitor_check_without_a_service_is_an_error_check(scene: Scene) -> None:
    _deploy(scene.ctx, "bare", "m@1", None)
    scene.serve(_values(10, 100), name="bare")
    spec = scene.monitor("deployment: bare\nchecks: {feature_skew: {}, drift: {}}\n")
    outcome = run_monitor(spec, ctx=scene.ctx)
    skew_check = next(c for c in outcome.checks if c["check"] == "feature_skew")
    assert skew_check["status"] == "error"
    assert "deployment 'bare' names no feature service" in skew_check["summary"]
    assert next(c for c in outcome.checks if c["check"] == "drift")["status"] != "error"
    named = scene.monitor("deployment: bare\nchecks: {feature_skew: {service: svc}}\n")
    assert run_monitor(named, ctx=scene.ctx).checks[0]["status"] == "ok"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("dataset: profiles\nchecks: {feature_skew: {}}\n", "needs a deployment"),
        (
            "deployment: web\nchecks: {feature_skew: {servce: svc}}\n",
            "did you mean 'checks.feature_skew.service'",
        ),
        ("deployment: web\nchecks: {feature_skew: {share: 2}}\n", "in [0, 1] (0: any feature)"),
        ("deployment: web\nchecks: {feature_skew: {service: 3}}\n", "must name a feature service"),
        ("deployment: web\nchecks: {feature_skew: {service: svc@champion}}\n", "NAME or NAME@N"),
        ("deployment: web\nchecks: {feature_skew: {thresholds: {ks: x}}}\n", "thresholds.ks"),
    ],
)
def test_the_monitor_spec_parses_feature_skew_strictly(text: str, message: str) -> None:
    with pytest.raises(UsageError) as info:
        MonitorSpec.from_yaml(text)
    assert message in info.value.one_line()


def test_the_monitor_spec_keeps_feature_skew_options() -> None:
    spec = MonitorSpec.from_yaml(
        "deployment: web\nchecks: {feature_skew: {service: svc@2, share: 0, columns: [x]}}\n"
    )
    assert spec.checks == {"feature_skew": {"service": "svc@2", "share": 0, "columns": ["x"]}}


def test_skew_of_features_served_through_the_online_store(scene: Scene) -> None:
    """The real path: materialize, serve with features: {service: svc}, requests sending
    only user keys; then values pushed online unlike the training set's are skew."""
    import warnings

    with warnings.catch_warnings():
        # starlette's TestClient warns once, on import, that it prefers httpx2 over httpx.
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    from plinth.features.materialize import materialize
    from plinth.features.push import push
    from plinth.serving.app import create_app
    from plinth.serving.spec import DeploymentSpec

    ctx = scene.ctx
    materialize(ctx=ctx)
    spec = DeploymentSpec.from_yaml("name: live\nmodel: m@1\nfeatures: {service: svc}\n")

    def serve(users: list[str]) -> None:
        with TestClient(create_app(spec, ctx=ctx)) as client:
            for start in range(0, len(users), 100):
                records = [{"user": u} for u in users[start : start + 100]]
                answer = client.post("/v1/predict", json={"records": records})
                assert answer.status_code == 200, answer.text

    serve([f"u{i}" for i in range(0, TRAIN_ROWS, 2)])  # half the users, as trained
    clean = skew("svc", deployment="live", ctx=ctx)
    assert {c.column for c in clean.drift.columns} == {"x", "n", "c"}
    assert clean.rows == TRAIN_ROWS // 2
    assert not clean.skewed, [c.to_dict() for c in clean.drift.columns]

    trained = _values(TRAIN_SEED, TRAIN_ROWS)  # the scene's values: only x moves
    shifted = _values(11, TRAIN_ROWS, shift=1.0)
    push(
        "stats",
        pa.table(
            {
                "user": [f"u{i}" for i in range(TRAIN_ROWS)],
                "ts": pa.array([D + timedelta(days=3)] * TRAIN_ROWS, pa.timestamp("us")),
                "x": shifted["x"],
                "n": trained["n"],
                "c": trained["c"],
            }
        ),
        ctx=ctx,
    )
    serve([f"u{i}" for i in range(1, TRAIN_ROWS, 2)])
    skewed = skew("svc", deployment="live", window=f"{TRAIN_ROWS // 2} rows", ctx=ctx)
    assert skewed.rows == TRAIN_ROWS // 2
    assert skewed.skewed_features == ["x"]
