"""What a notebook user holds renders itself in Jupyter (``_repr_html_``): a table of its data,
every value a teammate wrote escaped, never a script, an event handler or an outside URL."""

from __future__ import annotations

import re

import numpy as np
import pyarrow as pa
import pytest

import plinth
from plinth import _notebook as nb
from plinth.context import Context
from plinth.errors import NotFoundError, UsageError
from plinth.monitoring import drift
from plinth.validation import Suite, validate

EVIL = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
#: What no fragment may carry: script, event handlers, anything fetched from elsewhere.
FORBIDDEN = re.compile(r"<script|\son\w+\s*=|javascript:|https?://|\ssrc\s*=|\shref\s*=", re.I)


def assert_safe(html: str) -> None:
    assert "<table" in html
    found = FORBIDDEN.search(html)
    assert found is None, f"unsafe markup {found.group(0)!r} in {html[:200]}"


def test_a_run_shows_its_params_metrics_and_tags_escaped(project: Context) -> None:
    with plinth.start_run(experiment="e", name=EVIL, params={"lr": 0.1, EVIL: EVIL}) as run:
        run.log_metric("loss", 0.25)
        run.set_tag("team", EVIL)
        live = run._repr_html_()
    assert_safe(live)
    assert "active run" in live
    assert "0.25" in live
    info = plinth.get_run(run.id)
    html = info._repr_html_()
    assert_safe(html)
    assert run.id in html
    assert "finished" in html
    assert "0.25" in html
    assert "0.1" in html
    assert html.count(ESCAPED) >= 4  # the name, the param key and value, the tag
    assert repr(info) == (
        f"RunInfo(id={run.id!r}, name={EVIL!r}, status='finished', params=2, metrics=1, tags=1)"
    )


def test_a_metric_history_draws_a_sparkline(project: Context) -> None:
    with plinth.start_run(experiment="e") as run:
        for step, value in enumerate([1.0, 0.5, float("nan"), 0.25]):
            run.log_metric(EVIL, value, step=step)
    history = plinth.metric_history(run.id, EVIL)
    html = history._repr_html_()
    assert_safe(html)
    assert ESCAPED in html
    assert "<polyline" in html
    assert ">4<" in html
    assert repr(history) == f"MetricHistory(key={EVIL!r}, points=4, last=0.25)"


def test_compare_runs_marks_what_differs(project: Context) -> None:
    ids = []
    for lr in (0.1, 0.2):
        with plinth.start_run(experiment="e", params={"lr": lr, "seed": 1, EVIL: 1}) as run:
            run.log_metric("auc", 0.9)
            ids.append(run.id)
    comparison = plinth.compare_runs(ids)
    assert [r.id for r in comparison.runs] == ids
    assert comparison.param_keys == sorted(["lr", "seed", EVIL])
    assert comparison.differing_params == ["lr"]
    assert comparison.differing_metrics == []
    assert not any(k.startswith("system/") for r in comparison.runs for k in r.metrics)
    html = comparison._repr_html_()
    assert_safe(html)
    assert ESCAPED in html
    assert ids[0] in html
    assert ids[1] in html
    lr_row = re.search(r"<tr>(?:(?!</tr>).)*>lr</td>(?:(?!</tr>).)*</tr>", html)
    assert lr_row is not None
    assert ">*</td>" in lr_row.group(0)
    seed_row = re.search(r"<tr>(?:(?!</tr>).)*>seed</td>(?:(?!</tr>).)*</tr>", html)
    assert seed_row is not None
    assert ">*</td>" not in seed_row.group(0)
    assert "differing_params=1" in repr(comparison)


def test_compare_runs_needs_two_known_runs(project: Context) -> None:
    with plinth.start_run(experiment="e") as run:
        pass
    with pytest.raises(UsageError, match="at least two"):
        plinth.compare_runs([run.id])
    with pytest.raises(UsageError):
        plinth.compare_runs(run.id)  # a string is not a list of ids
    with pytest.raises(NotFoundError):
        plinth.compare_runs([run.id, "0190b2c4-0000-7000-8000-000000000000"])


def test_a_dataset_version_shows_its_schema(project: Context) -> None:
    table = pa.table({EVIL: [1, 2, 3], "city": ["a", "b", "c"]})
    version = plinth.datasets.save(table, "flights", message=EVIL).version
    html = version._repr_html_()
    assert_safe(html)
    assert "flights@1" in html
    assert ">3<" in html
    assert html.count(ESCAPED) == 2  # the column and the message
    assert "city" in html
    assert repr(version).startswith("DatasetVersion('flights@1', kind='table'")


def test_a_validation_result_lists_failed_checks_first() -> None:
    table = pa.table({EVIL: [1, None, 3], "x": [1, 2, 3]})
    suite = Suite.from_dict(
        {
            "suite": "s",
            "checks": [
                {"check": "max_null_fraction", "column": "x", "value": 0},
                {"check": "max_null_fraction", "column": EVIL, "value": 0},
            ],
        }
    )
    result = validate(table, suite)
    html = result._repr_html_()
    assert_safe(html)
    assert "failed" in html
    assert ESCAPED in html
    assert html.index(ESCAPED) < html.index(">x</td>")  # the failure comes first
    assert ">fail</span>" in html
    assert ">pass</span>" in html


def test_a_drift_report_shows_columns_and_histograms() -> None:
    rng = np.random.default_rng(0)
    reference = pa.table({EVIL: rng.normal(0, 1, 500), "same": rng.normal(0, 1, 500)})
    current = pa.table({EVIL: rng.normal(3, 1, 500), "same": rng.normal(0, 1, 500)})
    report = drift(reference, current)
    html = report._repr_html_()
    assert_safe(html)
    assert ESCAPED in html
    assert "same" in html
    assert "dataset drift" in html
    assert "<rect" in html  # the per-column histograms
    assert repr(report).startswith("DriftReport(drifted=True")


def test_fragments_escape_text_and_keep_only_their_own_markup() -> None:
    assert nb.cell(EVIL) == ESCAPED
    assert nb.cell('a"b') == "a&quot;b"
    assert nb.cell(None) == "&mdash;"
    assert nb.cell(0.123456789) == "0.123457"
    assert nb.cell("x" * 1000).endswith("\u2026")
    assert len(nb.cell("x" * 1000)) == nb.MAX_TEXT
    long = nb.table(("k",), [(i,) for i in range(nb.MAX_ROWS + 7)])
    assert long.count("<tr>") == nb.MAX_ROWS + 2  # the header, the rows shown, the count
    assert "7 more rows" in long
    assert nb.sparkline([1.0]) == ""
    assert nb.bars([], []) == ""
    assert nb.sparkline([float(i) for i in range(1000)]).count(",") == 200
