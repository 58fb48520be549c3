"""The feature-store benchmark's data (numpy, seeded) and the checks of every tool's answers.

Point-in-time join: an entity table and one feature view's table, written once as Parquet
so that every tool reads the same bytes. The entity rows hold the awkward cases on purpose
(``KINDS``): duplicated rows, keys with no feature rows, times before any feature row, and
times exactly on the 7-day TTL boundary of a key's last event and 1 microsecond past it. The
feature rows hold ties: rows of equal key and event time with different created times (the
later created must win, whatever the row order).

Materialization: two views of 10,000 entities, recent event times (so a 7-day TTL keeps
them all online), with ties of equal event time too.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

SEED = 20_261_214
KEY = "driver_id"
TS = "event_timestamp"
CREATED = "created"
ROW_ID = "row_id"
TTL = dt.timedelta(days=7)
FLOATS = ["conv_rate", "acc_rate", "avg_km", "rating"]
INTS = ["trips", "trips_7d", "cancels", "tier"]
FEATURES = FLOATS + INTS
VIEW = "driver_stats"
#: The materialized views: name -> (float features, int features).
MAT_VIEWS = {"driver_stats": (["conv_rate", "acc_rate"], ["trips", "tier"]),
             "driver_activity": (["avg_km", "rating"], ["trips_7d", "cancels"])}  # fmt: skip

#: What each entity row tests; the parent breaks a tool's wrong rows down by these.
KINDS = ("plain", "duplicate", "no feature rows", "before any feature row", "on the TTL boundary",
         "1 us past the TTL")  # fmt: skip
_T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
_DAY_US = 86_400_000_000
_SPAN_DAYS = 90
_NULL_SHARE = 0.03
_TIE_SHARE = 0.03
_DUP_SHARE = 0.05
_EDGE_SHARE = 0.02  # each of: on the boundary, 1 us past it


def _us(t: dt.datetime) -> int:
    return (t - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1)


def _features(rng: Any, n: int, floats: list[str], ints: list[str]) -> dict[str, Any]:
    import pyarrow as pa

    out: dict[str, Any] = {}
    for i, name in enumerate(floats + ints):
        values = rng.normal(i + 1, 1, n) if name in floats else rng.integers(0, 1_000, n)
        null = rng.random(n) < _NULL_SHARE
        out[name] = pa.array(values, mask=null, type=pa.float64() if name in floats else pa.int64())
    return out


def _ties(rng: Any, keys: Any, ts: Any, created: Any) -> tuple[Any, Any, Any]:
    """Append tie rows: a copy of a row's key and event time with another created time."""
    import numpy as np

    n = len(keys)
    src = rng.choice(n, size=int(n * _TIE_SHARE), replace=False)
    # Earlier or later created than the original, a random number of microseconds apart:
    # the row that comes later in the file wins only when its created time is later.
    offset = rng.integers(1, 3_600_000_000, len(src)) * rng.choice([-1, 1], len(src))
    keys = np.concatenate([keys, keys[src]])
    ts = np.concatenate([ts, ts[src]])
    created = np.concatenate([created, created[src] + offset])
    order = rng.permutation(len(keys))
    return keys[order], ts[order], created[order]


