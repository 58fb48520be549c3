"""Request bodies to columns in the signature's order, with every bad field named.

``{"records": [{...}, ...]}`` or ``{"columns": {"name": [...], ...}}`` become one list per
input of the signature; all problems are collected, each with the field it is about
(``records[3].distance``, ``columns.origin[0]``), and raised together as one
:class:`~plinth.errors.RequestError` (422), or :class:`~plinth.errors.PayloadTooLargeError`
(413) for too many rows.

Pass-through fields (``passthrough:`` in the deployment) travel beside the inputs: checked
as declared, returned by :meth:`Decoder.decode_request` apart from the model's columns. A
body may ask for them back with ``"return_passthrough": true``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from plinth.errors import PayloadTooLargeError, RequestError

__all__ = ["Decoded", "Decoder", "Problem", "openapi"]

_MAX_PROBLEMS = 50  # enough to fix a request; a 10,000-row mistake need not echo 10,000 times


class Problem(NamedTuple):
    """One bad field of a request: a ``(field, message)`` entry of a RequestError."""

    field: str
    message: str


def _group(dtype: str) -> str:
    if dtype == "key":  # an entity key of online features: a string or an integer
        return "key"
    if dtype.startswith(("int", "uint")):
        return "integer"
    if dtype in {"halffloat", "float", "double"} or dtype.startswith("float"):
        return "number"
    if dtype in {"bool", "boolean"}:
        return "boolean"
    if dtype in {"string", "large_string", "utf8"}:
        return "string"
    return "any"


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


_INT_MIN, _INT_MAX = -(2**63), 2**63 - 1  # what the model's int64 column can hold


def _key(key: str) -> str:
    """A key the client sent, short enough to echo back (a 10 MB key is not)."""
    return key if len(key) <= 64 else key[:61] + "..."


def _check_integer(v: Any) -> str | None:
    t = type(v)
    if (t is int or (t is float and v.is_integer())) and _INT_MIN <= v <= _INT_MAX:
        return None
    if t is int or (t is float and v.is_integer()):
        return f"{_describe(v)} is out of range for a 64-bit integer"
    if v is None:
        return "expected an integer, got null"
    return f"expected an integer, got {_describe(v)}"


def _check_number(v: Any) -> str | None:
    t = type(v)
    if t is float or t is int or v is None:  # null is a missing value: NaN
        return None
    return f"expected a number, got {_describe(v)}"


def _check_boolean(v: Any) -> str | None:
    if type(v) is bool:
        return None
    return f"expected true or false, got {'null' if v is None else _describe(v)}"


def _check_string(v: Any) -> str | None:
    if type(v) is str or v is None:
        return None
    return f"expected a string, got {_describe(v)}"


def _check_key(v: Any) -> str | None:
    t = type(v)
    if t is str or (t is int and _INT_MIN <= v <= _INT_MAX):
        return None
    return f"an entity key is a string or an integer, got {'null' if v is None else _describe(v)}"


def _check_any(v: Any) -> str | None:
    return None


_CHECKS: dict[str, Callable[[Any], str | None]] = {
    "integer": _check_integer,
    "number": _check_number,
    "boolean": _check_boolean,
    "string": _check_string,
    "key": _check_key,
    "any": _check_any,
}
_JSON_TYPES: dict[str, dict[str, Any]] = {
    "integer": {"type": "integer"},
    "number": {"type": ["number", "null"]},
    "boolean": {"type": "boolean"},
    "string": {"type": ["string", "null"]},
    "key": {"type": ["string", "integer"]},
    "any": {},
}


def _check_scalar(v: Any) -> str | None:
    if v is None or type(v) in (str, int, float, bool):
        return None
    return f"expected a string, number, boolean or null, got {_describe(v)}"


_PASS_CHECKS = {**_CHECKS, "any": _check_scalar}
_PASS_TYPES = {"integer": "int64", "number": "double", "boolean": "bool", "string": "string"}


class Decoded(NamedTuple):
    """A decoded request: the model's ``columns``, its ``rows``, the pass-through columns
    and whether the client asked for them back."""

    columns: dict[str, list[Any]]
    rows: int
    passthrough: dict[str, list[Any]]
    echo: bool


class Decoder:
    """Decodes request documents for one signature's inputs (name, Arrow type) in order.

    ``passthrough``: ``(name, type, required)`` of fields that are not model inputs.
    """

    def __init__(
        self,
        inputs: Sequence[tuple[str, str]],
        *,
        max_rows: int,
        passthrough: Sequence[tuple[str, str, bool]] = (),
    ) -> None:
        self.names = [name for name, _ in inputs]
        self.dtypes = dict(inputs)
        self.groups = {name: _group(dtype) for name, dtype in inputs}
        self.checks = [(name, _CHECKS[self.groups[name]]) for name in self.names]
        self.known = frozenset(self.names)
        self.max_rows = max_rows
        self.passthrough = list(passthrough)
        self.pass_names = [name for name, _, _ in passthrough]
        self.pass_checks = [(n, _PASS_CHECKS[t], req, t) for n, t, req in passthrough]
        self.all_known = self.known | frozenset(self.pass_names)

    def log_types(self) -> dict[str, str]:
        """The Arrow type (alias) the prediction log stores each column as: a model input's
        signature type, a pass-through field's declared type. Inputs of other types
        (tensors, lists) and ``any`` pass-through fields (a mix of scalars no one type
        holds) are left out: their type is inferred from the values."""
        types = {n: self.dtypes[n] for n in self.names if self.groups[n] not in ("any", "key")}
        for name, kind, _ in self.passthrough:
            if kind in _PASS_TYPES:
                types[name] = _PASS_TYPES[kind]
        return types

    def decode(self, doc: Any) -> tuple[dict[str, list[Any]], int]:
        """``(columns, rows)`` from a parsed body; RequestError naming every bad field."""
        decoded = self.decode_request(doc)
        return decoded.columns, decoded.rows

    def decode_request(self, doc: Any) -> Decoded:
        """The model's columns, rows and pass-through fields of a parsed body."""
        if not isinstance(doc, dict):
            raise RequestError.naming(
                [Problem("body", 'expected {"records": [...]} or {"columns": {...}}')],
            )
        extra = [key for key in doc if key not in ("records", "columns", "return_passthrough")]
        problems = [Problem(_key(k), "unknown key; send 'records' or 'columns'") for k in extra]
        if "records" in doc and "columns" in doc:
            problems.append(Problem("body", "send either 'records' or 'columns', not both"))
        echo = doc.get("return_passthrough", False)
        if type(echo) is not bool:
            problems.append(Problem("return_passthrough", "expected true or false"))
        if problems:
            raise RequestError.naming(problems)
        if "records" in doc:
            return Decoded(*self._records(doc["records"]), echo)
        if "columns" in doc:
            return Decoded(*self._columns(doc["columns"]), echo)
        raise RequestError.naming(
            [Problem("body", 'expected {"records": [...]} or {"columns": {...}}')]
        )

    def _too_many(self, where: str, n: int) -> PayloadTooLargeError:
        return PayloadTooLargeError.naming(
            [Problem(where, f"{n} rows is more than this deployment's limit of {self.max_rows}")]
        )

    def _records(self, records: Any) -> tuple[dict[str, list[Any]], int, dict[str, list[Any]]]:
        if not isinstance(records, list) or not records:
            got = "an empty list" if records == [] else _describe(records)
            raise RequestError.naming(
                [Problem("records", f"expected a non-empty list of objects, got {got}")]
            )
        n = len(records)
        if n > self.max_rows:
            raise self._too_many("records", n)
        names, known = self.names, self.all_known
        if n == 1 and type(records[0]) is dict and not self.passthrough:  # the common request
            row = records[0]
            if row.keys() == known and all(check(row[k]) is None for k, check in self.checks):
                return {name: [row[name]] for name in names}, 1, {}
        columns: dict[str, list[Any]] = {name: [None] * n for name in names}
        passed: dict[str, list[Any]] = {name: [None] * n for name in self.pass_names}
        problems: list[Problem] = []
        for i, row in enumerate(records):
            if type(row) is not dict:
                problems.append(
                    Problem(f"records[{i}]", f"expected an object, got {_describe(row)}")
                )
                continue
            for name, check in self.checks:
                if name not in row:
                    problems.append(
                        Problem(f"records[{i}].{name}", f"missing ({self.dtypes[name]})")
                    )
                    continue
                value = row[name]
                message = check(value)
                if message is not None:
                    problems.append(Problem(f"records[{i}].{name}", message))
                else:
                    columns[name][i] = value
            for name, check, required, kind in self.pass_checks:
                value = row.get(name)
                if value is None and name not in row and required:
                    problems.append(
                        Problem(f"records[{i}].{name}", f"missing (pass-through, {kind})")
                    )
                    continue
                message = check(value) if value is not None or required else None
                if message is None and value is None and required:
                    message = f"expected {kind}, got null (a required pass-through field)"
                if message is not None:
                    problems.append(Problem(f"records[{i}].{name}", message))
                else:
                    passed[name][i] = value
            if len(row) > len(known) or not known.issuperset(row):
                problems.extend(
                    Problem(f"records[{i}].{_key(key)}", "not an input of the model")
                    for key in row
                    if key not in known
                )
            if len(problems) >= _MAX_PROBLEMS:
                break
        if problems:
            raise RequestError.naming(problems[:_MAX_PROBLEMS])
        return columns, n, passed

    def _columns(self, given: Any) -> tuple[dict[str, list[Any]], int, dict[str, list[Any]]]:
        if not isinstance(given, dict) or not given:
            raise RequestError.naming(
                [
                    Problem(
                        "columns", f"expected an object of name: [values], got {_describe(given)}"
                    )
                ],
            )
        problems: list[Problem] = []
        lengths: dict[str, int] = {}
        # model inputs, then pass-through fields: (name, check of one value, missing message)
        columns: list[tuple[str, Callable[[Any], str | None], str | None]] = [
            (name, check, f"missing ({self.dtypes[name]})") for name, check in self.checks
        ]
        for name, check, required, kind in self.pass_checks:
            missing = f"missing (pass-through, {kind})" if required else None
            columns.append((name, _pass_check(check, required, kind), missing))
        for name, check, missing in columns:
            if name not in given:
                if missing is not None:
                    problems.append(Problem(f"columns.{name}", missing))
                continue
            values = given[name]
            if not isinstance(values, list):
                problems.append(
                    Problem(
                        f"columns.{name}", f"expected a list of values, got {_describe(values)}"
                    )
                )
                continue
            lengths[name] = len(values)
            for i, value in enumerate(values):
                message = check(value)
                if message is not None:
                    problems.append(Problem(f"columns.{name}[{i}]", message))
                    if len(problems) >= _MAX_PROBLEMS:
                        break
        problems.extend(
            Problem(f"columns.{_key(key)}", "not an input of the model")
            for key in given
            if key not in self.all_known
        )
        if len(set(lengths.values())) > 1:
            shown = ", ".join(f"{k}: {v}" for k, v in lengths.items())
            problems.append(Problem("columns", f"columns differ in length ({shown})"))
        n = next(iter(lengths.values()), 0)
        if not problems and n == 0:
            problems.append(Problem("columns", "no rows: every column is empty"))
        if problems:
            raise RequestError.naming(problems[:_MAX_PROBLEMS])
        if n > self.max_rows:
            raise self._too_many("columns", n)
        passed = {name: given[name] if name in given else [None] * n for name in self.pass_names}
        return {name: given[name] for name in self.names}, n, passed

    def input_schema(self) -> dict[str, Any]:
        """The JSON Schema of one record."""
        properties = {
            name: {**_JSON_TYPES[self.groups[name]], "description": self.dtypes[name]}
            for name in self.names
        }
        for name, kind, _ in self.passthrough:
            properties[name] = {**_JSON_TYPES[kind], "description": f"pass-through ({kind})"}
        return {
            "type": "object",
            "additionalProperties": False,
            "required": list(self.names) + [n for n, _, req in self.passthrough if req],
            "properties": properties,
        }


