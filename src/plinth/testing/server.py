"""A live team server for tests: in a thread of the test process, or as a subprocess
(``python -m plinth server start``) that a test can kill and restart::

    handle = start_server(tmp_path / "srv")
    handle.create_project("flights")
    token = handle.token("ada", "flights", "write")
    httpx.get(f"{handle.url}/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    handle.stop()

Every server gets a fresh ``root`` and its first admin (``handle.admin_token``). Needs the
``server`` extra and ``httpx``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plinth.api.bootstrap import init_server
from plinth.api.config import ServerConfig, load_config
from plinth.cli.server import build_app, server_endpoints

__all__ = [
    "ServerHandle",
    "create_app",
    "endpoints",
    "free_socket",
    "serve_in_thread",
    "start_server",
]

#: Every route of the whole server (API and web pages): what route inventories check.
endpoints = server_endpoints
#: The whole server's app for a config (API and web pages).
create_app = build_app

_ADMIN = "admin"
_START_TIMEOUT_S = 30.0


def free_socket() -> socket.socket:
    """A TCP socket bound to a free loopback port (pass it to uvicorn's ``run``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


def _wait_ready(url: str, alive: Any) -> None:
    import httpx

    deadline = time.monotonic() + _START_TIMEOUT_S
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"the server at {url} exited before answering /health")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{url}/health", timeout=2.0).status_code == 200:
                return
        time.sleep(0.02)
    raise RuntimeError(f"the server at {url} did not answer /health in {_START_TIMEOUT_S} s")


@dataclass
class ServerHandle:
    """A running server: its URL, root, config and first admin's token."""

    url: str
    admin_token: str
    root: Path
    config: ServerConfig
    port: int
    env: dict[str, str] = field(default_factory=dict)
    _thread: threading.Thread | None = None
    _uvicorn: Any = None
    _process: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None

    # -- admin helpers (over HTTP, as a server admin) --------------------------------------

    def _call(self, method: str, path: str, body: Mapping[str, object] | None = None) -> Any:
        import httpx

        response = httpx.request(
            method,
            f"{self.url}{path}",
            json=body,
            timeout=30.0,
            headers={"Authorization": f"Bearer {self.admin_token}"},
        )
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path} -> {response.status_code}: {response.text}")
        return response.json() if response.content else None

    def create_project(self, name: str) -> None:
        """Create project ``name`` (its own ledger and blob store)."""
        self._call("POST", "/api/v1/admin/projects", {"name": name})

    def add_user(self, name: str, *, password: str | None = None) -> None:
        """Create user ``name`` unless it exists."""
        users = {u["name"] for u in self._call("GET", "/api/v1/admin/users")["items"]}
        if name not in users:
            self._call("POST", "/api/v1/admin/users", {"name": name, "password": password})
        elif password is not None:
            self._call("PUT", f"/api/v1/admin/users/{name}/password", {"password": password})

    def token(
        self, user: str, project: str, role: str = "write", scopes: Iterable[str] = ()
    ) -> str:
        """A token of ``user`` (created if needed) holding ``role`` in ``project`` only."""
        self.add_user(user)
        self._call("PUT", f"/api/v1/projects/{project}/members/{user}", {"role": role})
        body = {"user": user, "projects": [project], "scopes": list(scopes)}
        created = self._call("POST", "/api/v1/admin/tokens", body)
        return str(created["token"])

    # -- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        """Stop the server (gracefully) and wait for it."""
        if self._uvicorn is not None and self._thread is not None:
            self._uvicorn.should_exit = True
            self._thread.join(timeout=30)
            self._thread = None
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None

    def kill(self) -> None:
        """SIGKILL the subprocess server (``in_thread=False`` only)."""
        if self._process is None:
            raise RuntimeError("kill() needs a subprocess server: start_server(in_thread=False)")
        self._process.kill()
        self._process.wait()
        self._process = None

    def restart(self) -> None:
        """Start the subprocess server again on the same port and root."""
        if self._process is not None:
            self.stop()
        self._spawn()

    def _spawn(self) -> None:
        command = [
            sys.executable,
            "-m",
            "plinth",
            "server",
            "start",
            "--root",
            str(self.root),
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        env = {**os.environ, **self.env}
        self.log_path = self.root / "server.log"
        with open(self.log_path, "ab") as log:
            self._process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        process = self._process
        _wait_ready(self.url, lambda: process.poll() is None)

    def __enter__(self) -> ServerHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_server(
    root: Path | str,
    *,
    metadata: str | None = None,
    artifacts: str | None = None,
    in_thread: bool = True,
    env: Mapping[str, str] | None = None,
    **settings: object,
) -> ServerHandle:
    """Initialise a server in ``root`` (fresh) and start it on a free loopback port.

    ``settings`` are more :class:`ServerConfig` fields (``schema_prefix``, ``tls``,
    ``login_limit``...); ``env`` adds variables for a subprocess server (e.g. AWS_*).
    """
    values: dict[str, object] = dict(settings)
    if metadata is not None:
        values["metadata"] = metadata
    if artifacts is not None:
        values["artifacts"] = artifacts
    _, admin_token = init_server(root, admin=_ADMIN, settings=values, env={})
    config = load_config(root, env={})
    if in_thread:
        return serve_in_thread(config, admin_token)
    probe = free_socket()
    port = probe.getsockname()[1]
    probe.close()
    handle = ServerHandle(
        url=f"http://127.0.0.1:{port}",
        admin_token=admin_token,
        root=config.root,
        config=config,
        port=port,
        env=dict(env or {}),
    )
    handle._spawn()
    return handle


def serve_in_thread(config: ServerConfig, admin_token: str) -> ServerHandle:
    """Serve an initialised ``config`` from a thread (e.g. a second replica of a server)."""
    import uvicorn

    from plinth.api.app import RedactQueryStrings

    sock = free_socket()
    port = sock.getsockname()[1]
    # uvicorn leaves logging as it is (log_config=None), so pytest's caplog sees the access
    # log, with query strings dropped as in ``plinth server start``.
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactQueryStrings) for f in access.filters):
        access.addFilter(RedactQueryStrings())
    server = uvicorn.Server(
        uvicorn.Config(build_app(config), log_config=None, log_level="info", lifespan="on")
    )
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="plinth-test-server", daemon=True
    )
    thread.start()
    handle = ServerHandle(
        url=f"http://127.0.0.1:{port}",
        admin_token=admin_token,
        root=config.root,
        config=config,
        port=port,
        _thread=thread,
        _uvicorn=server,
    )
    _wait_ready(handle.url, thread.is_alive)
    return handle
