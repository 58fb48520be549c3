"""Push: fresh values to the online store and to the view's offline log, checked and typed."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from plinth.context import Context
from plinth.errors import NotFoundError, UsageError
from plinth.features.definitions import Entity, FeatureService, FeatureView, parquet
from plinth.features.online import OnlineReader
from plinth.features.push import push, pushed_table
from plinth.features.resolve import resolve_service

T0 = datetime(2026, 3, 1, tzinfo=UTC)
H = timedelta(hours=1)

airport = Entity("airport", ["origin"])
weather = FeatureView(
    "weather",
    [airport],
    parquet("weather.parquet"),
    timestamp="hour",
    created_timestamp="loaded",
    ttl="2d",
    features={"temp": "float64", "wind": "int64", "sky": "string"},
)


@pytest.fixture
def scene(online_project: Context, record_definitions: Callable[..., Any]) -> Context:
    table = pa.table(
        {
            "origin": ["JFK", "LGA"],
            "hour": pa.array([T0, T0], pa.timestamp("us", "UTC")),
            "loaded": pa.array([T0, T0], pa.timestamp("us", "UTC")),
            "temp": [1.0, 2.0],
            "wind": [10, 20],
            "sky": ["a", "b"],
        }
    )
    pq.write_table(table, online_project.settings.root / "weather.parquet")
    record_definitions(online_project, airport, weather)
    return online_project


def _online(ctx: Context, keys: list[str], now: datetime) -> dict[str, list[Any]]:
    service = resolve_service(FeatureService("s", [weather]), ctx=ctx)
    return OnlineReader(service, ctx.online_store).read({"origin": keys}, now=now)


def test_push_writes_online_and_records_the_batch(scene: Context) -> None:
    pushed = push(
        "weather",
        [
            {"origin": "JFK", "hour": T0 + H, "temp": 5.5},  # wind and sky not sent: null
            {"origin": "BOS", "hour": T0 + 2 * H, "temp": 7.0, "wind": 3, "sky": "c"},
        ],
        ctx=scene,
    )
    assert (pushed.view, pushed.rows) == ("weather", 2)
    assert scene.ledger.features.pushes(scene.project.id, "weather") == [pushed]
    assert _online(scene, ["JFK", "BOS", "LGA"], T0 + 2 * H) == {
        "origin": ["JFK", "BOS", "LGA"],
        "temp": [5.5, 7.0, None],
        "wind": [None, 3, None],
        "sky": [None, "c", None],
    }
    log = pushed_table(weather, ctx=scene)
    assert log is not None
    assert log.column_names == ["origin", "hour", "loaded", "temp", "wind", "sky"]
    assert log.column("temp").to_pylist() == [5.5, 7.0]
    assert log.schema.field("hour").type == pa.timestamp("us", "UTC")


def test_push_then_the_training_set_sees_the_pushed_rows(scene: Context) -> None:
    from plinth.features.training import get_training_set

    push("weather", pd.DataFrame({"origin": ["LGA"], "hour": [T0 + H], "temp": [9.0]}), ctx=scene)
    entities = pa.table(
        {
            "origin": ["LGA", "LGA"],
            "event_timestamp": pa.array(
                [T0 + H - timedelta(seconds=1), T0 + H], pa.timestamp("us", "UTC")
            ),
        }
    )
    got = get_training_set(entities, FeatureService("s", [weather]), ctx=scene)
    assert got.column("temp").to_pylist() == [2.0, 9.0]
    assert got.column("wind").to_pylist() == [20, None]


def test_among_equal_event_times_the_latest_created_timestamp_wins_online(scene: Context) -> None:
    rows = pa.table(
        {
            "origin": ["JFK", "JFK", "JFK"],
            "hour": pa.array([T0 + H] * 3, pa.timestamp("us", "UTC")),
            "loaded": pa.array([T0 + 3 * H, T0 + 5 * H, None], pa.timestamp("us", "UTC")),
            "temp": [1.0, 2.0, 3.0],
        }
    )
    push("weather", rows, ctx=scene)
    assert _online(scene, ["JFK"], T0 + H)["temp"] == [2.0]
    # An older event pushed later does not replace the newer one.
    push("weather", [{"origin": "JFK", "hour": T0, "temp": 0.5}], ctx=scene)
    assert _online(scene, ["JFK"], T0 + H)["temp"] == [2.0]
    assert len(scene.ledger.features.pushes(scene.project.id, "weather")) == 2


@pytest.mark.parametrize(
    ("rows", "field"),
    [
        ([{"origin": "JFK", "hour": T0, "pressure": 1.0}], "pressure"),
        ([{"origin": "JFK", "temp": 1.0}], "hour"),
        ([{"hour": T0, "temp": 1.0}], "origin"),
        ([{"origin": "JFK", "hour": T0, "temp": "warm"}], "features.temp"),
        ([{"origin": "JFK", "hour": "yesterday", "temp": 1.0}], "hour"),
        ([{"origin": 1.5, "hour": T0, "temp": 1.0}], "origin"),
    ],
)
def test_bad_rows_are_refused_naming_the_column_and_nothing_is_written(
    scene: Context, rows: list[dict[str, Any]], field: str
) -> None:
    with pytest.raises(UsageError) as err:
        push("weather", rows, ctx=scene)
    assert err.value.field == field
    assert scene.ledger.features.pushes(scene.project.id, "weather") == []
    assert _online(scene, ["JFK"], T0)["temp"] == [None]


def test_pushing_to_an_unknown_or_unapplied_view_is_refused(scene: Context) -> None:
    with pytest.raises(NotFoundError):
        push("nope", [{"origin": "JFK", "hour": T0}], ctx=scene)
    changed = FeatureView(
        "weather", [airport], parquet("weather.parquet"), timestamp="hour", features={"t": "int64"}
    )
    with pytest.raises(NotFoundError) as err:
        push(changed, [{"origin": "JFK", "hour": T0}], ctx=scene)
    assert "never applied" in err.value.message
