"""Server-side request forgery: a monitor file or a record must not make plinth connect to
cloud metadata, link-local or (unless allowed) loopback and private addresses, follow
redirects, use proxies, or bring a peer's answer back into a stored or printed message.

Each test asserts the refusal and that no connection was made: local listeners record every
connection they accept, and ``outbound`` records every connect plinth attempts elsewhere."""

from __future__ import annotations

import os
import select
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from plinth.context import Context
from plinth.errors import BackendError, ConfigError, PlinthError, UsageError
from plinth.guards.net import OutboundPolicy
from plinth.monitoring.alerts import AlertMessage, deliver
from plinth.monitoring.monitors import run_monitor
from plinth.monitoring.notifiers import EmailNotifier, SlackNotifier, WebhookNotifier
from plinth.monitoring.routes import notifiers_from_spec
from plinth.monitoring.server import scrape
from plinth.monitoring.spec import MonitorSpec
from plinth.settings import load_settings

TEAM = OutboundPolicy(allow_loopback=False, allow_private=False)
OPEN = OutboundPolicy(allow_loopback=True, allow_private=True)
SECRET = "s3cr3t-from-the-internal-service"
METRICS = (
    "# TYPE plinth_request_duration_seconds histogram\n"
    'plinth_request_duration_seconds_bucket{route="/v1/predict",le="0.1"} 3.0\n'
    'plinth_request_duration_seconds_bucket{route="/v1/predict",le="+Inf"} 4.0\n'
    'plinth_request_duration_seconds_count{route="/v1/predict"} 4.0\n'
)


class Listener:
    """A TCP listener on 127.0.0.1 that records every connection and answers each with
    ``response`` (raw bytes, after reading the request's head and body)."""

    def __init__(self, response: bytes = b""):
        self.response = response
        self.accepted: list[tuple[str, int]] = []
        self.requests: list[bytes] = []
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port: int = self.sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _handle(self, conn: socket.socket, peer: Any) -> None:
        self.accepted.append(peer)
        conn.settimeout(2)
        data = b""
        try:
            while b"\r\n\r\n" not in data:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    want = int(line.split(b":", 1)[1])
                    while len(body) < want:
                        body += conn.recv(65536)
            self.requests.append(head)
            conn.sendall(self.response)
        except OSError:
            pass
        finally:
            conn.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            ready, _, _ = select.select([self.sock], [], [], 0.05)
            if ready:
                self._handle(*self.sock.accept())

    def close(self) -> list[tuple[str, int]]:
        """Stop, take every connection still waiting in the backlog, and return them all."""
        self._stop.set()
        self._thread.join()
        self.sock.setblocking(False)
        while True:
            try:
                conn, peer = self.sock.accept()
            except BlockingIOError:
                break
            self.accepted.append(peer)
            conn.close()
        self.sock.close()
        return self.accepted


def http(status: int, reason: str, body: str = "", headers: str = "") -> bytes:
    data = body.encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\nContent-Length: {len(data)}\r\n"
        f"Connection: close\r\n{headers}\r\n"
    ).encode() + data


@pytest.fixture
def listeners() -> Iterator[list[Listener]]:
    made: list[Listener] = []
    yield made
    for listener in made:
        if not listener._stop.is_set():
            listener.close()


@pytest.fixture
def listen(listeners: list[Listener]) -> Any:
    def make(response: bytes = b"") -> Listener:
        listener = Listener(response)
        listeners.append(listener)
        return listener

    return make


