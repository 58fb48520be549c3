"""What a model server imports to start: only what its model and the request path need.

Not timed: each test runs a fresh interpreter and looks at ``sys.modules``. The server's
start-up was dominated by imports nobody needed (skops crawling every scikit-learn module,
pytest included, to list the estimators it trusts by default); these tests fail if such an
import comes back. skops' own default trust must stay as it was for anyone calling it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from plinth.context import Context

#: Never imported by ``import plinth.serving.app``: the app factory's module is light.
HEAVY = [
    "alembic",
    "duckdb",
    "numpy",
    "pandas",
    "polars",
    "pyarrow",
    "rich",
    "skops",
    "sklearn",
    "sqlalchemy",
    "starlette",
]

#: Never imported by a started server of a scikit-learn model: skops' crawl of every
#: scikit-learn module (its marker: the testing helpers, and pytest with them), and the
#: libraries no part of serving a model uses.
NEVER_AT_START = [
    "alembic",
    "duckdb",
    "jinja2",
    "polars",
    "pytest",
    "sklearn.experimental",
    "sklearn.utils._testing",
]

START = """
import json, sys
from plinth.context import Context
from plinth.serving.app import create_app
from plinth.serving.spec import DeploymentSpec

spec = DeploymentSpec.load("deployment.yaml")
with Context.open() as ctx:
    app = create_app(spec, ctx=ctx)
    server = app.state.server
    server.start()
    answer = server.primary.current.predict_columns({{"distance": [0.5], "hour": [3]}})
    loaded = sorted(m for m in sys.modules if m.partition(".")[0] in {watch})
    server.close()
print(json.dumps({{"answer": [float(a) for a in answer], "loaded": loaded}}))
"""

#: ``plinth serve`` as the CLI runs it: the deployment saved in the main thread, the app's
#: lifespan starting the server on its I/O thread. uvicorn's ``run`` is replaced by one pass
#: through the lifespan: a request, alias polls, then shutdown (the log's last batch).
SERVE = """
import asyncio, json, os, sys
import httpx
import uvicorn
from plinth.cli.main import main

WATCH = {"sqlalchemy", "alembic"}

def loaded():
    return sorted(m for m in sys.modules if m.partition(".")[0] in WATCH)

def run(app, **kwargs):
    async def serve():
        async with app.router.lifespan_context(app):
            server = app.state.server
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
                body = {"records": [{"distance": 0.5, "hour": 3}]}
                answer = (await client.post("/v1/predict", json=body)).json()
            first = loaded()
            await asyncio.sleep(0.3)  # alias polls every 0.02 s meanwhile
        return {
            "answer": answer["predictions"], "at_first_answer": first, "after": loaded(),
            "deployment": server.deployment.ref,
        }
    print(json.dumps(asyncio.run(serve())))

uvicorn.run = run
os.environ["PLINTH_SERVE_ALIAS_POLL_SECONDS"] = "0.02"
sys.argv = ["plinth", "serve", "deployment.yaml"]
try:
    main()
except SystemExit as exc:
    assert not exc.code, exc.code
"""

DEFAULT_TRUST = """
import json
import skops.io
from plinth.registry.flavors._skops import is_default_trusted
from sklearn.utils.discovery import all_estimators

names = sorted(skops.io._trusted_types.SKLEARN_ESTIMATOR_TYPE_NAMES)
expected = sorted(
    f"{c.__module__}.{c.__name__}" for _, c in all_estimators()
    if c.__module__.startswith("sklearn.")
)
probes = {p: is_default_trusted(p) for p in PROBES}
import warnings, numpy, scipy.special
from skops.io import _trusted_types as tt, _utils
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    ufuncs = (
        _utils.get_public_type_names(module=numpy, oftype=numpy.ufunc),
        _utils.get_public_type_names(module=scipy.special, oftype=numpy.ufunc),
    )
