"""Eight processes open a fresh ledger at the same moment: the schema is migrated once.

Each child imports plinth, signals it is ready, waits for the go file, then migrates,
creates the shared project and experiment, and writes its own run, params and metrics.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

import plinth.ledger
from plinth.ledger import Ledger, head_revision
from plinth.ledger.migrate import revisions
from plinth.ledger.tables import schema_log

from .conftest import pg_url, sqlite_url

WORKERS = 8

CHILD = """
import json, os, sys, time
from pathlib import Path
from plinth.entities import MetricPoint
from plinth.ledger import Ledger, create_ledger_engine, ensure_schema

url, ready, go = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
ready.touch()
deadline = time.monotonic() + 60
while not go.exists():
    if time.monotonic() > deadline:
        sys.exit("no go signal")
    time.sleep(0.001)
engine = create_ledger_engine(url)
applied = ensure_schema(engine)
engine.dispose()
with Ledger.open(url, user=f"worker-{os.getpid()}") as ledger:
    project = ledger.projects.ensure_project("shared")
    experiment = ledger.projects.ensure_experiment(project.id, "race")
    run = ledger.runs.create_run(experiment.id, name=str(os.getpid()))
    ledger.runs.log_params(run.id, {"pid": os.getpid()})
    for batch in range(5):
        points = [MetricPoint("loss", 1.0, i, i, batch * 200 + i) for i in range(200)]
        ledger.runs.log_metrics(run.id, points)
    ledger.runs.set_status(run.id, "finished")
print(json.dumps(applied))
"""


def _child_env() -> dict[str, str]:
    # Children import the same plinth as this test, installed or not.
    src = str(Path(plinth.ledger.__file__).resolve().parents[2])
    path = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def _race(url: str, folder: Path) -> list[list[str]]:
    go = folder / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-W", "error", "-c", CHILD, url, str(folder / f"ready-{i}"), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=_child_env(),
        )
        for i in range(WORKERS)
    ]
    try:
        deadline = time.monotonic() + 120
        while sum((folder / f"ready-{i}").exists() for i in range(WORKERS)) < WORKERS:
            assert time.monotonic() < deadline, "workers did not start"
            assert all(proc.poll() is None for proc in procs), "a worker died before the start"
            time.sleep(0.01)
        go.touch()
        outputs = [proc.communicate(timeout=180) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    failures = [err for proc, (_, err) in zip(procs, outputs, strict=True) if proc.returncode]
    assert failures == [], failures[0]
    return [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]


@pytest.mark.timeout(300)
@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_simultaneous_starts_migrate_exactly_once(
    backend: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    if backend == "sqlite":
        url = sqlite_url(tmp_path)
    else:
        url = pg_url(request.getfixturevalue("pg_schema"))
    applied = _race(url, tmp_path)

    assert sorted(applied, key=len) == [[]] * (WORKERS - 1) + [revisions()]
    with Ledger.open(url, user="checker") as ledger:
        assert ledger.migrations_applied == ()
        assert ledger.schema_revision() == head_revision()
        with ledger.engine.connect() as conn:
            logged = conn.execute(sa.select(schema_log.c.revision)).scalars().all()
        assert logged == revisions()
        project = ledger.projects.get_project("shared")
        (experiment,) = ledger.projects.list_experiments(project.id)
        runs = ledger.runs.list_runs(experiment_id=experiment.id)
        assert len(runs) == WORKERS
        assert {run.status for run in runs} == {"finished"}
        assert all(ledger.runs.max_seq(run.id) == 999 for run in runs)
