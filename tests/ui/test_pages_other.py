"""The record pages of the web UI (datasets, models, deployments, monitors, alerts, features,
pipelines, lineage) on a live server whose project holds real records.

The records are made with the Python API on a context opened over the project's own
ledger and blob store (the server's storage), then read back through HTTP as a reader, a
writer and an admin of the project.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from html import unescape
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette")
pytest.importorskip("sklearn")
pytest.importorskip("skops")
httpx = pytest.importorskip("httpx")

from plinth.context import Context  # noqa: E402
from plinth.testing.server import ServerHandle, start_server  # noqa: E402

PROJECT = "flights"
ROLES = ("read", "write", "admin")
PG_URL = "postgresql+psycopg://root@127.0.0.1:5432/test"
SUITE = {"suite": "basic", "checks": [{"check": "unique", "column": "delay"}]}
EVIL = "<script>alert(1)</script>"


@dataclass
class Scene:
    """A running server, tokens of each role, and the ids of the records made."""

    server: ServerHandle
    tokens: dict[str, str]
    ids: dict[str, Any]

    def get(self, path: str, role: str = "read", **kw: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        return httpx.get(f"{self.server.url}{path}", headers=headers, timeout=30, **kw)

    def post(self, path: str, role: str, data: dict[str, str]) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        return httpx.post(f"{self.server.url}{path}", headers=headers, data=data, timeout=30)


def _records(ctx: Context) -> dict[str, Any]:
    """Datasets, a validated version, a run that used it and logged a model, aliases, a
    deployment with a batch of logged predictions, monitor reports and an alert, feature
    definitions and a pipeline run with two steps."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    from sklearn.linear_model import LogisticRegression

    import plinth
    from plinth.validation import Suite

    pd = pytest.importorskip("pandas")
    ledger, pid = ctx.ledger, ctx.project.id
    plinth.datasets.save(pa.table({"delay": [1.0, 2.0, 3.0, 4.0]}), "flights", ctx=ctx)
    table = pa.table({"delay": [1.0, 2.0, 3.0, 4.0, 5.0], "carrier": ["a", "b", "a", "b", "a"]})
    v2 = plinth.datasets.save(table, "flights", message=EVIL, ctx=ctx).version
    plinth.datasets.validate("flights@2", Suite.from_dict(SUITE), record=True, ctx=ctx)
    frame = pd.DataFrame({"delay": [0.0, 1.0, 2.0, 3.0]})
    with plinth.start_run(experiment="delays", name=EVIL, ctx=ctx) as run:
        plinth.datasets.load("flights", version=2, ctx=ctx)
        mv = run.log_model(
            LogisticRegression().fit(frame, [0, 0, 1, 1]), "delays", input_example=frame
        )
    plinth.models.set_alias("delays", "champion", mv.version, ctx=ctx)
    deployment = ledger.deployments.save(pid, "delays-api", "a" * 64, {"model": "delays@champion"})
    buffer = io.BytesIO()
    request_id = "0190f7a2-5c1e-7c3a-9d2b-8e4f5a6b7c8d"
    logged = pa.table(
        {
            "request_id": [request_id],
            "ts": pa.array([1_700_000_000_000], pa.timestamp("ms")),
            "model_version": [mv.ref],
            "delay": [2.5],
            "prediction": [1],
        }
    )
    pq.write_table(logged, buffer)
    blob = ctx.blobs.put_bytes(buffer.getvalue())
    batch = ledger.deployments.record_batch(
        deployment,
        start_ms=1_700_000_000_000,
        end_ms=1_700_000_000_000,
        rows=1,
        digest=blob.digest,
        model_versions=[mv.ref],
        first_request_id=request_id,
        last_request_id=request_id,
    )
    drift = {
        "check": "drift",
        "status": "alert",
        "summary": "1 of 1 columns drifted",
        "drifted_columns": ["delay"],
        "columns": [
            {
                "column": "delay",
                "kind": "numeric",
                "method": "ks",
                "statistic": 0.9,
                "threshold": 0.1,
                "p_value": 0.001,
                "score": 0.9,
                "drifted": True,
                "null_share": {"reference": 0.0, "current": 0.0},
            }
        ],
    }
    server = {"check": "server", "status": "ok", "summary": "ok", "p95_ms": 12.5}
    report = ledger.monitoring.record_report(
        pid,
        kind="monitor",
        monitor="delays-watch",
        status="alert",
        rows=1,
        results={"checks": [drift, server]},
        deployment_id=deployment.id,
        window_start_ms=1_700_000_000_000,
        window_end_ms=1_700_003_600_000,
        drifted=True,
        drift_share=1.0,
    )
    ledger.monitoring.record_alert(
        pid,
        monitor="delays-watch",
        fingerprint="f" * 16,
        route="log",
        status="sent",
        attempts=1,
        message=EVIL,
        report_id=report.id,
    )
    # A pipeline's decision alerts too; it has no monitor page to link to.
    ledger.monitoring.record_alert(
        pid,
        monitor="pipeline:retrain",
        fingerprint="e" * 16,
        route="log",
        status="sent",
        attempts=1,
        message="retrain: gate failed",
    )
    ledger.features.save_definition(pid, "entity", "plane", "b" * 64, {"join_keys": ["tail"]})
    view = ledger.features.save_definition(
        pid,
        "feature_view",
        "plane_stats",
        "c" * 64,
        {"entities": ["plane"], "features": {"mean_delay": "float64"}, "ttl": None},
    )
    ledger.features.record_materialization(view, start_ms=None, end_ms=1, rows=3, store="sqlite")
    prun = ledger.pipelines.start_run(
        pid,
        "train",
        trigger="manual",
        reason="test",
        params={},
        code_digest="d" * 64,
        executor="local",
    )
    step = ledger.pipelines.record_step(prun, "load", status="running")
    ledger.pipelines.finish_step(step.id, status="succeeded", attempts=1, run_id=run.id)
    ledger.pipelines.record_step(prun, "train", status="cached", cache_hit=True)
    ledger.pipelines.finish_run(prun.id, "succeeded")
    return {
        "run": run.id,
        "dataset_version": v2.id,
        "model_version": mv.id,
        "batch": batch.id,
        "request": request_id,
        "deployment": deployment.id,
        "report": report.id,
        "pipeline_run": prun.id,
    }


