"""The point-in-time join, checked against a brute-force Python computation of its rules.

The rules (docs/features.md): event time <= entity time; TTL inclusive; the latest event time
wins, then the latest created timestamp (missing = earliest), then the later view row; every
entity row kept once, in input order; nulls where no valid value; naive times are UTC.
"""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pyarrow as pa
import pytest

from plinth.errors import UsageError
from plinth.features import ViewData, point_in_time_join

T0 = datetime(2024, 3, 1, tzinfo=UTC)
US = timedelta(microseconds=1)


def _utc(value: datetime | None) -> datetime | None:
    """The reference's reading of a time: naive means UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def reference(
    entity_rows: list[dict[str, Any]],
    view: ViewData,
    rows: list[dict[str, Any]],
    entity_timestamp: str = "event_timestamp",
) -> list[dict[str, Any]]:
    """Each entity row's features by the rules, one row at a time (no SQL, no sorting tricks)."""
    by_key: dict[tuple[Any, ...], list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for index, row in enumerate(rows):
        key = tuple(row[k] for k in view.join_keys)
        if None not in key and row[view.timestamp] is not None:
            by_key[key].append((index, row))
    out = []
    for entity in entity_rows:
        key = tuple(entity[k] for k in view.join_keys)
        at = _utc(entity[entity_timestamp])
        best: tuple[Any, ...] | None = None
        chosen: dict[str, Any] | None = None
        if at is not None and None not in key:
            for index, row in by_key.get(key, []):
                event = _utc(row[view.timestamp])
                assert event is not None
                if event > at:
                    continue
                created = _utc(row[view.created_timestamp]) if view.created_timestamp else None
                rank = (event, created is not None, created or T0, index)
                if best is None or rank > best:
                    best, chosen = rank, row
        expired = best is not None and view.ttl is not None and best[0] < at - view.ttl  # type: ignore[operator]
        if expired:
            chosen = None
        out.append({f: (chosen[f] if chosen is not None else None) for f in view.features})
    return out


def _random_view(
    rnd: random.Random,
    n: int,
    *,
    name: str,
    keys: dict[str, list[Any]],
    features: tuple[str, ...],
    ttl: timedelta | None,
    created: bool,
    tz: str | None = None,
) -> tuple[ViewData, list[dict[str, Any]]]:
    """``n`` rows on a coarse grid of times (many equal event and created times)."""
    zone = ZoneInfo(tz) if tz else None
    rows = []
    for _ in range(n):
        row: dict[str, Any] = {k: rnd.choice(values) for k, values in keys.items()}
        when = T0 + timedelta(minutes=rnd.randrange(0, 600))
        row["ts"] = when.astimezone(zone) if zone else when.replace(tzinfo=None)
        if created:
            row["created"] = (
                None if rnd.random() < 0.1 else T0 + timedelta(minutes=rnd.randrange(0, 5))
            )
        for f in features:
            row[f] = None if rnd.random() < 0.1 else rnd.randrange(1000)
        rows.append(row)
    ts_type = pa.timestamp("us", tz=tz)
    schema = [
        pa.field(k, pa.int64() if isinstance(v[0], int) else pa.string()) for k, v in keys.items()
    ]
    schema.append(pa.field("ts", ts_type))
    if created:
        schema.append(pa.field("created", pa.timestamp("us", tz="UTC")))
    schema.extend(pa.field(f, pa.int64()) for f in features)
    table = pa.Table.from_pylist(rows, schema=pa.schema(schema))
    view = ViewData(
        name=name,
        join_keys=tuple(keys),
        timestamp="ts",
        created_timestamp="created" if created else None,
        ttl=ttl,
        features=features,
        table=table,
    )
    return view, rows


def _random_entities(
    rnd: random.Random, n: int, keys: dict[str, list[Any]], tz: str | None
) -> tuple[pa.Table, list[dict[str, Any]]]:
    zone = ZoneInfo(tz) if tz else None
    rows: list[dict[str, Any]] = []
    for i in range(n):
        if rows and rnd.random() < 0.05:  # an exact duplicate of an earlier row
            rows.append(dict(rnd.choice(rows), label=i))
            continue
        row: dict[str, Any] = {
            k: rnd.choice([*values, values[0] + 10_000])
            if isinstance(values[0], int)
            else rnd.choice([*values, "nobody"])
            for k, values in keys.items()
        }
        if rnd.random() < 0.02:
            row[next(iter(keys))] = None
        when = T0 + timedelta(minutes=rnd.randrange(-30, 700))
        if rnd.random() < 0.3:
            when += rnd.choice([US, -US, timedelta(seconds=30)])
        row["event_timestamp"] = (
            None
            if rnd.random() < 0.01
            else (when.astimezone(zone) if zone else when.replace(tzinfo=None))
        )
        row["label"] = i
        rows.append(row)
    schema = [
        pa.field(k, pa.int64() if isinstance(v[0], int) else pa.string()) for k, v in keys.items()
    ]
    schema += [
        pa.field("event_timestamp", pa.timestamp("us", tz=tz)),
        pa.field("label", pa.int64()),
    ]
    return pa.Table.from_pylist(rows, schema=pa.schema(schema)), rows


def _column_rows(table: pa.Table, names: list[str]) -> list[dict[str, Any]]:
    return [
        dict(zip(names, values, strict=True))
        for values in zip(*(table.column(n).to_pylist() for n in names), strict=True)
    ]


@pytest.mark.parametrize(
    ("seed", "entity_tz", "view_tz", "created"),
    [(1, None, None, True), (2, "America/New_York", None, True), (3, "UTC", "Asia/Kolkata", False)],
)
def test_one_view_on_random_data_matches_the_brute_force_rules(
    seed: int, entity_tz: str | None, view_tz: str | None, created: bool
) -> None:
    rnd = random.Random(seed)
    keys = {"driver": list(range(40))}
    view, rows = _random_view(
        rnd,
        20_000,
        name="stats",
        keys=keys,
        features=("trips", "rating"),
        ttl=timedelta(minutes=45),
        created=created,
        tz=view_tz,
    )
    entities, entity_rows = _random_entities(rnd, 2_000, keys, entity_tz)

    out = point_in_time_join(entities, [view])

    assert out.num_rows == 2_000
    assert out.select(entities.column_names).equals(entities)  # order, duplicates, types kept
    got = _column_rows(out, ["trips", "rating"])
    want = reference(entity_rows, view, rows)
    assert got == want
    # The data does exercise the rules: values found, and nulls for several reasons.
    assert sum(r["trips"] is not None for r in got) > 500
    assert sum(r["trips"] is None for r in got) > 100


def test_several_views_with_different_keys_match_the_brute_force_rules() -> None:
    rnd = random.Random(7)
    drivers = list(range(30))
    riders = [f"r{i}" for i in range(20)]
    by_driver, rows_a = _random_view(
        rnd,
        20_000,
        name="driver",
        keys={"driver": drivers},
        features=("trips",),
        ttl=timedelta(hours=2),
        created=True,
    )
    by_pair, rows_b = _random_view(
        rnd,
        20_000,
        name="pair",
        keys={"driver": drivers, "rider": riders},
        features=("trips", "tips"),
        ttl=None,
        created=True,
        tz="Europe/Paris",
    )
    by_rider, rows_c = _random_view(
        rnd,
        5_000,
        name="rider",
        keys={"rider": riders},
        features=("score",),
        ttl=timedelta(0),
        created=False,
    )
    entities, entity_rows = _random_entities(
        rnd, 2_000, {"driver": drivers, "rider": riders}, "UTC"
    )

    out = point_in_time_join(entities, [by_driver, by_pair, by_rider], full_names=True)

    assert out.column_names == [
        *entities.column_names,
        "driver__trips",
        "pair__trips",
        "pair__tips",
        "rider__score",
    ]
    assert _column_rows(out, ["driver__trips"]) == [
        {"driver__trips": r["trips"]} for r in reference(entity_rows, by_driver, rows_a)
    ]
    assert _column_rows(out, ["pair__trips", "pair__tips"]) == [
        {"pair__trips": r["trips"], "pair__tips": r["tips"]}
        for r in reference(entity_rows, by_pair, rows_b)
    ]
    scores = [r["score"] for r in reference(entity_rows, by_rider, rows_c)]
    assert out.column("rider__score").to_pylist() == scores
    assert sum(s is not None for s in scores) > 10  # a TTL of zero: exact times only


def _view(rows: list[dict[str, Any]], **kwargs: Any) -> ViewData:
    fields = {
        "name": "v",
        "join_keys": ("id",),
        "timestamp": "ts",
        "created_timestamp": None,
        "ttl": None,
        "features": ("x",),
    }
    fields.update(kwargs)
    return ViewData(table=pa.Table.from_pylist(rows), **fields)


def _entities(*rows: tuple[int, datetime | None]) -> pa.Table:
    return pa.table(
        {
            "id": pa.array([r[0] for r in rows], pa.int64()),
            "event_timestamp": pa.array([r[1] for r in rows], pa.timestamp("us", tz="UTC")),
        }
    )


def _x(table: pa.Table, name: str = "x") -> list[Any]:
    return table.column(name).to_pylist()


def test_a_feature_stamped_exactly_at_the_entity_time_is_used_and_a_later_one_is_not() -> None:
    view = _view(
        [
            {"id": 1, "ts": T0, "x": 1},
            {"id": 1, "ts": T0 + US, "x": 2},
        ]
    )
    assert _x(point_in_time_join(_entities((1, T0), (1, T0 + US), (1, T0 - US)), [view])) == [
        1,
        2,
        None,
    ]


def test_the_latest_created_timestamp_wins_a_tie_of_event_times() -> None:
    rows = [
        {"id": 1, "ts": T0, "created": T0 + timedelta(hours=2), "x": 2},
        {"id": 1, "ts": T0, "created": T0 + timedelta(hours=3), "x": 3},  # the latest
        {"id": 1, "ts": T0, "created": T0 + timedelta(hours=1), "x": 1},
        {"id": 1, "ts": T0, "created": None, "x": 0},  # missing counts as the earliest
    ]
    view = _view(rows, created_timestamp="created")
    assert _x(point_in_time_join(_entities((1, T0)), [view])) == [3]
    # Without a created timestamp, the later row of the table wins.
    assert _x(point_in_time_join(_entities((1, T0)), [_view(rows)])) == [0]
    # A later event time beats any created timestamp.
    later = [*rows, {"id": 1, "ts": T0 + US, "created": T0, "x": 9}]
    assert _x(
        point_in_time_join(_entities((1, T0 + US)), [_view(later, created_timestamp="created")])
    ) == [9]


def test_the_ttl_boundary_is_inclusive_and_one_microsecond_past_it_is_null() -> None:
    view = _view([{"id": 1, "ts": T0, "x": 1}], ttl=timedelta(days=7))
    edge = T0 + timedelta(days=7)
    out = point_in_time_join(_entities((1, edge), (1, edge + US), (1, edge - US)), [view])
    assert _x(out) == [1, None, 1]


def test_a_ttl_of_zero_keeps_only_values_stamped_at_the_entity_time() -> None:
    view = _view([{"id": 1, "ts": T0, "x": 1}], ttl=timedelta(0))
    assert _x(point_in_time_join(_entities((1, T0), (1, T0 + US)), [view])) == [1, None]


def test_an_expired_latest_value_is_not_replaced_by_an_older_one() -> None:
    view = _view(
        [{"id": 1, "ts": T0, "x": 1}, {"id": 1, "ts": T0 - timedelta(days=30), "x": 0}],
        ttl=timedelta(days=1),
    )
    assert _x(point_in_time_join(_entities((1, T0 + timedelta(days=2))), [view])) == [None]


def test_every_entity_row_comes_back_once_in_input_order_with_nulls_where_nothing_is_valid() -> (
    None
):
    view = _view(
        [
            {"id": 1, "ts": T0, "x": 10},
            {"id": 2, "ts": T0 + timedelta(days=1), "x": 20},  # only a later version for id 2
        ]
    )
    entities = _entities(
        (1, T0 + timedelta(hours=1)),
        (2, T0),  # only later versions exist
        (3, T0),  # no features at all
        (1, T0 + timedelta(hours=1)),  # a duplicate row
        (1, None),  # no time
        (1, T0 + timedelta(hours=1)),  # and again
    )
    out = point_in_time_join(entities, [view])
    assert _x(out, "id") == [1, 2, 3, 1, 1, 1]
    assert _x(out) == [10, None, None, 10, None, 10]


def test_a_null_feature_value_in_the_chosen_row_stays_null() -> None:
    view = _view([{"id": 1, "ts": T0, "x": 1}, {"id": 1, "ts": T0 + US, "x": None}])
    assert _x(point_in_time_join(_entities((1, T0 + US)), [view])) == [None]


def test_a_null_key_matches_nothing() -> None:
    view = _view([{"id": None, "ts": T0, "x": 1}, {"id": 1, "ts": T0, "x": 2}])
    out = point_in_time_join(
        _entities((1, T0)).set_column(0, "id", pa.array([None], pa.int64())), [view]
    )
    assert _x(out) == [None]


def test_time_zones_are_compared_as_instants_and_naive_times_are_utc() -> None:
    paris = ZoneInfo("Europe/Paris")
    # 12:00 in Paris (winter, UTC+1) is 11:00 UTC; the view is naive (UTC).
    view = _view(
        [
            {"id": 1, "ts": datetime(2024, 1, 15, 11, 0), "x": 1},
            {"id": 1, "ts": datetime(2024, 1, 15, 11, 0, 0, 1), "x": 2},
        ]
    )
    entities = pa.table(
        {
            "id": [1, 1],
            "event_timestamp": pa.array(
                [
                    datetime(2024, 1, 15, 12, 0, tzinfo=paris),
                    datetime(2024, 1, 15, 12, 30, tzinfo=paris),
                ],
                pa.timestamp("us", tz="Europe/Paris"),
            ),
        }
    )
    out = point_in_time_join(entities, [view])
    assert _x(out) == [1, 2]
    assert out.schema.field("event_timestamp").type == pa.timestamp("us", tz="Europe/Paris")
    # Naive entities against a tz-aware view: the same instants.
    naive = pa.table(
        {"id": [1], "event_timestamp": pa.array([datetime(2024, 1, 15, 11, 0)], pa.timestamp("s"))}
    )
    aware = _view([{"id": 1, "ts": datetime(2024, 1, 15, 12, 0, tzinfo=paris), "x": 7}])
    assert _x(point_in_time_join(naive, [aware])) == [7]


def test_nanoseconds_are_compared_exactly() -> None:
    base = 1_700_000_000_000_000_000
    view = ViewData(
        "v",
        ("id",),
        "ts",
        None,
        timedelta(microseconds=1),
        ("x",),
        pa.table(
            {
                "id": [1, 1],
                "ts": pa.array([base, base + 1], pa.timestamp("ns")),
                "x": [1, 2],
            }
        ),
    )
    entities = pa.table(
        {
            "id": [1, 1, 1, 1],
            "event_timestamp": pa.array(
                [base, base + 1, base + 1_001, base + 1_002], pa.timestamp("ns")
            ),
        }
    )
    # The TTL (1 us = 1,000 ns) is inclusive to the nanosecond.
    assert _x(point_in_time_join(entities, [view])) == [1, 2, 2, None]


def test_pandas_entities_and_views_give_the_same_answer() -> None:
    pd = pytest.importorskip("pandas")
    rows = [{"id": 1, "ts": T0, "x": 1.5}, {"id": 2, "ts": T0, "x": 2.5}]
    view = ViewData("v", ("id",), "ts", None, None, ("x",), pd.DataFrame(rows))
    entities = pd.DataFrame({"id": [2, 1, 3], "event_timestamp": pd.to_datetime([T0, T0, T0])})
    out = point_in_time_join(entities, [view])
    assert isinstance(out, pa.Table)
    assert _x(out) == [2.5, 1.5, None]


def test_polars_entities_work() -> None:
    pl = pytest.importorskip("polars")
    view = _view([{"id": 1, "ts": T0, "x": 1}])
    entities = pl.DataFrame({"id": [1], "event_timestamp": [T0]})
    assert _x(point_in_time_join(entities, [view])) == [1]


def test_dates_are_midnight_utc() -> None:
    view = _view([{"id": 1, "ts": datetime(2024, 1, 2), "x": 1}])
    entities = pa.table(
        {
            "id": [1, 1],
            "event_timestamp": pa.array(
                [datetime(2024, 1, 1).date(), datetime(2024, 1, 2).date()], pa.date32()
            ),
        }
    )
    assert _x(point_in_time_join(entities, [view])) == [None, 1]


def test_colliding_feature_names_are_refused_unless_prefixed() -> None:
    a = _view([{"id": 1, "ts": T0, "x": 1}], name="a")
    b = _view([{"id": 1, "ts": T0, "x": 2}], name="b")
    with pytest.raises(UsageError, match="already a feature of view 'a'") as info:
        point_in_time_join(_entities((1, T0)), [a, b])
    assert info.value.field == "views['b'].features"
    assert "full_names=True" in info.value.hint
    out = point_in_time_join(_entities((1, T0)), [a, b], full_names=True)
    assert _x(out, "a__x") == [1]
    assert _x(out, "b__x") == [2]
    # A feature named like an entity column is refused too.
    with pytest.raises(UsageError, match="already an entity column"):
        point_in_time_join(
            _entities((1, T0)), [_view([{"id": 1, "ts": T0, "x": 1}], features=("id",))]
        )


@pytest.mark.parametrize(
    ("entities", "view", "field", "message"),
    [
        (
            _entities((1, T0)).rename_columns(["id", "when"]),
            {},
            "entities",
            "no column 'event_timestamp'",
        ),
        (_entities((1, T0)), {"join_keys": ("user",)}, "views['v'].join_keys", "no column 'user'"),
        (_entities((1, T0)), {"features": ("y",)}, "views['v'].table", "no column 'y'"),
        (_entities((1, T0)), {"ttl": timedelta(seconds=-1)}, "views['v'].ttl", "negative ttl"),
        (_entities((1, T0)), {"timestamp": "x"}, "views['v'].timestamp", "not a timestamp"),
        (
            pa.table(
                {"id": ["1"], "event_timestamp": pa.array([T0], pa.timestamp("us", tz="UTC"))}
            ),
            {},
            "views['v'].join_keys",
            "'id' is string in the entities and int64",
        ),
    ],
)
def test_bad_inputs_are_refused_with_the_field_named(
    entities: pa.Table, view: dict[str, Any], field: str, message: str
) -> None:
    with pytest.raises(UsageError, match=message) as info:
        point_in_time_join(entities, [_view([{"id": 1, "ts": T0, "x": 1}], **view)])
    assert info.value.field == field


def test_a_view_without_join_keys_applies_to_every_entity_row() -> None:
    view = _view([{"ts": T0, "x": 1}, {"ts": T0 + timedelta(hours=1), "x": 2}], join_keys=())
    assert _x(
        point_in_time_join(_entities((5, T0 + timedelta(minutes=5)), (6, T0 - US)), [view])
    ) == [1, None]
