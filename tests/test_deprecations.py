"""Renamed parts of the Python API: each old spelling still works for one release and warns.

The new spellings are in docs/api.md; the CHANGELOG lists every rename.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

import plinth
from plinth.context import Context
from plinth.errors import NotFoundError, UsageError

TABLE = pa.table({"x": [1, 2, 3]})


def test_context_keyword_of_tracking_is_now_ctx(project: Context, tmp_path: Path) -> None:
    with Context.open(tmp_path, system_metrics=False) as other:
        with pytest.deprecated_call(match=r"start_run\(context=\.\.\.\) is deprecated.*ctx="):
            run = plinth.start_run(experiment="old", context=other)
        run.log_metric("loss", 0.5)
        run.end()
        with pytest.deprecated_call(match=r"get_run\(context=\.\.\.\)"):
            assert plinth.get_run(run.id, context=other).status == "finished"
        with pytest.deprecated_call(match=r"metric_history\(context=\.\.\.\)"):
            assert plinth.metric_history(run.id, "loss", context=other).values == [0.5]
    with pytest.raises(NotFoundError):  # it went to `other`, not to the default project
        plinth.get_run(run.id)
    with pytest.raises(UsageError, match=r"got both context= and ctx="):
        plinth.get_run(run.id, ctx=project, context=project)


def test_a_positional_ctx_still_works_with_a_warning(project: Context) -> None:
    from plinth.monitoring import deliver, join_labels, record_labels
    from plinth.versioning import plan_reproduction, reproduce_run, save_environment, save_source
    from plinth.versioning.code import SourceCapture

    labels = pa.table({"request_id": ["r1"], "label": [1]})
    warned = pytest.deprecated_call(match=r"with a positional ctx is deprecated.*ctx=")
    with warned, pytest.raises(NotFoundError, match="no deployment 'web'"):
        join_labels(project, "web", labels)
    with warned, pytest.raises(NotFoundError, match="no deployment 'web'"):
        record_labels(project, "web", labels)
    with warned:
        assert deliver(project, project.project.id, [], []) == []
    with warned, pytest.raises(NotFoundError):
        plan_reproduction(project, "0190b2c4-0000-7000-8000-000000000000")
    with warned, pytest.raises(NotFoundError):
        reproduce_run(project, "0190b2c4-0000-7000-8000-000000000000", yes=True)
    with warned:
        env = save_environment(project)
    assert project.ledger.environments.get(env.id) == env
    with plinth.start_run(experiment="e") as run, warned:
        save_source(project, run.id, SourceCapture({}, diff=b"diff --git a b\n"))
    assert [a.path for a in project.ledger.artifacts.list(run._ref)] == ["source/diff.patch"]


def test_run_suite_is_validate_with_the_subject_first(project: Context, tmp_path: Path) -> None:
    from plinth.validation import Suite

    suite = Suite.from_dict({"suite": "s", "checks": [{"check": "unique", "column": "x"}]})
    with pytest.deprecated_call(match=r"run_suite\(suite, data\).*validate\(data, suite"):
        old = plinth.validation.run_suite(suite, TABLE)
    assert old.success
    assert old.record_id is not None
    new = plinth.validation.validate(TABLE, suite, record=True)
    assert new.suite_version == old.suite_version == "s@1"
    assert "run_suite" not in plinth.validation.__all__


def test_datasets_log_load_as_and_checkout_dir(project: Context, tmp_path: Path) -> None:
    plinth.datasets.save(TABLE, "t")
    with pytest.deprecated_call(match=r"plinth\.datasets\.log is deprecated.*datasets\.versions"):
        assert [v.number for v in plinth.datasets.log("t")] == [1]
    with pytest.deprecated_call(match=r"load\(as_=\.\.\.\).*use to="):
        assert plinth.datasets.load("t", as_="arrow").equals(TABLE)
    with pytest.deprecated_call(match=r"checkout\(dir=\.\.\.\).*use path="):
        result = plinth.datasets.checkout("t", dir=tmp_path / "out")
    assert (tmp_path / "out" / "t.parquet").is_file()
    with pytest.deprecated_call(match=r"CheckoutResult\.dir.*CheckoutResult\.path"):
        assert result.dir == result.path == tmp_path / "out"
    assert "log" not in plinth.datasets.__all__


def test_plinth_registry_names_point_to_plinth_models(project: Context) -> None:
    import plinth.registry

    assert plinth.registry.__all__ == []
    with pytest.deprecated_call(match=r"plinth\.registry\.list_models.*plinth\.models\.list"):
        assert plinth.registry.list_models() == []
    with (
        pytest.deprecated_call(match=r"plinth\.registry\.load_model.*plinth\.models\.load"),
        pytest.raises(NotFoundError),
    ):
        plinth.registry.load_model("delays")
    with pytest.raises(AttributeError):
        _ = plinth.registry.nothing_here


def test_log_artifacts_directory_is_now_path(project: Context, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "a.txt").write_text("a")
    warned = pytest.deprecated_call(match=r"log_artifacts\(directory=\.\.\.\).*path=")
    with plinth.start_run() as run, warned:
        [logged] = run.log_artifacts(directory=tmp_path / "out")
    assert logged.path == "a.txt"
