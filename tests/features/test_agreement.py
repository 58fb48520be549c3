"""Offline/online agreement: materialize then read = the training set's last row per key.

Random rows with every edge the point-in-time join handles (equal event times,
created-timestamp ties, no created timestamp, null feature values, values exactly one TTL
old and one minute older, keys without rows, composite keys), materialized in two windows
with a push in between; the online read as of the window's end equals the training set
whose entity rows are every key at that time.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from plinth.context import Context
from plinth.features.definitions import Entity, FeatureService, FeatureView, parquet
from plinth.features.materialize import materialize
from plinth.features.online import get_online_features
from plinth.features.push import push
from plinth.features.training import get_training_set

T0 = datetime(2026, 3, 1, tzinfo=UTC)
MIN = timedelta(minutes=1)
UTC_US = pa.timestamp("us", "UTC")

plane = Entity("plane", ["tailnum"])
route = Entity("route", ["origin", "dest"])
planes = FeatureView(
    "planes",
    [plane],
    parquet("planes.parquet"),
    timestamp="at",
    created_timestamp="loaded",
    ttl="1h",
    features={"age": "float64", "seats": "int64", "maker": "string", "serviced": "timestamp"},
)
routes = FeatureView(
    "routes",
    [route],
    parquet("routes.parquet"),
    timestamp="day",
    features={"mean_delay": "float64", "busy": "bool"},
)
service = FeatureService("agree", [planes, routes])
AIRPORTS = ["JFK", "LGA", "EWR", "BOS"]


def _maybe(rng: random.Random, value: Any) -> Any:
    return None if rng.random() < 0.1 else value


def _write_sources(root: Any, rng: random.Random) -> None:
    n = 2000
    minutes = [rng.randrange(0, 300) for _ in range(n)]
    loaded = [rng.choice([None, 0, 1, 2]) for _ in range(n)]
    pq.write_table(
        pa.table(
            {
                "tailnum": [rng.randrange(0, 150) for _ in range(n)],
                "at": pa.array([T0 + m * MIN for m in minutes], UTC_US),
                "loaded": pa.array(
                    [None if c is None else T0 + timedelta(days=c) for c in loaded], UTC_US
                ),
                "age": [_maybe(rng, rng.random() * 30) for _ in range(n)],
                "seats": [_maybe(rng, rng.randrange(50, 400)) for _ in range(n)],
                "maker": [_maybe(rng, rng.choice(["boeing", "airbus"])) for _ in range(n)],
                "serviced": pa.array(
                    [_maybe(rng, T0 - rng.randrange(0, 900) * MIN) for _ in range(n)], UTC_US
                ),
            }
        ),
        root / "planes.parquet",
    )
    m = 600
    pq.write_table(
        pa.table(
            {
                "origin": [rng.choice(AIRPORTS) for _ in range(m)],
                "dest": [rng.choice(AIRPORTS) for _ in range(m)],
                "day": pa.array([T0 + rng.randrange(0, 300) * MIN for _ in range(m)], UTC_US),
                "mean_delay": [_maybe(rng, rng.random() * 60) for _ in range(m)],
                "busy": [_maybe(rng, rng.random() < 0.5) for _ in range(m)],
            }
        ),
        root / "routes.parquet",
    )


def _entities(at: datetime) -> pa.Table:
    tails = [t for t in range(160) for _ in AIRPORTS for _ in AIRPORTS][: 160 * 16]
    pairs = [(o, d) for _ in range(160) for o in AIRPORTS for d in AIRPORTS]
    return pa.table(
        {
            "tailnum": tails,  # 150..159 have no rows
            "origin": [o for o, _ in pairs],
            "dest": [d for _, d in pairs],
            "event_timestamp": pa.array([at] * len(tails), UTC_US),
        }
    )


def _agree(ctx: Context, at: datetime) -> None:
    entities = _entities(at)
    offline = get_training_set(entities, service, ctx=ctx)
    keys = {k: entities.column(k).to_pylist() for k in ("tailnum", "origin", "dest")}
    online = get_online_features(service, keys, now=at, ctx=ctx)
    assert list(online) == ["tailnum", "origin", "dest", *service_features()]
    for name in service_features():
        assert online[name] == offline.column(name).to_pylist(), name


def service_features() -> list[str]:
    return [*planes.features, *routes.features]


def test_materialize_then_read_equals_the_training_sets_last_row_per_key(
    online_project: Context, record_definitions: Callable[..., Any]
) -> None:
    rng = random.Random(14)
    _write_sources(online_project.settings.root, rng)
    record_definitions(online_project, plane, route, planes, routes, service)

    first = T0 + 150 * MIN  # rows exactly 1h old at this time are still valid
    materialize(end=first, ctx=online_project)
    _agree(online_project, first)

    push(
        "planes",
        [
            {"tailnum": 3, "at": first + 5 * MIN, "age": 1.5, "seats": 99},
            {"tailnum": 155, "at": first + 7 * MIN, "maker": "embraer"},  # a new key
            {"tailnum": 4, "at": T0 - MIN, "age": 77.0},  # older than anything: no effect
        ],
        ctx=online_project,
    )
    second = T0 + 240 * MIN
    done = materialize(end=second, ctx=online_project)
    assert {m.start_ms for m in done} == {int(first.timestamp() * 1000)}
    _agree(online_project, second)
    values = get_online_features(service, {"tailnum": [155], "origin": ["JFK"], "dest": ["BOS"]})
    assert values["maker"] == [None]  # pushed at first+7min: expired (1h TTL) by second
