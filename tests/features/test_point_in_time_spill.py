"""The point-in-time join out of core: past DuckDB's memory limit it spills to a private
folder (``spill_root``) and gives the same table as in memory; training sets spill under the
project's data folder."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import plinth
from plinth.context import Context
from plinth.errors import UsageError
from plinth.features import ViewData, point_in_time_join
from plinth.features.definitions import Entity, FeatureService, FeatureView
from plinth.features.training import get_training_set
from plinth.guards import sql

#: Sized so the join needs several times LIMIT (it fails without a spill folder) and still
#: takes about 2 s on 2 cores with one.
ROWS = 400_000
LIMIT = "40MB"


def _tables() -> tuple[pa.Table, ViewData]:
    rng = np.random.default_rng(7)
    start = np.datetime64("2024-01-01T00:00:00", "us")
    span = 90 * 86_400 * 1_000_000
    entities = pa.table(
        {
            "user": rng.integers(0, ROWS // 10, ROWS),
            "event_timestamp": start + rng.integers(0, span, ROWS).astype("timedelta64[us]"),
        }
    )
    rows = pa.table(
        {
            "user": rng.integers(0, ROWS // 10, ROWS),
            "ts": start + rng.integers(0, span, ROWS).astype("timedelta64[us]"),
            "spend": rng.random(ROWS),
        }
    )
    view = ViewData("u", ("user",), "ts", None, timedelta(days=7), ("spend",), rows)
    return entities, view


def test_a_join_past_the_memory_limit_spills_and_matches_the_in_memory_join(
    tmp_path: Path,
) -> None:
    import duckdb

    entities, view = _tables()
    expected = point_in_time_join(entities, [view])
    assert expected.column("spend").null_count < ROWS  # the join finds values

    with pytest.raises(duckdb.OutOfMemoryException):  # the limit binds: no spill, no result
        point_in_time_join(entities, [view], memory_limit=LIMIT)

    root = tmp_path / "tmp"
    spilled = point_in_time_join(entities, [view], spill_root=root, memory_limit=LIMIT)
    assert spilled.equals(expected)
    assert list(root.iterdir()) == []  # the private spill folder is gone


def test_a_memory_limit_that_is_not_a_size_is_refused(tmp_path: Path) -> None:
    entities, view = _tables()
    with pytest.raises(UsageError) as caught:
        point_in_time_join(entities.slice(0, 5), [view], spill_root=tmp_path, memory_limit="x")
    assert caught.value.field == "memory_limit"
    assert list(tmp_path.iterdir()) == []


def test_training_sets_join_in_a_spill_folder_under_the_data_dir(
    project: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[Path, str]] = []
    real = sql.spill_connection

    @contextlib.contextmanager
    def spy(root: Path, **kwargs: Any) -> Iterator[Any]:
        with real(root, **kwargs) as con:
            ((folder,),) = con.execute("SELECT current_setting('temp_directory')").fetchall()
            seen.append((root, folder))
            yield con

    monkeypatch.setattr(sql, "spill_connection", spy)
    day = datetime(2024, 1, 1)
    weather = pa.table(
        {
            "station": ["A", "B"],
            "ts": pa.array([day, day + timedelta(days=1)], pa.timestamp("us")),
            "temp": [1.0, 2.0],
        }
    )
    plinth.datasets.save(weather, "weather", ctx=project)
    view = FeatureView(
        "w", [Entity("station", ["station"])], "weather", "ts", features={"temp": "float64"}
    )
    entities = pa.table(
        {
            "station": ["A", "B", "B"],
            "event_timestamp": pa.array([day, day, day + timedelta(days=2)], pa.timestamp("us")),
        }
    )
    out = get_training_set(entities, FeatureService("s", [view]), ctx=project)

    assert out.column("temp").to_pylist() == [1.0, None, 2.0]
    data_tmp = project.settings.data_dir / "tmp"
    assert [root for root, _ in seen] == [data_tmp]
    folder = Path(seen[0][1])
    assert folder.parent == data_tmp.resolve()
    assert folder.name.startswith("duckdb-spill-")
    assert not folder.exists()
