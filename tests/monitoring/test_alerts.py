"""Alert routes and delivery against real servers: a local HTTP server for webhooks and
Slack, an aiosmtpd SMTP server for e-mail, a real ledger for de-duplication."""

from __future__ import annotations

import base64
import json
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from plinth.context import Context
from plinth.errors import ConfigError, UsageError
from plinth.guards.net import OutboundPolicy
from plinth.ids import now_ms
from plinth.monitoring.alerts import AlertMessage, deliver, fingerprint
from plinth.monitoring.notifiers import (
    EmailNotifier,
    LogFileNotifier,
    Notifier,
    SlackNotifier,
    WebhookNotifier,
    redact_url,
)
from plinth.monitoring.routes import notifier_from_spec, notifiers_from_spec

# -- servers -------------------------------------------------------------------------------


@dataclass
class Hook:
    """A webhook server on 127.0.0.1: answers ``statuses`` in turn (then the last one)."""

    port: int
    statuses: list[int]
    requests: list[dict[str, Any]] = field(default_factory=list)

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def bodies(self) -> list[Any]:
        return [json.loads(r["body"]) for r in self.requests]


@pytest.fixture
def hook() -> Iterator[Hook]:
    state = Hook(0, [200])

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
            status = state.statuses[min(len(state.requests), len(state.statuses)) - 1]
            payload = b"ok" if status < 300 else b"no_service\n(try later)"
            self.send_response(status)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


def free_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


@dataclass
class Mailbox:
    port: int
    messages: list[Message] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    box = Mailbox(free_port())

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            box.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            box.messages.append(message_from_bytes(envelope.content))
            return "250 OK"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
        box.logins.append((data.login.decode(), data.password.decode()))
        return AuthResult(success=data.password == b"hunter2", handled=False)

    controller = Controller(
        Handler(),
        hostname="127.0.0.1",
        port=box.port,
        authenticator=authenticator,
        auth_require_tls=False,
    )
    controller.start()
    yield box
    controller.stop()


