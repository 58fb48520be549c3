"""Model signatures: the columns (or tensor) a model takes and what it returns.

Inferred from an input example; each field has a name, an Arrow type string and, for
arrays, a shape whose first dimension (the batch) is ``-1``. :meth:`Signature.check` names
every problem with some data per field, for serving to report::

    sig = infer_signature(train_df.head(), model.predict(train_df.head()))
    sig.check(request_df)   # [FieldProblem(field='distance', kind='missing', ...)]

A 2-D numpy array is read as columns named ``"0"`` .. ``"n-1"``; other arrays as one tensor.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from plinth.errors import IntegrityError, UsageError

__all__ = ["FieldProblem", "FieldSpec", "Signature", "infer_signature"]

_STRINGS = frozenset({"string", "large_string", "string_view"})
_BINARY = frozenset({"binary", "large_binary", "binary_view"})


@dataclass(frozen=True)
class FieldSpec:
    """One input or output: a column (``shape`` None) or a tensor (``shape`` with -1 first)."""

    name: str
    dtype: str
    shape: tuple[int, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": self.name, "dtype": self.dtype}
        if self.shape is not None:
            doc["shape"] = list(self.shape)
        return doc

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> FieldSpec:
        shape = doc.get("shape")
        return cls(str(doc["name"]), str(doc["dtype"]), None if shape is None else tuple(shape))


@dataclass(frozen=True)
class FieldProblem:
    """What is wrong with one field of some data: ``missing``, ``extra``, ``type``, ``shape``."""

    field: str
    kind: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "kind": self.kind, "message": self.message}


@dataclass(frozen=True)
class Signature:
    """Inputs and (when known) outputs of a model."""

    inputs: tuple[FieldSpec, ...]
    outputs: tuple[FieldSpec, ...] | None = None

    @property
    def is_tensor(self) -> bool:
        return len(self.inputs) == 1 and self.inputs[0].shape is not None

    def to_dict(self) -> dict[str, Any]:
        return {
            "inputs": [spec.to_dict() for spec in self.inputs],
            "outputs": None if self.outputs is None else [s.to_dict() for s in self.outputs],
        }

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> Signature:
        try:
            outputs = doc.get("outputs")
            return cls(
                tuple(FieldSpec.from_dict(d) for d in doc["inputs"]),
                None if outputs is None else tuple(FieldSpec.from_dict(d) for d in outputs),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise IntegrityError(f"model signature is malformed: {exc}") from None

    def check(self, data: Any) -> list[FieldProblem]:
        """Every way ``data`` does not fit the inputs, one problem per field; [] if it fits."""
        try:
            got = _fields(data, self.inputs[0].name if self.is_tensor else "input")
        except UsageError as exc:
            return [FieldProblem("", "type", exc.message)]
        if self.is_tensor:
            return _check_tensor(self.inputs[0], got)
        expected = {spec.name: spec for spec in self.inputs}
        present = {spec.name: spec for spec in got}
        problems = []
        for name, spec in expected.items():
            if name not in present:
                problems.append(
                    FieldProblem(name, "missing", f"column {name!r} ({spec.dtype}) is missing")
                )
            elif not _compatible(spec.dtype, present[name].dtype):
                problems.append(
                    FieldProblem(
                        name,
                        "type",
                        f"column {name!r} should be {spec.dtype}, got {present[name].dtype}",
                    )
                )
        problems.extend(
            FieldProblem(name, "extra", f"column {name!r} is not an input of the model")
            for name in present
            if name not in expected
        )
        return problems


def infer_signature(input_example: Any, output_example: Any = None) -> Signature:
    """The signature of a model from an example of its input (and of its output)."""
    if input_example is None:
        raise UsageError("infer_signature needs an input example", field="input_example")
    inputs = _fields(input_example, "input")
    outputs = None if output_example is None else _fields(output_example, "output")
    return Signature(tuple(inputs), None if outputs is None else tuple(outputs))


def _fields(data: Any, default_name: str) -> list[FieldSpec]:
    """The fields of a DataFrame, Series, Arrow table, dict of columns, list of dicts or
    array, as Arrow type strings."""
    import numpy as np
    import pyarrow as pa

    module = type(data).__module__.partition(".")[0]
    if module == "pandas":
        if hasattr(data, "columns"):
            return [_column_spec(str(name), data[name]) for name in data.columns]
        if hasattr(data, "dtype"):  # a Series
            name = default_name if data.name is None else str(data.name)
            return [_column_spec(name, data)]
    if isinstance(data, pa.Table | pa.RecordBatch):
        return [FieldSpec(f.name, _type_name(f.type)) for f in data.schema]
    if isinstance(data, Mapping):
        return [_column_spec(str(name), values) for name, values in data.items()]
    if isinstance(data, Sequence) and not isinstance(data, str | bytes):
        if data and all(isinstance(row, Mapping) for row in data):
            return _fields(_from_rows(data), default_name)
        data = np.asarray(data)
    if isinstance(data, np.ndarray):
        if data.ndim == 2 and data.dtype != object:
            kind = _numpy_type(data.dtype)
            return [FieldSpec(str(i), kind) for i in range(data.shape[1])]
        if data.ndim == 0:
            raise UsageError("a model example cannot be a single value", field="input_example")
        return [FieldSpec(default_name, _numpy_type(data.dtype), (-1, *data.shape[1:]))]
    raise UsageError(
        f"cannot infer a signature from a {type(data).__name__}",
        hint="pass a pandas DataFrame, a pyarrow Table, a dict of columns, a list of dicts "
        "or a numpy array",
        field="input_example",
    )


def _from_rows(rows: Sequence[Any]) -> Any:
    import pyarrow as pa

    try:
        return pa.Table.from_pylist(list(rows))
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise UsageError(f"the rows do not share one type per column: {exc}") from None


def _column_spec(name: str, values: Any) -> FieldSpec:
    import pyarrow as pa

    try:
        if type(values).__module__.partition(".")[0] == "pandas":
            array = pa.Array.from_pandas(values)
        else:
            array = pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
        return FieldSpec(name, "mixed")
    return FieldSpec(name, _type_name(array.type))


def _type_name(arrow_type: Any) -> str:
    import pyarrow as pa

    if pa.types.is_dictionary(arrow_type):  # a pandas categorical: the values' type counts
        return _type_name(arrow_type.value_type)
    name = str(arrow_type)
    if name in _STRINGS:
        return "string"
    if name in _BINARY:
        return "binary"
    return name


def _numpy_type(dtype: Any) -> str:
    import pyarrow as pa

    try:
        return _type_name(pa.from_numpy_dtype(dtype))
    except (pa.ArrowNotImplementedError, TypeError):
        return "mixed" if dtype.kind == "O" else str(dtype)


def _group(dtype: str) -> str:
    if dtype.startswith(("int", "uint")):
        return "integer"
    if dtype in {"halffloat", "float", "double"} or dtype.startswith("float"):
        return "floating"
    return dtype.split("[")[0]


def _compatible(expected: str, got: str) -> bool:
    """Same type, same kind (int32 for int64), an integer where a float goes, or all-null."""
    if expected == got or got == "null":
        return True
    want, have = _group(expected), _group(got)
    return want == have or (want == "floating" and have == "integer")


def _check_tensor(spec: FieldSpec, got: list[FieldSpec]) -> list[FieldProblem]:
    if len(got) == 1 and got[0].shape is not None:
        actual = got[0]
    else:  # read as columns: a 2-D array or a frame; compare as an (n, k) tensor
        dtypes = {g.dtype for g in got}
        actual = FieldSpec(spec.name, dtypes.pop() if len(dtypes) == 1 else "mixed", (-1, len(got)))
    problems = []
    assert spec.shape is not None
    assert actual.shape is not None
    if len(spec.shape) != len(actual.shape) or any(
        want not in (-1, have) for want, have in zip(spec.shape[1:], actual.shape[1:], strict=True)
    ):
        problems.append(
            FieldProblem(
                spec.name,
                "shape",
                f"{spec.name!r} should have shape {list(spec.shape)}, got {list(actual.shape)}",
            )
        )
    if not _compatible(spec.dtype, actual.dtype):
        problems.append(
            FieldProblem(
                spec.name, "type", f"{spec.name!r} should be {spec.dtype}, got {actual.dtype}"
            )
        )
    return problems