def make_pit(folder: Path, entity_rows: int, feature_rows: int) -> dict[str, Path]:
    """The join's Parquet files: ``entities``, ``features`` and ``kinds`` (row id -> kind)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(SEED)
    entity_keys = max(10, entity_rows // 2)
    feature_keys = entity_keys * 9 // 10  # the last tenth of the keys has no feature rows
    t0 = _us(_T0)

    base = feature_rows - int(feature_rows * _TIE_SHARE)
    fkeys = rng.integers(0, feature_keys, base)
    fts = t0 + rng.integers(0, _SPAN_DAYS * _DAY_US, base)
    fcreated = fts + rng.integers(0, 3_600_000_000, base)
    fkeys, fts, fcreated = _ties(rng, fkeys, fts, fcreated)
    n = len(fkeys)
    ttype = pa.timestamp("us", tz="UTC")
    features = pa.table({KEY: pa.array(fkeys, pa.int64()), TS: pa.array(fts, ttype),
                         CREATED: pa.array(fcreated, ttype),
                         **_features(rng, n, FLOATS, INTS)})  # fmt: skip
    # A tie must be decidable: no two rows share key, event time and created time.
    triples = np.unique(np.stack([fkeys, fts, fcreated]), axis=1).shape[1]
    if triples != n:  # pragma: no cover - the generator's contract
        raise AssertionError("two feature rows share key, event and created time")

    edges = max(1, int(entity_rows * _EDGE_SHARE))
    dups = max(1, int(entity_rows * _DUP_SHARE))
    plain = entity_rows - 2 * edges - dups
    ekeys = rng.integers(0, entity_keys, plain)
    ets = t0 + rng.integers(-3 * _DAY_US, (_SPAN_DAYS + 3) * _DAY_US, plain)
    # The TTL edges: a key's last event + 7 days exactly, and 1 us later.
    last = np.full(feature_keys, np.iinfo(np.int64).min)
    np.maximum.at(last, fkeys, fts)
    edge_keys = rng.choice(feature_keys, 2 * edges, replace=False)
    ttl_us = TTL // dt.timedelta(microseconds=1)
    edge_ts = last[edge_keys] + ttl_us + np.repeat([0, 1], edges)
    ekeys = np.concatenate([ekeys, edge_keys])
    ets = np.concatenate([ets, edge_ts])
    kind = np.concatenate([np.zeros(plain, np.int8), np.repeat(np.array([4, 5], np.int8), edges)])
    first = np.full(entity_keys, np.iinfo(np.int64).max)
    np.minimum.at(first, fkeys, fts)
    kind[(kind == 0) & (ekeys >= feature_keys)] = 2
    early = ets < first[np.minimum(ekeys, feature_keys - 1)]
    kind[(kind == 0) & (ekeys < feature_keys) & early] = 3
    src = rng.choice(len(ekeys), dups)
    ekeys = np.concatenate([ekeys, ekeys[src]])
    ets = np.concatenate([ets, ets[src]])
    kind = np.concatenate([kind, np.full(dups, 1, np.int8)])
    order = rng.permutation(len(ekeys))
    entities = pa.table({ROW_ID: pa.array(np.arange(len(ekeys)), pa.int64()),
                         KEY: pa.array(ekeys[order], pa.int64()),
                         TS: pa.array(ets[order], ttype)})  # fmt: skip
    kinds = pa.table({ROW_ID: entities[ROW_ID],
                      "kind": pa.array([KINDS[k] for k in kind[order]])})  # fmt: skip
    paths = {name: folder / f"pit-{name}.parquet" for name in ("entities", "features", "kinds")}
    pq.write_table(entities, paths["entities"])
    pq.write_table(features, paths["features"])
    pq.write_table(kinds, paths["kinds"])
    return paths


def make_materialize(folder: Path, entities: int, rows_per_entity: int) -> dict[str, Any]:
    """One Parquet file per materialized view, event times in the last 3 days (all live)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(SEED + 1)
    now = _us(dt.datetime.now(dt.UTC)) - 60_000_000
    out: dict[str, Any] = {"views": {}, "entities": entities}
    ttype = pa.timestamp("us", tz="UTC")
    for v, (name, (floats, ints)) in enumerate(MAT_VIEWS.items()):
        base = entities * rows_per_entity
        keys = np.concatenate([np.arange(entities), rng.integers(0, entities, base - entities)])
        ts = now - rng.integers(0, 3 * _DAY_US, base)
        created = ts + rng.integers(0, 60_000_000, base)
        keys, ts, created = _ties(rng, keys, ts, created)
        table = pa.table({KEY: pa.array(keys, pa.int64()), TS: pa.array(ts, ttype),
                          CREATED: pa.array(created, ttype),
                          **_features(rng, len(keys), floats, ints)})  # fmt: skip
        path = folder / f"mat-{v}-{name}.parquet"
        pq.write_table(table, path)
        out["views"][name] = {"path": str(path), "floats": floats, "ints": ints,
                              "start_us": int(ts.min()) - 1_000_000,
                              "end_us": int(ts.max()) + 1_000_000}  # fmt: skip
    return out


