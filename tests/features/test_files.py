"""Definitions read from YAML and Python files; errors name the file, definition and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from plinth.errors import UsageError
from plinth.features.definitions import (
    Entity,
    FeatureSelection,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
)
from plinth.features.files import load_definitions

YAML = """
entities:
  - {name: plane, join_keys: [tailnum]}
feature_views:
  - name: planes
    entities: [plane]
    source: planes@2
    timestamp: updated_at
    ttl: 365d
    features: {seats: int64, year: int}
on_demand_feature_views:
  - name: per_seat
    sources: ["planes[seats]", {view: planes, features: [year]}]
    request: {delay: float64}
    features: {delay_per_seat: float64}
    function: feats/extra.py:per_seat
feature_services:
  - {name: delays, features: ["planes[seats]", per_seat]}
"""


def _write(tmp_path: Path, text: str, name: str = "features.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_yaml_builds_the_same_objects_as_python(tmp_path: Path) -> None:
    ent, planes, od, svc = load_definitions(_write(tmp_path, YAML))
    assert isinstance(ent, Entity)
    assert ent.join_keys == ("tailnum",)
    same = FeatureView(
        "planes",
        ["plane"],
        "planes@2",
        timestamp="updated_at",
        ttl="365d",
        features={"seats": "int64", "year": "int64"},
    )
    assert isinstance(planes, FeatureView)
    assert planes.digest == same.digest
    assert isinstance(od, OnDemandFeatureView)
    assert od.sources == (
        FeatureSelection("planes", ("seats",)),
        FeatureSelection("planes", ("year",)),
    )
    assert isinstance(svc, FeatureService)
    assert svc.digest == FeatureService("delays", [same[["seats"]], "per_seat"]).digest


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        (
            "feature_views:\n  - {name: a, entities: [p], source: d, timestamp: t,"
            " features: {x: int64}}\n  - {name: planes, entities: [p], source: d,"
            " timestamp: 'bad col', features: {x: int64}}\n",
            "feature_views[1].timestamp",
            "features.yaml: feature_views[1] (planes): timestamp: 'bad col' is not a column",
        ),
        (
            "feature_views:\n  - {name: planes, entities: [p], source: d, timestamp: t,"
            " features: {x: int64}, timestmp: t}\n",
            "feature_views[0].timestmp",
            "did you mean 'feature_views[0].timestamp'",
        ),
        (
            "feature_views:\n  - {name: planes, entities: [p], source: d, features: {x: int}}\n",
            "feature_views[0].timestamp",
            "'timestamp' is missing",
        ),
        (
            "feature_views:\n  - {name: planes, entities: [p], source: d, timestamp: t,"
            " ttl: forever, features: {x: int64}}\n",
            "feature_views[0].ttl",
            "feature_views[0] (planes): ttl: cannot read the TTL",
        ),
        (
            "feature_views:\n  - {name: planes, entities: [p], source: d, timestamp: t,"
            " features: {x: decimal}}\n",
            "feature_views[0].features.x",
            "unknown feature type 'decimal'",
        ),
        ("entitys: []\n", "entitys", "did you mean 'entities'"),
        ("entities: {name: plane}\n", "entities", "must be a list"),
        ("entities:\n  - plane\n", "entities[0]", "must be a mapping"),
        (
            "on_demand_feature_views:\n  - {name: od, sources: [v], request: {},"
            " features: {x: float64}, function: 'evil'}\n",
            "on_demand_feature_views[0].function",
            "is not PATH.py:NAME",
        ),
    ],
)
def test_yaml_errors_name_the_file_definition_and_field(
    tmp_path: Path, text: str, field: str, words: str
) -> None:
    with pytest.raises(UsageError) as err:
        load_definitions(_write(tmp_path, text))
    assert err.value.field == field
    assert words in err.value.message
    assert err.value.message.startswith("features.yaml: ")


def test_malformed_yaml_names_line_and_column(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"line 3, column \d+: malformed YAML"):
        load_definitions(_write(tmp_path, "entities:\n  - {name: a\n  - b: [\n"))


def test_python_file_is_run_and_its_definitions_collected(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "from plinth.features.definitions import Entity, FeatureView\n"
        "plane = Entity('plane', ['tailnum'])\n"
        "planes = FeatureView('planes', [plane], 'planes', timestamp='t',"
        " features={'seats': 'int64'})\n"
        "helper = 3\n",
        "defs.py",
    )
    assert [d.name for d in load_definitions(path)] == ["plane", "planes"]
    bad = _write(
        tmp_path, "from plinth.features.definitions import Entity\nEntity('x', [])\n", "b.py"
    )
    with pytest.raises(UsageError, match=r"b\.py: entity 'x': give at least one join key"):
        load_definitions(bad)
    with pytest.raises(UsageError, match="invalid Python"):
        load_definitions(_write(tmp_path, "def (:\n", "c.py"))
    with pytest.raises(UsageError) as err:
        load_definitions(_write(tmp_path, "x", "defs.txt"))
    assert err.value.field == "file"
