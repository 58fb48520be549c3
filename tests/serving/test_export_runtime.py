"""``plinth deploy export`` (issue 13, point 9): an embedded project is refused unless
``--allow-embedded``; requirements.txt holds what serving needs, pinned as recorded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import plinth
from plinth.context import Context
from plinth.entities import Environment
from plinth.serving._requirements import runtime_requirements

DIGEST = "ab" * 32


@pytest.fixture
def spec_file(project: Context) -> Path:
    pd = pytest.importorskip("pandas")
    from sklearn.linear_model import LinearRegression

    frame = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0]})
    with plinth.start_run(experiment="t") as run:
        run.log_model(LinearRegression().fit(frame, [1.0, 2.0, 3.0, 4.0]), name="price")
    path = Path("deployment.yaml")
    path.write_text("name: price\nmodel: price@1\n", encoding="utf-8")
    return path


def test_deploy_export_of_an_embedded_project_is_refused_exit_2_and_nothing_written(
    spec_file: Path, cli: Callable[..., Any]
) -> None:
    refused = cli("deploy", "export", str(spec_file), "--target", "compose", "-o", "out")
    assert refused.code == 2
    assert "keeps its metadata in SQLite" in refused.err
    assert "a local folder (.plinth/artifacts)" in refused.err
    assert "--allow-embedded" in refused.err  # the hint says how to go on
    assert not Path("out").exists()
    allowed = cli(
        "deploy", "export", str(spec_file), "--target", "compose", "-o", "out", "--allow-embedded"
    )
    assert allowed.code == 0, allowed.err
    assert Path("out/requirements.txt").is_file()


def test_export_requirements_pin_what_serving_needs_not_the_whole_environment(
    project: Context, spec_file: Path, cli: Callable[..., Any]
) -> None:
    result = cli("deploy", "export", str(spec_file), "--target", "compose", "--allow-embedded")
    assert result.code == 0, result.err
    version = plinth.models.get("price@1", ctx=project)
    run = project.ledger.runs.get_run(version.run_id or "")
    recorded = project.ledger.environments.get(run.environment_id or "").packages
    assert {"pytest", "mypy", "ruff"} <= set(recorded)  # the environment has the tools ...
    lines = Path("deploy-price/requirements.txt").read_text(encoding="utf-8").splitlines()
    pins = dict(line.split("==", 1) for line in lines if "==" in line and line[0] != "#")
    assert not {"pytest", "mypy", "ruff", "moto"} & set(pins)  # ... the image does not
    for name in ("scikit-learn", "numpy", "scipy", "joblib", "threadpoolctl", "pyarrow"):
        assert pins[name] == recorded[name], name


def _env(**packages: str) -> Environment:
    return Environment("e1", DIGEST, "3.11.7", "linux-x86_64", packages, {}, 0, "me")


def test_a_released_plinth_is_pinned_with_the_serve_extra() -> None:
    text = runtime_requirements(
        _env(plinth="1.2.0", lightgbm="4.3.0", pytest="8.0.0"), ["lightgbm"]
    )
    assert text.splitlines()[-1] == "plinth[serve]==1.2.0"
    assert "lightgbm==4.3.0" in text.splitlines()
    assert "pytest" not in text


def test_a_development_plinth_is_left_unpinned_and_says_why() -> None:
    last = runtime_requirements(_env(plinth="0.2.0.dev0"), ["sklearn"]).splitlines()[-1]
    assert last.startswith("plinth[serve]  # the run recorded plinth 0.2.0.dev0, a development")


def test_every_requirement_line_is_validated() -> None:
    from plinth.errors import UsageError

    with pytest.raises(UsageError):
        runtime_requirements(_env(numpy="1.0 --index-url http://evil"), ["sklearn"])
