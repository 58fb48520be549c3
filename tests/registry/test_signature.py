from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from plinth.errors import UsageError
from plinth.registry.flavors.signature import FieldSpec, Signature, infer_signature

pd = pytest.importorskip("pandas")


def _frame() -> object:
    return pd.DataFrame({"distance": [100.0, 250.5], "carrier": ["UA", "AA"], "month": [1, 2]})


def test_inferred_from_a_dataframe_with_output() -> None:
    sig = infer_signature(_frame(), np.array([0, 1]))
    assert sig.inputs == (
        FieldSpec("distance", "double"),
        FieldSpec("carrier", "string"),
        FieldSpec("month", "int64"),
    )
    assert sig.outputs == (FieldSpec("output", "int64", (-1,)),)


def test_inferred_from_arrow_dict_and_rows_alike() -> None:
    table = pa.table({"x": pa.array([1.5, 2.5]), "name": pa.array(["a", "b"])})
    expected = (FieldSpec("x", "double"), FieldSpec("name", "string"))
    assert infer_signature(table).inputs == expected
    assert infer_signature({"x": [1.5, 2.5], "name": ["a", "b"]}).inputs == expected
    assert infer_signature([{"x": 1.5, "name": "a"}, {"x": 2.5, "name": "b"}]).inputs == expected


def test_numpy_arrays_as_columns_or_tensors() -> None:
    two_d = infer_signature(np.zeros((4, 3), dtype=np.float32))
    assert two_d.inputs == tuple(FieldSpec(str(i), "float") for i in range(3))
    images = infer_signature(np.zeros((2, 28, 28), dtype=np.uint8))
    assert images.inputs == (FieldSpec("input", "uint8", (-1, 28, 28)),)
    assert images.is_tensor


def test_round_trips_through_a_dict() -> None:
    sig = infer_signature(np.zeros((2, 4, 4)), pd.Series([1.0, 2.0], name="score"))
    doc = sig.to_dict()
    assert doc["outputs"] == [{"name": "score", "dtype": "double"}]
    assert Signature.from_dict(doc) == sig


def test_unsupported_examples_are_refused() -> None:
    with pytest.raises(UsageError, match="cannot infer a signature from a object"):
        infer_signature(object())
    with pytest.raises(UsageError, match="needs an input example"):
        infer_signature(None)


def test_check_passes_matching_data() -> None:
    sig = infer_signature(_frame())
    assert sig.check(_frame()) == []
    # int32 where int64 was seen, ints where floats were, all-null columns: all fine
    ok = pd.DataFrame(
        {"distance": [1, 2], "carrier": [None, None], "month": np.array([1, 2], np.int32)}
    )
    assert sig.check(ok) == []


def test_check_names_each_problem_per_field() -> None:
    sig = infer_signature(_frame())
    bad = pd.DataFrame({"distance": ["far", "near"], "month": [1.5, 2.5], "tail": ["N1", "N2"]})
    problems = {(p.field, p.kind): p.message for p in sig.check(bad)}
    assert problems == {
        ("distance", "type"): "column 'distance' should be double, got string",
        ("carrier", "missing"): "column 'carrier' (string) is missing",
        ("month", "type"): "column 'month' should be int64, got double",
        ("tail", "extra"): "column 'tail' is not an input of the model",
    }
    assert sig.check(bad)[0].to_dict()["field"] == "distance"


def test_check_reports_mixed_columns_and_numpy_width() -> None:
    sig = infer_signature(_frame())
    mixed = _frame().assign(carrier=pd.Series(["UA", 3], dtype=object))
    assert [(p.field, p.kind) for p in sig.check(mixed)] == [("carrier", "type")]
    columns = infer_signature(np.zeros((2, 3)))
    assert [(p.field, p.kind) for p in columns.check(np.zeros((2, 2)))] == [("2", "missing")]


def test_check_tensor_shape_and_type() -> None:
    sig = infer_signature(np.zeros((2, 28, 28), dtype=np.float32))
    assert sig.check(np.ones((5, 28, 28), dtype=np.float32)) == []
    kinds = [p.kind for p in sig.check(np.ones((5, 28, 27), dtype=np.float32))]
    assert kinds == ["shape"]
    kinds = [p.kind for p in sig.check(np.array([["a"] * 28] * 2))]
    assert kinds == ["shape", "type"]
