"""``plinth features plan|apply|list|show`` in-process: exit codes, human output, --json."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pytest

import plinth.datasets as datasets
from plinth.context import Context

YAML = """
entities:
  - {name: plane, join_keys: [tailnum]}
feature_views:
  - name: planes
    entities: [plane]
    source: planes
    timestamp: updated_at
    ttl: 365d
    features: {seats: int64, year: int64}
on_demand_feature_views:
  - name: per_seat
    sources: ["planes[seats]"]
    request: {delay: float64}
    features: {delay_per_seat: float64}
    function: extra.py:per_seat
feature_services:
  - {name: delays, features: [planes, per_seat]}
"""


@pytest.fixture
def files(project: Context) -> Context:
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    table = pa.table(
        {"tailnum": ["N1"], "seats": [100], "year": [2001], "updated_at": pa.array([t0])}
    )
    datasets.save(table, "planes", ctx=project)
    root = project.settings.root
    (root / "features.yaml").write_text(YAML)
    (root / "extra.py").write_text(
        "def per_seat(df):\n    return df.assign(delay_per_seat=df['delay'] / df['seats'])\n"
    )
    return project


def test_plan_then_apply_then_list_and_show(files: Context, cli: Callable[..., Any]) -> None:
    planned = cli("features", "plan", "features.yaml")
    assert planned.code == 0, planned.err
    assert "4 added, 0 changed, 0 unchanged, 0 breaking." in planned.out
    dry = cli("features", "apply", "features.yaml", "--dry-run", "--json")
    assert dry.code == 0
    assert json.loads(dry.out)["recorded"] == []
    assert json.loads(cli("features", "list", "--json").out) == []
    applied = cli("features", "apply", "features.yaml")
    assert applied.code == 0, applied.err
    assert "Recorded 4 new version(s): plane@1, planes@1, per_seat@1, delays@1." in applied.out
    again = json.loads(cli("features", "apply", "features.yaml", "--json").out)
    assert [c["status"] for c in again["changes"]] == ["unchanged"] * 4
    assert [r["ref"] for r in again["recorded"]] == [
        "plane@1",
        "planes@1",
        "per_seat@1",
        "delays@1",
    ]
    listed = cli("features", "list", "--kind", "feature_view")
    assert listed.code == 0
    assert "2 features: seats, year" in listed.out
    assert "1 definition." in listed.out
    shown = json.loads(cli("features", "show", "per_seat", "--json").out)
    assert shown["versions"][0]["spec"]["function"] == "extra.py:per_seat"
    text = cli("features", "show", "planes")
    assert text.code == 0
    assert "feature_view planes@1" in text.out
    assert '"ttl": "365d"' in text.out
    missing = cli("features", "show", "nothing", "--json")
    assert missing.code == 2
    assert json.loads(missing.out)["errors"][0]["field"] == "name"


def test_bad_definition_exits_2_naming_the_field(files: Context, cli: Callable[..., Any]) -> None:
    path = files.settings.root / "features.yaml"
    path.write_text(YAML.replace("seats: int64, year: int64", "seats: string, year: int64"))
    planned = cli("features", "plan", "features.yaml", "--json")
    assert planned.code == 2  # plan lists every problem, and refuses
    (problem,) = json.loads(planned.out)["problems"]
    assert problem["field"] == "planes.features.seats"
    applied = cli("features", "apply", "features.yaml", "--json")
    assert applied.code == 2
    (error,) = json.loads(applied.out)["errors"]
    assert error["field"] == "planes.features.seats"
    assert "declared string but the source column is int64" in error["message"]
    assert "nothing was recorded" in applied.err
    assert json.loads(cli("features", "list", "--json").out) == []
    path.write_text("feature_views:\n  - {name: planes, timestmp: x}\n")
    typo = cli("features", "plan", "features.yaml")
    assert typo.code == 2
    assert "did you mean 'feature_views[0].timestamp'" in typo.err


def test_help_lists_every_subcommand_with_examples(cli: Callable[..., Any]) -> None:
    out = cli("features", "--help").out
    for name in ("apply", "plan", "list", "show", "materialize", "push"):
        assert f"  {name} " in out
    for name in ("apply", "plan", "list", "show"):
        assert f"plinth features {name}" in cli("features", name, "--help").out
