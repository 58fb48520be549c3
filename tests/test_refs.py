"""The one reference grammar (plinth.refs) and the consumers that must all speak it:
datasets, models, deployments, monitors, suites, and the run-id prefixes of the CLI."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import plinth
from plinth import datasets
from plinth.context import Context
from plinth.errors import NotFoundError, UsageError
from plinth.refs import LABEL_MAX, Ref, check_label, parse_ref, parse_spec

# -- the grammar ------------------------------------------------------------------------

VALID = [
    ("flights", Ref("flights"), "flights"),
    ("flights@latest", Ref("flights"), "flights"),
    ("flights@3", Ref("flights", version=3), "flights@3"),
    ("flights@v3", Ref("flights", version=3), "flights@3"),
    ("flights@V3", Ref("flights", version=3), "flights@3"),
    ("flights@007", Ref("flights", version=7), "flights@7"),
    ("flights@gold", Ref("flights", label="gold"), "flights@gold"),
    ("delays@prod-v2", Ref("delays", label="prod-v2"), "delays@prod-v2"),
    ("delays@v2.1", Ref("delays", label="v2.1"), "delays@v2.1"),
    ("delays@vintage", Ref("delays", label="vintage"), "delays@vintage"),
    ("2024-flights.v1@1", Ref("2024-flights.v1", version=1), "2024-flights.v1@1"),
]


@pytest.mark.parametrize(("text", "ref", "canonical"), VALID)
def test_valid_references_parse_and_print_back(text: str, ref: Ref, canonical: str) -> None:
    parsed = parse_ref(text)
    assert parsed == ref
    assert str(parsed) == canonical
    assert parse_ref(str(parsed)) == parsed
    assert parsed.is_latest == (ref.version is None and ref.label is None)


INVALID = [
    ("m@", "names no version after '@'"),
    ("", "empty"),
    ("@3", "the name starts with a letter or digit"),
    ("m@1@2", "more than one '@'"),
    ("m@0", "versions start at 1"),
    ("m@v0", "versions start at 1"),
    ("m@" + "9" * 20, "versions start at 1"),
    ("m@a b", "after '@' comes a version number"),
    ("m@-gold", "after '@' comes a version number"),
    ("m@3x", "after '@' comes a version number"),
    ("m@3\n", "after '@' comes a version number"),  # fullmatch: no trailing newline
    ("m\n", "the name starts with a letter or digit"),
    (" m", "the name starts with a letter or digit"),
    ("m@٣", "after '@' comes a version number"),  # an Arabic-Indic digit is not a version
    ("flïghts@1", "the name starts with a letter or digit"),
    ("m@gölden", "after '@' comes a version number"),
    ("a" * 256, "the name starts with a letter or digit"),
]


@pytest.mark.parametrize(("text", "why"), INVALID)
def test_invalid_references_are_usage_errors_naming_the_grammar(text: str, why: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_ref(text, what="model")
    assert caught.value.message.startswith("invalid model reference")
    assert why in caught.value.message
    assert caught.value.field == "ref"
    assert "NAME@N (or NAME@vN), NAME@latest or NAME@LABEL" in (caught.value.hint or "")


@pytest.mark.parametrize(
    "label", ["latest", "LATEST", "v2", "V10", "2x", "-x", "a b", "é", "x\n", "a" * 65, "", 3]
)
def test_a_label_that_could_be_read_as_a_version_cannot_be_made(label: object) -> None:
    with pytest.raises(UsageError, match="invalid alias") as caught:
        check_label(label, what="alias", field="alias")
    assert caught.value.field == "alias"


@pytest.mark.parametrize("label", ["gold", "prod-v2", "v2a", "x" * LABEL_MAX, "Champion_1.0"])
def test_good_labels_can_be_made_and_read_back(label: str) -> None:
    assert check_label(label) == label
    assert parse_ref(f"d@{label}") == Ref("d", label=label)


def test_a_label_from_the_older_rule_still_resolves_but_cannot_be_made() -> None:
    old = "x" * 100  # tags and aliases were up to 255 characters before
    assert parse_ref(f"d@{old}").label == old
    assert check_label(old, existing=True) == old
    with pytest.raises(UsageError):
        check_label(old)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [(None, None), ("latest", None), (3, 3), ("3", 3), ("v3", 3), ("gold", "gold")],
)
def test_a_version_given_on_its_own(spec: str | int | None, expected: int | str | None) -> None:
    assert parse_spec(spec) == expected


@pytest.mark.parametrize("spec", [0, -1, True, 1.5, "", "v0", "a b", "3\n"])
def test_a_bad_version_given_on_its_own_is_refused(spec: Any) -> None:
    with pytest.raises(UsageError):
        parse_spec(spec)


def test_a_ref_that_would_not_print_back_cannot_be_built() -> None:
    for bad in (
        {"name": "a b"},
        {"name": "d", "version": 0},
        {"name": "d", "label": "v2"},
        {"name": "d", "version": 1, "label": "gold"},
    ):
        with pytest.raises(UsageError):
            Ref(**bad)
    with pytest.raises(AttributeError):
        Ref("d").name = "e"  # type: ignore[misc]


# -- datasets ------------------------------------------------------------------------


def _two_versions(root: Path, name: str = "d") -> None:
    for n in (1, 2):
        folder = root / f"v{n}"
        folder.mkdir(parents=True)
        (folder / "a.txt").write_text(f"version {n}\n")
        datasets.add(folder, name)


def test_dataset_tag_v2_is_refused_and_no_tag_is_written(project: Context, tmp_path: Path) -> None:
    _two_versions(tmp_path)
    for bad in ("v2", "V2", "latest"):
        with pytest.raises(UsageError, match=f"invalid tag '{bad}'") as caught:
            datasets.tag("d@1", bad)
        assert caught.value.field == "tag"
    dataset = project.ledger.datasets.get(project.project.id, "d")
    assert project.ledger.datasets.tags(dataset) == {}
    assert datasets.get("d@v2").number == 2  # v2 is always version 2


def test_dataset_refs_name_versions_tags_and_the_latest(project: Context, tmp_path: Path) -> None:
    _two_versions(tmp_path)
    datasets.tag("d@v1", "prod-v2")
    assert datasets.get("d@prod-v2").number == 1
    assert datasets.get("d@latest").number == datasets.get("d").number == 2
    assert datasets.get("d@V1").number == 1
    with pytest.raises(UsageError, match="names no version after '@'"):
        datasets.get("d@")


def test_dataset_tag_made_under_the_old_rule_still_resolves(
    project: Context, tmp_path: Path
) -> None:
    from plinth.ledger.tables import dataset_tags

    _two_versions(tmp_path)
    dataset = project.ledger.datasets.get(project.project.id, "d")
    old = "t" * 100
    with project.ledger.engine.begin() as conn:
        conn.execute(
            sa.insert(dataset_tags).values(
                dataset_id=dataset.id, tag=old, number=1, created_at=0, created_by="someone"
            )
        )
    assert datasets.get(f"d@{old}").number == 1


def test_dataset_tag_cli_refuses_v2(
    project_dir: Path, cli: Callable[..., Any], tmp_path: Path
) -> None:
    assert cli("init").code == 0
    (project_dir / "data").mkdir()
    (project_dir / "data" / "a.txt").write_text("a\n")
    assert cli("data", "add", "data", "--name", "d").code == 0
    result = cli("data", "tag", "d@1", "v2")
    assert result.code == 2
    assert "invalid tag 'v2'" in result.err
    assert "not 'latest' nor 'v' and a number" in result.err


# -- models ------------------------------------------------------------------------


def _register(ctx: Context, n: int) -> None:
    model = ctx.ledger.models.ensure(ctx.project.id, "delays")
    ctx.ledger.models.register(model, flavor="sklearn", manifest_digest=f"{n:064x}")


def test_model_refs_and_aliases_follow_the_same_rule(project: Context) -> None:
    for n in (1, 2, 3):
        _register(project, n)
    assert plinth.models.get("delays@v2").number == 2
    plinth.models.set_alias("delays", "prod-v2", 1)
    assert plinth.models.get("delays@prod-v2").number == 1
    with pytest.raises(UsageError, match="invalid alias 'v2'"):
        plinth.models.set_alias("delays", "v2", 1)
    assert plinth.models.aliases("delays") == {"prod-v2": 1}
    with pytest.raises(NotFoundError, match="has no alias 'gold'"):
        plinth.models.get("delays@gold")


def test_an_empty_version_is_the_same_error_for_models_datasets_and_deployments(
    project: Context,
) -> None:
    from plinth.serving.spec import DeploymentSpec

    with pytest.raises(UsageError) as model:
        plinth.models.get("m@")
    with pytest.raises(UsageError) as deployment:
        DeploymentSpec.from_yaml("name: d\nmodel: m@\n", where="dep.yaml")
    with pytest.raises(UsageError) as dataset:
        datasets.get("m@")
    assert deployment.value.message == f"dep.yaml: 'model': {model.value.message}"
    assert deployment.value.hint == model.value.hint == dataset.value.hint
    assert deployment.value.field == "model"
    assert dataset.value.message == model.value.message.replace("model", "dataset")


@pytest.mark.parametrize("model", ["m@0", "m@a b", "m@1@2"])
def test_a_deployment_model_ref_outside_the_grammar_is_refused(model: str) -> None:
    from plinth.serving.spec import DeploymentSpec

    with pytest.raises(UsageError, match="invalid model reference") as caught:
        DeploymentSpec.from_yaml(f"name: d\nmodel: '{model}'\n", where="dep.yaml")
    assert caught.value.field == "model"
    assert DeploymentSpec.from_yaml("name: d\nmodel: m@v2\n").model == "m@v2"


def test_monitor_and_suite_references_are_checked_when_loaded() -> None:
    from plinth.monitoring.spec import MonitorSpec
    from plinth.validation.suites import Suite

    with pytest.raises(UsageError, match="invalid dataset reference 'flights@'") as caught:
        MonitorSpec.from_yaml("dataset: flights\nreference: 'flights@'\n")
    assert caught.value.field == "reference"
    assert MonitorSpec.from_yaml("dataset: flights\nreference: flights@v9\n").reference
    with pytest.raises(UsageError, match="invalid dataset reference 'airports@0'") as suite:
        Suite.from_yaml(
            "suite: s\nchecks:\n  - {check: in_dataset, column: a, dataset: 'airports@0'}\n"
        )
    assert suite.value.field == "checks[0].dataset"


# -- run id prefixes -----------------------------------------------------------------


def _runs(project_dir: Path, n: int = 2) -> list[str]:
    from plinth.versioning import save_environment

    with Context.open(project_dir) as ctx:
        exp = ctx.ledger.projects.ensure_experiment(ctx.project.id, "e")
        env = save_environment(ctx=ctx)
        return [ctx.ledger.runs.create_run(exp.id, environment_id=env.id).id for _ in range(n)]


def _shared(a: str, b: str) -> str:
    """The prefix two ids share."""
    return a[: next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), len(a))]


def _unique_prefix(run_id: str, others: list[str]) -> str:
    common = max(len(_shared(run_id, o)) for o in others if o != run_id)
    return run_id[: max(8, common + 1)]


@pytest.mark.parametrize(
    "command",
    [
        ("env", "export"),
        ("env", "show", "--json"),
        ("runs", "show", "--json"),
        ("runs", "export"),
        ("runs", "compare", "SECOND"),
    ],
)
def test_every_command_taking_a_run_id_takes_a_unique_prefix(
    project_dir: Path, cli: Callable[..., Any], command: tuple[str, ...]
) -> None:
    assert cli("init").code == 0
    ids = _runs(project_dir)
    args = [ids[1] if a == "SECOND" else a for a in command]
    full = cli(*args[:2], ids[0], *args[2:])
    short = cli(*args[:2], _unique_prefix(ids[0], ids), *args[2:])
    assert full.code == short.code == 0, short.err
    assert short.out == full.out


@pytest.mark.parametrize(
    "command", [("env", "export"), ("env", "show"), ("reproduce",), ("runs", "export")]
)
def test_an_ambiguous_or_too_short_run_id_prefix_is_refused(
    project_dir: Path, cli: Callable[..., Any], command: tuple[str, ...]
) -> None:
    assert cli("init").code == 0
    ids = _runs(project_dir)
    shared = _shared(*ids)
    assert len(shared) >= 8  # made in the same minute: UUIDv7 ids share their time prefix
    result = cli(*command, shared[:8])
    assert result.code == 2
    assert "is ambiguous" in result.err
    assert ids[0] in result.err
    assert ids[1] in result.err
    result = cli(*command, ids[0][:4])
    assert result.code == 2
    assert "too short" in result.err


def test_reproduce_takes_a_run_id_prefix(project_dir: Path, cli: Callable[..., Any]) -> None:
    assert cli("init").code == 0
    ids = _runs(project_dir)
    result = cli("reproduce", "--yes", _unique_prefix(ids[0], ids))
    assert result.code == 2
    # The prefix found the run: it is refused for what the run lacks, named in full.
    assert f"run {ids[0]} has no git commit recorded" in result.err


def test_the_old_parse_ref_functions_still_work_with_a_deprecation_warning() -> None:
    with pytest.deprecated_call(match="plinth.refs.parse_ref"):
        assert datasets.parse_ref("flights@v3") == ("flights", "3")
    with pytest.deprecated_call(match="plinth.refs.parse_ref"):
        assert plinth.models.parse_ref("delays@champion") == ("delays", "champion")
    with pytest.deprecated_call(), pytest.raises(UsageError, match="names no version"):
        plinth.models.parse_ref("delays@")
