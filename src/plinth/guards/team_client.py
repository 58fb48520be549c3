"""The HTTP client of the team server (``plinth server``): keep-alive, checked, authenticated.

:class:`plinth.ledger.remote.RemoteLedger` and :class:`plinth.storage.http_blobs.HttpBlobStore`
talk to the server through one :class:`TeamClient`:

- one keep-alive ``http.client`` connection per thread, so the ingest thread and the
  training thread never wait on each other's requests;
- every connection's host is checked once by :func:`plinth.guards.net.check_host` and the
  socket goes to a checked address. The server is team infrastructure the user configured
  (like PostgreSQL), so loopback and private addresses are allowed; cloud metadata and
  link-local ones never are;
- the token (``PLINTH_TOKEN``) goes in ``Authorization: Bearer``; it is never logged or
  shown in an error, and redirects are never followed;
- an answer's JSON error (``{"errors": [{"type", ...}]}``) is raised again as the same
  :mod:`plinth.errors` class (from an allow-list), so the CLI's exit codes are the same as
  with a local ledger; a refused connection, a timeout or a 5xx raises the ``unavailable``
  error (a :class:`BackendError`) naming the server.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import socket
import ssl
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, BinaryIO
from urllib.parse import urlencode

from plinth import errors
from plinth.errors import BackendError, ConfigError, PlinthError, RequestError, UsageError
from plinth.guards.net import OutboundPolicy, guarded_socket, redact_url, split_url

__all__ = ["ERROR_TYPES", "Answer", "TeamClient", "error_from_answer", "open_direct"]

#: The classes an error answer may name; any other type maps by its HTTP status.
ERROR_TYPES: Mapping[str, type[PlinthError]] = {
    name: getattr(errors, name)
    for name in errors.__all__
    if isinstance(getattr(errors, name), type) and issubclass(getattr(errors, name), PlinthError)
}
_BY_STATUS: Mapping[int, type[PlinthError]] = {
    400: UsageError,
    401: ConfigError,
    403: UsageError,
    404: errors.NotFoundError,
    409: errors.ConflictError,
    413: errors.PayloadTooLargeError,
    422: RequestError,
}
#: Attributes some error classes set in their own ``__init__``, which is not called here.
_OWN_FIELDS: tuple[tuple[str, type[PlinthError]], ...] = (
    ("decision", errors.GateFailedError),
    ("digest", errors.BlobCorruptedError),
    ("location", errors.BlobCorruptedError),
    ("extra", errors.MissingExtraError),
)
#: A reused keep-alive connection the server closed in between fails with one of these;
#: the request is sent again, once, on a fresh connection.
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError)
#: The team server is infrastructure the user set up: loopback and private ranges are fine.
_POLICY = OutboundPolicy(allow_loopback=True, allow_private=True)


@dataclass(frozen=True)
class Answer:
    """A whole answer: status, headers (lower-case names) and body."""

    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class _Connection(http.client.HTTPConnection):
    """HTTP to an address :func:`guarded_socket` checked; ``Host`` stays the URL's."""

    def connect(self) -> None:
        self.sock = guarded_socket(
            self.host, self.port, self.timeout, _POLICY, where="team server", field="server"
        )
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class _TlsConnection(http.client.HTTPSConnection):
    """HTTPS to a checked address; the certificate is checked for the URL's host."""

    def connect(self) -> None:
        sock = guarded_socket(
            self.host, self.port, self.timeout, _POLICY, where="team server", field="server"
        )
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            self.sock = ssl.create_default_context().wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


