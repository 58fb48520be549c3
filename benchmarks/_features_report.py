"""The feature-store benchmark's report: its tables, targets and RESULTS.md section."""

from __future__ import annotations

from typing import Any

from _common import TIMES, Targets, human_seconds, markdown_table, section_head

#: Issue 14's targets.
TARGET_PIT_S = 0.5
TARGET_PIT_VS_FEAST = 2.0
TARGET_MAT_S = 0.4
TARGET_READ_MS = {1: 0.05, 100: 1.0}
TARGET_REDIS_VS_RAW = 2.0

PIT_TOOLS = {
    "reference": "plain DuckDB ASOF (reference)",
    "plinth": "plinth point_in_time_join",
    "feast-duckdb": "Feast, DuckDB offline store",
    "feast-file": "Feast, file offline store (dask, default)",
}


def _ms(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f} ms"


def tables(raw: dict[str, Any], summary: dict[str, Any], *, full: bool) -> tuple[list[str], bool]:
    """The run's tables (join, materialize, reads, imports, targets) and whether all were met."""
    checks = raw["pit_checks"]
    p = summary["pit/plinth"]
    rows = []
    for tool, label in PIT_TOOLS.items():
        s = summary.get(f"pit/{tool}")
        if s is None:
            continue
        c = checks.get(tool)
        if c is None:
            right = "— (is the reference)"
        else:
            right = f"{c['rows'] - c['missing'] - c['wrong']:,} of {c['rows']:,}"
        rows.append(
            [
                label,
                human_seconds(s["total_s"]),
                human_seconds(s["join_s"]),
                "—" if tool == "plinth" else f"{s['total_s'] / p['total_s']:.1f}{TIMES}",
                f"{s['peak_rss_mb']:.0f} MB",
                right,
                "—" if c is None else f"{c['missing']:,}",
                "—" if c is None else f"{c['wrong']:,}",
            ]
        )
    pit = markdown_table(
        [
            "Tool",
            "read + join",
            "of which join",
            "time vs plinth",
            "peak RSS",
            "rows right",
            "rows missing",
            "rows wrong",
        ],
        rows,
    )

    mat_rows = []
    for key, label in (
        ("mat/plinth-sqlite", "plinth.features.materialize → SQLite"),
        ("mat/plinth-redis", "plinth.features.materialize → Redis"),
        ("mat/feast", "Feast materialize → SQLite (file offline store)"),
    ):
        s = summary.get(key)
        if s is not None:
            mat_rows.append(
                [
                    label,
                    human_seconds(s["materialize_s"]),
                    f"{s['peak_rss_mb']:.0f} MB",
                    str(s["processes"]),
                ]
            )
    mat = markdown_table(["Materialize 2 views", "time", "peak RSS", "processes"], mat_rows)

    online = raw["online_checks"]
    read_rows = []
    for key, label, check in (
        ("read/plinth-sqlite", "plinth, SQLite", "plinth-sqlite"),
        ("read/sqlite-raw", "raw sqlite3 SELECT (floor)", None),
        ("read/plinth-redis", "plinth, Redis", "plinth-redis"),
        ("read/redis-raw", "raw redis GET / MGET (floor)", None),
        ("read/feast", "Feast get_online_features, SQLite", "feast"),
    ):
        s = summary.get(key)
        if s is None:
            continue
        c = online.get(check) if check else None
        right = "—" if c is None else f"{c['keys'] - c['wrong']:,} of {c['keys']:,}"
        read_rows.append(
            [
                label,
                _ms(s["read_1_p50_ms"]),
                _ms(s["read_1_p99_ms"]),
                _ms(s["read_100_p50_ms"]),
                _ms(s["read_100_p99_ms"]),
                right,
            ]
        )
    reads = markdown_table(
        [
            "Online read",
            "1 entity p50",
            "1 entity p99",
            "100 entities p50",
            "100 entities p99",
            "keys read back right",
        ],
        read_rows,
    )

    imp = raw["imports"]
    imp_rows = [
        [f"`{v['code']}`", human_seconds(v["import_s"]), human_seconds(v["pass_s"])]
        for v in imp.values()
    ]
    imports = markdown_table(["Import (whole process, median)", "time", "python -c pass"], imp_rows)

    t = Targets()
    pc = checks["plinth"]
    t.add(
        "plinth = reference, row by row (order, duplicates, values)",
        "identical"
        if pc["identical"] and pc["same_order"]
        else f"{pc['wrong']} wrong, {pc['missing']} missing",
        "identical",
        pc["identical"] and pc["same_order"],
    )
    t.add(
        "plinth point-in-time join: read + join",
        human_seconds(p["total_s"]),
        f"≤ {TARGET_PIT_S} s",
        p["total_s"] <= TARGET_PIT_S,
    )
    t.add("plinth point-in-time join: join alone", human_seconds(p["join_s"]), "—", None)
    fd = summary.get("pit/feast-duckdb")
    if fd is not None:
        r = fd["total_s"] / p["total_s"]
        t.add(
            "speed-up vs Feast (DuckDB offline store)",
            f"{r:.1f}{TIMES}",
            f"≥ {TARGET_PIT_VS_FEAST:g}{TIMES}",
            r >= TARGET_PIT_VS_FEAST,
        )
    ms = summary["mat/plinth-sqlite"]["materialize_s"]
    t.add(
        f"materialize 2 views {TIMES} 10k entities → SQLite"
        if full
        else "materialize 2 views → SQLite",
        human_seconds(ms),
        f"≤ {TARGET_MAT_S} s",
        ms <= TARGET_MAT_S,
    )
    sq = summary["read/plinth-sqlite"]
    for n in (1, 100):
        v = sq[f"read_{n}_p50_ms"]
        t.add(
            f"SQLite read p50, {n} {'entity' if n == 1 else 'entities'}",
            _ms(v),
            f"≤ {TARGET_READ_MS[n]} ms",
            v <= TARGET_READ_MS[n],
        )
    if "read/plinth-redis" in summary:
        pr, raw = summary["read/plinth-redis"], summary["read/redis-raw"]
        for n in (1, 100):
            r = pr[f"read_{n}_p50_ms"] / raw[f"read_{n}_p50_ms"]
            t.add(
                f"Redis read p50, {n} {'entity' if n == 1 else 'entities'}, vs raw "
                f"{'GET' if n == 1 else 'MGET'}",
                f"{r:.2f}{TIMES}",
                f"≤ {TARGET_REDIS_VS_RAW:g}{TIMES}",
                r <= TARGET_REDIS_VS_RAW,
            )
    for store, c in online.items():
        t.add(
            f"online values after materialize ({store})",
            f"{c['wrong']} wrong keys",
            "0" if store.startswith("plinth") else "—",
            c["wrong"] == 0 if store.startswith("plinth") else None,
        )
    return [pit, mat, reads, imports, t.table()], t.met


