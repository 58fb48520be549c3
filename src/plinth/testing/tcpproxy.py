"""A TCP proxy for outage tests: put it between plinth and a real server, then cut it.

``block()`` drops every open connection and refuses new ones (as a server that went down
would); ``unblock()`` lets traffic through again. Only for loopback addresses in tests.

Example::

    with TcpProxy(("127.0.0.1", 5432)) as proxy:
        url = f"postgresql+psycopg://root@127.0.0.1:{proxy.port}/test"
        ...
        proxy.block()      # PostgreSQL is "down"
        proxy.unblock()    # and back
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import threading
import types

__all__ = ["TcpProxy"]


class TcpProxy:
    def __init__(self, target: tuple[str, int], host: str = "127.0.0.1"):
        self.target = target
        self._listener = socket.create_server((host, 0))
        self.host = host
        self.port: int = self._listener.getsockname()[1]
        self._blocked = threading.Event()
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self._thread = threading.Thread(target=self._accept_loop, daemon=True)
        self._thread.start()

    def _accept_loop(self) -> None:
        self._listener.settimeout(0.1)
        while not self._closing.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            if self._blocked.is_set():
                _abort(client)
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                _abort(client)
                continue
            with self._lock:
                self._pairs.append((client, upstream))
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        try:
            while not self._closing.is_set() and not self._blocked.is_set():
                for key, _ in selector.select(timeout=0.1):
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = source.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            selector.close()
            _abort(a)
            _abort(b)
            with self._lock, contextlib.suppress(ValueError):
                self._pairs.remove((a, b))

    def block(self) -> None:
        """Drop every connection and refuse new ones."""
        self._blocked.set()
        with self._lock:
            pairs = list(self._pairs)
        for a, b in pairs:
            _abort(a)
            _abort(b)

    def unblock(self) -> None:
        self._blocked.clear()

    def close(self) -> None:
        self._closing.set()
        self.block()
        self._thread.join(timeout=2)
        self._listener.close()

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.close()


def _abort(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()
