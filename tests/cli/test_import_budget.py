"""What each everyday read-only command imports: its import budget (not its time).

Each command runs in a fresh interpreter on a small embedded project; the test lists the
top-level packages it loaded and fails when one of its forbidden packages is among them.
An eager heavy import (SQLAlchemy, pandas, Rich's table layout, ...) on one of these paths
adds 0.1-0.5 s to every call: fix the import (load it where it is needed), not this table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from plinth.context import Context
from plinth.entities import MetricPoint, RecordRef
from plinth.ids import new_id, now_ms

#: Never on these paths: science, web and cloud stacks, migrations.
HEAVY = frozenset(
    {
        "alembic",
        "boto3",
        "botocore",
        "duckdb",
        "httpx",
        "matplotlib",
        "numpy",
        "pandas",
        "polars",
        "prometheus_client",
        "pyarrow",
        "scipy",
        "sklearn",
        "starlette",
        "uvicorn",
    }
)
#: The reads of an embedded ledger run on sqlite3 (plinth.ledger.sqlite_reads); listings
#: are plain text.
NO_ORM = frozenset({"sqlalchemy"})
NO_RICH = frozenset({"rich"})

#: command (with {run}, {request} filled in) -> forbidden top-level packages.
BUDGET: dict[str, frozenset[str]] = {
    "runs list": HEAVY | NO_ORM | NO_RICH,
    "runs show {run}": HEAVY | NO_ORM | NO_RICH,
    "models show delays": HEAVY | NO_ORM | NO_RICH,
    "models show delays@champion": HEAVY | NO_ORM | NO_RICH,
    "data log flights": HEAVY | NO_ORM | NO_RICH,
    "monitor reports": HEAVY | NO_ORM | NO_RICH,
    # A logged prediction is a row of a Parquet batch: reading it takes pyarrow (and the
    # numpy it loads), never pandas; the walk from it reads through sqlite3.
    "lineage {request}": HEAVY - {"pyarrow", "numpy"} | NO_ORM | NO_RICH,
    # A pipeline run (or a decision taken in one) is ledger records only.
    "lineage {pipeline_run}": HEAVY | NO_ORM | NO_RICH,
    "lineage {decision}": HEAVY | NO_ORM | NO_RICH,
}

#: What each command prints on this project (so a budget is checked on a real answer).
EXPECTED = {
    "runs list": "r2",
    "runs show {run}": "lr",
    "models show delays": "v2",
    "models show delays@champion": "delays@1",
    "data log flights": "flights@1",
    "monitor reports": "web",
    "lineage {request}": "delays@1",
    "lineage {pipeline_run}": "produced model delays@2",
    "lineage {decision}": "gate delays@2 passed: auc 0.9",
}

PROBE = """
import json, sys
from plinth.cli.main import main
code = main(sys.argv[2:])
with open(sys.argv[1], "w") as out:
    json.dump({"code": code, "modules": sorted({m.partition(".")[0] for m in sys.modules})}, out)
