"""The encoding half of :mod:`plinth.ledger.wire`: annotations compiled into encoders.

Also what both halves share: the :class:`Bad` error that collects the path of a value that
does not fit, and the helpers naming types and JSON kinds.
"""

from __future__ import annotations

import base64
import collections.abc as abc
import dataclasses
import datetime as dt
import enum
import math
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any

from plinth.errors import UsageError

__all__ = [
    "MAPPINGS",
    "MAX_DEPTH",
    "SEQUENCES",
    "SETS",
    "Bad",
    "Codec",
    "encoder",
    "fail",
    "hints_of",
    "jkind",
    "name_of",
]

Codec = Callable[[Any], Any]

SEQUENCES = (list, abc.Sequence, abc.Iterable, abc.Collection, abc.MutableSequence)
SETS = (set, frozenset, abc.Set, abc.MutableSet)
MAPPINGS = (dict, abc.Mapping, abc.MutableMapping)
#: The largest nesting ``Any`` values may have; deeper payloads are refused, not recursed.
MAX_DEPTH = 64


class Bad(Exception):
    """A value that does not fit; ``path`` grows (innermost first) as it propagates."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = []

    def at(self, part: str) -> Bad:
        self.path.append(part)
        return self

    def where(self, field: str) -> str:
        text = field + "".join(reversed(self.path))
        return text.lstrip(".") or "value"


# -- encoders ----------------------------------------------------------------------------


@cache
def encoder(tp: Any) -> Codec:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return lambda value: _any_out(value, 0)
    if tp is object:
        return _object_out
    if tp is None or tp is type(None):
        return lambda value: _need(value, type(None), "None")
    if origin in (typing.Union, types.UnionType):
        return _union_out(tp, args)
    if origin is typing.Literal:
        return lambda value: (
            value if value in args else fail(f"{value!r:.60} is not one of {list(args)}")
        )
    if tp in _PRIMITIVE_OUT:
        return _PRIMITIVE_OUT[tp]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return lambda value: _need(value, tp, tp.__name__).value
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_out(tp)
    container = origin or tp
    if container is tuple:
        return _tuple_out(args)
    if container in SETS:
        return _set_out(encoder(args[0] if args else Any))
    if container in MAPPINGS:
        key_tp, value_tp = args if args else (Any, Any)
        return _mapping_out(key_tp, encoder(key_tp), encoder(value_tp))
    if container in SEQUENCES:
        return _list_out(encoder(args[0] if args else Any))
    raise UsageError(f"the wire format cannot carry a {name_of(tp)}")


def fail(message: str) -> Any:
    raise Bad(message)


def _need(value: Any, kind: type, what: str) -> Any:
    if not isinstance(value, kind):
        raise Bad(f"must be {what}, got {type(value).__name__}")
    return value


def _int_out(value: Any) -> Any:
    if type(value) is not int and (isinstance(value, bool) or not isinstance(value, int)):
        raise Bad(f"must be an integer, got {type(value).__name__}")
    return value


def _float_out(value: Any) -> Any:
    if type(value) is float:
        return value if math.isfinite(value) else _non_finite(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise Bad(f"must be a number, got {type(value).__name__}")
    number = float(value)
    return number if math.isfinite(number) else _non_finite(number)


def _non_finite(value: float) -> str:
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


def _datetime_out(value: Any) -> Any:
    if not isinstance(value, dt.datetime) or value.tzinfo is None:
        raise Bad("must be a timezone-aware datetime")
    return value.isoformat()


_PRIMITIVE_OUT: dict[Any, Codec] = {
    str: lambda value: value if type(value) is str else _need(value, str, "a string"),
    bool: lambda value: _need(value, bool, "a boolean"),
    int: _int_out,
    float: _float_out,
    bytes: lambda value: base64.b64encode(_need(value, bytes, "bytes")).decode("ascii"),
    dt.datetime: _datetime_out,
    dt.date: lambda value: _need(value, dt.date, "a date").isoformat(),
}


def _object_out(value: Any) -> Any:
    # Params and tags: the ledger stores str(value), so a non-JSON value goes as its text.
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return value
    return str(value)


def _union_out(tp: Any, args: tuple[Any, ...]) -> Codec:
    options = [(_fits(option), encoder(option)) for option in args]

    def out(value: Any) -> Any:
        for fits, encode_one in options:
            if fits(value):
                return encode_one(value)
        raise Bad(f"{type(value).__name__} is not a {name_of(tp)}")

    return out


def _dataclass_out(tp: type) -> Codec:
    hints = hints_of(tp)
    fields = [(f.name, encoder(hints[f.name])) for f in dataclasses.fields(tp) if f.init]

    def out(value: Any) -> Any:
        if not isinstance(value, tp):
            raise Bad(f"must be a {tp.__name__}, got {type(value).__name__}")
        result = {}
        for name, encode_one in fields:
            try:
                result[name] = encode_one(getattr(value, name))
            except Bad as bad:
                raise bad.at(f".{name}") from None
        return result

    return out


def _list_out(item: Codec) -> Codec:
    def out(value: Any) -> Any:
        if isinstance(value, (str, bytes)):
            raise Bad("must be a list of values, not one string")
        if isinstance(value, abc.Mapping) or not isinstance(value, abc.Iterable):
            raise Bad(f"must be a list of values, got {type(value).__name__}")
        result = []
        for i, v in enumerate(value):
            try:
                result.append(item(v))
            except Bad as bad:
                raise bad.at(f"[{i}]") from None
        return result

    return out


def _tuple_out(args: tuple[Any, ...]) -> Codec:
    if len(args) == 2 and args[1] is Ellipsis:
        return _list_out(encoder(args[0]))
    items = [encoder(a) for a in args]

    def out(value: Any) -> Any:
        values = list(_need(value, (tuple, list), "a tuple"))  # type: ignore[arg-type]
        if items and len(values) != len(items):
            raise Bad(f"must have {len(items)} items, got {len(values)}")
        codecs = items or [encoder(Any)] * len(values)
        result = []
        for i, (v, encode_one) in enumerate(zip(values, codecs, strict=True)):
            try:
                result.append(encode_one(v))
            except Bad as bad:
                raise bad.at(f"[{i}]") from None
        return result

    return out


def _set_out(item: Codec) -> Codec:
    def out(value: Any) -> Any:
        result = [item(v) for v in _need(value, abc.Set, "a set")]
        try:
            return sorted(result)
        except TypeError:  # unorderable items: any order is a set's order
            return result

    return out


def _mapping_out(key_tp: Any, key: Codec, item: Codec) -> Codec:
    def out(value: Any) -> Any:
        mapping = _need(value, abc.Mapping, "a mapping")
        if key_tp is str:
            result = {}
            for k, v in mapping.items():
                if type(k) is not str:
                    raise Bad(f"keys must be strings, got {type(k).__name__}")
                try:
                    result[k] = item(v)
                except Bad as bad:
                    raise bad.at(f".{k}") from None
            return result
        return [[key(k), item(v)] for k, v in mapping.items()]

    return out


def _any_out(value: Any, depth: int) -> Any:
    """JSON values only, as ``json.dumps`` would write them (tuples as lists)."""
    if depth > MAX_DEPTH:
        raise Bad(f"nested more than {MAX_DEPTH} levels deep")
    if value is None or isinstance(value, (str, bool, int)):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"$float": _non_finite(value)}
    if isinstance(value, (list, tuple)):
        out = []
        for i, v in enumerate(value):
            try:
                out.append(_any_out(v, depth + 1))
            except Bad as bad:
                raise bad.at(f"[{i}]") from None
        return out
    if isinstance(value, abc.Mapping):
        result = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise Bad(f"JSON object keys are strings, got {k!r:.40}")
            try:
                result[k] = _any_out(v, depth + 1)
            except Bad as bad:
                raise bad.at(f".{k}") from None
        # A mapping that looks like one of the codec's own tags is wrapped, not mistaken.
        tagged = len(result) == 1 and next(iter(result)) in ("$float", "$dict")
        return {"$dict": result} if tagged else result
    raise Bad(f"a {type(value).__name__} is not JSON-serialisable")


def _fits(tp: Any) -> Callable[[Any], bool]:
    """A shallow check that a value is of the union member ``tp``, to pick its encoder."""
    origin = typing.get_origin(tp) or tp
    args = typing.get_args(tp)
    if tp is Any or tp is object:
        return lambda value: True
    if tp is None or tp is type(None):
        return lambda value: value is None
    if origin is typing.Literal:
        return lambda value: value in args
    if tp is int:
        return lambda value: isinstance(value, int) and not isinstance(value, bool)
    if tp is float:
        return lambda value: isinstance(value, (int, float)) and not isinstance(value, bool)
    if origin is tuple:
        variadic = len(args) == 2 and args[1] is Ellipsis
        return lambda value: (
            isinstance(value, (tuple, list)) and (variadic or not args or len(value) == len(args))
        )
    if origin in SEQUENCES:
        return lambda value: (
            isinstance(value, abc.Iterable) and not isinstance(value, (str, bytes, abc.Mapping))
        )
    if origin in SETS:
        return lambda value: isinstance(value, abc.Set)
    if origin in MAPPINGS:
        return lambda value: isinstance(value, abc.Mapping)
    if isinstance(origin, type):
        return lambda value: isinstance(value, origin)
    return lambda value: False


# -- helpers -----------------------------------------------------------------------------


@cache
def hints_of(tp: type) -> dict[str, Any]:
    return typing.get_type_hints(tp)


def name_of(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def jkind(data: Any) -> str:
    if data is None:
        return "null"
    if isinstance(data, bool):
        return "a boolean"
    if isinstance(data, (int, float)):
        return "a number"
    if isinstance(data, str):
        return "a string"
    if isinstance(data, list):
        return "a list"
    if isinstance(data, dict):
        return "an object"
    return type(data).__name__
