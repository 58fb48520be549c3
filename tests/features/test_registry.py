"""plan / apply / list / show of feature definitions against a real project ledger."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import plinth
import plinth.datasets as datasets
from plinth.context import Context
from plinth.entities import RecordRef
from plinth.errors import NotFoundError, UsageError
from plinth.features.definitions import (
    Entity,
    FeatureSelection,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
    parquet,
    sql,
)
from plinth.features.registry import PlanError, apply, list_definitions, plan, show

T0 = datetime(2024, 1, 1, tzinfo=UTC)


@pytest.fixture
def scene(project: Context) -> Context:
    """Datasets ``planes`` (one version) and ``weather``, and a Parquet file ``data/w.parquet``."""
    planes = pa.table(
        {
            "tailnum": ["N1", "N2"],
            "seats": pa.array([100, 180], pa.int32()),
            "year": [1999, 2010],
            "maker": ["boeing", "airbus"],
            "updated_at": pa.array([T0, T0], pa.timestamp("ms", tz="UTC")),
            "created": pa.array([T0, T0], pa.timestamp("us")),
            "when_text": ["2024-01-01", "2024-01-02"],
        }
    )
    datasets.save(planes, "planes", ctx=project)
    weather = pa.table(
        {
            "origin": ["JFK"],
            "hour": pa.array([T0.date()], pa.date32()),
            "temp": pa.array([20.5], pa.float32()),
        }
    )
    (project.settings.root / "data").mkdir()
    pq.write_table(weather, project.settings.root / "data" / "w.parquet")
    return project


def plane() -> Entity:
    return Entity("plane", join_keys=["tailnum"])


def planes_view(**kw: Any) -> FeatureView:
    args: dict[str, Any] = {
        "name": "planes",
        "entities": ["plane"],
        "source": "planes",
        "timestamp": "updated_at",
        "created_timestamp": "created",
        "ttl": "365d",
        "features": {"seats": "int64", "year": "int64"},
    }
    args.update(kw)
    return FeatureView(**args)


def test_plan_shows_added_then_unchanged_then_changed(scene: Context) -> None:
    first = plan([plane(), planes_view()], ctx=scene)
    assert [(c.kind, c.name, c.status) for c in first.changes] == [
        ("entity", "plane", "added"),
        ("feature_view", "planes", "added"),
    ]
    assert not first.problems
    assert list_definitions(ctx=scene) == []  # plan records nothing
    apply([plane(), planes_view()], ctx=scene)
    again = plan([plane(), planes_view()], ctx=scene)
    assert [c.status for c in again.changes] == ["unchanged", "unchanged"]
    changed = plan(
        [planes_view(ttl="7d", features={"seats": "float64", "maker": "string"})], ctx=scene
    )
    (change,) = changed.changes
    assert change.status == "changed"
    assert change.version == 1
    assert set(change.changes) == {
        "feature 'maker' added (string)",
        "feature 'seats' retyped int64 -> float64",
        "feature 'year' removed",
        "ttl: '365d' -> '7d'",
    }
    assert change.breaking == ()  # no model reads the view


def test_apply_records_by_digest_and_reapply_is_the_same_version(scene: Context) -> None:
    result = apply([plane(), planes_view()], ctx=scene)
    assert [r.ref for r in result.records] == ["plane@1", "planes@1"]
    assert [r.ref for r in result.new] == ["plane@1", "planes@1"]
    assert result.records[1].digest == planes_view().digest
    again = apply([plane(), planes_view()], ctx=scene)
    assert [r.id for r in again.records] == [r.id for r in result.records]
    assert again.new == []
    newer = apply([planes_view(ttl="30d")], ctx=scene)
    assert newer.records[0].ref == "planes@2"
    shown = show("planes", ctx=scene)
    assert [v.number for v in shown.versions] == [1, 2]
    assert shown.latest.spec["ttl"] == "30d"
    assert [d.ref for d in list_definitions(ctx=scene)] == ["plane@1", "planes@2"]
    assert [d.ref for d in list_definitions("entity", ctx=scene)] == ["plane@1"]
    with pytest.raises(NotFoundError):
        show("nothing", ctx=scene)


def test_apply_adds_the_objects_a_definition_holds(scene: Context) -> None:
    view = planes_view(entities=[plane()])
    svc = FeatureService("delays", [view[["seats"]]])
    result = apply([svc], ctx=scene)
    assert [(r.kind, r.name) for r in result.records] == [
        ("entity", "plane"),
        ("feature_view", "planes"),
        ("feature_service", "delays"),
    ]


def _field_of(problems: Any, name: str) -> list[str]:
    return [p.field for p in problems if p.name == name]


@pytest.mark.parametrize(
    ("view", "field", "words"),
    [
        (planes_view(timestamp="ts"), "planes.timestamp", "no timestamp column 'ts'"),
        (planes_view(timestamp="maker"), "planes.timestamp", "not a timestamp"),
        (planes_view(created_timestamp="nope"), "planes.created_timestamp", "no created"),
        (
            planes_view(features={"maker": "int64"}),
            "planes.features.maker",
            "declared int64 but the source column is string",
        ),
        (planes_view(features={"gone": "int64"}), "planes.features.gone", "no feature column"),
        (planes_view(entities=["ghost"]), "planes.entities[0]", "unknown entity 'ghost'"),
        (planes_view(source="missing"), "planes.source", "missing"),
        (planes_view(source="planes@7"), "planes.source", "no version 7"),
        (planes_view(source=parquet("data/none.parquet")), "planes.source", "no Parquet file"),
        (
            planes_view(source=sql("DELETE FROM p", tables={"p": "planes"})),
            "planes.source.sql",
            "",
        ),
        (
            planes_view(source=sql("SELECT * FROM p; SELECT 1", tables={"p": "planes"})),
            "planes.source.sql",
            "",
        ),
    ],
)
def test_bad_definitions_are_refused_at_plan_naming_the_field(
    scene: Context, view: FeatureView, field: str, words: str
) -> None:
    result = plan([plane(), view], ctx=scene)
    assert [p.field for p in result.problems] == [field], result.problems
    assert words in result.problems[0].message
    assert "feature view 'planes'" in result.problems[0].message
    with pytest.raises(PlanError) as err:
        apply([plane(), view], ctx=scene)
    assert err.value.field == field
    assert list_definitions(ctx=scene) == []  # nothing half-recorded: not even the entity


def test_types_that_fit_are_accepted(scene: Context) -> None:
    weather = FeatureView(
        "weather",
        [Entity("airport", ["origin"])],
        parquet("data/w.parquet"),
        timestamp="hour",  # a date
        features={"temp": "float64"},  # float32 in the file
    )
    viasql = FeatureView(
        "planes_sql",
        ["plane"],
        sql("SELECT tailnum, updated_at, seats * 2 AS seats2 FROM p", tables={"p": "planes@1"}),
        timestamp="updated_at",
        features={"seats2": "float64"},  # an integer column read as float64
    )
    result = plan([plane(), weather, viasql, planes_view()], ctx=scene)
    assert result.problems == ()
    apply([plane(), weather, viasql, planes_view()], ctx=scene)


def test_every_problem_of_a_batch_is_listed(scene: Context) -> None:
    svc = FeatureService("svc", ["planes[seats, wings]", "nowhere"])
    ondemand = OnDemandFeatureView(
        "od",
        sources=[FeatureSelection("planes", ("horns",))],
        request={"delay": "float64"},
        features={"x": "float64"},
        function=_double,
    )
    bad = planes_view(timestamp="ts", features={"maker": "bool"})
    result = plan([bad, svc, ondemand], ctx=scene)
    fields = [p.field for p in result.problems]
    assert fields == [
        "planes.entities[0]",
        "planes.timestamp",
        "planes.features.maker",
        "od.sources[0]",
        "svc.features[0]",  # seats: the batch's view has only maker
        "svc.features[0]",  # wings
        "svc.features[1]",
    ], result.problems
    with pytest.raises(PlanError) as err:
        apply([bad, svc, ondemand], ctx=scene)
    assert "(and 6 more)" in err.value.message
    assert len(err.value.to_dict()["errors"]) == 7  # type: ignore[arg-type]


def _double(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"x": df["seats"] * 2.0})


def test_on_demand_function_is_recorded_by_file_and_digest(scene: Context) -> None:
    path = scene.settings.root / "feats.py"
    path.write_text("import pandas as pd\n\n\ndef double(df):\n    return df\n")
    ondemand = OnDemandFeatureView(
        "od",
        sources=[FeatureSelection("planes", ("seats",))],
        request={},
        features={"x": "float64"},
        function="feats.py:double",
    )
    result = apply([plane(), planes_view(), ondemand], ctx=scene)
    rec = result.records[-1]
    assert rec.spec["function"] == "feats.py:double"
    assert len(rec.spec["code_digest"]) == 64
    # A callable defined outside the project is recorded without a file, with a warning.
    outside = OnDemandFeatureView(
        "od2", sources=["planes"], request={}, features={"x": "float64"}, function=_double
    )
    warned = plan([outside], ctx=scene)
    assert warned.problems == ()
    assert "not in a file of the project" in warned.warnings[0]
    # Changing the function's code is a change of the view.
    path.write_text("import pandas as pd\n\n\ndef double(df):\n    return df * 2\n")
    (change,) = plan([ondemand], ctx=scene).changes
    assert change.status == "changed"
    assert any("code_digest" in c for c in change.changes)


def test_duplicate_definitions_are_refused(scene: Context) -> None:
    result = plan([planes_view(), planes_view(ttl="1d"), plane()], ctx=scene)
    assert [p.field for p in result.problems] == ["planes.name"]


def test_breaking_change_names_the_model_and_apply_refuses_it(
    scene: Context, tmp_path: Path
) -> None:
    from sklearn.linear_model import LinearRegression

    rec = apply([plane(), planes_view()], ctx=scene).records[1]
    training = pd.DataFrame({"seats": [100.0, 180.0, 150.0], "year": [1, 2, 3], "y": [1, 2, 3]})
    saved = datasets.save(training, "train", ctx=scene).version
    scene.ledger.lineage.add(
        RecordRef("feature_definition", rec.id),
        RecordRef("dataset_version", saved.id),
        "derived_from",
    )
    with plinth.start_run(experiment="delays") as run:
        data = datasets.load("train@1")
        run.log_model(
            LinearRegression().fit(data[["seats"]], data["y"]),
            name="delays",
            input_example=data[["seats"]],
        )
        run.log_model(
            LinearRegression().fit(data[["year"]], data["y"]),
            name="by_year",
            input_example=data[["year"]],
        )
    drop_seats = planes_view(features={"year": "int64"})
    (change,) = plan([drop_seats], ctx=scene).changes
    assert change.breaking == ("feature 'seats' is used by model delays@1",)
    with pytest.raises(UsageError, match="breaking change") as err:
        apply([drop_seats], ctx=scene)
    assert err.value.field == "planes.features"
    assert show("planes", ctx=scene).latest.number == 1
    assert apply([drop_seats], allow_breaking=True, ctx=scene).records[0].number == 2
    # Adding a feature breaks nothing.
    (more,) = plan([planes_view(features={"seats": "int64", "year": "int64"})], ctx=scene).changes
    assert more.breaking == ()
