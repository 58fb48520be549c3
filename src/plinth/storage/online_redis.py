"""The Redis online store (``redis://HOST:PORT/DB``, ``rediss://``, ``unix://``; 'redis' extra).

One string key per entity: ``PREFIX + VIEW + ":" + KEY`` (``KEY`` the canonical JSON of
the entity key; view names cannot hold ``:``), holding ``MICROS|VALUES_JSON``. A read is one
``MGET``; a write is one Lua script call per 1,000 rows that keeps the newer event (the
comparison runs inside Redis, so concurrent writers cannot interleave). ``delete_view``
scans the view's keys and unlinks them. The script touches several keys in one call, so a
Redis Cluster is not supported yet: use one Redis (or a replica set behind one address).
"""

from __future__ import annotations

from typing import Any, Self
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from plinth._extras import require
from plinth.errors import BackendError, UsageError
from plinth.settings import redact
from plinth.storage.online import Encoded, OnlineStore, check_view

__all__ = ["RedisOnlineStore"]

DEFAULT_PREFIX = "plinth:"
_CHUNK = 1000
_SOCKET_TIMEOUT = 30.0

# KEYS: the entries; ARGV: micros, entry value, micros, entry value, ...
_WRITE = """
local n = 0
for i = 1, #KEYS do
  local ts = ARGV[2 * i - 1]
  local old = redis.call('GET', KEYS[i])
  local keep = false
  if old then
    local bar = string.find(old, '|', 1, true)
    if bar and tonumber(string.sub(old, 1, bar - 1)) > tonumber(ts) then keep = true end
  end
  if not keep then
    redis.call('SET', KEYS[i], ts .. '|' .. ARGV[2 * i])
    n = n + 1
  end
end
return n
"""


def _glob_escape(text: str) -> str:
    return "".join("\\" + c if c in "*?[]\\" else c for c in text)


class RedisOnlineStore(OnlineStore):
    """An online store in Redis; ``client`` is a ``redis.Redis``."""

    def __init__(self, client: Any, *, prefix: str = DEFAULT_PREFIX, where: str = "") -> None:
        if not isinstance(prefix, str) or any(c in prefix for c in "\r\n\x00"):
            raise UsageError(f"invalid Redis key prefix {prefix!r}", field="online_store")
        self._client = client
        self._prefix = prefix
        self._where = where or "redis"
        self._script = client.register_script(_WRITE)
        self._errors: tuple[type[BaseException], ...] = (
            require("redis", feature="the Redis online store", extra="redis").RedisError,
        )

    @classmethod
    def from_uri(cls, uri: str, *, prefix: str | None = None, connect_timeout: float = 5.0) -> Self:
        """The store for ``uri``; a ``prefix`` query parameter sets the key prefix."""
        redis = require(
            "redis", feature="the Redis online store", extra="redis", field="online_store"
        )
        parts = urlsplit(uri)
        query = parse_qsl(parts.query, keep_blank_values=True)
        given = [value for name, value in query if name == "prefix"]
        rest = urlencode([(name, value) for name, value in query if name != "prefix"])
        plain = urlunsplit(parts._replace(query=rest))
        client = redis.Redis.from_url(
            plain,
            socket_connect_timeout=connect_timeout,
            socket_timeout=max(connect_timeout, _SOCKET_TIMEOUT),
        )
        chosen = prefix if prefix is not None else (given[-1] if given else DEFAULT_PREFIX)
        return cls(client, prefix=chosen, where=redact(plain))

    def _error(self, action: str, exc: BaseException) -> BackendError:
        return BackendError(
            f"cannot {action} the online store {self.describe()} (setting 'online_store'): "
            f"{type(exc).__name__}: {exc}",
            hint="check the 'online_store' setting and that Redis is running",
            field="online_store",
        )

    def _key(self, view: str, key: str) -> str:
        return f"{self._prefix}{view}:{key}"

    def _put(self, view: str, rows: list[Encoded]) -> None:
        try:
            pipe = self._client.pipeline(transaction=False)
            for start in range(0, len(rows), _CHUNK):
                chunk = rows[start : start + _CHUNK]
                keys = [self._key(view, key) for key, _ts, _vals in chunk]
                args: list[object] = []
                for _key, ts, vals in chunk:
                    args += (ts, vals)
                self._script(keys=keys, args=args, client=pipe)
            pipe.execute()
        except self._errors as exc:
            raise self._error("write to", exc) from None

    def _get(self, view: str, keys: list[str]) -> list[tuple[int, str | bytes] | None]:
        try:
            if len(keys) == 1:
                values = [self._client.get(self._key(view, keys[0]))]
            else:
                values = self._client.mget([self._key(view, key) for key in keys])
        except self._errors as exc:
            raise self._error("read", exc) from None
        out: list[tuple[int, str | bytes] | None] = []
        for value in values:
            if value is None:
                out.append(None)
            else:
                ts, _bar, vals = value.partition(b"|")
                out.append((int(ts), vals))
        return out

    def delete_view(self, view: str) -> None:
        check_view(view)
        pattern = _glob_escape(self._key(view, "")) + "*"
        try:
            batch: list[bytes] = []
            for key in self._client.scan_iter(match=pattern, count=1000):
                batch.append(key)
                if len(batch) >= _CHUNK:
                    self._client.unlink(*batch)
                    batch.clear()
            if batch:
                self._client.unlink(*batch)
        except self._errors as exc:
            raise self._error("delete from", exc) from None

    def check(self) -> None:
        try:
            self._client.ping()
        except self._errors as exc:
            raise self._error("reach", exc) from None

    def describe(self) -> str:
        return f"{self._where} (keys under {self._prefix!r})"

    def close(self) -> None:
        self._client.close()
