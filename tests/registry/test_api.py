"""``plinth.models``: references, alias moves by compare-and-swap, rollback, the model card."""

from __future__ import annotations

from typing import Any

import pytest

import plinth
from plinth.context import Context
from plinth.entities import ModelVersion, RecordRef
from plinth.errors import ConflictError, NotFoundError, UsageError

# Against a team server, moving the protected alias 'champion' takes a project admin.
pytestmark = pytest.mark.remote_token(role="admin")


def _digest(n: int) -> str:
    return f"{n:064x}"


def register(ctx: Context, name: str = "delays", n: int = 1, **kwargs: Any) -> ModelVersion:
    model = ctx.ledger.models.ensure(ctx.project.id, name)
    values: dict[str, Any] = {"flavor": "sklearn", **kwargs}
    return ctx.ledger.models.register(model, manifest_digest=_digest(n), **values)


def test_references_name_the_latest_a_number_or_an_alias(project: Context) -> None:
    for n in (1, 2, 3):
        register(project, n=n)
    assert plinth.models.get("delays").number == 3
    assert plinth.models.get("delays@2").number == 2
    assert plinth.models.get("delays@v1").number == 1
    plinth.models.set_alias("delays", "champion", 2)
    got = plinth.models.get("delays@champion")
    assert (got.ref, got.aliases) == ("delays@2", ("champion",))
    assert [m.name for m in plinth.models.list_models()] == ["delays"]
    assert [v.number for v in plinth.models.versions("delays")] == [3, 2, 1]
    with pytest.raises(NotFoundError, match="no model named 'arrivals'"):
        plinth.models.get("arrivals@1")
    with pytest.raises(UsageError, match="names no version after '@'"):
        plinth.models.get("delays@")
    with pytest.raises(NotFoundError, match="has no alias 'gold'"):
        plinth.models.get("delays@gold")


def test_compare_and_swap_rollback_and_history(project: Context) -> None:
    for n in (1, 2, 3):
        register(project, n=n)
    plinth.models.set_alias("delays", "champion", 1, expected=None, reason="baseline")
    plinth.models.set_alias("delays", "champion", 3, expected=1, reason="better rmse")
    with pytest.raises(ConflictError, match="points at version 3; expected it at version 1"):
        plinth.models.set_alias("delays", "champion", 2, expected=1)
    back = plinth.models.rollback("delays", "champion", reason="latency")
    assert (back.from_number, back.to_number, back.created_by) == (3, 1, project.user)
    assert plinth.models.get("delays@champion").number == 1
    history = plinth.models.history("delays", "champion")
    assert [(m.from_number, m.to_number, m.reason) for m in history] == [
        (3, 1, "latency"),
        (1, 3, "better rmse"),
        (None, 1, "baseline"),
    ]


def test_the_card_gathers_run_environment_data_and_validation(project: Context) -> None:
    ledger = project.ledger
    env = ledger.environments.put(
        _digest(77), python="3.11.7", platform="linux", packages={"scikit-learn": "1.5"}, extra={}
    )
    experiment = ledger.projects.ensure_experiment(project.project.id, "train")
    run = ledger.runs.create_run(
        experiment.id, source={"git_commit": "abc123", "git_dirty": False}, environment_id=env.id
    )
    ledger.runs.log_params(run.id, {"lr": 0.1})
    dataset = ledger.datasets.ensure(project.project.id, "flights")
    dv, _ = ledger.datasets.add_version(
        dataset, kind="table", manifest_digest=_digest(5), size=10, file_count=1, row_count=3
    )
    ledger.lineage.add(RecordRef("run", run.id), RecordRef("dataset_version", dv.id), "used")
    suite = ledger.validation.save_suite(project.project.id, "flights", _digest(6))
    ledger.validation.record_result(
        suite,
        target=dv.ref,
        dataset_version_id=dv.id,
        success=False,
        error_count=2,
        warning_count=1,
        results=[],
        report_digest=None,
    )
    signature = {"inputs": [{"name": "distance", "type": "double"}]}
    register(project, run_id=run.id, metrics={"rmse": 0.25}, signature=signature)
    plinth.models.set_alias("delays", "champion", 1)

    card = plinth.models.card("delays@champion")
    assert (card["ref"], card["aliases"], card["flavor"]) == ("delays@1", ["champion"], "sklearn")
    assert card["metrics"] == {"rmse": 0.25}
    assert card["signature"] == signature
    assert card["code_commit"] == "abc123"
    assert card["run"]["params"] == {"lr": "0.1"}
    assert card["environment"]["python"] == "3.11.7"
    assert [d["ref"] for d in card["data"]] == ["flights@1"]
    [check] = card["data"][0]["validations"]
    assert (check["suite"], check["suite_number"]) == ("flights", 1)
    assert (check["success"], check["error_count"]) == (False, 2)


def test_a_card_without_a_run_says_so(project: Context) -> None:
    register(project)
    card = plinth.models.card("delays")
    assert (card["run"], card["environment"], card["data"], card["code_commit"]) == (
        None,
        None,
        [],
        None,
    )
