"""Top values are the most frequent first (issue 13, point 9), after storage and merging too."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd

from plinth import datasets
from plinth.context import Context
from plinth.profiles import TableProfile, merge_profiles, profile_table

# alphabetical order (a, b, m, z) is the wrong answer
CITIES = ["a"] * 1 + ["b"] * 5 + ["z"] * 9 + ["m"] * 9


def test_top_values_are_most_frequent_first_not_alphabetical_after_a_round_trip() -> None:
    stored = TableProfile.from_bytes(profile_table(pd.DataFrame({"c": CITIES})).to_bytes())
    # ties (m, z: 9 each) are broken by value, so the order is deterministic
    assert list(stored.columns["c"].top_values.items()) == [("m", 9), ("z", 9), ("b", 5), ("a", 1)]


def test_merged_profile_keeps_top_values_most_frequent_first() -> None:
    a = TableProfile.from_bytes(profile_table(pd.DataFrame({"c": ["z", "b", "b"]})).to_bytes())
    b = TableProfile.from_bytes(profile_table(pd.DataFrame({"c": ["z", "z", "c"]})).to_bytes())
    merged = TableProfile.from_bytes(merge_profiles(a, b).to_bytes())
    assert list(merged.columns["c"].top_values) == ["z", "b", "c"]


def test_data_profile_prints_the_most_frequent_values_first(
    project: Context, tmp_path: Path, cli: Callable[..., Any]
) -> None:
    path = tmp_path / "t.parquet"
    pd.DataFrame({"city": CITIES}).to_parquet(path)
    datasets.add(path, "t")
    out = cli("data", "profile", "t@1")
    assert out.code == 0, out.err
    assert "m (9), z (9), b (5)" in out.out
