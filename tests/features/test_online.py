"""Online lookup: the compiled reader, TTLs as offline, missing entities, on-demand views."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from plinth.context import Context
from plinth.errors import UsageError
from plinth.features.definitions import (
    Entity,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
    parquet,
)
from plinth.features.offline import ViewData, point_in_time_join
from plinth.features.online import OnlineReader, get_online_features
from plinth.features.resolve import resolve_service
from plinth.storage.online import OnlineRow

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)
US = timedelta(microseconds=1)

airport = Entity("airport", ["origin"])
route = Entity("route", ["origin", "dest"])
weather = FeatureView(
    "weather",
    [airport],
    parquet("weather.parquet"),
    timestamp="hour",
    ttl="1d",
    features={"temp": "float64", "wind": "int64", "sky": "string"},
)
delays = FeatureView(
    "delays",
    [route],
    parquet("delays.parquet"),
    timestamp="day",
    features={"mean_delay": "float64", "seen": "timestamp"},
)


def _scaled(df: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame({"scaled": df["temp"] * df["scale"]})


scaled = OnDemandFeatureView(
    "scaled",
    sources=[weather[["temp"]]],
    request={"scale": "float64"},
    features={"scaled": "float64"},
    function=_scaled,
)


def _fill(ctx: Context) -> None:
    store = ctx.online_store
    types = {"temp": "float64", "wind": "int64", "sky": "string"}
    store.write(
        "weather",
        [
            OnlineRow("JFK", {"temp": 21.5, "wind": 7, "sky": "clear"}, T0),
            OnlineRow("LGA", {"temp": 18.0, "wind": None, "sky": "rain"}, T0 - timedelta(days=1)),
            OnlineRow("EWR", {"temp": 15.0, "wind": 3}, T0 - timedelta(days=1) - US),
        ],
        types,
    )
    store.write(
        "delays",
        [OnlineRow(("JFK", "LAX"), {"mean_delay": 12.5, "seen": T0}, T0 - timedelta(days=400))],
        {"mean_delay": "float64", "seen": "timestamp"},
    )


def test_reader_returns_the_join_keys_then_the_features_in_service_order(
    online_project: Context,
) -> None:
    _fill(online_project)
    service = FeatureService("svc", [delays, weather[["wind", "temp"]]])
    reader = OnlineReader(resolve_service(service, ctx=online_project), online_project.online_store)
    rows = [{"origin": "JFK", "dest": "LAX"}, {"origin": "SFO", "dest": "JFK"}]
    got = reader.read(rows, now=T0)
    assert list(got) == ["origin", "dest", "mean_delay", "seen", "wind", "temp"]
    assert got == {
        "origin": ["JFK", "SFO"],
        "dest": ["LAX", "JFK"],
        "mean_delay": [12.5, None],  # no TTL on delays: 400 days old is still present
        "seen": [T0, None],
        "wind": [7, None],
        "temp": [21.5, None],
    }
    # A dict of columns, and a dict of single values for one entity, read the same.
    assert reader.read({"origin": ["JFK", "SFO"], "dest": ["LAX", "JFK"]}, now=T0) == got
    one = reader.read({"origin": "JFK", "dest": "LAX"}, now=T0)
    assert one == {k: v[:1] for k, v in got.items()}


def test_ttl_online_is_the_offline_ttl_inclusive_to_the_microsecond(
    online_project: Context,
) -> None:
    _fill(online_project)
    reader = OnlineReader(
        resolve_service(FeatureService("w", [weather]), ctx=online_project),
        online_project.online_store,
    )
    keys = ["JFK", "LGA", "EWR", "BOS"]
    got = reader.read({"origin": keys}, now=T0)
    # LGA is exactly 1d old (present), EWR one microsecond older (missing), BOS never written.
    assert got["temp"] == [21.5, 18.0, None, None]
    assert got["wind"] == [7, None, None, None]
    assert got["sky"] == ["clear", "rain", None, None]

    # The offline join, with the same rows and entity time now, agrees value for value.
    view_table = pa.table(
        {
            "origin": ["JFK", "LGA", "EWR"],
            "hour": pa.array(
                [T0, T0 - timedelta(days=1), T0 - timedelta(days=1) - US], pa.timestamp("us", "UTC")
            ),
            "temp": [21.5, 18.0, 15.0],
            "wind": pa.array([7, None, 3], pa.int64()),
            "sky": ["clear", "rain", None],
        }
    )
    entities = pa.table(
        {"origin": keys, "event_timestamp": pa.array([T0] * 4, pa.timestamp("us", "UTC"))}
    )
    offline = point_in_time_join(
        entities,
        [
            ViewData(
                "weather",
                ("origin",),
                "hour",
                None,
                timedelta(days=1),
                ("temp", "wind", "sky"),
                view_table,
            )
        ],
    )
    for name in ("temp", "wind", "sky"):
        assert offline.column(name).to_pylist() == got[name]


def test_missing_values_are_counted_per_feature(online_project: Context) -> None:
    _fill(online_project)
    reader = OnlineReader(
        resolve_service(FeatureService("w", [weather]), ctx=online_project),
        online_project.online_store,
    )
    columns, missing = reader.read_with_stats(
        [{"origin": "JFK"}, {"origin": "LGA"}, {"origin": None}], now=T0
    )
    assert columns["temp"] == [21.5, 18.0, None]  # a null key matches nothing, as offline
    assert missing == {"temp": 1, "wind": 2, "sky": 1}


def test_on_demand_features_are_computed_from_request_fields_and_hidden_inputs(
    online_project: Context,
) -> None:
    _fill(online_project)
    service = FeatureService("od", [weather[["wind"]], scaled])
    reader = OnlineReader(resolve_service(service, ctx=online_project), online_project.online_store)
    got = reader.read([{"origin": "JFK"}, {"origin": "BOS"}], request={"scale": [2.0, 3.0]}, now=T0)
    # temp is read only as the on-demand view's input: not an output column.
    assert got == {"origin": ["JFK", "BOS"], "wind": [7, None], "scaled": [43.0, None]}
    # Request fields may come with the entity rows too.
    assert reader.read([{"origin": "JFK", "scale": 1.0}], now=T0)["scaled"] == [21.5]
    with pytest.raises(UsageError) as err:
        reader.read([{"origin": "JFK"}], now=T0)
    assert err.value.field == "request.scale"


def test_a_missing_join_key_is_refused_naming_it(online_project: Context) -> None:
    reader = OnlineReader(
        resolve_service(FeatureService("d", [delays]), ctx=online_project),
        online_project.online_store,
    )
    with pytest.raises(UsageError) as err:
        reader.read([{"origin": "JFK"}])
    assert err.value.field == "entity_rows.dest"
    with pytest.raises(UsageError) as err:
        reader.read({"origin": ["JFK", "LGA"], "dest": ["LAX"]})
    assert "different lengths" in err.value.message


def test_get_online_features_reads_an_applied_service_and_sees_new_versions(
    online_project: Context, record_definitions: Callable[..., Any]
) -> None:
    _fill(online_project)
    record_definitions(online_project, airport, weather, FeatureService("svc", [weather[["temp"]]]))
    got = get_online_features("svc", [{"origin": "JFK"}], now=T0)
    assert got == {"origin": ["JFK"], "temp": [21.5]}
    # A new version of the service is read at once (the cached reader is replaced).
    record_definitions(online_project, FeatureService("svc", [weather[["sky", "wind"]]]))
    got = get_online_features("svc", {"origin": ["JFK"]}, now=T0, ctx=online_project)
    assert got == {"origin": ["JFK"], "sky": ["clear"], "wind": [7]}
