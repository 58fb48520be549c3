"""The stored profile of a table version: computed on add, read back by
``plinth.datasets.profile`` and ``plinth data profile``; the old ``plinth.profiles`` name."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from plinth import datasets
from plinth.context import Context
from plinth.profiles import TableProfile


def test_data_add_stores_the_profile_of_a_table(project: Context, tmp_path: Path) -> None:
    path = tmp_path / "flights.parquet"
    pq.write_table(pa.table({"delay": [1.0, 2.0, None], "dest": ["BOS", "LAX", "BOS"]}), path)
    v = datasets.add(path, "flights").version
    assert v.profile_digest is not None
    assert datasets.get("flights@1").profile_digest == v.profile_digest
    p = TableProfile.from_bytes(project.blobs.read_bytes(v.profile_digest))
    assert p.columns["dest"].top_values == {"BOS": 2, "LAX": 1}
    assert datasets.profile(v, ctx=project) == p
    assert datasets.profile("flights@1") == p
    assert datasets.add(path, "flights").created is False


def test_profile_version_of_plinth_profiles_is_deprecated_but_works(
    project: Context, tmp_path: Path
) -> None:
    from plinth.profiles import profile_version

    path = tmp_path / "flights.parquet"
    pq.write_table(pa.table({"delay": [1.0, 2.0]}), path)
    v = datasets.add(path, "flights").version
    with pytest.deprecated_call(match=r"use plinth\.datasets\.profile"):
        old = profile_version(project, v)
    assert old == datasets.profile(v, ctx=project)


def test_a_file_or_folder_is_not_a_dataset_version(project: Context, tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    datasets.add(tmp_path / "f.txt", "notes")
    with pytest.raises(Exception, match="notes@1 is a file, not a table"):
        datasets.profile("notes")


def test_cli_data_profile(project: Context, tmp_path: Path, cli: Callable[..., Any]) -> None:
    path = tmp_path / "t.parquet"
    pd.DataFrame({"delay": [1.5, 2.5], "dest": ["BOS", "LAX"]}).to_parquet(path)
    datasets.add(path, "t")
    out = cli("data", "profile", "t@1", "--json")
    assert out.code == 0, out.err
    doc = json.loads(out.out)
    delay = doc["profile"]["columns"][0]
    assert (delay["name"], delay["mean"], delay["count"]) == ("delay", 2.0, 2)
    assert "state" not in delay
    text = cli("data", "profile", "t")
    assert text.code == 0
    assert "dest" in text.out
    assert "BOS" in text.out
    bad = cli("data", "profile", "nope")
    assert bad.code == 2