class TeamClient:
    """Requests to one team server, for one project, with one token."""

    def __init__(
        self,
        url: str,
        *,
        token: str | None,
        timeout: float = 30.0,
        unavailable: type[BackendError] = errors.LedgerUnavailableError,
    ) -> None:
        parts = split_url(url, where="setting 'server'", field="server")
        self._tls = parts.scheme.lower() == "https"
        self._host = (parts.hostname or "").strip("[]")
        self._port = parts.port or (443 if self._tls else 80)
        self._base = parts.path.rstrip("/")
        #: The server's address without credentials, path or query: safe for messages.
        self.url = redact_url(url)
        self._token = token
        #: Seconds to wait for a connection or an answer.
        self.timeout = timeout
        self._unavailable = unavailable
        self._local = threading.local()
        self._all: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def _forget(self) -> None:
        """Drop (without closing: they are the parent's) connections inherited by a fork."""
        self._local = threading.local()
        self._all = []
        self._lock = threading.Lock()
        self._pid = os.getpid()

    # -- connections -----------------------------------------------------------------------
    def _new(self) -> http.client.HTTPConnection:
        cls = _TlsConnection if self._tls else _Connection
        conn = cls(self._host, self._port, timeout=self.timeout)
        with self._lock:
            self._all.append(conn)
        return conn

    def _drop(self, conn: http.client.HTTPConnection) -> None:
        conn.close()
        with self._lock:
            if conn in self._all:
                self._all.remove(conn)

    def _headers(self, extra: Mapping[str, str] | None) -> dict[str, str]:
        sent = {"User-Agent": "plinth", "Accept": "application/json"}
        if self._token:
            sent["Authorization"] = f"Bearer {self._token}"
        return {**sent, **(extra or {})}

    def target(self, path: str, query: Mapping[str, object] | None = None) -> str:
        """The request target of ``path`` (which starts with ``/``) on this server."""
        text = f"{self._base}{path}"
        return f"{text}?{urlencode(query)}" if query else text

    # -- requests --------------------------------------------------------------------------
    def request(
        self,
        method: str,
        path: str,
        *,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        query: Mapping[str, object] | None = None,
        ok: tuple[int, ...] = (),
    ) -> Answer:
        """Send one request and read the whole answer; a non-2xx not in ``ok`` raises."""
        if self._pid != os.getpid():  # a forked child: never share the parent's sockets
            self._forget()
        target = self.target(path, query)
        sent = self._headers(headers)
        if body is not None:
            sent.setdefault("Content-Type", "application/json")
        for attempt in (0, 1):
            conn: http.client.HTTPConnection | None = getattr(self._local, "conn", None)
            reused = conn is not None and attempt == 0
            if conn is None:
                conn = self._local.conn = self._new()
            try:
                conn.request(method, target, body=body, headers=sent)
                response = conn.getresponse()
                data = response.read()
            except _STALE as exc:
                self._local.conn = None
                self._drop(conn)
                if reused:
                    continue
                raise self._down(method, path, exc) from None
            except (OSError, http.client.HTTPException) as exc:
                self._local.conn = None
                self._drop(conn)
                raise self._down(method, path, exc) from None
            except BaseException:
                self._local.conn = None
                self._drop(conn)
                raise
            if response.will_close:
                self._local.conn = None
                self._drop(conn)
            answer = Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, data)
            if 200 <= answer.status < 300 or answer.status in ok:
                return answer
            raise self._error(method, path, answer)
        raise AssertionError("unreachable")  # the loop returns or raises

    def call(self, path: str, payload: Mapping[str, Any]) -> Any:
        """POST ``payload`` as JSON and return the answer's JSON."""
        body = json.dumps(payload, allow_nan=False, separators=(",", ":")).encode()
        return self.request("POST", path, body=body).json()

    def stream(self, path: str, *, headers: Mapping[str, str] | None = None) -> BinaryIO:
        """GET ``path`` on a connection of its own: a reader streaming the answer's body.

        The caller reads it and closes it (closing it closes the connection).
        """
        conn = self._new()
        try:
            conn.request("GET", self.target(path), headers=self._headers(headers))
            response = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            self._drop(conn)
            raise self._down("GET", path, exc) from None
        if response.status != 200:
            answer = Answer(response.status, dict(response.getheaders()), response.read())
            self._drop(conn)
            raise self._error("GET", path, answer)
        return io.BufferedReader(_Owned(response, lambda: self._drop(conn)))

    # -- errors ----------------------------------------------------------------------------
    def _down(self, method: str, path: str, exc: BaseException) -> PlinthError:
        if isinstance(exc, PlinthError):  # the guard refused the address
            return exc
        reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
        return self._unavailable(
            f"the team server {self.url} cannot be reached ({method} {path.split('?')[0]}: "
            f"{reason})",
            hint="check the 'server' setting (PLINTH_SERVER) and that the server is up; "
            "metrics are kept in the local journal and sent when it is back",
        )

    def _error(self, method: str, path: str, answer: Answer) -> PlinthError:
        error = error_from_answer(answer.status, answer.body)
        if answer.status >= 500 and not isinstance(error, (BackendError,)):
            where = f"the team server {self.url} failed ({method} {path.split('?')[0]}: "
            return self._unavailable(where + f"HTTP {answer.status}): {error.message}")
        return error

    def close(self) -> None:
        """Close every connection of every thread."""
        with self._lock:
            conns, self._all = self._all, []
        for conn in conns:
            with contextlib.suppress(Exception):
                conn.close()
        self._local = threading.local()

    def __repr__(self) -> str:
        return f"TeamClient({self.url!r})"