def latest_per_key(path: str, floats: list[str], ints: list[str]) -> dict[int, list[Any]]:
    """The values materialization must put online: per key, its latest row (created breaks ties)."""
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    table = pq.read_table(path)
    order = pc.sort_indices(table, [(KEY, "ascending"), (TS, "descending"),
                                    (CREATED, "descending")])  # fmt: skip
    table = table.take(order)
    keys = table[KEY].to_numpy()
    first = [0] + [i for i in range(1, len(keys)) if keys[i] != keys[i - 1]]
    top = table.take(first)
    columns = [top[name].to_pylist() for name in floats + ints]
    return {k: [c[i] for c in columns] for i, k in enumerate(top[KEY].to_pylist())}


# ---- the checks -------------------------------------------------------------------------


def _as_floats(table: Any) -> Any:
    """The features of ``table`` as one float64 matrix, NaN for null (ints are exact: < 2**53)."""
    import numpy as np
    import pyarrow as pa

    columns = []
    for name in FEATURES:
        column = table[name]
        if not pa.types.is_floating(column.type):
            column = column.cast(pa.float64())
        columns.append(column.to_numpy(zero_copy_only=False).astype(np.float64))
    return np.stack(columns, axis=1)


def compare(reference: Any, answer: Any, kinds: Any) -> dict[str, Any]:
    """``answer``'s rows against ``reference``'s, both with ``row_id``; counts by kind.

    Rows are matched by row id (each appears once in the reference). ``missing``: ids the
    answer lacks; ``extra``: ids it has more than once or that the reference lacks;
    ``wrong``: matched rows with any feature value different (a null counts as a value).
    """
    import numpy as np
    import pyarrow.compute as pc

    ref = reference.take(pc.sort_indices(reference, [(ROW_ID, "ascending")]))
    ans = answer.take(pc.sort_indices(answer, [(ROW_ID, "ascending")]))
    ref_ids = ref[ROW_ID].to_numpy()
    ans_ids = ans[ROW_ID].to_numpy()
    unique, first, counts = np.unique(ans_ids, return_index=True, return_counts=True)
    present = np.isin(ref_ids, unique)
    extra = int((counts - 1).sum() + (~np.isin(unique, ref_ids)).sum())
    keep = np.isin(unique, ref_ids)
    a = _as_floats(ans.take(first[keep]))
    r = _as_floats(ref)[present]
    same = (a == r) | (np.isnan(a) & np.isnan(r))
    bad = ~same.all(axis=1)
    kind_of = dict(zip(kinds[ROW_ID].to_pylist(), kinds["kind"].to_pylist(), strict=True))
    missing_by_kind: dict[str, int] = {}
    for rid in ref_ids[~present].tolist():
        missing_by_kind[kind_of[rid]] = missing_by_kind.get(kind_of[rid], 0) + 1
    wrong_by_kind: dict[str, int] = {}
    for rid in ref_ids[present][bad].tolist():
        wrong_by_kind[kind_of[rid]] = wrong_by_kind.get(kind_of[rid], 0) + 1
    # null_for_value: rows where the reference has a value and the answer a null (and back).
    return {
        "rows": len(ref_ids),
        "answer_rows": len(ans_ids),
        "missing": int((~present).sum()),
        "extra": extra,
        "wrong": int(bad.sum()),
        "null_for_value": int((np.isnan(a) & ~np.isnan(r)).any(axis=1).sum()),
        "value_for_null": int((~np.isnan(a) & np.isnan(r)).any(axis=1).sum()),
        "missing_by_kind": missing_by_kind,
        "wrong_by_kind": wrong_by_kind,
    }
