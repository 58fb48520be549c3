"""The demo's data pillar: the flights arrive month by month as versions of one dataset.

January and February are added as they are, a suite is inferred from their profile (and
edited, as a person would: the dataset grows every month, so its row count has no upper
bound), and every later month is validated before its version is published. May arrives
corrupted — distances in kilometres and a third of the temperatures missing — so its
version is stored but quarantined with its report; the corrected file is added next. Each
version added starts the demo's pipeline (:mod:`plinth.demo.loop`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from plinth.validation import Suite

if TYPE_CHECKING:
    import pandas as pd

    from plinth.context import Context

__all__ = ["DATASET", "MONTHS", "DataStory", "corrupt", "version_flights"]

DATASET = "flights"
#: The months the demo uses: January to June to train, July and August as the holdout.
MONTHS = tuple(range(1, 9))
#: The month that arrives corrupted.
CORRUPTED_MONTH = 5
MILES_TO_KM = 1.609344


@dataclass(frozen=True)
class DataStory:
    """What the data step did: the version to train on and the one it quarantined."""

    train_ref: str
    quarantined_ref: str | None
    suite_path: Path
    versions: int


def corrupt(month: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """A unit change in ``distance`` (miles to kilometres) and 35% of ``temp`` missing."""
    import numpy as np

    bad = month.copy()
    bad["distance"] = (bad["distance"] * MILES_TO_KM).round().astype(bad["distance"].dtype)
    rng = np.random.default_rng(seed)
    bad.loc[rng.random(len(bad)) < 0.35, "temp"] = np.nan
    return bad


def _write(df: pd.DataFrame, path: Path) -> None:
    import pyarrow as pa

    from plinth.tables import write_parquet

    write_parquet(pa.Table.from_pandas(df, preserve_index=False), path)


#: Columns whose range does not move with the season: the demo keeps their range checks.
STABLE_RANGES = ("distance", "dep_hour", "day_of_week", "late")


def _infer(ctx: Context, ref: str, path: Path) -> Suite:
    from plinth.datasets import infer_suite

    inferred = infer_suite(ref, name=DATASET, ctx=ctx)
    # The edits a person makes: the dataset grows each month (no upper bound on rows), and
    # two winter months say nothing about summer weather, ids or months (no means, and
    # ranges only where they hold all year).
    kept = []
    for c in inferred.checks:
        if c.check == "row_count":
            c = type(c)(c.check, None, {"min": c.args.get("min", 1)}, c.severity, c.index)
        elif (
            c.check.endswith("_between")
            or (c.check == "between" and c.column not in STABLE_RANGES)
            or (c.check == "allowed_values" and c.severity == "warning")
        ):
            continue
        kept.append(c)
    suite = Suite(
        inferred.name,
        tuple(kept),
        header=(
            *inferred.header,
            "Edited by the demo: no maximum row count (the dataset grows monthly); no mean",
            "checks, ranges only on columns whose range holds all year, and no list of",
            "destinations (routes come and go with the seasons).",
        ),
    )
    path.write_text(suite.to_yaml(), encoding="utf-8")
    return Suite.load(path)


def version_flights(
    ctx: Context,
    directory: Path,
    data: pd.DataFrame,
    echo: Callable[[str], None] = print,
    *,
    months: tuple[int, ...] = MONTHS,
    after: Callable[[str], None] | None = None,
) -> DataStory:
    """Add the flights of ``months`` one by one, validating each month after the first
    two; ``after(ref)`` is called once each version is added (the loop runs its agent
    there). The suite is inferred once February is in."""
    from plinth import datasets

    suite_path = directory / "flights-suite.yaml"
    folder = directory / "data" / DATASET
    folder.mkdir(parents=True, exist_ok=True)
    suite: Suite | None = Suite.load(suite_path) if suite_path.is_file() else None
    quarantined: str | None = None
    for month in months:
        rows = data[data["month"] == month]
        path = folder / f"2013-{month:02d}.parquet"
        attempts = [corrupt(rows), rows] if month == CORRUPTED_MONTH else [rows]
        for frame in attempts:
            _write(frame, path)
            added = datasets.add(
                folder, DATASET, f"2013-{month:02d}", kind="table", suite=suite, ctx=ctx
            )
            v = added.version
            line = f"  {v.ref:<11} + 2013-{month:02d}  {v.row_count or 0:>8,} rows  {v.status}"
            if added.validation is not None:
                failed = added.validation.failures
                line += f"  ({len(added.validation.results) - len(failed)} checks passed"
                line += f", {len(failed)} failed)" if failed else ")"
                for failure in failed[:4]:
                    line += f"\n      failed: {failure.name} {failure.column or ''}".rstrip()
            echo(line)
            if v.status == "quarantined":
                quarantined = v.ref
            if after is not None:
                after(v.ref)
        if month == 2:
            suite = _infer(ctx, f"{DATASET}@latest", suite_path)
            echo(
                f"  inferred {len(suite.checks)} checks from {DATASET}@latest -> {suite_path.name}"
            )
    latest = datasets.get(f"{DATASET}@latest", ctx=ctx)
    return DataStory(latest.ref, quarantined, suite_path, latest.number)
