"""get_training_set: services over dataset-backed views, entity rows in several forms,
entity-free retrieval, on-demand features, saving with lineage, and runs.

The join's own rules are tested in test_point_in_time.py (DuckDB) and test_ray_engine.py
(both engines); here the values are checked by hand on small tables.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

import plinth
from plinth.context import Context
from plinth.entities import RecordRef
from plinth.errors import UsageError
from plinth.features.definitions import (
    Entity,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
)
from plinth.features.rows import view_rows
from plinth.features.training import (
    DEFINITION_RECORD,
    DERIVED_FROM,
    TrainingSet,
    get_training_set,
)

D = datetime(2024, 1, 1)  # naive: UTC
STATION = Entity("station", ["station"])


def _day(n: int, hours: int = 0) -> datetime:
    return D + timedelta(days=n, hours=hours)


def _weather(project: Context, temps: list[float] | None = None) -> None:
    """weather: station A (days 0, 2), B (day 1); humidity carries a null."""
    table = pa.table(
        {
            "station": ["A", "B", "A"],
            "ts": pa.array([_day(0), _day(1), _day(2)], pa.timestamp("us")),
            "temp": temps or [1.0, 2.0, 3.0],
            "humidity": pa.array([10, None, 30], pa.int64()),
        }
    )
    plinth.datasets.save(table, "weather", ctx=project)


def _view(source: str = "weather", ttl: str | None = "2d", **kw: Any) -> FeatureView:
    return FeatureView(
        "w",
        [STATION],
        source,
        "ts",
        ttl=ttl,
        features={"temp": "float64", "humidity": "int64"},
        **kw,
    )


def _entities() -> pa.Table:
    return pa.table(
        {
            "station": ["A", "B", "C", "A", "A"],
            "event_timestamp": pa.array(
                [_day(1), _day(1), _day(1), _day(2), _day(5)], pa.timestamp("us")
            ),
            "label": [1, 0, 1, 0, 1],
        }
    )


def _col(table: Any, name: str) -> list[Any]:
    if isinstance(table, pa.Table):
        return table.column(name).to_pylist()
    return [None if pd.isna(v) else v for v in table[name].tolist()]


def test_entity_rows_get_the_values_valid_at_their_time(project: Context) -> None:
    _weather(project)
    out = get_training_set(_entities(), FeatureService("s", [_view()]), ctx=project)
    assert isinstance(out, pa.Table)
    assert out.column_names == ["station", "event_timestamp", "label", "temp", "humidity"]
    assert out.select(["station", "event_timestamp", "label"]).equals(_entities())
    # A at day 1: day 0 (within 2d); B: day 1; C: nothing; A day 2: day 2; A day 5: expired.
    assert _col(out, "temp") == [1.0, 2.0, None, 3.0, None]
    assert _col(out, "humidity") == [10, None, None, 30, None]
    assert out.schema.field("temp").type == pa.float64()


def test_a_selection_reads_only_its_features_and_full_names_prefix_them(
    project: Context,
) -> None:
    _weather(project)
    service = FeatureService("s", [_view()[["humidity"]]])
    out = get_training_set(_entities(), service, full_names=True, ctx=project)
    assert out.column_names[-1:] == ["w__humidity"]


def test_pandas_in_pandas_out(project: Context) -> None:
    _weather(project)
    service = FeatureService("s", [_view()])
    frame = _entities().to_pandas()
    out = get_training_set(frame, service, to="pandas", ctx=project)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns) == ["station", "event_timestamp", "label", "temp", "humidity"]
    assert _col(out, "temp") == [1.0, 2.0, None, 3.0, None]
    with pytest.raises(UsageError) as info:
        get_training_set(frame, service, to="excel", ctx=project)
    assert info.value.field == "to"


def test_polars_in_polars_out(project: Context) -> None:
    pl = pytest.importorskip("polars")
    _weather(project)
    service = FeatureService("s", [_view()])
    out = get_training_set(pl.from_arrow(_entities()), service, to="polars", ctx=project)
    assert isinstance(out, pl.DataFrame)
    assert out["temp"].to_list() == [1.0, 2.0, None, 3.0, None]


def test_a_service_is_read_from_the_ledger_by_name(
    project: Context, record_definitions: Any
) -> None:
    _weather(project)
    view = _view()
    record_definitions(project, STATION, view, FeatureService("s", [view]))
    out = get_training_set(_entities(), "s", ctx=project)
    assert _col(out, "temp") == [1.0, 2.0, None, 3.0, None]


def test_on_demand_features_are_computed_and_their_hidden_inputs_dropped(
    project: Context,
) -> None:
    _weather(project)
    view = _view()

    def feels(df: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"feels": df["temp"] - df["wind"]})

    od = OnDemandFeatureView(
        "feel",
        sources=[view[["temp"]]],
        request={"wind": "float64"},
        features={"feels": "float64"},
        function=feels,
    )
    service = FeatureService("s", [view[["humidity"]], od])
    entities = _entities().append_column("wind", pa.array([0.5] * 5))
    out = get_training_set(entities, service, ctx=project)
    assert out.column_names == [*entities.column_names, "humidity", "feels"]  # no temp
    assert _col(out, "feels") == [0.5, 1.5, None, 2.5, None]
    with pytest.raises(UsageError, match="request field 'wind'") as info:
        get_training_set(_entities(), service, ctx=project)
    assert info.value.field == "entity_df.wind"


def test_entity_free_gives_every_entity_seen_by_each_time_through_end(
    project: Context,
) -> None:
    _weather(project)
    service = FeatureService("s", [_view(ttl=None)])
    out = get_training_set(service, start=D, end="2024-01-03", every="1d", ctx=project)
    rows = list(
        zip(
            _col(out, "station"),
            [t.day for t in _col(out, "event_timestamp")],
            _col(out, "temp"),
            strict=True,
        )
    )
    # A from day 0, B from day 1 (its first row); the end (Jan 3) is included.
    assert rows == [
        ("A", 1, 1.0),
        ("A", 2, 1.0),
        ("B", 2, 2.0),
        ("A", 3, 3.0),
        ("B", 3, 2.0),
    ]
    assert out.schema.field("event_timestamp").type == pa.timestamp("us", tz="UTC")
    # Times are instants: 01:00 in Paris on Jan 2 is midnight UTC.
    paris = get_training_set(
        service,
        start=datetime(2024, 1, 2, 1, tzinfo=__import__("zoneinfo").ZoneInfo("Europe/Paris")),
        end=datetime(2024, 1, 2),
        every=timedelta(days=1),
        ctx=project,
    )
    assert _col(paris, "station") == ["A", "B"]


def test_entity_free_needs_one_set_of_join_keys_and_a_range(project: Context) -> None:
    _weather(project)
    pair = FeatureView(
        "p",
        [STATION, Entity("day", ["humidity"])],
        "weather",
        "ts",
        features={"temp": "float64"},
    )
    with pytest.raises(UsageError, match="different join keys") as info:
        get_training_set(
            FeatureService("s", [_view()[["humidity"]], pair]),
            start=D,
            end=D,
            ctx=project,
        )
    assert info.value.field == "entity_df"
    service = FeatureService("s", [_view()])
    with pytest.raises(UsageError, match="entity rows or start"):
        get_training_set(service, ctx=project)
    with pytest.raises(UsageError) as info:
        get_training_set(service, start=D, end=_day(3), ctx=project)
    assert info.value.field == "every"
    with pytest.raises(UsageError) as info:
        get_training_set(_entities(), service, start=D, ctx=project)
    assert info.value.field == "start"


def test_save_as_records_a_version_with_lineage_to_definitions_and_sources(
    project: Context,
) -> None:
    _weather(project)
    view = _view()
    service = FeatureService("s", [view])
    assert project.ledger.features.latest_definitions(project.project.id) == []

    result = get_training_set(_entities(), service, save_as="train", message="m", ctx=project)

    assert isinstance(result, TrainingSet)
    assert result.version.ref == "train@1"
    assert _col(result.to_pandas(), "temp") == [1.0, 2.0, None, 3.0, None]
    assert plinth.datasets.load("train@1", to="arrow", ctx=project).equals(result.table)
    # The definitions were applied first: lineage names their exact versions.
    applied = {(d.kind, d.name) for d in result.definitions}
    assert applied == {("feature_service", "s"), ("feature_view", "w"), ("entity", "station")}
    recorded = project.ledger.features.latest_definitions(project.project.id)
    assert {(d.kind, d.name, d.digest) for d in recorded} >= {
        ("feature_view", "w", view.digest),
        ("feature_service", "s", service.digest),
    }
    up = project.ledger.lineage.edges_to(RecordRef("dataset_version", result.version.id))
    sources = {(e.src.type, e.src.id) for e in up if e.relation == DERIVED_FROM}
    weather = plinth.datasets.get("weather@1", ctx=project)
    assert sources == {(DEFINITION_RECORD, d.id) for d in result.definitions} | {
        ("dataset_version", weather.id)
    }
    # And forward: from the view's version to the training set.
    down = project.ledger.lineage.downstream(
        RecordRef(DEFINITION_RECORD, next(d.id for d in result.definitions if d.name == "w"))
    )
    assert RecordRef("dataset_version", result.version.id) in {e.dst for e in down}


def test_a_pinned_source_reads_its_version_and_an_unpinned_one_the_newest(
    project: Context,
) -> None:
    _weather(project)
    _weather(project, temps=[100.0, 200.0, 300.0])
    pinned = get_training_set(
        _entities(), FeatureService("s", [_view("weather@1")]), save_as="a", ctx=project
    )
    newest = get_training_set(
        _entities(), FeatureService("s", [_view("weather")]), save_as="b", ctx=project
    )
    assert _col(pinned.table, "temp") == [1.0, 2.0, None, 3.0, None]
    assert _col(newest.table, "temp") == [100.0, 200.0, None, 300.0, None]
    assert [v.ref for v in pinned.sources] == ["weather@1"]
    assert [v.ref for v in newest.sources] == ["weather@2"]


def test_a_run_records_that_it_used_the_definitions_and_produced_the_set(
    project: Context,
) -> None:
    _weather(project)
    service = FeatureService("s", [_view()])
    with plinth.start_run(experiment="t") as run:
        result = get_training_set(_entities(), service, save_as="train", ctx=project)
        get_training_set(_entities(), service, ctx=project)  # no save: still "used"
    edges = project.ledger.lineage.edges_from(RecordRef("run", run.id))
    used = {(e.dst.type, e.dst.id) for e in edges if e.relation == "used"}
    assert {(DEFINITION_RECORD, d.id) for d in result.definitions} <= used
    assert ("dataset_version", plinth.datasets.get("weather", ctx=project).id) in used
    produced = {(e.dst.type, e.dst.id) for e in edges if e.relation == "produced"}
    assert ("dataset_version", result.version.id) in produced


def test_outside_a_run_and_without_save_as_nothing_is_recorded(project: Context) -> None:
    _weather(project)
    get_training_set(_entities(), FeatureService("s", [_view()]), ctx=project)
    assert project.ledger.features.latest_definitions(project.project.id) == []


def test_view_rows_type_the_features_and_name_what_is_wrong(project: Context) -> None:
    _weather(project)
    rows = view_rows(_view(), ("station",), ctx=project)
    assert rows.table.column_names == ["station", "ts", "temp", "humidity"]
    assert [v.ref for v in rows.versions] == ["weather@1"]
    cases = [
        ({"temp": "string"}, "features.temp", "declared string"),
        ({"humidity": "bool"}, "features.humidity", "declared bool"),
        ({"rain": "float64"}, "features.rain", "no column 'rain'"),
    ]
    for features, field, message in cases:
        view = FeatureView("w", [STATION], "weather", "ts", features=features)
        with pytest.raises(UsageError, match=message) as info:
            view_rows(view, ("station",), ctx=project)
        assert info.value.field == field
        assert "'w'" in info.value.message
    with pytest.raises(UsageError) as info:
        view_rows(_view(), ("city",), ctx=project)
    assert info.value.field == "entities"
    bad_ts = FeatureView("w", [STATION], "weather", "when", features={"temp": "float64"})
    with pytest.raises(UsageError) as info:
        view_rows(bad_ts, ("station",), ctx=project)
    assert info.value.field == "timestamp"
    fractional = pa.table({"station": ["A"], "ts": [D], "x": [1.5]})
    plinth.datasets.save(fractional, "frac", ctx=project)
    as_int = FeatureView("f", [STATION], "frac", "ts", features={"x": "int64"})
    with pytest.raises(UsageError, match="does not fit int64") as info:
        view_rows(as_int, ("station",), ctx=project)
    assert info.value.field == "features.x"


def test_the_service_argument_is_checked(project: Context) -> None:
    with pytest.raises(UsageError) as info:
        get_training_set(_entities(), ctx=project)
    assert info.value.field == "service"
    with pytest.raises(UsageError) as info:
        get_training_set(_entities(), 3, ctx=project)  # type: ignore[arg-type]
    assert info.value.field == "service"


def test_a_feature_named_like_an_entity_column_asks_for_full_names(project: Context) -> None:
    _weather(project)
    entities = _entities().append_column("temp", pa.array([0.0] * 5))
    service = FeatureService("s", [_view()])
    with pytest.raises(UsageError, match="already a column of the entity rows") as info:
        get_training_set(entities, service, ctx=project)
    assert "full_names=True" in str(info.value.hint)
    out = get_training_set(entities, service, full_names=True, ctx=project)
    assert _col(out, "w__temp") == [1.0, 2.0, None, 3.0, None]


def test_aware_entity_times_are_compared_as_instants(project: Context) -> None:
    _weather(project)
    # 23:30 on Jan 1 in New York is 04:30 UTC on Jan 2: after B's day-1 row.
    ny = __import__("zoneinfo").ZoneInfo("America/New_York")
    entities = pa.table(
        {
            "station": ["B", "B"],
            "event_timestamp": pa.array(
                [datetime(2024, 1, 1, 23, 30, tzinfo=ny), datetime(2024, 1, 1, 18, 0, tzinfo=ny)],
                pa.timestamp("us", tz="America/New_York"),
            ),
        }
    )
    out = get_training_set(entities, FeatureService("s", [_view()]), ctx=project)
    assert _col(out, "temp") == [2.0, None]


def test_save_as_applies_an_on_demand_view_and_links_it(project: Context) -> None:
    _weather(project)
    view = _view()

    def warmer(df: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"warmer": df["temp"] + 1.0})

    od = OnDemandFeatureView(
        "warm", sources=[view], request={}, features={"warmer": "float64"}, function=warmer
    )
    result = get_training_set(_entities(), FeatureService("s", [od]), save_as="t", ctx=project)
    assert result.table.column_names[-1] == "warmer"  # the view's own features are hidden
    assert _col(result.table, "warmer") == [2.0, 3.0, None, 4.0, None]
    kinds = {d.kind: d for d in result.definitions}
    assert set(kinds) == {"feature_service", "feature_view", "entity", "on_demand_view"}
    assert kinds["on_demand_view"].spec["code_digest"]  # recorded with its code's digest
