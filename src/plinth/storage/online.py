"""The ``OnlineStore`` interface (latest feature values per entity key) and its registry.

An online store holds, for each feature view, one entry per entity key: the feature values
of the newest event written for that key and the event's timestamp. Serving reads it with
one multi-get per view. Backends are chosen by the ``online_store`` setting's URI scheme::

    store = open_online_store("sqlite:///.plinth/online.db", root=project_root)
    features = {"temp": "float64", "station": "string"}
    store.write("weather", [OnlineRow(("JFK",), {"temp": 21.5}, event_time)], features)
    store.write_columns("weather", [table["origin"]], {"temp": table["temp"]},
                        table["hour"], features)  # the same, from Arrow columns
    store.read("weather", [("JFK",), ("LGA",)], features, ttl=timedelta(days=7))
    # {'temp': [21.5, None], 'station': [None, None]}

Rules every backend keeps (held by :mod:`plinth.testing.online_contract`):

- values are typed: ``float64``, ``int64``, ``string``, ``bool``, ``timestamp`` (an aware
  UTC ``datetime`` when read; a naive one written is taken as UTC); ``None`` is null;
- writes are idempotent and last-writer-wins by event timestamp: an older event never
  replaces a newer one; an equal one replaces it (so rewriting a batch changes nothing);
- reads apply the TTL: a value whose event is older than ``now - ttl`` comes back missing
  (``None`` in every column), as offline; exactly ``now - ttl`` is still present.

Each entry is one compact JSON object of the non-null values (null features are left out),
stored with its event timestamp in integer microseconds since the epoch.
"""

from __future__ import annotations

import abc
import json
import math
import operator
import re
import types
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple, Self, cast

from plinth._extras import optional
from plinth.errors import ConfigError, UsageError
from plinth.settings import redact

__all__ = [
    "FEATURE_TYPES",
    "EntityKey",
    "OnlineRow",
    "OnlineStore",
    "open_online_store",
]

#: The feature value types an online store keeps.
FEATURE_TYPES: tuple[str, ...] = ("float64", "int64", "string", "bool", "timestamp")

#: An entity key: one value per join key, each an ``int`` or a ``str``.
EntityKey = tuple[int | str, ...]

_VIEW = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]*")
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
_INT64 = (-(2**63), 2**63 - 1)
_DUMPS = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=True).encode
_EMPTY: Mapping[str, Any] = types.MappingProxyType({})
_encode_basestring: Callable[[str], str] = getattr(json.encoder, "c_encode_basestring", None) or (
    json.encoder.py_encode_basestring
)


class OnlineRow(NamedTuple):
    """One row to write: the entity key, its feature values, and the event's timestamp."""

    key: EntityKey | int | str
    values: Mapping[str, Any]
    event_timestamp: datetime


#: An encoded row as backends store it: (view-local key text, event microseconds, values).
Encoded = tuple[str, int, str]