def openapi(title: str, version: str, decoder: Decoder, output: str) -> dict[str, Any]:
    """The OpenAPI 3.1 document of a deployment, built from its model's signature."""
    record = decoder.input_schema()
    columns = {
        "type": "object",
        "additionalProperties": False,
        "required": record["required"],
        "properties": {
            name: {"type": "array", "items": schema}
            for name, schema in record["properties"].items()
        },
    }
    error = {
        "type": "object",
        "properties": {
            "errors": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "type": {"type": "string"},
                        "field": {"type": ["string", "null"]},
                        "message": {"type": "string"},
                        "hint": {"type": "string"},
                    },
                },
            }
        },
    }
    errors: dict[str, Any] = {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Errors"}}}
    }
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": {
            "/v1/predict": {
                "post": {
                    "summary": f"Predict ({output})",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "oneOf": [
                                        {
                                            "type": "object",
                                            "required": ["records"],
                                            "properties": {
                                                "records": {
                                                    "type": "array",
                                                    "minItems": 1,
                                                    "maxItems": decoder.max_rows,
                                                    "items": {
                                                        "$ref": "#/components/schemas/Record"
                                                    },
                                                }
                                            },
                                        },
                                        {
                                            "type": "object",
                                            "required": ["columns"],
                                            "properties": {
                                                "columns": {"$ref": "#/components/schemas/Columns"}
                                            },
                                        },
                                    ]
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": {
                            "description": "One prediction per row, in order",
                            "headers": {"X-Request-ID": {"schema": {"type": "string"}}},
                            "content": {
                                "application/json": {
                                    "schema": {"$ref": "#/components/schemas/Predictions"}
                                }
                            },
                        },
                        "413": {"description": "Too many rows or too large a body", **errors},
                        "422": {"description": "Invalid input; every bad field", **errors},
                    },
                }
            },
            "/v1/model": {"get": {"summary": "The served model: signature, version, lineage"}},
            "/health": {"get": {"summary": "The process is up"}},
            "/ready": {"get": {"summary": "The model is loaded (503 until then)"}},
            "/metrics": {"get": {"summary": "Prometheus metrics"}},
        },
        "components": {
            "schemas": {
                "Record": record,
                "Columns": columns,
                "Predictions": {
                    "type": "object",
                    "required": ["predictions", "model_version", "request_id"],
                    "properties": {
                        "predictions": {"type": "array"},
                        "model_version": {"type": "string"},
                        "request_id": {"type": "string"},
                    },
                },
                "Errors": error,
            }
        },
    }


def _pass_check(
    check: Callable[[Any], str | None], required: bool, kind: str
) -> Callable[[Any], str | None]:
    """A pass-through field's check of one value: null is fine unless the field is required."""

    def checked(value: Any) -> str | None:
        if value is None:
            return (
                f"expected {kind}, got null (a required pass-through field)" if required else None
            )
        return check(value)

    return checked
