"""The ledger's wire format: a type-directed JSON codec for store arguments and results.

The team server and :class:`plinth.ledger.remote.RemoteLedger` exchange the arguments and
results of the ledger stores' methods as JSON. What a value may be is read from the method's
annotations (:func:`typing.get_type_hints`), never from the payload: the decoder builds only
the types the annotation names (the entities' dataclasses, enums, primitives, containers),
so a payload can never make either side instantiate a class of its choosing::

    data = encode(points, Sequence[MetricPoint])       # JSON-able lists and dicts
    points = decode(data, Sequence[MetricPoint])       # MetricPoint objects again

Floats that JSON cannot carry travel as the strings ``"NaN"``, ``"Infinity"`` and
``"-Infinity"`` (inside ``Any`` as ``{"$float": "NaN"}``), so metrics round-trip exactly.
A payload that does not fit its annotation raises :class:`RequestError` naming the field.

Each annotation is compiled once into a pair of functions (cached), so a batch of 50,000
metric points costs a few plain function calls per point, not a walk of the type each time.
Core module: the standard library and :mod:`plinth.errors`.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import enum
import functools
import math
import types
import typing
from typing import Any

from plinth.errors import RequestError, UsageError
from plinth.ledger._wire_out import (
    MAPPINGS,
    MAX_DEPTH,
    SEQUENCES,
    SETS,
    Bad,
    Codec,
    encoder,
    fail,
    hints_of,
    jkind,
    name_of,
)

__all__ = ["decode", "encode"]

_NON_FINITE = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}


def encode(value: Any, annotation: Any, field: str = "") -> Any:
    """``value`` as JSON-able data, as its ``annotation`` describes it.

    :class:`UsageError` naming the field when the value does not fit (a caller's mistake,
    caught before anything is sent).
    """
    try:
        return encoder(annotation)(value)
    except Bad as bad:
        raise UsageError(f"{bad.where(field)}: {bad.message}") from None


def decode(data: Any, annotation: Any, field: str = "") -> Any:
    """The value ``annotation`` describes, rebuilt from JSON ``data``.

    :class:`RequestError` (HTTP 422) naming the field when the data does not fit.
    """
    try:
        return _decoder(annotation)(data)
    except Bad as bad:
        raise RequestError.naming([(bad.where(field), bad.message)]) from None


# -- decoders ----------------------------------------------------------------------------


@functools.cache
def _decoder(tp: Any) -> Codec:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return lambda data: _any_in(data, 0)
    if tp is object:
        return _object_in
    if tp is None or tp is type(None):
        return lambda data: data if data is None else fail(f"expected null, got {jkind(data)}")
    if origin in (typing.Union, types.UnionType):
        return _union_in(tp, args)
    if origin is typing.Literal:
        kinds = {type(a) for a in args}
        return lambda data: (
            data
            if data in args and type(data) in kinds
            else fail(f"{data!r:.60} is not one of {list(args)}")
        )
    if tp in _PRIMITIVE_IN:
        return _PRIMITIVE_IN[tp]
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        return _enum_in(tp)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        return _dataclass_in(tp)
    container = origin or tp
    if container is tuple:
        return _tuple_in(args)
    if container in SETS:
        item = _decoder(args[0] if args else Any)
        build = frozenset if container is frozenset else set
        return lambda data: build(_list_in(item)(data))
    if container in MAPPINGS:
        key_tp, value_tp = args if args else (Any, Any)
        return _mapping_in(key_tp, _decoder(key_tp), _decoder(value_tp))
    if container in SEQUENCES:
        return _list_in(_decoder(args[0] if args else Any))
    raise UsageError(f"the wire format cannot carry a {name_of(tp)}")


def _want(data: Any, kind: type, what: str) -> Any:
    if type(data) is not kind and (not isinstance(data, kind) or isinstance(data, bool)):
        raise Bad(f"expected {what}, got {jkind(data)}")
    return data


def _int_in(data: Any) -> Any:
    if type(data) is not int:
        raise Bad(f"expected an integer, got {jkind(data)}")
    return data


def _float_in(data: Any) -> Any:
    kind = type(data)
    if kind is float or kind is int:
        return float(data)
    if kind is str and data in _NON_FINITE:
        return _NON_FINITE[data]
    raise Bad(f"expected a number, got {jkind(data)}")


def _bytes_in(data: Any) -> Any:
    try:
        return base64.b64decode(_want(data, str, "base64 text"), validate=True)
    except ValueError:
        raise Bad("expected base64 text") from None


def _time_in(tp: Any) -> Codec:
    def decode_time(data: Any) -> Any:
        text = _want(data, str, "an ISO 8601 text")
        try:
            if tp is dt.date:
                return dt.date.fromisoformat(text)
            value = dt.datetime.fromisoformat(text)
        except ValueError:
            raise Bad(f"{text!r:.40} is not an ISO 8601 date or time") from None
        if value.tzinfo is None:
            raise Bad("a time needs its UTC offset, e.g. 2026-01-31T12:00:00+00:00")
        return value

    return decode_time


_PRIMITIVE_IN: dict[Any, Codec] = {
    str: lambda data: data if type(data) is str else _want(data, str, "a string"),
    bool: lambda data: (
        data if type(data) is bool else fail(f"expected a boolean, got {jkind(data)}")
    ),
    int: _int_in,
    float: _float_in,
    bytes: _bytes_in,
    dt.datetime: _time_in(dt.datetime),
    dt.date: _time_in(dt.date),
}


def _object_in(data: Any) -> Any:
    if data is None or isinstance(data, (str, bool, int, float)):
        return data
    raise Bad(f"expected a string, number, boolean or null, got {jkind(data)}")


def _enum_in(tp: type[enum.Enum]) -> Codec:
    def decode_enum(data: Any) -> Any:
        try:
            return tp(data)
        except (ValueError, TypeError):
            raise Bad(f"{data!r:.60} is not one of {[m.value for m in tp]}") from None

    return decode_enum


def _union_in(tp: Any, args: tuple[Any, ...]) -> Codec:
    options = [_decoder(option) for option in args]
    real = [option for option in args if option is not type(None)]

    def decode_union(data: Any) -> Any:
        errors = []
        for decode_one in options:
            try:
                return decode_one(data)
            except Bad as bad:
                errors.append(bad)
        if len(real) == 1 and data is not None:  # X | None: X's own, more precise, error
            return _decoder(real[0])(data)
        raise Bad(f"expected {name_of(tp)}, got {jkind(data)}")

    return decode_union


def _dataclass_in(tp: type) -> Codec:
    hints = hints_of(tp)
    fields = {f.name: f for f in dataclasses.fields(tp) if f.init}
    decoders = [(name, _decoder(hints[name])) for name in fields]
    required = {
        name
        for name, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
    }

    def decode_dataclass(data: Any) -> Any:
        if type(data) is not dict:
            raise Bad(f"expected a {tp.__name__} object, got {jkind(data)}")
        if len(data) > len(fields) or not data.keys() <= fields.keys():
            extra = sorted(set(data) - set(fields))[0]
            raise Bad(f"{tp.__name__} has no field {extra!r:.60}").at(f".{extra}")
        values = {}
        for name, decode_one in decoders:
            if name in data:
                try:
                    values[name] = decode_one(data[name])
                except Bad as bad:
                    raise bad.at(f".{name}") from None
            elif name in required:
                raise Bad(f"missing (a {tp.__name__} needs it)").at(f".{name}")
        try:
            return tp(**values)
        except UsageError as exc:  # the entity's own checks
            raise Bad(exc.message) from None

    return decode_dataclass


def _list_in(item: Codec) -> Codec:
    def decode_list(data: Any) -> Any:
        if type(data) is not list:
            raise Bad(f"expected a list, got {jkind(data)}")
        result = []
        for i, v in enumerate(data):
            try:
                result.append(item(v))
            except Bad as bad:
                raise bad.at(f"[{i}]") from None
        return result

    return decode_list


def _tuple_in(args: tuple[Any, ...]) -> Codec:
    if len(args) == 2 and args[1] is Ellipsis:
        as_list = _list_in(_decoder(args[0]))
        return lambda data: tuple(as_list(data))
    items = [_decoder(a) for a in args]

    def decode_tuple(data: Any) -> Any:
        values = _want(data, list, "a list")
        if items and len(values) != len(items):
            raise Bad(f"expected {len(items)} items, got {len(values)}")
        codecs = items or [_decoder(Any)] * len(values)
        result = []
        for i, (v, decode_one) in enumerate(zip(values, codecs, strict=True)):
            try:
                result.append(decode_one(v))
            except Bad as bad:
                raise bad.at(f"[{i}]") from None
        return tuple(result)

    return decode_tuple


def _mapping_in(key_tp: Any, key: Codec, item: Codec) -> Codec:
    def decode_mapping(data: Any) -> Any:
        if key_tp is str:
            result = {}
            for k, v in _want(data, dict, "an object").items():
                try:
                    result[k] = item(v)
                except Bad as bad:
                    raise bad.at(f".{k}") from None
            return result
        out = {}
        for i, pair in enumerate(_want(data, list, "a list of [key, value] pairs")):
            if type(pair) is not list or len(pair) != 2:
                raise Bad("expected a [key, value] pair").at(f"[{i}]")
            try:
                out[key(pair[0])] = item(pair[1])
            except Bad as bad:
                raise bad.at(f"[{i}]") from None
        return out

    return decode_mapping


def _any_in(data: Any, depth: int) -> Any:
    if depth > MAX_DEPTH:
        raise Bad(f"nested more than {MAX_DEPTH} levels deep")
    if data is None or isinstance(data, (str, bool, int, float)):
        return data
    if isinstance(data, list):
        return [_any_in(v, depth + 1) for v in data]
    if isinstance(data, dict):
        if len(data) == 1 and "$float" in data:
            text = data["$float"]
            if not isinstance(text, str) or text not in _NON_FINITE:
                raise Bad("$float holds NaN, Infinity or -Infinity")
            return _NON_FINITE[text]
        if len(data) == 1 and "$dict" in data:
            inner = _want(data["$dict"], dict, "an object")
            return {k: _any_in(v, depth + 1) for k, v in inner.items()}
        return {k: _any_in(v, depth + 1) for k, v in data.items()}
    raise Bad(f"expected a JSON value, got {jkind(data)}")