@pytest.fixture
def outbound(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every connect to a non-loopback address, recorded and refused before it leaves."""
    attempts: list[Any] = []
    real = socket.socket.connect

    def connect(self: socket.socket, address: Any) -> None:
        host = address[0] if isinstance(address, tuple) else address
        if host in ("127.0.0.1", "::1"):
            return real(self, address)
        attempts.append(address)
        raise ConnectionRefusedError(111, "Connection refused (test: outbound blocked)")

    monkeypatch.setattr(socket.socket, "connect", connect)
    return attempts


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, list[str]]:
    """Extra DNS answers: ``dns["hooks.example"] = ["127.0.0.1", "169.254.169.254"]``."""
    answers: dict[str, list[str]] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            return [
                (
                    socket.AF_INET6 if ":" in a else socket.AF_INET,
                    socket.SOCK_STREAM,
                    6,
                    "",
                    (a, port),
                )
                for a in answers[host]
            ]
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


@pytest.fixture
def team_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working directory of a team project: a PostgreSQL ledger (never connected to)."""
    folder = tmp_path / "team"
    folder.mkdir()
    (folder / "plinth.yaml").write_text("metadata: postgresql+psycopg://ml@db.invalid:5432/ml\n")
    monkeypatch.chdir(folder)
    return folder


def alert() -> AlertMessage:
    return AlertMessage.create(
        "delays", "drift", severity="warning", title="delays drifted", message="PSI 0.3"
    )


# -- metadata and link-local: never ---------------------------------------------------------

METADATA_URLS = [
    "http://169.254.169.254/latest/meta-data/iam/",
    "http://[::ffff:169.254.169.254]/",
    "http://[::ffff:a9fe:a9fe]/",
    "http://[64:ff9b::169.254.169.254]/",
    "http://[2002:a9fe:a9fe::]/",
    "http://[::169.254.169.254]/",
    "http://[2001:0:4136:e378:8000:63bf:5601:5601]/",
    "http://[fd00:ec2::254]/",
    "http://100.100.100.200/",
    "http://2852039166/",
    "http://0251.0376.0251.0376/",
    "http://0xa9fea9fe/",
    "http://metadata.google.internal/computeMetadata/v1/",
    "http://169.254.10.20:8080/",
    "http://[fe80::1]/",
    "http://0.0.0.0/",
    "http://[::]/",
    "http://224.0.0.1/",
]


@pytest.mark.parametrize("url", METADATA_URLS)
def test_webhook_to_metadata_or_link_local_is_refused_with_no_connection(
    url: str, outbound: list[Any]
) -> None:
    with pytest.raises(UsageError, match="address; plinth does not connect there") as info:
        WebhookNotifier(url, policy=OPEN).send(alert())
    assert info.value.field == "url"
    assert outbound == []


def test_name_resolving_to_a_listener_and_to_metadata_is_refused_and_the_listener_sees_nothing(
    listen: Any, dns: dict[str, list[str]], outbound: list[Any]
) -> None:
    hook = listen(http(200, "OK"))
    dns["hooks.example"] = ["127.0.0.1", "169.254.169.254"]
    with pytest.raises(UsageError, match=r"resolves to 169\.254\.169\.254, a cloud metadata"):
        SlackNotifier(f"http://hooks.example:{hook.port}/x", policy=OPEN).send(alert())
    assert hook.close() == []
    assert outbound == []


def test_allow_link_local_on_a_route_cannot_open_metadata(outbound: list[Any]) -> None:
    route = {"type": "webhook", "url": "http://169.254.169.254/", "allow_link_local": True}
    with pytest.raises(ConfigError, match="no longer supported"):
        notifiers_from_spec([route])
    assert outbound == []


def test_email_route_to_metadata_is_refused_with_no_connection(
    listen: Any, dns: dict[str, list[str]], outbound: list[Any]
) -> None:
    smtp = listen(b"220 mail ESMTP\r\n")
    dns["mail.example"] = ["127.0.0.1", "169.254.169.254"]
    for host in (
        "169.254.169.254",
        "metadata.google.internal",
        "[::ffff:a9fe:a9fe]",
        "mail.example",
    ):
        route = EmailNotifier(host, port=smtp.port, sender="a@b.c", to=["d@e.f"], policy=OPEN)
        with pytest.raises(UsageError, match="metadata") as info:
            route.send(alert())
        assert info.value.field == "host"
    assert smtp.close() == []
    assert outbound == []


# -- loopback and private: only by setting ----------------------------------------------


def test_localhost_webhook_is_refused_in_a_team_setup_and_the_hook_sees_nothing(
    team_dir: Path, listen: Any
) -> None:
    hook = listen(http(200, "OK"))
    for url in (
        f"http://localhost:{hook.port}/",
        hook.url(),
        f"http://2130706433:{hook.port}/",
        f"http://0177.0.0.1:{hook.port}/",
        f"http://[::ffff:127.0.0.1]:{hook.port}/",
    ):
        with pytest.raises(UsageError, match="loopback address") as info:
            WebhookNotifier(url).send(alert())  # the policy of the working directory
        assert "outbound_allow_loopback" in info.value.hint
    assert hook.close() == []


def test_team_setup_opting_in_to_loopback_reaches_the_hook(
    team_dir: Path, listen: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PLINTH_OUTBOUND_ALLOW_LOOPBACK", "true")
    hook = listen(http(204, "No Content"))
    WebhookNotifier(f"http://2130706433:{hook.port}/in").send(alert())  # decimal 127.0.0.1
    assert len(hook.close()) == 1
    assert hook.requests[0].startswith(b"POST /in HTTP/1.1")


def test_email_to_loopback_is_refused_in_a_team_setup_and_the_server_sees_nothing(
    team_dir: Path, listen: Any
) -> None:
    smtp = listen(b"220 mail ESMTP\r\n")
    [route] = notifiers_from_spec(
        [{"type": "email", "host": "localhost", "port": smtp.port, "from": "a@b.c", "to": "d@e"}]
    )
    with pytest.raises(UsageError, match="loopback"):
        route.send(alert())
    assert smtp.close() == []


def test_private_address_is_refused_unless_the_setting_allows_it(outbound: list[Any]) -> None:
    with pytest.raises(UsageError, match="private address"):
        WebhookNotifier("http://10.20.30.40:8080/h", policy=TEAM).send(alert())
    with pytest.raises(UsageError, match="private address"):
        WebhookNotifier("http://[fd12::1]/h", policy=TEAM).send(alert())
    assert outbound == []
    allowed = OutboundPolicy(allow_loopback=False, allow_private=True)
    with pytest.raises(BackendError, match="refused"):
        WebhookNotifier("http://10.20.30.40:8080/h", policy=allowed).send(alert())
    assert outbound == [("10.20.30.40", 8080)]  # the checked address, and only it


# -- redirects, proxies, answers ----------------------------------------------------------


def test_webhook_redirect_is_not_followed_and_its_target_sees_nothing(listen: Any) -> None:
    target = listen(http(200, "OK"))
    hook = listen(http(302, "Found", headers=f"Location: {target.url('/steal')}\r\n"))
    with pytest.raises(ConfigError, match="HTTP 302 Found; redirects are not followed"):
        WebhookNotifier(hook.url("/in"), policy=OPEN).send(alert())
    assert len(hook.close()) == 1
    assert target.close() == []


def test_server_check_redirect_is_not_followed_and_its_target_sees_nothing(listen: Any) -> None:
    target = listen(http(200, "OK", METRICS))
    server = listen(http(307, "Temporary Redirect", headers=f"Location: {target.url()}\r\n"))
    with pytest.raises(ConfigError, match="HTTP 307") as info:
        scrape(server.url(), policy=OPEN)
    assert "redirects are not followed" in str(info.value)
    assert len(server.close()) == 1
    assert target.close() == []


def test_proxy_variables_are_ignored_and_the_proxy_sees_nothing(
    listen: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = listen(http(200, "OK", METRICS))
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(name, proxy.url())
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    hook = listen(http(200, "OK"))
    server = listen(http(200, "OK", METRICS))
    WebhookNotifier(hook.url(), policy=OPEN).send(alert())
    assert scrape(server.url(), policy=OPEN)["requests"] == 4.0
    assert (len(hook.close()), len(server.close())) == (1, 1)
    assert proxy.close() == []


def test_webhook_error_body_never_reaches_the_error_or_the_ledger(
    project: Context, listen: Any
) -> None:
    hook = listen(http(500, "Internal Server Error", f"token={SECRET}"))
    [d] = deliver(
        project.project.id,
        [alert()],
        [WebhookNotifier(hook.url("/in?sig=abc"), policy=OPEN)],
        retries=1,
        ctx=project,
    )
    [row] = project.ledger.monitoring.alerts(project.project.id)
    for text in (d.error, row.error):
        assert "HTTP 500 Internal Server Error" in text
        assert SECRET not in text
        assert "sig=abc" not in text


@pytest.mark.parametrize(
    "answer",
    [
        http(500, "Internal Server Error", f"password={SECRET}"),
        http(200, "OK", f"{SECRET}\n"),  # an internal service, not a plinth server
        http(404, "Not Found", SECRET),
        f"HTTP/1.1 {SECRET}\r\n\r\n".encode(),  # not even HTTP
    ],
)
def test_server_check_answer_never_reaches_the_error(answer: bytes, listen: Any) -> None:
    server = listen(answer)
    with pytest.raises(PlinthError) as info:
        scrape(server.url(), policy=OPEN)
    assert SECRET not in info.value.one_line()
    assert "cannot read the server's metrics" in str(info.value)
    assert len(server.close()) == 1


# -- the monitor's server check -------------------------------------------------------


@pytest.fixture
def watched(project: Context) -> Context:
    """The test project with a deployment 'web' to watch."""
    digest = project.blobs.put_bytes(b"name: web\nmodel: m@1\n").digest
    project.ledger.deployments.save(project.project.id, "web", digest, {"name": "web"})
    return project


def _server_check(ctx: Context, url: str) -> dict[str, Any]:
    spec = MonitorSpec.from_yaml(f"deployment: web\nchecks: {{server: {{url: '{url}'}}}}\n")
    outcome = run_monitor(spec, ctx=ctx, deliver_alerts=False)
    [stored] = ctx.ledger.monitoring.reports(ctx.project.id, monitor="web", limit=1)
    assert stored.id == outcome.report.id
    [check] = stored.results["checks"]
    return dict(check)


def test_server_check_to_loopback_in_a_team_setup_is_an_error_and_no_request_is_made(
    watched: Context, listen: Any
) -> None:
    server = listen(http(200, "OK", METRICS))
    team = Context(
        load_settings(watched.settings.root, overrides={"outbound_allow_loopback": False})
    )
    try:
        check = _server_check(team, server.url())
    finally:
        team.close()
    assert check["status"] == "error"
    assert "loopback address" in check["summary"]
    assert server.close() == []


def test_server_check_secret_answer_is_not_stored_in_the_report(
    watched: Context, listen: Any
) -> None:
    server = listen(http(200, "OK", f"# secret\napi_key {SECRET} x\n"))
    check = _server_check(watched, server.url())
    assert check["status"] == "error"
    assert SECRET not in str(check)
    assert len(server.close()) == 1


def test_server_check_to_metadata_is_refused_at_evaluation_with_no_connection(
    watched: Context, outbound: list[Any]
) -> None:
    check = _server_check(watched, "http://169.254.169.254/latest/meta-data/")
    assert check["status"] == "error"
    assert "cloud metadata address" in check["summary"]
    assert outbound == []


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://127.0.0.1:6379/_x", "http:///x"])
def test_server_check_url_with_another_scheme_or_no_host_is_refused_when_read(url: str) -> None:
    with pytest.raises(UsageError) as info:
        MonitorSpec.from_yaml(f"deployment: web\nchecks: {{server: {{url: '{url}'}}}}\n")
    assert info.value.field == "checks.server.url"


# -- the log route ------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["../outside.log", "/tmp/plinth-ssrf-abs.log", "a/../../x.log"])
def test_log_route_path_outside_the_project_is_refused_and_nothing_written(
    tmp_path: Path, path: str
) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    before = set(tmp_path.rglob("*"))
    with pytest.raises(UsageError, match="refused") as info:
        notifiers_from_spec([{"type": "log", "path": path}], root=root)
    assert info.value.field == "routes[0].path"
    assert set(tmp_path.rglob("*")) == before
    assert not os.path.exists("/tmp/plinth-ssrf-abs.log")


def test_log_route_through_a_symlink_out_of_the_project_is_refused_and_nothing_written(
    tmp_path: Path,
) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "logs").symlink_to(outside)
    with pytest.raises(UsageError, match="outside the project"):
        notifiers_from_spec([{"type": "log", "path": "logs/alerts.log"}], root=root)
    assert list(outside.iterdir()) == []


# -- header injection into alert routes ---------------------------------------------------

HOSTILE_HEADERS = [
    {"X-Team": "ml\r\n X-Injected: 1"},  # an obsolete line fold: http.client sends it as is
    {"X-Team": "ml\r\n\tX-Injected: 1"},
    {"X-Team": "ml\r\nX-Injected: 1"},
    {"X-Team": "ml\nX-Injected: 1"},
    {"X-Team": "ml\x00X-Injected: 1"},
    {"X-Team": "ml\u2028X-Injected: 1"},
    {"X-Team\r\nX-Injected": "1"},
    {"X Team": "ml"},
    {"X-Te\x00am": "ml"},
    {"X-Team:": "ml"},
]


@pytest.mark.parametrize("headers", HOSTILE_HEADERS)
def test_webhook_header_injection_is_refused_when_read_and_when_sent_and_the_hook_sees_nothing(
    tmp_path: Path, listen: Any, headers: dict[str, str]
) -> None:
    hook = listen(http(204, "No Content"))
    route = {"name": "hook", "type": "webhook", "url": hook.url("/in"), "headers": headers}
    with pytest.raises(UsageError, match="header") as info:
        notifiers_from_spec([route], root=tmp_path, settings=load_settings(tmp_path))
    assert info.value.field == "routes[0].headers"
    with pytest.raises(UsageError, match="header") as sent:  # built in Python, past the loader
        WebhookNotifier(hook.url("/in"), headers, policy=OPEN, name="hook").send(alert())
    assert "X-Injected: 1" not in sent.value.message  # a value may be a secret: never shown
    assert hook.close() == []


@pytest.mark.parametrize("field", ["from", "to"])
@pytest.mark.parametrize("value", ["a@b.c\r\nBcc: evil@x.y", "a@b.c\nBcc: evil@x.y", "a@b\x00c"])
def test_email_route_header_injection_in_from_or_to_is_refused_and_the_server_sees_nothing(
    tmp_path: Path, listen: Any, field: str, value: str
) -> None:
    smtp = listen(b"220 mail ESMTP\r\n")
    route = {"type": "email", "host": "127.0.0.1", "port": smtp.port, "from": "a@b.c", "to": "d@e"}
    route[field] = value
    with pytest.raises(UsageError, match="line break or a control character") as info:
        notifiers_from_spec([route], root=tmp_path, settings=load_settings(tmp_path))
    assert info.value.field == f"routes[0].{field}"
    sender, to = (value, ["d@e"]) if field == "from" else ("a@b.c", [value])
    direct = EmailNotifier("127.0.0.1", port=smtp.port, sender=sender, to=to, policy=OPEN)
    if "\x00" not in value:  # the e-mail policy refuses line breaks: a usage error, no crash
        with pytest.raises(UsageError, match="cannot be sent"):
            direct.send(alert())
    assert smtp.close() == []


def test_email_subject_from_a_hostile_monitor_title_stays_one_header() -> None:
    hostile = AlertMessage.create(
        "delays", "drift", severity="warning", title="x\r\nBcc: evil@x.y\x0bX: 1", message="m"
    )
    msg = EmailNotifier("mail.example", sender="a@b.c", to=["d@e.f"]).message(hostile)
    head = msg.as_bytes().split(b"\n\n", 1)[0]
    assert b"\nBcc:" not in head
    assert b"\nX: 1" not in head
    assert msg["Bcc"] is None
