"""Materialization: latest row per key per window, incremental, recorded, never backwards."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from plinth.context import Context
from plinth.errors import NotFoundError, UsageError
from plinth.features.definitions import Entity, FeatureService, FeatureView, parquet
from plinth.features.materialize import materialize
from plinth.features.online import OnlineReader
from plinth.features.resolve import resolve_service
from plinth.storage.online import OnlineRow

T0 = datetime(2026, 3, 1, tzinfo=UTC)
H = timedelta(hours=1)
MS = 1_772_323_200_000  # T0 in epoch milliseconds

airport = Entity("airport", ["origin"])
carrier = Entity("carrier", ["carrier"])
weather = FeatureView(
    "weather",
    [airport],
    parquet("weather.parquet"),
    timestamp="hour",
    created_timestamp="loaded",
    features={"temp": "float64", "sky": "string"},
)
fleet = FeatureView(
    "fleet", [carrier], parquet("fleet.parquet"), timestamp="day", features={"planes": "int64"}
)


def _weather(root: Path, rows: list[tuple[str, datetime, datetime | None, float, str]]) -> None:
    origin, hour, loaded, temp, sky = zip(*rows, strict=True)
    table = pa.table(
        {
            "origin": list(origin),
            "hour": pa.array(hour, pa.timestamp("us", "UTC")),
            "loaded": pa.array(loaded, pa.timestamp("us", "UTC")),
            "temp": list(temp),
            "sky": list(sky),
        }
    )
    pq.write_table(table, root / "weather.parquet")


def _fleet(root: Path) -> None:
    table = pa.table({"carrier": ["AA", "DL"], "day": [T0, T0 + H], "planes": [900, 850]})
    pq.write_table(table, root / "fleet.parquet")


@pytest.fixture
def scene(online_project: Context, record_definitions: Callable[..., Any]) -> Context:
    root = online_project.settings.root
    _weather(
        root,
        [
            ("JFK", T0, None, 1.0, "a"),
            ("JFK", T0 + H, None, 2.0, "b"),  # the latest JFK row by T0 + 1h
            ("LGA", T0, T0, 3.0, "c"),
            ("LGA", T0, T0 + H, 4.0, "d"),  # same event, later created: wins
            ("LGA", T0, None, 5.0, "e"),  # no created timestamp counts as the earliest
            ("EWR", T0 + 3 * H, None, 6.0, "f"),  # after the first window
        ],
    )
    _fleet(root)
    record_definitions(online_project, airport, carrier, weather, fleet)
    return online_project


def _read(ctx: Context, keys: list[str], now: datetime) -> dict[str, list[Any]]:
    service = resolve_service(FeatureService("s", [weather]), ctx=ctx)
    return OnlineReader(service, ctx.online_store).read({"origin": keys}, now=now)


def test_first_materialization_writes_the_latest_row_per_key_and_records_it(scene: Context) -> None:
    done = materialize(end=T0 + 2 * H, ctx=scene)
    assert [(m.view, m.start_ms, m.end_ms, m.rows) for m in sorted(done, key=lambda m: m.view)] == [
        ("fleet", None, MS + 7_200_000, 2),
        ("weather", None, MS + 7_200_000, 2),
    ]
    assert all(m.store == scene.online_store.describe() for m in done)
    assert _read(scene, ["JFK", "LGA", "EWR"], T0 + 2 * H) == {
        "origin": ["JFK", "LGA", "EWR"],
        "temp": [2.0, 4.0, None],
        "sky": ["b", "d", None],
    }
    recorded = scene.ledger.features.materializations(scene.project.id, "weather")
    assert [(m.id, m.rows) for m in recorded] == [
        (m.id, m.rows) for m in done if m.view == "weather"
    ]


def test_a_second_materialization_writes_only_newer_rows(scene: Context) -> None:
    materialize(end=T0 + 2 * H, ctx=scene)
    again = materialize(end=T0 + 2 * H, ctx=scene)
    assert again == []  # nothing new to cover: nothing recorded
    (second,) = materialize(end=T0 + 4 * H, views="weather", ctx=scene)
    assert (second.start_ms, second.end_ms, second.rows) == (MS + 7_200_000, MS + 14_400_000, 1)
    got = _read(scene, ["JFK", "EWR"], T0 + 4 * H)
    assert got["temp"] == [2.0, 6.0]


def test_views_limits_the_run_and_an_unknown_view_is_refused(scene: Context) -> None:
    done = materialize(end=T0 + 2 * H, views=["fleet"], ctx=scene)
    assert [m.view for m in done] == ["fleet"]
    assert scene.ledger.features.materializations(scene.project.id, "weather") == []
    with pytest.raises(NotFoundError) as err:
        materialize(views="fleet,nope", ctx=scene)
    assert err.value.field == "views"
    assert "nope" in err.value.message


def test_an_older_event_never_overwrites_a_newer_one(scene: Context) -> None:
    newer = T0 + 10 * H
    scene.online_store.write(
        "weather", [OnlineRow("JFK", {"temp": 99.0}, newer)], dict(weather.features)
    )
    materialize(end=T0 + 4 * H, views="weather", ctx=scene)
    assert _read(scene, ["JFK", "EWR"], newer)["temp"] == [99.0, 6.0]


def test_nothing_is_recorded_when_the_write_fails(scene: Context) -> None:
    # A float key cannot be stored: the store refuses the batch before writing anything.
    table = pa.table({"carrier": [1.5], "day": [T0], "planes": [3]})
    pq.write_table(table, scene.settings.root / "fleet.parquet")
    with pytest.raises(UsageError):
        materialize(end=T0 + 2 * H, views="fleet", ctx=scene)
    assert scene.ledger.features.materializations(scene.project.id, "fleet") == []


def test_the_cli_materializes_and_prints_json(
    scene: Context, cli: Callable[..., Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLINTH_ONLINE_STORE", scene.settings.online_store)
    result = cli("features", "materialize", "--end", "2026-03-01T02:00:00+00:00", "--json")
    assert result.code == 0, result.err
    rows = {m["view"]: m for m in json.loads(result.out)}
    assert (rows["weather"]["rows"], rows["weather"]["end_ms"]) == (2, MS + 7_200_000)
    result = cli("features", "materialize", "--views", "weather", "--end", "2026-03-01T04:00")
    assert result.code == 0, result.err
    assert "weather: 1 row," in result.out
    assert cli("features", "materialize", "--views", "nope").code == 2


def test_rows_arriving_late_in_a_changed_source_reach_the_online_store(scene: Context) -> None:
    """A static table (one early event time) gains a key after the first materialization:
    the source changed, so the next run starts from the beginning and the key is written."""
    import os

    first = {m.view: m for m in materialize(end=T0 + 2 * H, ctx=scene)}
    assert first["fleet"].sources
    assert first["fleet"].sources[0].startswith("parquet:fleet")
    table = pa.table(
        {"carrier": ["AA", "DL", "UA"], "day": [T0, T0 + H, T0], "planes": [900, 850, 700]}
    )
    path = scene.settings.root / "fleet.parquet"
    pq.write_table(table, path)
    stamp = path.stat().st_mtime_ns + 1_000_000_000  # a distinct stamp on coarse clocks
    os.utime(path, ns=(stamp, stamp))
    (again,) = materialize(end=T0 + 3 * H, views="fleet", ctx=scene)
    assert (again.start_ms, again.rows) == (None, 3)  # from the beginning: new sources
    service = resolve_service(FeatureService("f", [fleet]), ctx=scene)
    got = OnlineReader(service, scene.online_store).read({"carrier": ["UA"]}, now=T0 + 3 * H)
    assert got["planes"] == [700]
    # Same sources again: incremental, nothing new.
    assert materialize(end=T0 + 3 * H, views="fleet", ctx=scene) == []
