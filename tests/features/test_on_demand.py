"""On-demand views: naming and digesting the function, loading a recorded one, computing."""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pytest

from plinth.context import Context
from plinth.errors import UsageError
from plinth.features.definitions import FeatureView, OnDemandFeatureView
from plinth.features.on_demand import compute, describe_function, digest_ref, load_function

RATIOS = """
import pandas as pd


def ratios(df):
    return pd.DataFrame({"per_seat": df["delay"] / df["seats"]})


class Maker:
    @staticmethod
    def doubled(df):
        return pd.DataFrame({"per_seat": df["delay"] * 2.0})
"""


def _import(path: Path, name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"_t_{path.stem}_{id(path)}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    target: Any = module
    for part in name.split("."):
        target = getattr(target, part)
    return target


def _view(function: Callable[..., Any] | str, **kw: Any) -> OnDemandFeatureView:
    return OnDemandFeatureView(
        name="per_seat",
        sources=["planes"],
        request={"delay": "float64"},
        features={"per_seat": "float64"},
        function=function,
        **kw,
    )


@pytest.fixture
def ratios_file(project: Context) -> Path:
    folder = project.settings.root / "feats"
    folder.mkdir()
    path = folder / "extra.py"
    path.write_text(RATIOS)
    return path


def test_describe_names_a_project_function_and_digests_its_source(
    project: Context, ratios_file: Path, tmp_path: Path
) -> None:
    fn = _import(ratios_file, "ratios")
    ref, digest = describe_function(fn, root=project.settings.root)
    assert ref == "feats/extra.py:ratios"
    assert len(digest) == 64
    assert digest_ref(ref, root=project.settings.root, view="v") == digest
    method = _import(ratios_file, "Maker.doubled")
    ref2, digest2 = describe_function(method, root=project.settings.root)
    assert ref2 == "feats/extra.py:Maker.doubled"
    assert digest2 != digest

    # The same source elsewhere has the same digest but no reference into the project.
    outside = tmp_path / "outside.py"
    outside.write_text(RATIOS)
    ref3, digest3 = describe_function(_import(outside, "ratios"), root=project.settings.root)
    assert ref3 is None
    assert digest3 == digest

    # A changed body changes the digest.
    ratios_file.write_text(RATIOS.replace("/ df", "* df"))
    _, changed = describe_function(_import(ratios_file, "ratios"), root=project.settings.root)
    assert changed != digest


def test_describe_refuses_a_function_without_source(project: Context) -> None:
    with pytest.raises(UsageError) as err:
        describe_function(len, root=project.settings.root)
    assert err.value.field == "function"
    local_lambda = lambda df: df  # noqa: E731
    ref, _ = describe_function(local_lambda, root=Path(__file__).parents[2])
    assert ref is None  # a lambda cannot be looked up again by name


def test_load_uses_a_callable_as_given_and_a_recorded_one_only_when_trusted(
    project: Context, ratios_file: Path
) -> None:
    def mine(df: pd.DataFrame) -> pd.DataFrame:
        return df

    assert load_function(_view(mine), ctx=project) is mine
    digest = digest_ref("feats/extra.py:ratios", root=project.settings.root, view="v")
    recorded = _view("feats/extra.py:ratios", code_digest=digest)
    with pytest.raises(UsageError) as err:
        load_function(recorded, ctx=project)
    assert err.value.field == "function"
    assert "trust_code=True" in str(err.value.hint)
    fn = load_function(recorded, ctx=project, trust_code=True)
    got = fn(pd.DataFrame({"delay": [10.0], "seats": [5]}))
    assert got["per_seat"].tolist() == [2.0]

    method = load_function(
        _view(
            "feats/extra.py:Maker.doubled",
            code_digest=digest_ref(
                "feats/extra.py:Maker.doubled", root=project.settings.root, view="v"
            ),
        ),
        ctx=project,
        trust_code=True,
    )
    assert method(pd.DataFrame({"delay": [1.5]}))["per_seat"].tolist() == [3.0]


def test_load_refuses_missing_file_function_and_digest(project: Context, ratios_file: Path) -> None:
    for ref, digest, words in [
        ("feats/nothere.py:ratios", "0" * 64, "no file"),
        ("feats/extra.py:absent", "0" * 64, "defines no function"),
        ("feats/extra.py:ratios", None, "without a digest"),
    ]:
        with pytest.raises(UsageError, match=words) as err:
            load_function(_view(ref, code_digest=digest), ctx=project, trust_code=True)
        assert err.value.field == "function"


def _frame(**cols: Any) -> pa.Table:
    return pa.table(cols)


def test_compute_calls_once_with_the_inputs_and_casts() -> None:
    calls: list[list[str]] = []

    def fn(df: pd.DataFrame) -> pd.DataFrame:
        calls.append(list(df.columns))
        return pd.DataFrame(
            {
                "n": (df["seats"].fillna(0) * 2).astype("int32"),
                "late": df["delay"] > 15,
                "label": ["x"] * len(df),
                "at": pd.to_datetime(["2024-01-01"] * len(df)),
                "ratio": df["seats"],  # int -> float64
                "extra": 1,
            }
        )

    planes = FeatureView(
        "planes",
        ["plane"],
        "planes",
        timestamp="ts",
        features={"seats": "int64", "year": "int64"},
    )
    view = OnDemandFeatureView(
        name="mix",
        sources=[planes[["seats"]]],
        request={"delay": "float64"},
        features={
            "n": "int64",
            "late": "bool",
            "label": "string",
            "at": "timestamp",
            "ratio": "float64",
        },
        function=fn,
    )
    frame = _frame(tailnum=["a", "b", "c"], seats=[100, 50, None], delay=[20.0, 3.0, 1.0])
    out = compute(view, frame, fn)
    assert calls == [["seats", "delay"]]  # one call, the inputs only
    assert out.column_names == ["n", "late", "label", "at", "ratio"]
    assert out.schema.field("n").type == pa.int64()
    assert out.schema.field("at").type == pa.timestamp("us", tz="UTC")
    assert out.column("at")[0].as_py() == datetime(2024, 1, 1, tzinfo=UTC)
    assert out.column("late").to_pylist() == [True, False, False]
    assert out.column("ratio").to_pylist()[:2] == [100.0, 50.0]


def test_compute_refuses_bad_output_naming_the_feature() -> None:
    base = _view(lambda df: df)
    frame = _frame(delay=[1.5, 2.0])
    cases: list[tuple[Callable[..., Any], str, str]] = [
        (lambda df: pd.DataFrame({"other": df["delay"]}), "features.per_seat", "no column"),
        (lambda df: pd.DataFrame({"per_seat": [1.0]}), "function", "1 rows for 2"),
        (lambda df: pd.DataFrame({"per_seat": ["a", "b"]}), "features.per_seat", "not float64"),
        (lambda df: [1, 2], "function", "not a pandas DataFrame"),
    ]
    for fn, field, words in cases:
        with pytest.raises(UsageError, match=words) as err:
            compute(base, frame, fn)
        assert err.value.field == field
    ints = dataclasses.replace(base, features={"per_seat": "int64"})
    with pytest.raises(UsageError, match="not int64") as err:
        compute(ints, frame, lambda df: pd.DataFrame({"per_seat": df["delay"]}))
    assert err.value.field == "features.per_seat"
    with pytest.raises(UsageError, match="needs 'delay'") as err:
        compute(dataclasses.replace(base, sources=()), _frame(other=[1]), lambda df: df)
    assert err.value.field == "request.delay"