same_ufuncs = (
    sorted(tt.NUMPY_UFUNC_TYPE_NAMES) == sorted(ufuncs[0]) and len(ufuncs[0]) > 50
    and sorted(tt.SCIPY_UFUNC_TYPE_NAMES) == sorted(ufuncs[1]) and len(ufuncs[1]) > 50
)
print(json.dumps({
    "same": names == expected, "count": len(names), "probes": probes, "ufuncs": same_ufuncs
}))
"""


def _run(code: str, cwd: Path | None = None) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd, check=False
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_the_app_module_imports_no_heavy_library() -> None:
    code = (
        "import json, sys\nimport plinth.serving.app\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_a_started_server_imports_only_what_its_model_needs(
    served_project: Context, project_dir: Path
) -> None:
    (project_dir / "deployment.yaml").write_text("name: d\nmodel: m@champion\n", "utf-8")
    watch = {name.partition(".")[0] for name in NEVER_AT_START} | {"skops", "sklearn"}
    result = _run(START.format(watch=sorted(watch)), cwd=project_dir)
    loaded = set(result["loaded"])
    assert 0.0 <= result["answer"][0] <= 1.0
    assert "skops.io" in loaded  # the model is served
    assert "sklearn.linear_model" in loaded
    assert sorted(loaded & set(NEVER_AT_START)) == []


def test_plinth_serve_runs_without_the_full_ledger(
    served_project: Context, project_dir: Path
) -> None:
    """On an embedded ledger the deployment version, the alias reads and the prediction
    log's batches go through sqlite3: SQLAlchemy (~0.2 s to import, ~26 MB) is not loaded
    before the first prediction, nor by an alias poll or the log's writes."""
    (project_dir / "deployment.yaml").write_text("name: web\nmodel: m@champion\n", "utf-8")
    result = _run(SERVE, cwd=project_dir)
    assert 0.0 <= result["answer"][0] <= 1.0
    assert result["at_first_answer"] == []
    assert result["after"] == []
    assert result["deployment"] == "web@1"
    # the sqlite3 writes are the ledger's records: the full ledger reads them back
    ledger = served_project.ledger
    recorded = ledger.deployments.get(served_project.project.id, "web")
    assert (recorded.number, recorded.spec["model"]) == (1, "m@champion")
    [batch] = ledger.deployments.batches(recorded.id)
    assert (batch.rows, batch.model_versions) == (1, ("m@1",))
    again = _run(SERVE, cwd=project_dir)  # the same text: the same version
    assert again["deployment"] == "web@1"
    assert len(ledger.deployments.batches(recorded.id)) == 2


def test_skops_default_trust_is_unchanged_for_direct_users() -> None:
    """skops imported by plinth lists the same estimators and ufuncs when anyone reads them."""
    probes = [
        "sklearn.linear_model._logistic.LogisticRegression",  # a public estimator
        "sklearn.pipeline.Pipeline",
        "sklearn.base.BaseEstimator",  # not an estimator skops lists
        "sklearn.linear_model._base.LinearModel",  # abstract
        "sklearn.utils._testing.MinimalClassifier",  # test helper, in no public module
        "sklearn.tree._tree.Tree",  # an internal type: plinth's allow-list, not skops'
        "os.system",
        "sklearn.nosuchmodule.Thing",
        "sklearn..Thing",
        "sklearn.externals.Thing",
    ]
    first = f"import plinth.registry.flavors._skops as s\ns.skops_io()\nPROBES = {probes!r}\n"
    result = _run(first + DEFAULT_TRUST)
    assert result["same"] is True
    assert result["ufuncs"] is True  # the trusted ufunc lists, computed on first use
    assert int(result["count"]) > 100
    assert result["probes"] == {
        "sklearn.linear_model._logistic.LogisticRegression": True,
        "sklearn.pipeline.Pipeline": True,
        "sklearn.base.BaseEstimator": False,
        "sklearn.linear_model._base.LinearModel": False,
        "sklearn.utils._testing.MinimalClassifier": False,
        "sklearn.tree._tree.Tree": False,
        "os.system": False,
        "sklearn.nosuchmodule.Thing": False,
        "sklearn..Thing": False,
        "sklearn.externals.Thing": False,
    }


LOG1P = """
import json, pathlib, sys, tempfile
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer
from plinth.registry.flavors import _sklearn

folder = pathlib.Path(sys.argv[1])
if sys.argv[2] == "save":
    x = np.abs(np.random.default_rng(0).normal(size=(50, 3)))
    model = make_pipeline(FunctionTransformer(np.log1p), LogisticRegression())
    _sklearn.save(model.fit(x, (x[:, 0] > 0.8).astype(int)), folder)
else:
    loaded = _sklearn.load(folder, None, trusted=False)
    steps = [type(step).__name__ for _, step in loaded.model.steps]
    print(json.dumps({"refused": _sklearn.untrusted_types(folder / _sklearn.FILE), "steps": steps}))
"""


def test_a_model_calling_a_numpy_ufunc_loads_without_trust(tmp_path: Path) -> None:
    """numpy's ufuncs are in skops' default trust: a fresh process (skops imported by
    plinth, its ufunc lists not computed yet) loads such a model as before."""
    subprocess.run([sys.executable, "-c", LOG1P, str(tmp_path), "save"], check=True)
    done = subprocess.run(
        [sys.executable, "-c", LOG1P, str(tmp_path), "load"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"refused": [], "steps": ["FunctionTransformer", "LogisticRegression"]}
