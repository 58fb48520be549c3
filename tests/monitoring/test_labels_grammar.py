"""``plinth monitor labels`` counts windows in good English (issue 13, point 9: ``1 windows``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from .test_performance import Logged, _labels_file, logged  # noqa: F401 - the fixture


def test_one_window_is_not_pluralised(
    logged: Logged,  # noqa: F811 - the imported fixture
    tmp_path: Path,
    cli: Callable[..., Any],
) -> None:
    path = _labels_file(tmp_path / "labels.parquet", logged, list(range(60)))
    # one window over every row; the inverted third day keeps AUC below 0.99
    result = cli("monitor", "labels", "web", str(path), "--window", "all", "--min", "roc_auc=0.99")
    assert result.code == 1
    assert "1 bound crossed in 1 of 1 window of web" in result.err, result.err
