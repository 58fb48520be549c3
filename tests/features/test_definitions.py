"""Definitions as Python objects: types, TTLs, sources, selections, specs and digests."""

from __future__ import annotations

from datetime import timedelta

import pytest

from plinth.errors import UsageError
from plinth.features.definitions import (
    Entity,
    FeatureSelection,
    FeatureService,
    FeatureView,
    OnDemandFeatureView,
    definitions_in,
    from_spec,
    parquet,
    parse_ttl,
    sql,
)


def view(**kw: object) -> FeatureView:
    args: dict[str, object] = {
        "name": "weather",
        "entities": ["airport"],
        "source": "weather@2",
        "timestamp": "hour",
        "ttl": "7d",
        "features": {"temp": "float64", "visib": "float"},
    }
    args.update(kw)
    return FeatureView(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", timedelta(days=7)),
        ("36h", timedelta(hours=36)),
        ("1d12h", timedelta(days=1, hours=12)),
        ("90s", timedelta(seconds=90)),
        ("2w", timedelta(weeks=2)),
        ("250ms", timedelta(milliseconds=250)),
        (3600, timedelta(hours=1)),
        (timedelta(minutes=5), timedelta(minutes=5)),
        (None, None),
    ],
)
def test_ttl_parsing(text: object, expected: timedelta | None) -> None:
    assert parse_ttl(text) == expected


@pytest.mark.parametrize("bad", ["7 days", "d7", "", "-1d", True, [1]])
def test_bad_ttl_is_refused_naming_the_field(bad: object) -> None:
    with pytest.raises(UsageError) as err:
        view(ttl=bad)
    assert err.value.field == "ttl"


def test_types_are_normalised_and_unknown_ones_refused() -> None:
    assert dict(view().features) == {"temp": "float64", "visib": "float64"}
    with pytest.raises(UsageError) as err:
        view(features={"temp": "decimal"})
    assert err.value.field == "features.temp"
    assert "float64" in str(err.value.hint)
    with pytest.raises(UsageError) as err:
        view(features={"bad name": "int64"})
    assert err.value.field == "features.bad name"
    with pytest.raises(UsageError) as err:
        view(features={"hour": "timestamp"})  # the timestamp column is not a feature
    assert err.value.field == "features.hour"


def test_sources_and_their_specs() -> None:
    assert view().spec()["source"] == "weather@2"
    assert view(source=parquet("data/w.parquet")).spec()["source"] == {"parquet": "data/w.parquet"}
    q = view(source=sql("SELECT * FROM w", tables={"w": "weather"})).spec()["source"]
    assert q == {"sql": "SELECT * FROM w", "tables": {"w": "weather"}}
    assert view(source={"parquet": "x.parquet"}).spec()["source"] == {"parquet": "x.parquet"}
    with pytest.raises(UsageError) as err:
        view(source={"table": "x"})
    assert err.value.field == "source"
    with pytest.raises(UsageError) as err:
        sql("SELECT 1")
    assert err.value.field == "source.tables"


def test_selections_and_services() -> None:
    w = view()
    sel = w[["temp"]]
    assert isinstance(sel, FeatureSelection)
    assert sel.features == ("temp",)
    with pytest.raises(UsageError, match="no feature 'wind'"):
        w[["wind"]]
    svc = FeatureService("delays", [sel, "planes[seats, year]", {"view": "routes"}])
    assert svc.spec()["features"] == [
        {"view": "weather", "features": ["temp"]},
        {"view": "planes", "features": ["seats", "year"]},
        {"view": "routes", "features": None},
    ]
    with pytest.raises(UsageError, match="twice"):
        FeatureService("s", [w, "weather[temp]"])


def test_digest_is_stable_and_changes_with_the_definition() -> None:
    assert view().digest == view().digest
    assert view(ttl="168h").digest == view().digest  # the same TTL written another way
    assert view(features={"temp": "float64", "visib": "float64"}).digest == view().digest
    for changed in (
        view(ttl="8d"),
        view(source="weather@3"),
        view(features={"temp": "float64"}),
        view(features={"temp": "float64", "visib": "int64"}),
        view(created_timestamp="created"),
    ):
        assert changed.digest != view().digest
    ent = Entity("airport", ["origin"])
    assert view(entities=[ent]).digest == view().digest  # an entity is named by name


def test_from_spec_round_trips() -> None:
    for d in (
        Entity("airport", join_keys=["origin"]),
        view(),
        FeatureService("delays", [view()[["temp"]]]),
    ):
        again = from_spec(d.kind, d.name, d.spec())
        assert again.digest == d.digest
    od = OnDemandFeatureView(
        "od",
        sources=[view()[["temp"]]],
        request={"delay": "float64"},
        features={"x": "float64"},
        function="feats.py:f",
        code_digest="a" * 64,
    )
    assert from_spec("on_demand_view", "od", od.spec()).digest == od.digest


def test_definitions_in_collects_each_once_in_order() -> None:
    ent = Entity("airport", ["origin"])
    w = view()
    assert definitions_in([ent, 1, w, ent, "x"]) == [ent, w]


def test_function_names_survive_importing_their_modules() -> None:
    """``materialize``, ``push`` and ``skew`` are modules and functions: importing the
    module (as a benchmark or a plugin may) must not replace the package's function."""
    import importlib

    import plinth.features

    for name in ("materialize", "push", "skew"):
        importlib.import_module(f"plinth.features.{name}")
        assert callable(getattr(plinth.features, name)), name
        assert getattr(plinth.features, name).__module__ == f"plinth.features.{name}"


def test_pipeline_function_names_survive_importing_their_modules() -> None:
    """The same rule for ``plinth.pipelines``: ``notebook_step`` and ``rollout``."""
    import importlib

    import plinth.pipelines

    for name in ("notebook_step", "rollout"):
        importlib.import_module(f"plinth.pipelines.{name}")
        assert callable(getattr(plinth.pipelines, name)), name
        assert getattr(plinth.pipelines, name).__module__ == f"plinth.pipelines.{name}"