def render_section(report: dict[str, Any], all_tables: list[str]) -> str:
    v = report["versions"]
    p = v["plinth"]
    names = [
        f"plinth {p['plinth']} (pyarrow {p['pyarrow']}, DuckDB {p['duckdb']}, "
        f"redis-py {p['redis']}, SQLite {p['sqlite']})"
    ]
    if "feast" in v:
        f = v["feast"]
        names.append(
            f"Feast {f['feast']} (pandas {f['pandas']}, DuckDB {f['duckdb']}, "
            f"ibis {f['ibis-framework']}, dask {f['dask']})"
        )
    s = report["size"]
    kinds = report["checks"]["pit"]["kinds"]
    pit, mat, reads, imports, targets = all_tables
    return "\n".join(
        [
            *section_head(
                "Feature store: plinth vs Feast 0.67 (issue 14)",
                report,
                names,
                folders="work folder",
            ),
            f"- Point-in-time join: {s['entities']:,} entity rows {TIMES} "
            f"{s['features']:,} feature rows (8 features: 4 float64, 4 int64, 3% nulls each; "
            "3% of the rows tie another's key and "
            "event time with another created time), TTL 7 days, one feature view, Parquet read "
            "by every tool. Entity rows: "
            + ", ".join(f"{n:,} {k}" for k, n in kinds.items())
            + ". Time: reading the Parquet files plus the join, result in memory (Feast: "
            "`get_historical_features(entity_df).to_df()`, which reads the feature file itself); "
            "imports and `feast apply` not timed. Rows are matched to the reference by a row id.",
            f"- Materialize: 2 views {TIMES} {s['mat_entities']:,} entities "
            f"({s['rows_per_entity']} rows each, ties too), a fresh online store each time. "
            "plinth's row is `plinth.features.materialize(end=...)` on views defined over the "
            "Parquet files and applied in a fresh project (definitions and apply not timed).",
            f"- Online reads: p50 and p99 of {s['calls_1']:,} single calls (1 entity) and "
            f"{s['calls_100']:,} (100 random entities) after a warm-up, one view of 4 features, "
            "in the store the last materialization wrote; the floors run plinth's own SQL or keys "
            "with the keys already encoded, nothing decoded. Redis: local, a prefix of this run.",
            "- Times are medians over the processes (tools interleaved); peak RSS is `VmHWM`.",
            "",
            pit,
            "",
            mat,
            "",
            reads,
            "",
            imports,
            "",
            targets,
        ]
    )
