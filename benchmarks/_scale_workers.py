"""The scale benchmark's own workers: its inputs and its run-tracking steps.

``benchmarks/scale.py`` runs ``python _scale_workers.py worker:NAME JSON`` in a fresh
process (plinth's interpreter, in the size's work folder); each prints one ``RESULT {json}``
line. The measured operations of the other families run in the workers of the benchmark
that owns them (``validation.py``, ``monitoring.py``, ``_features_workers.py``) or, for
commands, through ``_scale_cli.py``; the inputs come from those benchmarks' generators.
"""

from __future__ import annotations

import sqlite3
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import dispatch_worker, peak_rss_mb, print_result

#: The columns of ``monitoring.make_table`` the rows family keeps (10M rows x 18 columns would
#: take gigabytes): three floats, two of them drifted in the current table, two categoricals,
#: one drifted, and an integer.
ROW_COLUMNS = ["price", "temperature", "pressure", "country", "channel", "age"]
ROW_DRIFTED = ["channel", "pressure", "temperature"]
#: Rows per generated chunk: the tables are written chunk by chunk, so memory stays flat.
ROW_CHUNK = 1_000_000
#: Per entity: rows in each materialized view, rows of the point-in-time join's view.
MAT_ROWS_PER_ENTITY = 4
PIT_FEATURE_ROWS_PER_ENTITY = 10
FILES_PER_FOLDER = 100


# ---- runs ---------------------------------------------------------------------------------


def _count_runs(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT count(*) FROM runs").fetchone()[0])


def runs_fill(args: dict[str, Any]) -> dict[str, Any]:
    """A fresh project in the work folder holding ``n`` finished runs, inserted in bulk.

    One run goes through the API first (it creates the project row); then ``ui_runs.fill``
    inserts the runs (3 params, 3 metrics, a tag each) with one ``executemany`` per table.
    """
    from ui_runs import fill

    import plinth

    plinth.init(".", system_metrics=False)
    with plinth.start_run(experiment="seed"):
        pass
    db = Path(".plinth/plinth.db")
    start = time.perf_counter()
    fill(db, args["n"], 0)  # 0 chart points: one more run (ui_runs' chart run), no history
    fill_s = time.perf_counter() - start
    count = _count_runs(db)
    if count != args["n"] + 2:  # the seed run and the chart run
        raise AssertionError(f"expected {args['n'] + 2} runs after the fill, found {count}")
    return {"fill_s": fill_s, "runs": count}


def runs_create(args: dict[str, Any]) -> dict[str, Any]:
    """``k`` runs through the API into the project of the work folder: start, 10 params,
    10 metrics, 3 tags, end (system metrics off); the time per run at this ledger size."""
    import plinth

    plinth.init(".", system_metrics=False)
    db = Path(".plinth/plinth.db")
    before = _count_runs(db)
    k = args["k"]
    values = [
        ({f"p{j}": f"{(i * 10 + j) / 7:.6f}" for j in range(10)},
         {f"m{j}": (i * 10 + j) / 1000 for j in range(10)},
         {"team": "bench", "model": f"model-{i % 4}", "run_index": str(i)})
        for i in range(k)
    ]  # fmt: skip
    start = time.perf_counter()
    for params, metrics, tags in values:
        with plinth.start_run(experiment="default", tags=tags) as run:
            run.log_params(params)
            run.log_metrics(metrics)
    create_s = time.perf_counter() - start
    after = _count_runs(db)
    if after != before + k:
        raise AssertionError(f"expected {before + k} runs after creating {k}, found {after}")
    return {"create_s": create_s, "runs": after}


# ---- inputs -------------------------------------------------------------------------------


def make_files(args: dict[str, Any]) -> dict[str, Any]:
    """``n`` files of ``kb`` KiB of random bytes under ``folder``, 100 to a sub-folder."""
    from data import write_random

    folder = Path(args["folder"])
    size = args["kb"] << 10
    for i in range(args["n"]):
        write_random(folder / f"d{i // FILES_PER_FOLDER:04d}" / f"f{i:06d}.bin", size)
    return {"files": args["n"]}


def make_rows(args: dict[str, Any]) -> dict[str, Any]:
    """``reference.parquet`` and ``current.parquet`` of ``rows`` rows x ``ROW_COLUMNS``,
    from ``monitoring.make_table`` one chunk (one row group) at a time."""
    import pyarrow.parquet as pq

    from monitoring import SEED, make_table

    folder = Path(args["folder"])
    rows = args["rows"]
    for name, seed, drifted in (("reference", SEED, False), ("current", SEED + 1, True)):
        writer: Any = None
        try:
            for chunk, first in enumerate(range(0, rows, ROW_CHUNK)):
                size = min(ROW_CHUNK, rows - first)
                table = make_table(size, seed + 1_000 * chunk, drifted=drifted).select(ROW_COLUMNS)
                if writer is None:
                    writer = pq.ParquetWriter(folder / f"{name}.parquet", table.schema)
                writer.write_table(table)
        finally:
            if writer is not None:
                writer.close()
    return {"rows": rows}


def make_entities(args: dict[str, Any]) -> dict[str, Any]:
    """The feature store's inputs for ``n`` entities (``_features_data``'s generators):
    2 materialized views of 4 rows per entity, and a point-in-time join of ``n`` entity rows
    against 10 feature rows per entity row."""
    from _features_data import make_materialize, make_pit

    folder = Path(args["folder"])
    n = args["n"]
    (folder / "pit").mkdir(parents=True, exist_ok=True)
    (folder / "mat").mkdir(parents=True, exist_ok=True)
    pit = make_pit(folder / "pit", n, n * PIT_FEATURE_ROWS_PER_ENTITY)
    mat = make_materialize(folder / "mat", n, MAT_ROWS_PER_ENTITY)
    return {"pit": {k: str(v) for k, v in pit.items()}, "mat": mat}


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "runs-fill": runs_fill,
    "runs-create": runs_create,
    "make-files": make_files,
    "make-rows": make_rows,
    "make-entities": make_entities,
}


def worker_main(tool: str, args: dict[str, Any]) -> int:
    result = WORKERS[tool](args)
    result["peak_rss_mb"] = peak_rss_mb()
    print_result(result)
    return 0


if __name__ == "__main__":
    raise SystemExit(dispatch_worker(sys.argv[1:], worker_main) or 0)
