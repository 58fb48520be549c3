"""The ledger wire codec: every store method's arguments and result survive the trip."""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import json
import math
import types
import typing
from collections.abc import Sequence
from typing import Any

import pytest

from plinth.entities import MetricPoint, Model, Run, RunRow
from plinth.entities.models import UNCHECKED
from plinth.errors import RequestError, UsageError
from plinth.ledger.surface import STORES, decode_args, encode_args, method_spec, store_methods
from plinth.ledger.wire import decode, encode


def _options(tp: Any) -> list[Any]:
    """One sample value per way ``tp`` can be (each union member), built from the type."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        return [v for option in args for v in _options(option)]
    return [_sample(tp)]


def _sample(tp: Any) -> Any:
    origin = typing.get_origin(tp) or tp
    args = typing.get_args(tp)
    simple = {str: "s", int: 7, float: 1.5, bool: True, bytes: b"\x00\xff", type(None): None}
    if tp in simple:
        return simple[tp]
    if tp is None:
        return None
    if tp is Any:
        return {"a": [1, "x", None, 2.5, {"b": False}]}
    if tp is object:
        return "o"
    if tp is dt.datetime:
        return dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    if origin is typing.Literal:
        return args[0]
    if origin in (typing.Union, types.UnionType):
        return _options(tp)[0]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return next(iter(tp))
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        return tp(**{f.name: _sample(hints[f.name]) for f in dataclasses.fields(tp) if f.init})
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return (_sample(args[0]),)
        return tuple(_sample(a) for a in args)
    if origin in (set, frozenset):
        return origin({_sample(args[0])})
    if origin in (dict, typing.get_origin(typing.Mapping[str, int])) or str(origin).endswith(
        "Mapping'>"
    ):
        return {"k": _sample(args[1])}
    return [_sample(args[0])]  # list, Sequence, Iterable, Collection


def _trip(value: Any, tp: Any) -> Any:
    return decode(json.loads(json.dumps(encode(value, tp), allow_nan=False)), tp)


CASES = [
    (store, method, name, tp)
    for store in STORES
    for method in store_methods(store)
    for name, tp in method_spec(store, method).hints.items()
]


def test_the_table_covers_every_store_method() -> None:
    covered = {(s, m) for s, m, _, _ in CASES}
    assert covered == {(s, m) for s in STORES for m in store_methods(s)}
    assert len(covered) > 120


@pytest.mark.parametrize(("store", "method", "name", "tp"), CASES, ids=lambda v: str(v)[:40])
def test_every_annotation_round_trips(store: str, method: str, name: str, tp: Any) -> None:
    for value in _options(tp):
        back = _trip(value, tp)
        assert back == value, f"{store}.{method} {name}: {value!r} came back as {back!r}"
        assert type(back) is type(value) or isinstance(value, (list, tuple, dict))


def test_a_whole_call_round_trips_with_its_defaults_left_to_the_server() -> None:
    spec = method_spec("models", "set_aliases")
    model = Model("m1", "p1", "clf", 3, 1, "ada")
    moves = [("champion", 1), ("challenger", "2", UNCHECKED), ("old", 3, None)]
    wire = encode_args(spec, (model, moves), {"reason": "better"})
    assert set(wire) == {"model", "moves", "reason"}
    args = decode_args(spec, json.loads(json.dumps(wire)))
    assert args == {"model": model, "moves": moves, "reason": "better"}


def test_non_finite_floats_round_trip_typed_and_inside_any() -> None:
    values = [math.nan, math.inf, -math.inf]
    points = [MetricPoint("loss", v, 0, 1, i) for i, v in enumerate(values)]
    back = _trip(points, Sequence[MetricPoint])
    assert math.isnan(back[0].value)
    assert back[1].value == math.inf
    assert back[2].value == -math.inf
    row = RunRow(Run("r", "e", None, "running", 1, None, "ada"), "exp", {"acc": math.nan})
    assert math.isnan(_trip(row, RunRow).metrics["acc"])
    free = _trip({"x": [math.nan, 1.0], "$float": "literal", "y": {"$float": "NaN"}}, Any)
    assert math.isnan(free["x"][0])
    assert free["$float"] == "literal"
    assert free["y"] == {"$float": "NaN"}  # a dict that looks like a tag stays a dict


def test_the_payload_never_names_a_class() -> None:
    tp = Sequence[MetricPoint]
    forged = [{"key": "k", "value": 1, "step": 0, "timestamp": 1, "seq": 1, "__class__": "os"}]
    with pytest.raises(RequestError) as info:
        decode(forged, tp)
    assert info.value.field == "[0].__class__"
    # Any carries JSON only: a type tag is just data, never a class to build.
    assert decode({"$type": "subprocess.Popen", "args": ["id"]}, Any) == {
        "$type": "subprocess.Popen",
        "args": ["id"],
    }


@pytest.mark.parametrize(
    ("data", "tp", "field"),
    [
        ("x", int, "value"),
        (True, int, "value"),
        ([1], dict[str, int], "value"),
        ({"a": "x"}, dict[str, float], "a"),
        ({"key": "k"}, MetricPoint, "value"),
        ([["a", 1, 2]], Sequence[tuple[str, int]], "[0]"),
        ("2026-01-01T00:00:00", dt.datetime, "value"),
        ("not base64!", bytes, "value"),
        ("maybe", typing.Literal["yes", "no"], "value"),
    ],
)
def test_a_bad_payload_names_its_field(data: Any, tp: Any, field: str) -> None:
    with pytest.raises(RequestError) as info:
        decode(data, tp)
    assert info.value.status == 422
    assert (info.value.field or "").endswith(field) or field == "value"


def test_unknown_and_missing_arguments_are_refused() -> None:
    spec = method_spec("runs", "get_run")
    with pytest.raises(RequestError, match="no argument 'evil'"):
        decode_args(spec, {"run_id": "r", "evil": 1})
    with pytest.raises(RequestError, match="run_id"):
        decode_args(spec, {})


def test_encoding_checks_the_callers_values() -> None:
    with pytest.raises(UsageError, match="run_id"):
        encode_args(method_spec("runs", "get_run"), (12,), {})
    with pytest.raises(UsageError, match="not JSON-serialisable"):
        encode({"when": object()}, Any)
    # params and tags are stored as str(value): an unusual value travels as its text
    assert encode((1, 2), object) == "(1, 2)"


def test_deep_nesting_is_refused_not_recursed() -> None:
    data: Any = 1
    for _ in range(200):
        data = [data]
    with pytest.raises(RequestError, match="nested"):
        decode(data, Any)