def _drop_schemas(prefix: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(PG_URL)
    try:
        with engine.begin() as conn:
            for name in ("server", PROJECT, "other"):
                conn.execute(sa.text(f'DROP SCHEMA IF EXISTS "{prefix}{name}" CASCADE'))
    finally:
        engine.dispose()


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def scene(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scene]:
    """A server on SQLite files, or on PostgreSQL (a schema per project)."""
    root: Path = tmp_path_factory.mktemp("server")
    settings: dict[str, Any] = {}
    if request.param == "postgresql":
        settings = {"metadata": PG_URL, "schema_prefix": f"t{uuid.uuid4().hex[:12]}_"}
    server = start_server(root / "srv", **settings)
    try:
        server.create_project(PROJECT)
        config = server.config
        with Context.open(
            root,
            project=PROJECT,
            metadata=config.project_metadata(PROJECT),
            artifacts=config.project_artifacts(PROJECT),
            system_metrics=False,
        ) as ctx:
            ids = _records(ctx)
        tokens = {role: server.token(f"u-{role}", PROJECT, role) for role in ROLES}
        yield Scene(server, tokens, ids)
    finally:
        server.stop()
        if "schema_prefix" in settings:
            _drop_schemas(settings["schema_prefix"])


def _links(html: str) -> list[str]:
    return [unescape(h) for h in re.findall(r'href="([^"]+)"', html)]


PAGES = [
    "datasets",
    "datasets/flights",
    "datasets/flights/2",
    "datasets/flights/diff?a=1&b=2",
    "models",
    "models/delays",
    "models/delays?version=1",
    "deployments",
    "deployments/delays-api",
    "monitors",
    "monitors/delays-watch",
    "alerts",
    "features",
    "pipelines",
    "lineage",
]


@pytest.mark.parametrize("path", PAGES)
def test_each_page_renders_for_a_reader(scene: Scene, path: str) -> None:
    response = scene.get(f"/projects/{PROJECT}/{path}")
    assert response.status_code == 200, response.text[:500]
    assert response.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    # Values any writer can set are escaped text, never markup.
    assert EVIL not in response.text


def test_every_link_of_every_page_leads_to_a_page(scene: Scene) -> None:
    """No dead links: each in-app link of each page answers 200 (a pipeline's alert is not
    linked to a monitor page it does not have)."""
    seen: set[str] = set()
    for path in PAGES:
        for link in _links(scene.get(f"/projects/{PROJECT}/{path}").text):
            if not link.startswith("/projects/") or "/artifacts/" in link or link in seen:
                continue
            seen.add(link)
            answer = scene.get(link)
            assert answer.status_code == 200, f"{link} (on {path}): {answer.status_code}"
    assert any("/monitors/delays-watch" in link for link in seen)
    assert not any("pipeline" in link and "/monitors/" in link for link in seen)


def test_pages_show_the_records(scene: Scene) -> None:
    version = scene.get(f"/projects/{PROJECT}/datasets/flights/2").text
    assert "basic@1" in version  # the validation report
    assert "passed" in version
    assert "carrier" in version  # schema and profile
    diff = scene.get(f"/projects/{PROJECT}/datasets/flights/diff?a=1&b=2").text
    assert "added" in diff
    assert "carrier" in diff
    deployment = scene.get(f"/projects/{PROJECT}/deployments/delays-api").text
    assert "12.5 ms" in deployment  # latency, drifted column
    assert "delay" in deployment
    monitor = scene.get(f"/projects/{PROJECT}/monitors/delays-watch").text
    assert "DRIFT" in monitor
    alerts = scene.get(f"/projects/{PROJECT}/alerts").text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in alerts
    run_page = scene.get(f"/projects/{PROJECT}/pipelines/runs/{scene.ids['pipeline_run']}")
    assert run_page.status_code == 200
    assert run_page.text.count("<rect") == 2  # one timeline bar per step
    assert "cached" in run_page.text
    features = scene.get(f"/projects/{PROJECT}/features").text
    assert "plane_stats@1" in features
    assert "mean_delay" in features


def test_the_alias_form_is_for_writers_only(scene: Scene) -> None:
    page = f"/projects/{PROJECT}/models/delays"
    assert 'id="set-alias"' not in scene.get(page, "read").text
    writer = scene.get(page, "write").text
    assert 'id="set-alias"' in writer
    assert '<option value="champion">' not in writer  # protected: admins only
    assert '<option value="champion">' in scene.get(page, "admin").text


def test_a_reader_cannot_move_an_alias(scene: Scene) -> None:
    path = f"/projects/{PROJECT}/models/delays/aliases"
    response = scene.post(path, "read", {"alias": "staging", "version": "1"})
    assert response.status_code == 403
    history = scene.get(f"/projects/{PROJECT}/models/delays", "admin").text
    assert "staging" not in history


def test_protected_aliases_move_by_admins_only(scene: Scene) -> None:
    path = f"/projects/{PROJECT}/models/delays/aliases"
    assert scene.post(path, "write", {"alias": "champion", "version": "1"}).status_code == 403
    moved = scene.post(path, "write", {"alias": "staging", "version": "1", "reason": "try"})
    assert moved.status_code == 303
    page = scene.get(f"/projects/{PROJECT}/models/delays").text
    assert "staging" in page  # the alias and its audit row
    assert "try" in page
    assert scene.post(path, "admin", {"alias": "champion", "version": "1"}).status_code == 303


def _follow(scene: Scene, html: str, kind: str) -> str:
    """The lineage page of the first ``kind`` record the page links to."""
    prefix = f"/projects/{PROJECT}/lineage/{kind}/"
    found = [h for h in _links(html) if h.startswith(prefix)]
    assert found, f"no link to a {kind} lineage page"
    response = scene.get(found[0])
    assert response.status_code == 200
    return response.text


def test_lineage_walks_from_a_request_to_its_data(scene: Scene) -> None:
    ids = scene.ids
    request = scene.get(f"/projects/{PROJECT}/lineage/request/{ids['request']}").text
    assert "2.5" in request  # the logged input
    batch = _follow(scene, request, "prediction_batch")
    deployment = _follow(scene, batch, "deployment")  # and back down to the batch
    assert f"/projects/{PROJECT}/lineage/prediction_batch/{ids['batch']}" in _links(deployment)
    model = _follow(scene, batch, "model_version")
    run = _follow(scene, model, "run")
    data = _follow(scene, run, "dataset_version")
    assert "dataset flights@2" in data
    # ... and back down: the dataset version's downstream holds the run and the model.
    down = _links(data)
    assert f"/projects/{PROJECT}/lineage/run/{ids['run']}" in down
    assert f"/projects/{PROJECT}/lineage/model_version/{ids['model_version']}" in down
    # Each record links to its own page too.
    assert f"/projects/{PROJECT}/datasets/flights/2" in down


def test_lineage_of_an_unknown_record_is_404(scene: Scene) -> None:
    assert scene.get(f"/projects/{PROJECT}/lineage/run/nope").status_code == 404
    assert scene.get(f"/projects/{PROJECT}/lineage/secret/x").status_code == 404


def test_pages_refuse_other_projects_and_anonymous_callers(scene: Scene) -> None:
    scene.server.create_project("other")
    assert scene.get("/projects/other/datasets").status_code == 403
    anonymous = httpx.get(f"{scene.server.url}/projects/{PROJECT}/models", timeout=30)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"].startswith("/login")


def test_the_lineage_form_opens_a_records_page(scene: Scene) -> None:
    run_id = scene.ids["run"]
    found = scene.get(f"/projects/{PROJECT}/lineage?kind=run&id={run_id}")
    assert found.status_code == 303
    assert found.headers["location"] == f"/projects/{PROJECT}/lineage/run/{run_id}"


@contextmanager
def _browser(scene: Scene, user: str) -> Iterator[httpx.Client]:
    """A client logged in through the login form (a session cookie, a CSRF token)."""
    password = "correct horse battery staple"
    scene.server.add_user(user, password=password)
    with httpx.Client(base_url=scene.server.url, timeout=30) as client:
        yield _logged_in(client, user, password)


def _logged_in(client: httpx.Client, user: str, password: str) -> httpx.Client:
    form = client.get("/login").text
    csrf = unescape(re.search(r'name="csrf" value="([^"]+)"', form).group(1))  # type: ignore[union-attr]
    done = client.post(
        "/login", data={"user": user, "password": password, "csrf": csrf, "next": "/"}
    )
    assert done.status_code == 303
    return client


def test_a_browser_moves_an_alias_with_the_forms_csrf_token(scene: Scene) -> None:
    path = f"/projects/{PROJECT}/models/delays"
    with _browser(scene, "u-write") as browser:
        page = browser.get(path).text
        csrf = unescape(re.search(r'name="csrf" value="([^"]+)"', page).group(1))  # type: ignore[union-attr]
        forged = browser.post(f"{path}/aliases", data={"alias": "canary", "version": "1"})
        assert forged.status_code == 403  # no CSRF token: a cross-site form post
        moved = browser.post(
            f"{path}/aliases", data={"alias": "canary", "version": "1", "csrf": csrf}
        )
        assert moved.status_code == 303
        assert "canary" in browser.get(path).text
