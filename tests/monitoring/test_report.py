"""The HTML drift report: self-contained, small at any size, free of rows, escaped."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from plinth.monitoring import drift

from .conftest import make_table


def _wide(n: int, seed: int, drifted: bool) -> pa.Table:
    """20 columns: 12 floats, 4 categories, 3 ints and a unique marker per row."""
    rng = np.random.default_rng(seed)
    columns: dict[str, pa.Array] = {}
    for i in range(12):
        columns[f"f{i}"] = pa.array(rng.normal(0.5 if drifted and i < 3 else 0.0, 1.0, n))
    for i in range(4):
        cats = np.array([f"cat{i}_{k}" for k in range(8)])
        columns[f"c{i}"] = pa.array(cats[rng.integers(0, 8 if drifted and i == 0 else 6, n)])
    for i in range(3):
        columns[f"i{i}"] = pa.array(rng.integers(0, 100, n))
    ids = pa.array(np.arange(n) + seed * 10_000_000).cast(pa.string())
    columns["marker"] = pc.binary_join_element_wise("MARKER-", ids, "-zq", "")
    return pa.table(columns)


def test_report_of_200k_rows_is_small_self_contained_and_rowless(tmp_path: Path) -> None:
    ref, cur = _wide(200_000, 1, False), _wide(200_000, 2, True)
    report = drift(ref, cur)
    assert set(report.drifted_columns) == {"c0", "f0", "f1", "f2"}
    assert report.skipped == {
        "marker": "id-like: 200,000 distinct values in 200,000 reference rows"
    }
    html = report.to_html(tmp_path / "r.html")
    assert (tmp_path / "r.html").read_text(encoding="utf-8") == html
    assert len(html.encode("utf-8")) < 1_000_000
    assert "MARKER-" not in html  # no value of the unique column, not even the first
    for value in (ref["f0"][0].as_py(), cur["f5"][17].as_py(), ref["f3"][-1].as_py()):
        assert repr(value) not in html
        assert f"{value:.6g}" not in html
    assert not re.search(r"https?://", html)
    assert "<script" not in html
    assert "<link" not in html
    assert "<img" not in html
    assert html.count("<svg") == len(report.columns)  # a chart per tested column
    assert "dataset drift" in html
    for c in report.columns:
        assert f">{c.column} <span" in html


def test_drifted_columns_come_first_with_both_distributions() -> None:
    html = drift(make_table(2000, 1), make_table(2000, 3, "unseen")).to_html()
    drifted = html.index("<h2>Drifted columns</h2>")
    others = html.index("<summary>Other columns</summary>")
    assert drifted < html.index('id="col-1">route') < others
    chart = html[drifted:others]
    assert "up: reference 0.00%, current " in chart  # the unseen category, both sides
    assert "north: reference " in chart
    assert "<h2>Not tested</h2>" in html
    assert "id-like" in html
    assert "temporal column" in html


def test_every_text_from_the_data_is_escaped() -> None:
    ref = pa.table({"<b>col</b>": ["<script>x</script>", "a&b"] * 300})
    cur = pa.table({"<b>col</b>": ["<script>x</script>", '"q"\''] * 300})
    html = drift(ref, cur).to_html()
    assert "<script>" not in html
    assert "<b>col</b>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html
    assert "&lt;b&gt;col&lt;/b&gt;" in html
    assert "&quot;q&quot;&#x27;" in html


TAGS = {
    *("html", "head", "meta", "title", "style", "body", "h1", "h2", "h3", "span", "div"),
    *("table", "tr", "th", "td", "a", "p", "svg", "line", "text", "rect", "details"),
    *("summary", "ul", "li", "code", "strong"),
}


def test_every_number_in_the_html_is_escaped() -> None:
    """Issue 13, problem 7: the HTML had an unescaped ``< 1e-300``."""
    from html.parser import HTMLParser

    ref = make_table(800, 1)
    cur = make_table(800, 3, "mean").set_column(0, "x", pa.array(np.full(800, 50.0)))
    report = drift(ref, cur)
    assert report.columns[0].p_value == 0.0  # underflowed: shown as "< 1e-300"
    html = report.to_html()

    class Strict(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.text: list[str] = []
            self.stray: list[str] = []

        def handle_data(self, data: str) -> None:
            self.text.append(data)

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            if tag not in TAGS:
                self.stray.append(tag)

    parser = Strict()
    parser.feed(html)
    assert parser.stray == []
    assert "< 1e-300" in "".join(parser.text)  # the reader sees it ...
    assert "< 1e-300" not in html  # ... and the source holds it escaped
    assert "&lt; 1e-300" in html
