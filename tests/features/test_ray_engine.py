"""The correctness suite of the point-in-time join, run on both engines: DuckDB in-process
and the same join sharded by entity key over Ray tasks (a local Ray cluster, started once
per session by the shared ``ray_cluster`` fixture of tests/conftest.py, ~7 s).

Each edge case of the issue is one parametrised case; a randomised several-view case checks
the Ray engine against the DuckDB one row by row (DuckDB itself is checked against a
brute-force computation in test_point_in_time.py).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

import plinth
from plinth.context import Context
from plinth.errors import UsageError
from plinth.features.definitions import Entity, FeatureService, FeatureView
from plinth.features.offline import ViewData, point_in_time_join
from plinth.features.training import get_training_set

T0 = datetime(2024, 3, 1, tzinfo=UTC)
US = timedelta(microseconds=1)

Join = Callable[..., pa.Table]


@pytest.fixture
def ray_project(project_dir: Path, migrated_ledger: Path, ray_cluster: Any) -> Iterator[Context]:
    """A project whose features_engine is ray, in 3 shards (more than the CPUs)."""
    import shutil

    (project_dir / ".plinth").mkdir()
    shutil.copyfile(migrated_ledger, project_dir / ".plinth" / "plinth.db")
    ctx = plinth.init(project_dir, system_metrics=False, features_engine="ray", features_shards=3)
    yield ctx
    ctx.close()


@pytest.fixture(params=["duckdb", "ray"])
def join(request: pytest.FixtureRequest) -> Join:
    """``join(entities, views, **kwargs)`` on the engine of the param."""
    if request.param == "duckdb":
        return point_in_time_join
    from plinth.features.ray_engine import ray_point_in_time_join

    ctx = request.getfixturevalue("ray_project")

    def on_ray(entities: Any, views: list[ViewData], **kwargs: Any) -> pa.Table:
        return ray_point_in_time_join(entities, views, ctx=ctx, **kwargs)

    return on_ray


def _view(rows: list[dict[str, Any]], **kwargs: Any) -> ViewData:
    fields: dict[str, Any] = {
        "name": "v",
        "join_keys": ("id",),
        "timestamp": "ts",
        "created_timestamp": None,
        "ttl": None,
        "features": ("x",),
    }
    fields.update(kwargs)
    return ViewData(table=pa.Table.from_pylist(rows), **fields)


def _entities(*rows: tuple[int | None, datetime | None]) -> pa.Table:
    return pa.table(
        {
            "id": pa.array([r[0] for r in rows], pa.int64()),
            "event_timestamp": pa.array([r[1] for r in rows], pa.timestamp("us", tz="UTC")),
        }
    )


PARIS = ZoneInfo("Europe/Paris")
TIE = [
    {"id": 1, "ts": T0, "created": T0 + timedelta(hours=2), "x": 2},
    {"id": 1, "ts": T0, "created": T0 + timedelta(hours=3), "x": 3},
    {"id": 1, "ts": T0, "created": T0 + timedelta(hours=1), "x": 1},
    {"id": 1, "ts": T0, "created": None, "x": 0},
]

# name -> (entity rows, view rows, view options, expected x per entity row)
CASES: dict[str, tuple[pa.Table, list[dict[str, Any]], dict[str, Any], list[Any]]] = {
    "equal timestamps: at the entity time is used, later is not": (
        _entities((1, T0), (1, T0 + US), (1, T0 - US)),
        [{"id": 1, "ts": T0, "x": 1}, {"id": 1, "ts": T0 + US, "x": 2}],
        {},
        [1, 2, None],
    ),
    "created-timestamp ties: the latest created wins": (
        _entities((1, T0)),
        TIE,
        {"created_timestamp": "created"},
        [3],
    ),
    "without a created timestamp the later row wins": (_entities((1, T0)), TIE, {}, [0]),
    "ttl boundary inclusive, a microsecond past is null": (
        _entities((1, T0 + timedelta(days=7)), (1, T0 + timedelta(days=7) + US)),
        [{"id": 1, "ts": T0, "x": 1}],
        {"ttl": timedelta(days=7)},
        [1, None],
    ),
    "ttl of zero: exact times only": (
        _entities((1, T0), (1, T0 + US)),
        [{"id": 1, "ts": T0, "x": 1}],
        {"ttl": timedelta(0)},
        [1, None],
    ),
    "an expired value is not replaced by an older one": (
        _entities((1, T0 + timedelta(days=2))),
        [{"id": 1, "ts": T0, "x": 1}, {"id": 1, "ts": T0 - timedelta(days=30), "x": 0}],
        {"ttl": timedelta(days=1)},
        [None],
    ),
    "duplicate entity rows kept, entities without features, only later versions": (
        _entities((1, T0), (2, T0), (3, T0), (1, T0), (1, None), (1, T0)),
        [{"id": 1, "ts": T0 - US, "x": 10}, {"id": 2, "ts": T0 + US, "x": 20}],
        {},
        [10, None, None, 10, None, 10],
    ),
    "a null feature in the chosen row stays null": (
        _entities((1, T0 + US)),
        [{"id": 1, "ts": T0, "x": 1}, {"id": 1, "ts": T0 + US, "x": None}],
        {},
        [None],
    ),
    "a null key matches nothing": (
        _entities((None, T0), (1, T0)),
        [{"id": None, "ts": T0, "x": 1}, {"id": 1, "ts": T0, "x": 2}],
        {},
        [None, 2],
    ),
    "time zones: instants, naive is UTC": (
        pa.table(
            {
                "id": [1, 1],
                "event_timestamp": pa.array(
                    [datetime(2024, 1, 15, 12, 0, tzinfo=PARIS), datetime(2024, 1, 15, 13, 0)],
                    pa.timestamp("us", tz="Europe/Paris"),
                ),
            }
        ),
        [
            {"id": 1, "ts": datetime(2024, 1, 15, 11, 0), "x": 1},  # naive: 12:00 Paris
            {"id": 1, "ts": datetime(2024, 1, 15, 11, 0, 0, 1), "x": 2},
        ],
        {},
        [1, 2],
    ),
    "a view without join keys applies to every row (broadcast)": (
        _entities((5, T0 + timedelta(minutes=5)), (6, T0 - US), (7, T0)),
        [{"ts": T0, "x": 1}, {"ts": T0 + timedelta(hours=1), "x": 2}],
        {"join_keys": ()},
        [1, None, 1],
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_edge_cases_on_both_engines(join: Join, case: str) -> None:
    entities, rows, options, expected = CASES[case]
    out = join(entities, [_view(rows, **options)])
    assert out.column("x").to_pylist() == expected
    assert out.select(entities.column_names).equals(entities)


def _random_rows(
    rnd: random.Random, n: int, keys: dict[str, list[Any]], features: tuple[str, ...]
) -> list[dict[str, Any]]:
    rows = []
    for _ in range(n):
        row: dict[str, Any] = {k: rnd.choice(v) for k, v in keys.items()}
        row["ts"] = T0 + timedelta(minutes=rnd.randrange(0, 600))
        row["created"] = None if rnd.random() < 0.2 else T0 + timedelta(minutes=rnd.randrange(3))
        for f in features:
            row[f] = None if rnd.random() < 0.05 else rnd.randrange(1000)
        rows.append(row)
    return rows


def test_ray_gives_the_duckdb_answer_on_random_data_with_several_views(
    ray_project: Context,
) -> None:
    from plinth.features.ray_engine import ray_point_in_time_join

    rnd = random.Random(11)
    drivers, riders = list(range(50)), [f"r{i}" for i in range(30)]
    views = [
        _view(
            _random_rows(rnd, 5_000, {"driver": drivers}, ("trips",)),
            name="driver",
            join_keys=("driver",),
            created_timestamp="created",
            ttl=timedelta(hours=2),
            features=("trips",),
        ),
        _view(
            _random_rows(rnd, 5_000, {"rider": riders, "driver": drivers}, ("tips", "n")),
            name="pair",
            join_keys=("rider", "driver"),
            created_timestamp="created",
            features=("tips", "n"),
        ),
        _view(
            _random_rows(rnd, 200, {}, ("level",)),
            name="global",
            join_keys=(),
            ttl=timedelta(minutes=30),
            features=("level",),
        ),
    ]
    entity_rows = [
        {
            "driver": rnd.choice([*drivers, 999]),
            "rider": rnd.choice(riders),
            "event_timestamp": T0 + timedelta(minutes=rnd.randrange(-10, 620)),
            "label": i,
        }
        for i in range(3_000)
    ]
    entities = pa.Table.from_pylist(entity_rows)

    want = point_in_time_join(entities, views, full_names=True)
    got = ray_point_in_time_join(entities, views, full_names=True, ctx=ray_project)

    assert got.equals(want)
    assert sum(v is not None for v in got.column("pair__tips").to_pylist()) > 300


def test_ray_refuses_bad_input_as_duckdb_does(ray_project: Context) -> None:
    from plinth.features.ray_engine import ray_point_in_time_join

    view = _view([{"id": 1, "ts": T0, "x": 1}], join_keys=("user",))
    with pytest.raises(UsageError) as duck:
        point_in_time_join(_entities((1, T0)), [view])
    with pytest.raises(UsageError) as ray_error:
        ray_point_in_time_join(_entities((1, T0)), [view], ctx=ray_project)
    assert ray_error.value.field == duck.value.field == "views['v'].join_keys"


def test_no_entity_rows_give_an_empty_result_with_the_feature_columns(
    ray_project: Context,
) -> None:
    from plinth.features.ray_engine import ray_point_in_time_join

    view = _view([{"id": 1, "ts": T0, "x": 1}])
    entities = _entities((1, T0)).slice(0, 0)
    got = ray_point_in_time_join(entities, [view], ctx=ray_project)
    assert got.equals(point_in_time_join(entities, [view]))


def test_get_training_set_on_the_ray_engine_equals_the_duckdb_one(ray_project: Context) -> None:
    table = pa.table(
        {
            "station": ["A", "B", "A", "C"],
            "ts": pa.array([T0, T0, T0 + timedelta(days=1), T0 - timedelta(days=3)]),
            "temp": [1.0, 2.0, 3.0, 4.0],
        }
    )
    plinth.datasets.save(table, "weather", ctx=ray_project)
    view = FeatureView(
        "w",
        [Entity("station", ["station"])],
        "weather",
        "ts",
        ttl="2d",
        features={"temp": "float64"},
    )
    service = FeatureService("s", [view])
    on_ray = get_training_set(
        service, start=T0, end=T0 + timedelta(days=3), every="1d", ctx=ray_project
    )
    duck_ctx = plinth.init(ray_project.settings.root, system_metrics=False)
    try:
        on_duck = get_training_set(
            service, start=T0, end=T0 + timedelta(days=3), every="1d", ctx=duck_ctx
        )
    finally:
        duck_ctx.close()
    assert on_ray.equals(on_duck)
    # C (first seen 3 days before) comes first and is always expired; A, then B.
    assert on_ray.column("station").to_pylist() == ["C", "A", "B"] * 4
    assert on_ray.column("temp").to_pylist() == [
        *(None, 1.0, 2.0),
        *(None, 3.0, 2.0),
        *(None, 3.0, 2.0),  # B's value is exactly 2 days old: the TTL is inclusive
        *(None, 3.0, None),
    ]


def test_the_ray_engine_needs_a_store_the_workers_can_read(
    project_dir: Path, migrated_ledger: Path
) -> None:
    import shutil

    from plinth.features.ray_engine import ray_point_in_time_join

    (project_dir / ".plinth").mkdir()
    shutil.copyfile(migrated_ledger, project_dir / ".plinth" / "plinth.db")
    ctx = plinth.init(
        project_dir, system_metrics=False, features_engine="ray", artifacts="memory://ray-test"
    )
    try:
        with pytest.raises(UsageError, match="memory://") as info:
            ray_point_in_time_join(
                _entities((1, T0)), [_view([{"id": 1, "ts": T0, "x": 1}])], ctx=ctx
            )
        assert info.value.field == "features_engine"
    finally:
        ctx.close()


def test_the_duckdb_engine_never_imports_ray(tmp_path: Path) -> None:
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(
        """
        import sys
        from datetime import datetime
        import pyarrow as pa
        import plinth
        from plinth.features.definitions import Entity, FeatureService, FeatureView
        from plinth.features.training import get_training_set
        ctx = plinth.init(".", system_metrics=False)
        plinth.datasets.save(pa.table({"k": [1], "ts": [datetime(2024, 1, 1)], "x": [1.0]}), "d")
        view = FeatureView("v", [Entity("e", ["k"])], "d", "ts", features={"x": "float64"})
        out = get_training_set(FeatureService("s", [view]), start="2024-01-02", ctx=ctx)
        assert out.column("x").to_pylist() == [1.0]
        print("ray" in sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["False"]


def test_engine_settings_are_checked(project_dir: Path) -> None:
    from plinth.errors import ConfigError
    from plinth.settings import load_settings

    with pytest.raises(ConfigError) as info:
        load_settings(project_dir, env={"PLINTH_FEATURES_ENGINE": "spark"})
    assert info.value.field == "features_engine"
    with pytest.raises(ConfigError) as info:
        load_settings(project_dir, env={"PLINTH_FEATURES_SHARDS": "-1"})
    assert info.value.field == "features_shards"
    settings = load_settings(project_dir, env={"PLINTH_RAY_ADDRESS": "ray://head:10001"})
    assert (settings.features_engine, settings.ray_address, settings.features_shards) == (
        "duckdb",
        "ray://head:10001",
        0,
    )
