"""One seeded team server for the browser tests and ``docs/screenshots.py``.

:func:`build_scene` starts a live server (in a thread) with project ``acme`` — runs with
params and metrics over steps (one named ``<script>alert(1)</script>``), a dataset with two
versions and a recorded validation result, a model with two versions and a ``champion``
alias, a deployment that answered requests (prediction batches) and a monitor report, a
feature view and a pipeline run — and project ``other``. Users: ``admin`` (server admin and
project admin), ``ada`` (write), ``rita`` (read) and ``otto`` (write in ``other`` only), all
with password :data:`PASSWORD`.

Records are written through the Python API by an embedded Context whose ledger and
artifacts are the server project's own SQLite file and folder, so seeding costs what the
API costs locally (a few seconds) and the pages read exactly what a client would have sent.
"""

from __future__ import annotations

import contextlib
import shutil
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import plinth
from plinth.context import Context
from plinth.testing.server import ServerHandle, start_server

__all__ = [
    "CHROMIUM",
    "EVIL",
    "PASSWORD",
    "PROJECT",
    "Scene",
    "build_scene",
    "chromium",
    "log_in",
    "missing_browser",
]

#: Debian's Chromium; Playwright drives it (``playwright install`` is never run).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu"]

PROJECT = "acme"
OTHER = "other"
PASSWORD = "correct horse battery staple"
#: The name of one run: it must show as text, never run.
EVIL = "<script>alert(1)</script>"
#: Users and their role in PROJECT (otto: none; a writer in OTHER).
ROLES = {"admin": "admin", "ada": "write", "rita": "read"}

_PIPELINE = """
import plinth


@plinth.step
def load(rows: int) -> list:
    return list(range(rows))


@plinth.step
def total(values: list) -> int:
    return sum(values)


@plinth.pipeline
def nightly(rows: int = 5):
    total(load(rows))
"""
_SUITE = {
    "suite": "flights-checks",
    "checks": [
        {"check": "max_null_fraction", "column": "distance", "value": 0},
        {"check": "max_null_fraction", "column": "delay", "value": 0.01},
    ],
}


@dataclass
class Scene:
    """The running server and the ids of what was seeded."""

    server: ServerHandle
    project: str = PROJECT
    #: Every seeded run's id by its name, in creation order.
    runs: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def page(self, tail: str) -> str:
        """The URL of ``/projects/<project>/<tail>``."""
        return f"{self.server.url}/projects/{self.project}/{tail.lstrip('/')}"

    def stop(self) -> None:
        self.server.stop()


def _flights(seed: int, rows: int = 300) -> Any:
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    distance = rng.normal(1000.0 + 100 * seed, 300.0, rows)
    hour = rng.integers(0, 24, rows)
    delay = (distance / 1000.0 + hour / 24.0 + rng.normal(0.0, 0.3, rows) > 1.5).astype("int64")
    updated = np.datetime64("2024-01-01T00:00:00") + (np.arange(rows) * 60).astype("timedelta64[s]")
    return pa.table(
        {
            "flight": [f"f{seed}-{i}" for i in range(rows)],
            "distance": distance,
            "hour": hour,
            "delay": delay,
            "updated_at": pa.array(updated).cast(pa.timestamp("us")),
        }
    )


def _users(server: ServerHandle) -> None:
    for user, role in ROLES.items():
        server.add_user(user, password=PASSWORD)
        server._call("PUT", f"/api/v1/projects/{PROJECT}/members/{user}", {"role": role})
    server.add_user("otto", password=PASSWORD)
    server._call("PUT", f"/api/v1/projects/{OTHER}/members/otto", {"role": "write"})


def _context(server: ServerHandle, work: Path) -> Context:
    folder = server.root / "projects" / PROJECT
    # Not plinth.init: the scene outlives tests that make their own context current.
    return Context.open(
        work,
        project=PROJECT,
        metadata=f"sqlite:///{folder / 'plinth.db'}",
        artifacts=str(folder / "artifacts"),
        user="ada",
        system_metrics=False,
    )


def _runs(scene: Scene, ctx: Context) -> None:
    """Three tuning runs and the evil-named one: loss over 30 steps, auc every 5."""
    grid = [("logreg-a", 0.1), ("logreg-b", 0.01), ("logreg-c", 0.05), (EVIL, 0.2)]
    for i, (name, lr) in enumerate(grid):
        params = {"lr": lr, "model": "logreg", "seed": i}
        with plinth.start_run(experiment="tuning", name=name, params=params, ctx=ctx) as run:
            for step in range(30):
                run.log_metric("loss", 1.0 / (1 + lr * 10 * step) + 0.01 * i, step=step)
                if step % 5 == 4:
                    run.log_metric("auc", 0.5 + (0.2 + lr) * (step + 1) / 30, step=step)
            run.set_tag("team", "delays" if i % 2 == 0 else "ops")
        scene.runs[name] = run.id


