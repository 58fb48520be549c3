"""Server-side SVG line charts: scales, ticks, breaks at NaN, legend, escaping."""

from __future__ import annotations

import math
import re

from plinth.entities import MetricBucket
from plinth.ui.charts import PALETTE, Series, line_chart, nice_ticks, series_of


def test_ticks_are_round_and_cover_the_range() -> None:
    assert nice_ticks(0, 1) == [0.0, 0.2, 0.4, 0.6000000000000001, 0.8, 1.0]
    assert nice_ticks(-3.2, 17) == [0, 5, 10, 15]
    assert nice_ticks(120, 980) == [200, 400, 600, 800]
    assert nice_ticks(1, 1) == [1]
    assert nice_ticks(math.nan, 1) == []


def test_labels_and_titles_are_escaped() -> None:
    svg = str(
        line_chart(
            "<b>loss</b>",
            [Series("<script>x</script>", [(0, 1), (1, 2)]), Series("b&b", [(0, 2), (1, 3)])],
        )
    )
    assert "<script>" not in svg
    assert "<b>" not in svg
    assert "&lt;script&gt;x&lt;/script&gt;" in svg
    assert "&lt;b&gt;loss&lt;/b&gt;" in svg
    assert "b&amp;b" in svg
    assert "style=" not in svg  # the CSP allows no inline style


def test_each_series_gets_a_colour_a_line_and_a_legend_entry() -> None:
    series = [Series(f"run {i}", [(0, i), (10, i + 1)]) for i in range(3)]
    svg = str(line_chart("acc", series))
    assert svg.count("<polyline") == 3
    for i in range(3):
        assert f'stroke="{PALETTE[i]}"' in svg
        assert f">run {i}</text>" in svg
    single = str(line_chart("acc", series[:1]))
    assert "<rect" not in single  # one series needs no legend


def test_non_finite_values_break_the_line() -> None:
    svg = str(
        line_chart(
            "loss",
            [Series("a", [(0, 1), (1, 2), (2, math.nan), (3, 4), (4, 5), (5, math.inf), (6, 7)])],
        )
    )
    assert svg.count("<polyline") == 2
    assert svg.count("<circle") == 1  # the lone point at step 6
    empty = str(line_chart("none", [Series("a", [(0, math.nan)])]))
    assert "no data" in empty


def test_points_land_inside_the_plot() -> None:
    svg = str(line_chart("x", [Series("a", [(0, -1e9), (1e6, 1e9)])], width=400, height=200))
    points = re.search(r'points="([^"]+)"', svg)
    assert points is not None
    for pair in points.group(1).split():
        x, y = map(float, pair.split(","))
        assert 0 <= x <= 400
        assert 0 <= y <= 200


def test_buckets_become_a_line_of_latest_values_and_a_min_max_band() -> None:
    buckets = [
        MetricBucket(step=9, last=0.5, min=0.1, max=0.9, count=10),
        MetricBucket(step=19, last=0.4, min=0.2, max=0.6, count=10),
        MetricBucket(step=20, last=0.3, min=0.3, max=0.3, count=1),
    ]
    series = series_of("run", buckets)
    assert series.points == [(9.0, 0.5), (19.0, 0.4), (20.0, 0.3)]
    assert series.band == [(9.0, 0.1, 0.9), (19.0, 0.2, 0.6)]
    assert '<polygon class="band"' in str(line_chart("loss", [series]))