"""


@dataclass
class Scene:
    folder: Path
    run: str
    request: str
    pipeline_run: str
    decision: str


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Scene:
    """Three runs, model ``delays`` (v1 champion, v2), dataset ``flights@1``, a monitor
    report, one logged prediction of ``delays@1`` and a pipeline run that used the dataset,
    produced ``delays@2`` and passed a gate."""
    folder = tmp_path_factory.mktemp("budget")
    (folder / "plinth.yaml").write_text("project: budget\n", encoding="utf-8")
    with Context.open(folder) as ctx:
        ledger, project = ctx.ledger, ctx.project
        experiment = ledger.projects.ensure_experiment(project.id, "e")
        runs = []
        for i in range(3):
            run = ledger.runs.create_run(experiment.id, name=f"r{i}", params={"lr": 0.1 * i})
            ledger.runs.finish(
                run.id, "finished", points=[MetricPoint("auc", 0.5 + i / 10, 0, now_ms(), 0)]
            )
            runs.append(run)
        model = ledger.models.ensure(project.id, "delays")
        for n in (1, 2):
            ledger.models.register(
                model, flavor="sklearn", manifest_digest=f"{n:064x}", run_id=runs[n].id
            )
        ledger.models.set_alias(model, "champion", 1)
        dataset = ledger.datasets.ensure(project.id, "flights")
        ledger.datasets.add_version(
            dataset, kind="file", manifest_digest="a" * 64, size=1, file_count=1
        )
        ledger.monitoring.record_report(
            project.id, kind="drift", monitor="web", status="ok", rows=5, results={}
        )
        request = _log_prediction(ctx)
        pipeline_run, decision = _pipeline_run(ctx, runs[2].id)
    return Scene(folder, runs[1].id, request, pipeline_run, decision)


def _pipeline_run(ctx: Context, run_id: str) -> tuple[str, str]:
    """A finished pipeline run (fired by a trigger) and the id of its gate decision."""
    store, project = ctx.ledger.pipelines, ctx.project
    dataset = ctx.ledger.datasets.resolve(ctx.ledger.datasets.get(project.id, "flights"), 1)
    model = ctx.ledger.models.resolve(ctx.ledger.models.get(project.id, "delays"), 2)
    firing = store.claim_firing(project.id, "drift", "report-1", reason="drift alert")
    assert firing is not None
    run = store.start_run(
        project.id,
        "retrain",
        trigger="drift",
        reason="drift alert",
        params={"months": 3},
        code_digest="c" * 64,
        executor="local",
    )
    store.attach_firing(firing.id, run.id)
    step = store.record_step(run, "train", status="running")
    store.end_step(
        step,
        status="succeeded",
        attempts=1,
        run_id=run_id,
        links=[
            (RecordRef("dataset_version", dataset.id), "used"),
            (RecordRef("model_version", model.id), "produced"),
            (RecordRef("run", run_id), "ran"),
        ],
    )
    decision = store.record_decision(
        project.id,
        kind="gate",
        subject="delays@2",
        outcome="passed",
        evidence={"reasons": ["auc 0.9 >= 0.8"]},
        pipeline_run_id=run.id,
    )
    store.finish_run(run.id, "succeeded")
    return run.id, decision.id


def _log_prediction(ctx: Context) -> str:
    pytest.importorskip("pyarrow")
    from plinth.serving.predlog import PredictionLog

    digest = ctx.blobs.put_bytes(b"name: web\n").digest
    deployment = ctx.ledger.deployments.save(ctx.project.id, "web", digest, {"model": "delays@1"})
    log = PredictionLog(ctx, deployment)
    request = new_id()
    log.append(request, now_ms(), "delays@1", {"x": [2.5]}, [1])
    log.close()
    return request


def _loaded(scene: Scene, args: list[str], tmp_path: Path) -> tuple[set[str], str]:
    report = tmp_path / "modules.json"
    # The project's plinth.yaml only: no PLINTH_* setting (a test server, say) from outside.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLINTH_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, str(report), *args],
        cwd=scene.folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    found = json.loads(report.read_text(encoding="utf-8"))
    assert found["code"] == 0, done.stderr
    return set(found["modules"]), done.stdout


@pytest.mark.parametrize("command", sorted(BUDGET))
def test_read_only_commands_stay_within_their_import_budget(
    scene: Scene, command: str, tmp_path: Path
) -> None:
    args = command.format(
        run=scene.run,
        request=scene.request,
        pipeline_run=scene.pipeline_run,
        decision=scene.decision,
    ).split()
    modules, out = _loaded(scene, args, tmp_path)
    assert EXPECTED[command] in out
    assert {"plinth", "click"} <= modules  # the probe saw the command's imports
    over = sorted(BUDGET[command] & modules)
    assert not over, f"'plinth {command}' imports {over}: import them where they are needed"


def test_the_search_language_still_answers_through_the_full_ledger(
    scene: Scene, tmp_path: Path
) -> None:
    modules, out = _loaded(scene, ["runs", "list", "--where", "metrics.auc > 0.65"], tmp_path)
    assert "r2" in out
    assert "r0" not in out
    assert "sqlalchemy" in modules  # the search language compiles to SQLAlchemy