class OnlineStore(abc.ABC):
    """Latest feature values per entity key and view; backends implement the ``_`` methods."""

    def write(
        self,
        view: str,
        rows: Iterable[OnlineRow | tuple[Any, Mapping[str, Any], datetime]],
        features: Mapping[str, str],
    ) -> int:
        """Write ``rows`` of ``view`` in one bulk write; returns how many rows were given.

        ``features`` maps each feature name to its type (:data:`FEATURE_TYPES`); a value of
        another type, or a feature it does not name, is a :class:`UsageError` and nothing is
        written. A missing or ``None`` value is null. An entry whose stored event is newer
        than the row's is kept; rows of one batch apply in order.
        """
        check_view(view)
        kinds = _check_features(features)
        encoded = [_encode_row(view, row, kinds) for row in rows]
        if encoded:
            self._put(view, encoded)
        return len(encoded)

    def write_columns(
        self,
        view: str,
        keys: Sequence[Any],
        columns: Mapping[str, Any],
        events: Any,
        features: Mapping[str, str],
    ) -> int:
        """Write a batch given as columns: the same entries, checks and refusals as
        :meth:`write`, faster for large batches; returns how many rows were given.

        ``keys`` holds one column per join key, ``columns`` maps feature names to columns
        (a feature left out is null), ``events`` is one event time per row: an Arrow
        timestamp column (naive is UTC), ``datetime`` values or integer microseconds since
        the epoch. A column is an Arrow ``Array``/``ChunkedArray`` or a sequence, each of
        the same length. Example::

            store.write_columns("weather", [table["origin"]], {"temp": table["temp"]},
                                table["hour"], {"temp": "float64"})
        """
        from plinth.storage.online_columns import encode_columns

        check_view(view)
        kinds = _check_features(features)
        encoded = encode_columns(view, keys, columns, events, kinds)
        if encoded:
            self._put(view, encoded)
        return len(encoded)

    def read(
        self,
        view: str,
        keys: Sequence[EntityKey | int | str],
        features: Mapping[str, str],
        *,
        ttl: timedelta | None = None,
        now: datetime | None = None,
    ) -> dict[str, list[Any]]:
        """The values of ``features`` for ``keys`` as columns, in the order of ``keys``.

        One multi-get. A key never written, or whose event is older than ``now - ttl``
        (``now``: the current time), is ``None`` in every column; ``ttl=None`` never expires.
        """
        check_view(view)
        kinds = _check_features(features)
        if ttl is not None and ttl < timedelta(0):
            raise UsageError(f"ttl must not be negative, got {ttl}", field="ttl")
        texts = [encode_key(key) for key in keys]
        found = self._get(view, texts) if texts else []
        cutoff = None
        if ttl is not None:
            cutoff = _micros(now if now is not None else datetime.now(UTC), "now") - (ttl // _MICRO)
        rows: list[Mapping[str, Any]] = [_EMPTY] * len(found)
        live = [
            (i, entry[1])
            for i, entry in enumerate(found)
            if entry is not None and (cutoff is None or entry[0] >= cutoff)
        ]
        if live:
            for (i, _blob), values in zip(live, _decode([blob for _i, blob in live]), strict=True):
                rows[i] = values
        columns: dict[str, list[Any]] = {}
        for name, kind in kinds.items():
            column = [row.get(name) for row in rows]
            if kind == "timestamp":
                column = [None if v is None else _EPOCH + timedelta(microseconds=v) for v in column]
            columns[name] = column
        return columns

    @abc.abstractmethod
    def delete_view(self, view: str) -> None:
        """Remove every entry of ``view``; a view with none is not an error."""

    @abc.abstractmethod
    def check(self) -> None:
        """Raise :class:`~plinth.errors.BackendError` if the store cannot be read or written."""

    @abc.abstractmethod
    def describe(self) -> str:
        """Where the store lives, without secrets, for messages and ``plinth doctor``."""

    def close(self) -> None:  # noqa: B027 - a backend may hold nothing to release
        """Release connections; the store must not be used afterwards."""

    # -- what a backend implements ------------------------------------------------------

    @abc.abstractmethod
    def _put(self, view: str, rows: list[Encoded]) -> None:
        """Store the encoded rows in one bulk write, last-writer-wins by event time."""

    @abc.abstractmethod
    def _get(self, view: str, keys: list[str]) -> list[tuple[int, str | bytes] | None]:
        """(event microseconds, values JSON) for each key, or None where absent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


def check_view(view: object) -> str:
    """``view`` itself when it is a valid view name (``NAME`` of the reference grammar)."""
    if not isinstance(view, str) or not _VIEW.fullmatch(view) or len(view) > 255:
        raise UsageError(
            f"invalid feature view name {view!r}",
            hint="use letters, digits, '_', '.' and '-', starting with a letter or digit",
            field="view",
        )
    return view


def _check_features(features: Mapping[str, str]) -> dict[str, str]:
    if not isinstance(features, Mapping):
        raise UsageError("features must map each feature name to its type", field="features")
    for name, kind in features.items():
        if not isinstance(name, str) or not name:
            raise UsageError(f"invalid feature name {name!r}", field="features")
        if kind not in FEATURE_TYPES:
            raise UsageError(
                f"feature {name!r} has unknown type {kind!r}",
                hint="use one of " + ", ".join(FEATURE_TYPES),
                field=f"features.{name}",
            )
    return dict(features)


def encode_key(key: object) -> str:
    """The canonical text of an entity key: ``1`` and ``"1"`` differ; bools, floats refused."""
    parts = key if isinstance(key, tuple) else (key,)
    if len(parts) == 1:  # the common case, without the list and the encoder
        part = parts[0]
        if type(part) is str:
            return "[" + _encode_basestring(part) + "]"
        if type(part) is int and _INT64[0] <= part <= _INT64[1]:
            return f"[{part}]"
    if not parts:
        raise UsageError("an entity key needs at least one value", field="key")
    out: list[int | str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
            continue
        if isinstance(part, bool) or type(part).__name__ == "bool_":
            raise UsageError(f"entity key {key!r}: a bool is not a key value", field="key")
        try:
            number = operator.index(part)
        except TypeError:
            raise UsageError(
                f"entity key {key!r}: {type(part).__name__} is not a key value",
                hint="entity key values are integers or strings",
                field="key",
            ) from None
        if not _INT64[0] <= number <= _INT64[1]:
            raise UsageError(f"entity key {key!r}: {number} is out of int64 range", field="key")
        out.append(number)
    return _DUMPS(out)


def _decode(blobs: list[Any]) -> list[dict[str, Any]]:
    """The value objects of ``blobs`` (all ``str`` or all ``bytes``), parsed in one call.

    orjson (the 'serve' extra) when installed, else the standard library; orjson refuses
    the ``NaN``/``Infinity`` tokens that a non-finite float64 is stored as, so a batch that
    holds one is parsed by the standard library.
    """
    joined = (
        (b"[" + b",".join(blobs) + b"]")
        if isinstance(blobs[0], bytes)
        else ("[" + ",".join(blobs) + "]")
    )
    global _FAST_LOADS
    if _FAST_LOADS is None:
        orjson = optional("orjson")
        _FAST_LOADS = orjson.loads if orjson is not None else json.loads
    try:
        decoded: list[dict[str, Any]] = _FAST_LOADS(joined)
    except ValueError:
        decoded = json.loads(joined)
    return decoded


_FAST_LOADS: Any = None


def _micros(value: object, field: str) -> int:
    if not isinstance(value, datetime):
        raise UsageError(
            f"{field} must be a datetime, got {type(value).__name__}",
            field=field,
        )
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    return int((value - _EPOCH) // _MICRO)


def _encode_value(value: Any, kind: str, where: str) -> Any:
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()  # numpy scalars: their Python value
    ok = True
    if kind == "float64":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif kind == "int64":
        ok = isinstance(value, int) and not isinstance(value, bool)
        if ok and not _INT64[0] <= value <= _INT64[1]:
            raise UsageError(f"{where}: {value} is out of int64 range", field=where)
    elif kind == "string":
        ok = isinstance(value, str)
    elif kind == "bool":
        ok = isinstance(value, bool)
    else:  # timestamp
        ok = isinstance(value, datetime)
        value = _micros(value, where) if ok else value
    if not ok:
        raise UsageError(
            f"{where}: expected {kind}, got {type(value).__name__} {_short(value)}",
            field=where,
        )
    return value


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _encode_row(view: str, row: object, kinds: Mapping[str, str]) -> Encoded:
    try:
        key, values, event_timestamp = cast("tuple[Any, Any, Any]", row)
    except (TypeError, ValueError):
        raise UsageError(
            f"view {view!r}: a row is (key, values, event_timestamp), got {_short(row)}",
            field="rows",
        ) from None
    text = encode_key(key)
    if not isinstance(values, Mapping):
        raise UsageError(f"view {view!r}, key {text}: values must be a mapping", field="rows")
    out: dict[str, Any] = {}
    for name, value in values.items():
        kind = kinds.get(name)
        if kind is None:
            raise UsageError(
                f"view {view!r}, key {text}: unknown feature {name!r}",
                hint="name it in features, with its type",
                field=f"features.{name}",
            )
        if value is None or (isinstance(value, float) and kind != "float64" and math.isnan(value)):
            continue
        out[name] = _encode_value(value, kind, f"features.{name}")
    return text, _micros(event_timestamp, "event_timestamp"), _DUMPS(out)


def open_online_store(
    uri: str, *, root: Path, connect_timeout: float = 5.0, prefix: str | None = None
) -> OnlineStore:
    """The online store for the ``online_store`` setting ``uri``, chosen by its scheme.

    ``sqlite:///PATH`` is a SQLite file (a relative PATH is taken from ``root``;
    ``sqlite:////abs/path`` is absolute); ``redis://HOST:PORT/DB``, ``rediss://`` or
    ``unix://`` is Redis (the 'redis' extra), its keys under ``prefix`` (default
    ``plinth:``, or a ``?prefix=`` in the URI) so that projects can share a database.
    """
    match = _SCHEME.match(uri)
    scheme = match["scheme"].lower() if match else ""
    if scheme == "sqlite":
        from plinth.storage.online_sqlite import SqliteOnlineStore

        rest = uri[len("sqlite://") :]
        if not rest.startswith("/") or rest == "/":
            raise ConfigError(
                f"setting 'online_store' has no file in {redact(uri)!r}",
                hint="use sqlite:///PATH (relative to the project) or sqlite:////ABSOLUTE/PATH",
                field="online_store",
            )
        path = Path(rest[1:]).expanduser()
        return SqliteOnlineStore(path if path.is_absolute() else root / path)
    if scheme in ("redis", "rediss", "unix"):
        from plinth.storage.online_redis import RedisOnlineStore

        return RedisOnlineStore.from_uri(uri, prefix=prefix, connect_timeout=connect_timeout)
    raise ConfigError(
        f"setting 'online_store' has unknown scheme '{scheme}://' in {redact(uri)!r}"
        if scheme
        else f"setting 'online_store' has no scheme in {redact(uri)!r}",
        hint="use sqlite:///PATH or redis://HOST:PORT/DB; see docs/features.md",
        field="online_store",
    )