@pytest.fixture
def no_connect(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every TCP connection attempt, recorded and refused before it leaves the machine; but
    the team server of a remote-mode test (PLINTH_SERVER), which holds the ledger."""
    attempts: list[tuple[str, int]] = []
    connect = socket.create_connection

    def refuse(address: tuple[str, int], *args: Any, **kwargs: Any) -> socket.socket:
        server = urlsplit(os.environ.get("PLINTH_SERVER", ""))
        if server.hostname and (server.hostname, server.port) == tuple(address):
            return connect(address, *args, **kwargs)
        attempts.append(address)
        raise ConnectionRefusedError(111, "Connection refused")

    monkeypatch.setattr(socket, "create_connection", refuse)
    return attempts


@pytest.fixture
def dns(monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Extra DNS answers: ``dns["hooks.example"] = "127.0.0.1"``."""
    answers: dict[str, str] = {}
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host in answers:
            return real(answers[host], port, *args, **kwargs)
        return real(host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    return answers


def alert(key: Any = "distance", **overrides: Any) -> AlertMessage:
    values: dict[str, Any] = {
        "severity": "warning",
        "title": "delays: distance drifted",
        "message": "PSI 0.31 > 0.2 on column distance",
        "details": {"psi": 0.31, "column": "distance"},
        "key": key,
    }
    values.update(overrides)
    return AlertMessage.create("delays", "drift", **values)


Deliver = Callable[..., Any]


@pytest.fixture
def send(project: Context) -> Deliver:
    """``deliver`` on the test project, without back-off waits."""

    def run(alerts: list[AlertMessage], routes: list[Notifier], **kwargs: Any) -> Any:
        kwargs.setdefault("backoff_seconds", 0)
        return deliver(project.project.id, alerts, routes, **kwargs, ctx=project)

    return run


# -- alert messages ----------------------------------------------------------------------


def test_fingerprint_names_the_problem_not_the_numbers() -> None:
    a = alert(key={"columns": ["distance", "hour"]})
    b = alert(key={"columns": ["distance", "hour"]}, message="PSI 0.45", details={"psi": 0.45})
    assert a.fingerprint == b.fingerprint
    assert alert(key="hour").fingerprint != a.fingerprint
    assert alert(severity="critical").fingerprint != alert().fingerprint
    assert fingerprint("m", "c", "warning", {"a": 1, "b": 2}) == fingerprint(
        "m", "c", "warning", {"b": 2, "a": 1}
    )
    assert len(a.fingerprint) == 32


def test_alert_message_checks_severity() -> None:
    with pytest.raises(UsageError, match="severity") as info:
        alert(severity="fatal")
    assert info.value.field == "severity"


# -- webhooks ------------------------------------------------------------------------------


def test_webhook_posts_the_alert_as_json(hook: Hook, send: Deliver) -> None:
    a = alert()
    route = WebhookNotifier(hook.url(), headers={"X-Team": "ml"}, name="hook")
    [d] = send([a], [route])
    assert (d.route, d.status, d.attempts, d.error) == ("hook", "sent", 1, None)
    [body] = hook.bodies()
    assert body == a.to_dict()
    assert body["severity"] == "warning"
    assert body["details"] == {"psi": 0.31, "column": "distance"}
    assert body["fingerprint"] == a.fingerprint
    headers = hook.requests[0]["headers"]
    assert headers["Content-Type"] == "application/json"
    assert headers["X-Team"] == "ml"
    assert hook.requests[0]["path"] == "/hook"


def test_slack_posts_a_readable_text(hook: Hook) -> None:
    SlackNotifier(hook.url()).send(alert(title="a <b> & c", severity="critical"))
    [body] = hook.bodies()
    assert list(body) == ["text"]
    text = body["text"]
    assert "*a &lt;b&gt; &amp; c* (critical)" in text
    assert "PSI 0.31 > 0.2".replace(">", "&gt;") in text
    assert "monitor `delays`, check `drift`" in text


def test_failing_webhook_is_retried_with_backoff(
    hook: Hook, project: Context, send: Deliver
) -> None:
    hook.statuses = [500, 500, 200]
    waits: list[float] = []
    [d] = send([alert()], [WebhookNotifier(hook.url())], backoff_seconds=1.0, sleep=waits.append)
    assert (d.status, d.attempts, d.error) == ("sent", 3, None)
    assert waits == [1.0, 2.0]
    assert len(hook.requests) == 3
    [row] = project.ledger.monitoring.alerts(project.project.id)
    assert (row.status, row.attempts, row.route, row.error) == ("sent", 3, "webhook", None)
    assert row.message == "delays: distance drifted: PSI 0.31 > 0.2 on column distance"


def test_webhook_that_always_fails_is_recorded_not_raised(
    hook: Hook, project: Context, send: Deliver, caplog: pytest.LogCaptureFixture
) -> None:
    hook.statuses = [500]
    with caplog.at_level(logging.WARNING, logger="plinth.monitoring"):
        [d] = send([alert()], [WebhookNotifier(hook.url(), name="hook")])
    assert (d.status, d.attempts) == ("failed", 3)
    assert d.error is not None
    assert "HTTP 500" in d.error
    assert "no_service" not in d.error  # the status line only, never the server's answer
    assert "\n" not in d.error
    [row] = project.ledger.monitoring.alerts(project.project.id, monitor="delays")
    assert (row.status, row.attempts, row.error) == ("failed", 3, d.error)
    assert "not delivered to route 'hook' after 3 attempt(s)" in caplog.text


def test_refused_connection_fails_without_crashing(send: Deliver) -> None:
    [d] = send([alert()], [WebhookNotifier(f"http://127.0.0.1:{free_port()}/hook")], retries=2)
    assert (d.status, d.attempts) == ("failed", 2)
    assert "refused" in d.error.lower()


@pytest.mark.parametrize("status", [404, 302])
def test_client_error_or_redirect_is_not_retried(hook: Hook, send: Deliver, status: int) -> None:
    hook.statuses = [status]
    [d] = send([alert()], [WebhookNotifier(hook.url())])
    assert (d.status, d.attempts) == ("failed", 1)
    assert f"HTTP {status}" in d.error
    assert len(hook.requests) == 1
    with pytest.raises(ConfigError, match=f"HTTP {status}"):
        WebhookNotifier(hook.url()).send(alert())


def test_secrets_in_the_url_never_reach_the_ledger(
    hook: Hook, project: Context, send: Deliver
) -> None:
    hook.statuses = [503]
    url = f"http://bot:s3cret@127.0.0.1:{hook.port}/services/T0KEN?sig=abc123"
    [d] = send([alert()], [SlackNotifier(url)], retries=1)
    [row] = project.ledger.monitoring.alerts(project.project.id)
    for text in (d.error, row.error, repr(SlackNotifier(url))):
        assert f"127.0.0.1:{hook.port}" in text
        for secret in ("s3cret", "T0KEN", "abc123", "bot"):
            assert secret not in text
    # the user info is sent as basic auth, the path and query as given
    request = hook.requests[0]
    assert request["path"] == "/services/T0KEN?sig=abc123"
    assert (
        request["headers"]["Authorization"] == "Basic " + base64.b64encode(b"bot:s3cret").decode()
    )
    assert redact_url("https://u:p@h.example:8443/a/b?c=d") == "https://h.example:8443/…"


def test_a_header_that_cannot_be_sent_is_a_recorded_failure(hook: Hook, send: Deliver) -> None:
    route = WebhookNotifier(hook.url(), headers={"Authorization": "Bearer tok3n\r\nX-Evil: 1"})
    [d] = send([alert()], [route])
    assert (d.status, d.attempts) == ("failed", 1)
    assert "header" in d.error
    assert "tok3n" not in d.error
    assert hook.requests == []


# -- de-duplication and cool-down ----------------------------------------------------------


def test_same_alert_within_cooldown_is_suppressed_then_sent_again(
    hook: Hook, project: Context, send: Deliver
) -> None:
    route = WebhookNotifier(hook.url())
    [first] = send([alert()], [route])
    [second] = send([alert(message="PSI 0.40 now")], [route])  # same problem, new numbers
    assert (first.status, second.status, second.attempts) == ("sent", "suppressed", 0)
    assert len(hook.requests) == 1
    # just before the hour is up: still quiet; after it: sent again
    later = now_ms() + 3_590_000
    [third] = send([alert()], [route], clock=lambda: later)
    [fourth] = send([alert()], [route], clock=lambda: later + 20_000)
    assert (third.status, fourth.status) == ("suppressed", "sent")
    assert len(hook.requests) == 2
    # a different problem, or no cool-down, is not held back
    assert send([alert(key="hour")], [route])[0].status == "sent"
    assert send([alert()], [route], cooldown_seconds=0)[0].status == "sent"
    statuses = [a.status for a in project.ledger.monitoring.alerts(project.project.id)]
    assert statuses == ["sent", "sent", "sent", "suppressed", "suppressed", "sent"]


def test_cooldown_is_per_route_and_a_failure_does_not_start_it(hook: Hook, send: Deliver) -> None:
    good = WebhookNotifier(hook.url(), name="good")
    bad = WebhookNotifier(f"http://127.0.0.1:{free_port()}/", name="bad")
    first = send([alert()], [good, bad], retries=1)
    assert [(d.route, d.status) for d in first] == [("good", "sent"), ("bad", "failed")]
    second = send([alert()], [good, bad], retries=1)
    assert [(d.route, d.status) for d in second] == [("good", "suppressed"), ("bad", "failed")]


def test_identical_alerts_in_one_call_are_sent_once(hook: Hook, send: Deliver) -> None:
    route = WebhookNotifier(hook.url())
    deliveries = send([alert(), alert(details={"psi": 0.9}), alert(key="hour")], [route])
    assert [d.status for d in deliveries] == ["sent", "sent"]
    assert len(hook.requests) == 2


def test_deliver_checks_its_arguments(send: Deliver) -> None:
    with pytest.raises(UsageError, match="retries"):
        send([alert()], [], retries=0)


# -- SSRF guard ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://169.254.10.20:8080/", "link-local"),
        ("http://[fe80::1]/hook", "link-local"),
        ("http://[::ffff:169.254.169.254]/", "metadata"),
        ("https://100.100.100.200/", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
        ("http://METADATA/", "metadata"),
    ],
)
def test_link_local_and_metadata_targets_are_refused(
    url: str, reason: str, no_connect: list[tuple[str, int]]
) -> None:
    with pytest.raises(UsageError, match=reason) as info:
        WebhookNotifier(url).send(alert())
    assert info.value.field == "url"
    assert "never reached" in info.value.hint
    assert no_connect == []


def test_refused_target_is_recorded_once_not_retried(
    send: Deliver, no_connect: list[tuple[str, int]]
) -> None:
    [d] = send([alert()], [SlackNotifier("http://169.254.169.254/")])
    assert (d.status, d.attempts) == ("failed", 1)
    assert "metadata" in d.error
    assert no_connect == []


def test_a_name_resolving_to_link_local_is_refused(
    dns: dict[str, str], no_connect: list[tuple[str, int]]
) -> None:
    dns["hooks.example"] = "169.254.3.4"
    with pytest.raises(UsageError, match=r"hooks\.example resolves to 169\.254\.3\.4"):
        WebhookNotifier("https://hooks.example/x").send(alert())
    assert no_connect == []


def test_allow_link_local_no_longer_opens_metadata(no_connect: list[tuple[str, int]]) -> None:
    with pytest.raises(ConfigError, match="no longer supported") as info:
        notifier_from_spec(
            {"type": "webhook", "url": "http://169.254.169.254/h", "allow_link_local": True}
        )
    assert info.value.field == "allow_link_local"
    assert "outbound_allow_private" in info.value.hint
    assert no_connect == []
    # false, the old default, still reads
    route = notifier_from_spec({"type": "webhook", "url": "http://h/", "allow_link_local": False})
    assert isinstance(route, WebhookNotifier)


def test_the_connection_goes_to_the_checked_address(hook: Hook, dns: dict[str, str]) -> None:
    dns["hooks.example"] = "127.0.0.1"
    WebhookNotifier(f"http://hooks.example:{hook.port}/in").send(alert())
    [request] = hook.requests
    assert request["headers"]["Host"] == f"hooks.example:{hook.port}"
    assert request["path"] == "/in"


def test_loopback_targets_are_allowed_on_the_embedded_default(hook: Hook) -> None:
    WebhookNotifier(hook.url()).send(alert())
    WebhookNotifier(f"http://localhost:{hook.port}/").send(alert())
    assert len(hook.requests) == 2


@pytest.mark.parametrize("url", ["file:///etc/passwd", "gopher://127.0.0.1/", "ftp://h/x"])
def test_other_schemes_are_refused_always(url: str) -> None:
    with pytest.raises(UsageError, match="scheme") as info:
        notifier_from_spec({"name": "x", "type": "webhook", "url": url, "allow_link_local": True})
    assert info.value.field == "url"
    with pytest.raises(UsageError, match="scheme"):
        WebhookNotifier(url)


# -- log file ------------------------------------------------------------------------------


def test_log_file_appends_json_lines(tmp_path: Path, send: Deliver) -> None:
    path = tmp_path / "logs" / "alerts" / "alerts.log"
    route = LogFileNotifier(path, name="ops-log")
    first, second = alert(), alert(key="hour", severity="critical")
    deliveries = send([first, second], [route])
    assert [d.status for d in deliveries] == ["sent", "sent"]
    lines = path.read_text().splitlines()
    assert [json.loads(line) for line in lines] == [first.to_dict(), second.to_dict()]
    route.send(first)
    assert len(path.read_text().splitlines()) == 3


def test_unwritable_log_file_is_a_recorded_failure(tmp_path: Path, send: Deliver) -> None:
    (tmp_path / "file").write_text("")
    [d] = send([alert()], [LogFileNotifier(tmp_path / "file" / "alerts.log")])
    assert d.status == "failed"
    assert "cannot append" in d.error


# -- e-mail --------------------------------------------------------------------------------


def test_email_is_delivered_over_smtp(mailbox: Mailbox, send: Deliver) -> None:
    route = notifier_from_spec(
        {
            "name": "mail",
            "type": "email",
            "host": "127.0.0.1",
            "port": mailbox.port,
            "from": "plinth@example.com",
            "to": ["oncall@example.com", "ml@example.com"],
        }
    )
    a = alert(report_id=None)
    [d] = send([a], [route])
    assert (d.route, d.status) == ("mail", "sent")
    [msg] = mailbox.messages
    assert msg["Subject"] == "[plinth warning] delays: distance drifted"
    assert msg["From"] == "plinth@example.com"
    assert mailbox.envelopes == [("plinth@example.com", ["oncall@example.com", "ml@example.com"])]
    body = msg.get_payload(decode=True).decode()
    assert "PSI 0.31 > 0.2 on column distance" in body
    assert "Monitor:   delays" in body
    assert "psi: 0.31" in body
    assert a.fingerprint in body


def test_email_password_comes_from_the_environment(
    mailbox: Mailbox, send: Deliver, monkeypatch: pytest.MonkeyPatch
) -> None:
    route = EmailNotifier(
        "127.0.0.1",
        port=mailbox.port,
        sender="plinth@example.com",
        to=["oncall@example.com"],
        username="plinth",
        password_env="ALERTS_TEST_SMTP_PASSWORD",
    )
    [d] = send([alert()], [route])
    assert (d.status, d.attempts) == ("failed", 1)  # unset: not retried
    assert "ALERTS_TEST_SMTP_PASSWORD is not set" in d.error
    monkeypatch.setenv("ALERTS_TEST_SMTP_PASSWORD", "wrong")
    [d] = send([alert(key="a")], [route])
    assert (d.status, d.attempts) == ("failed", 1)  # rejected credentials: not retried
    assert "535" in d.error
    monkeypatch.setenv("ALERTS_TEST_SMTP_PASSWORD", "hunter2")
    [d] = send([alert(key="b")], [route])
    assert d.status == "sent"
    # smtplib tries each offered mechanism (PLAIN, then LOGIN) with the wrong password
    assert {login for login, _ in mailbox.logins} == {"plinth"}
    passwords = [password for _, password in mailbox.logins]
    assert (passwords[0], passwords[-1], set(passwords)) == (
        "wrong",
        "hunter2",
        {"wrong", "hunter2"},
    )
    assert len(mailbox.messages) == 1
    assert "hunter2" not in repr(route)
    assert "hunter2" not in str(vars(route))


def test_unreachable_smtp_server_is_a_recorded_failure(send: Deliver) -> None:
    route = EmailNotifier("127.0.0.1", port=free_port(), sender="a@b.c", to=["d@e.f"])
    [d] = send([alert()], [route], retries=2)
    assert (d.status, d.attempts) == ("failed", 2)
    assert "SMTP 127.0.0.1" in d.error


# -- route specs ---------------------------------------------------------------------------


def test_routes_from_yaml_mappings(tmp_path: Path) -> None:
    routes = notifiers_from_spec(
        [
            {"name": "ops-log", "type": "log", "path": "alerts.log"},
            {"type": "webhook", "url": "https://h.internal/a", "headers": {"X-Key": "k"}},
            {"name": "chat", "type": "slack", "url": "https://hooks.slack.com/s/T/B/X"},
            {"type": "email", "host": "smtp", "from": "a@b.c", "to": "d@e.f", "starttls": True},
        ],
        root=tmp_path,
    )
    assert [r.name for r in routes] == ["ops-log", "webhook", "chat", "email"]
    log_route, hook_route, slack_route, mail_route = routes
    assert isinstance(log_route, LogFileNotifier)
    assert log_route.path == tmp_path / "alerts.log"
    assert isinstance(hook_route, WebhookNotifier)
    assert hook_route.headers == {"X-Key": "k"}
    assert hook_route.policy == OutboundPolicy(allow_loopback=True, allow_private=False)
    assert isinstance(slack_route, SlackNotifier)
    assert isinstance(mail_route, EmailNotifier)
    assert (mail_route.to, mail_route.port, mail_route.starttls) == (["d@e.f"], 25, True)
    assert all(isinstance(r, Notifier) for r in routes)


@pytest.mark.parametrize(
    ("route", "field", "text"),
    [
        ({"name": "r"}, "routes[0].type", "has no 'type' key"),
        ({"type": "webhok", "url": "http://h/"}, "routes[0].type", "did you mean 'webhook'"),
        ({"name": "ops", "type": "webhook"}, "routes[0].url", "route 'ops': missing key 'url'"),
        ({"type": "log", "path": "a", "colour": 1}, "routes[0].colour", "unknown key 'colour'"),
        (
            {"type": "webhook", "url": "http://h/", "allow_link_locl": True},
            "routes[0].allow_link_locl",
            "did you mean 'allow_link_local'",
        ),
        (
            {"type": "webhook", "url": "http://h/", "allow_link_local": "yes"},
            "routes[0].allow_link_local",
            "true or false",
        ),
        ({"type": "slack", "url": "http://h/", "timeout": 0}, "routes[0].timeout", "positive"),
        (
            {"type": "webhook", "url": "http://h/", "headers": {"Host": "x"}},
            "routes[0].headers",
            "set by plinth",
        ),
        ({"type": "email", "host": "h", "from": "a", "to": []}, "routes[0].to", "non-empty"),
        (
            {"type": "email", "host": "h", "from": "a", "to": "b", "port": "25"},
            "routes[0].port",
            "port number",
        ),
        (
            {"type": "email", "host": "h", "from": "a", "to": "b", "password": "x"},
            "routes[0].password",
            "never written",
        ),
        (
            {"type": "email", "host": "h", "from": "a", "to": "b", "username": "u"},
            "routes[0].password_env",
            "needs password_env",
        ),
        ({"type": "log", "path": ""}, "routes[0].path", "non-empty string"),
    ],
)
def test_route_spec_errors_name_the_route_and_field(
    route: dict[str, Any], field: str, text: str
) -> None:
    with pytest.raises(UsageError) as info:
        notifiers_from_spec([route])
    assert info.value.field == field
    assert text in str(info.value)
    assert str(info.value).startswith("alert route ")


def test_route_names_must_be_distinct() -> None:
    with pytest.raises(UsageError, match="both named 'webhook'") as info:
        notifiers_from_spec(
            [{"type": "webhook", "url": "http://a/"}, {"type": "webhook", "url": "http://b/"}]
        )
    assert info.value.field == "routes[1].name"
    with pytest.raises(UsageError, match="a mapping"):
        notifier_from_spec("log")  # type: ignore[arg-type]