def error_from_answer(status: int, body: bytes) -> PlinthError:
    """The :mod:`plinth.errors` exception an error answer describes.

    The class comes from :data:`ERROR_TYPES` by the answer's ``type`` name (never a class
    the peer names outside that list); other types, or a body that is not the error JSON,
    map by ``status``. Only the first 500 characters of a message or hint are kept.
    """
    entries: list[Mapping[str, Any]] = []
    with contextlib.suppress(ValueError, UnicodeDecodeError):
        data = json.loads(body)
        if isinstance(data, dict) and isinstance(data.get("errors"), list):
            entries = [e for e in data["errors"] if isinstance(e, dict)]
    first = entries[0] if entries else {}
    name = first.get("type")
    cls = ERROR_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        cls = _BY_STATUS.get(status, BackendError if status >= 500 else UsageError)
    message = _text(first.get("message")) or f"the team server answered HTTP {status}"
    hint = _text(first.get("hint"))
    field = _text(first.get("field")) or None
    error = cls.__new__(cls)
    PlinthError.__init__(error, message, hint=hint or None, field=field)
    if isinstance(error, RequestError):
        error.problems = [(_text(e.get("field")) or None, _text(e.get("message"))) for e in entries]
        error.problems = error.problems or [(field, message)]
    for attribute, owner in _OWN_FIELDS:  # what subclasses' own __init__ would have set
        if issubclass(cls, owner):
            setattr(error, attribute, None)
    return error


def _text(value: object) -> str:
    return value[:500] if isinstance(value, str) else ""


class _Owned(io.RawIOBase):
    """A streaming response body that releases its connection when closed."""

    def __init__(self, response: http.client.HTTPResponse, release: Callable[[], None]) -> None:
        self._response = response
        self._release = release

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._response.readinto(buffer)

    def close(self) -> None:
        if not self.closed:
            self._response.close()
            self._release()
        super().close()


def open_direct(
    method: str,
    url: str,
    *,
    timeout: float,
    body: Any = None,
    headers: Mapping[str, str] | None = None,
    where: str = "presigned URL",
) -> tuple[int, BinaryIO]:
    """``method`` on a URL the team server handed out (a presigned S3 URL), through a
    checked connection of its own: the status and the streaming body (close it).

    ``body`` may be bytes or a file (sent in blocks; pass its ``Content-Length``).
    """
    parts = split_url(url, where=where)
    tls = parts.scheme.lower() == "https"
    cls = _TlsConnection if tls else _Connection
    conn = cls(
        (parts.hostname or "").strip("[]"), parts.port or (443 if tls else 80), timeout=timeout
    )
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request(method, target, body=body, headers=dict(headers or {}))
        response = conn.getresponse()
    except (OSError, http.client.HTTPException) as exc:
        conn.close()
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise errors.BlobStoreError(
            f"{where} {redact_url(url)} cannot be reached ({method}: {reason})",
            hint="check that the object store the team server uses is reachable from here",
        ) from None
    return response.status, io.BufferedReader(_Owned(response, conn.close))