def _data_and_model(scene: Scene, ctx: Context) -> None:
    """flights@1, flights@2 (validated), a run that trains on @2 and logs model ``delays``
    (two versions, ``champion`` on the second)."""
    from sklearn.linear_model import LogisticRegression

    plinth.datasets.save(_flights(1), "flights", message="January", ctx=ctx)
    v2 = plinth.datasets.save(_flights(2), "flights", message="February", ctx=ctx).version
    scene.ids["dataset_version"] = v2.id
    from plinth.validation import Suite

    plinth.datasets.validate("flights@2", Suite.from_dict(_SUITE), record=True, ctx=ctx)
    for c in (1.0, 0.1):
        with plinth.start_run(
            experiment="training", name=f"train-C{c}", params={"C": c}, ctx=ctx
        ) as run:
            frame = plinth.datasets.load("flights@2", to="pandas", ctx=ctx)
            features = frame[["distance", "hour"]]
            model = LogisticRegression(C=c).fit(features, frame["delay"])
            run.log_metric("accuracy", float(model.score(features, frame["delay"])))
            run.log_model(model, name="delays", input_example=features.head())
        scene.runs[f"train-C{c}"] = run.id
    plinth.models.set_alias("delays", "champion", 2, ctx=ctx)


def _deployment(scene: Scene, ctx: Context) -> None:
    """Deployment ``delays-api`` serving delays@champion; two batches of requests; a
    monitor report on its window."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # starlette's TestClient prefers httpx2 (on import)
        from starlette.testclient import TestClient

    from plinth.monitoring import MonitorSpec, run_monitor
    from plinth.serving.app import create_app
    from plinth.serving.spec import DeploymentSpec

    spec = DeploymentSpec.from_dict({"name": "delays-api", "model": "delays@champion"})
    rows = _flights(3, rows=120).select(["distance", "hour"]).to_pylist()
    for start in (0, 60):
        with TestClient(create_app(spec, ctx=ctx)) as client:
            for offset in range(start, start + 60, 20):
                answer = client.post("/v1/predict", json={"records": rows[offset : offset + 20]})
                assert answer.status_code == 200, answer.text
                scene.ids["request"] = answer.headers.get("x-request-id", "")
    monitor = MonitorSpec.from_dict(
        {"deployment": "delays-api", "window": {"rows": 120}, "checks": {"drift": {}}},
    )
    run_monitor(monitor, deliver_alerts=False, ctx=ctx)


def _features_and_pipeline(scene: Scene, ctx: Context, work: Path) -> None:
    from plinth.features.definitions import Entity, FeatureView
    from plinth.features.registry import apply

    flight = Entity("flight", join_keys=["flight"])
    view = FeatureView(
        name="flight_stats",
        entities=[flight],
        source="flights",
        timestamp="updated_at",
        ttl="30d",
        features={"distance": "float64", "hour": "int64"},
    )
    apply([view], ctx=ctx)
    (work / "flows.py").write_text(_PIPELINE, encoding="utf-8")
    result = plinth.pipelines.run_pipeline("flows.py:nightly", {"rows": 5}, ctx=ctx)
    assert result.ok, result.status
    scene.ids["pipeline_run"] = result.run.id


def build_scene(root: Path) -> Scene:
    """Start a server under ``root`` and seed it (see the module docstring)."""
    server = start_server(root / "server")
    try:
        server.create_project(PROJECT)
        server.create_project(OTHER)
        _users(server)
        scene = Scene(server)
        work = root / "work"
        work.mkdir()
        ctx = _context(server, work)
        # Runs capture the git state of the working directory: seed outside any repository.
        with contextlib.chdir(work):
            try:
                _runs(scene, ctx)
                _data_and_model(scene, ctx)
                _deployment(scene, ctx)
                _features_and_pipeline(scene, ctx, work)
            finally:
                ctx.close()
    except BaseException:
        server.stop()
        raise
    return scene


def missing_browser() -> str | None:
    """Why the browser tests cannot run here (the package to install), or None."""
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is missing: pip install playwright"
    if not Path(CHROMIUM).is_file() and shutil.which("chromium") is None:
        return f"{CHROMIUM} is missing: apt-get install -y chromium"
    return None


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """Headless Chromium (Debian's), driven by Playwright; yields the Browser."""
    from playwright.sync_api import sync_playwright

    path = CHROMIUM if Path(CHROMIUM).is_file() else shutil.which("chromium")
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=path, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def log_in(page: Any, url: str, user: str, password: str = PASSWORD) -> None:
    """Log ``page`` in through the login form of the server at ``url``."""
    page.goto(f"{url}/login")
    page.fill("#user", user)
    page.fill("#password", password)
    with page.expect_navigation():
        page.click("button[type=submit]")
