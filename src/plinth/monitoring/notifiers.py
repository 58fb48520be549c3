"""Where alerts go: a log file, a JSON webhook, a Slack-compatible webhook, e-mail (SMTP).

A :class:`Notifier` has a ``name`` and a ``send(alert)`` that raises on failure: a
:class:`~plinth.errors.BackendError` for what may pass (a refused connection, HTTP 5xx, an
SMTP timeout), another :class:`~plinth.errors.PlinthError` for what will not (a refused
target, HTTP 4xx or 3xx, a missing password). :func:`plinth.monitoring.alerts.deliver`
retries the first kind only and records both. :mod:`plinth.monitoring.routes` builds routes
from monitor YAML::

    routes:
      - {name: ops-log, type: log, path: alerts.log}
      - {name: hook, type: webhook, url: "https://hooks.internal/alerts", headers: {X-Team: ml}}
      - {name: chat, type: slack, url: "https://hooks.slack.com/services/T0/B0/XXXX"}
      - {name: mail, type: email, host: smtp.internal, port: 587, starttls: true,
         from: plinth@corp.com, to: [ml-oncall@corp.com],
         username: plinth, password_env: SMTP_PASSWORD}

Webhooks, Slack and e-mail connect only through the outbound guard
(:mod:`plinth.guards.net`): http(s) only, every resolved address checked (metadata and
link-local never; loopback and private ranges as the ``outbound_allow_*`` settings say),
the connection pinned to the checked address, no redirects, no proxies, and never the
peer's answer in an error (status line only, URL redacted).
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from plinth._version import __version__
from plinth.errors import BackendError, ConfigError, PlinthError, UsageError
from plinth.guards.net import (
    SMTP_REFUSALS,
    GuardedSMTP,
    OutboundPolicy,
    http_request,
    redact_text,
    redact_url,
    split_url,
)

if TYPE_CHECKING:
    from plinth.monitoring.alerts import AlertMessage

__all__ = [
    "EmailNotifier",
    "LogFileNotifier",
    "Notifier",
    "SlackNotifier",
    "WebhookNotifier",
    "redact_text",
    "redact_url",
]

#: What a failing ``send`` may raise without it being a bug (the guard turns HTTP protocol
#: errors into BackendError; SMTP errors are OSErrors).
DELIVERY_ERRORS: tuple[type[BaseException], ...] = (PlinthError, OSError)


@runtime_checkable
class Notifier(Protocol):
    """One alert route: ``send`` delivers one alert or raises a PlinthError saying why not."""

    name: str

    def send(self, alert: AlertMessage) -> None: ...


# -- log file ----------------------------------------------------------------------------


class LogFileNotifier:
    """Appends each alert as one JSON line to ``path`` (parent folders are created).

    The whole line goes out in one ``O_APPEND`` write, so concurrent monitors never
    interleave their lines.
    """

    def __init__(self, path: Path | str, *, name: str = "log"):
        self.name = name
        self.path = Path(path)

    def send(self, alert: AlertMessage) -> None:
        line = json.dumps(alert.to_dict(), sort_keys=True, default=str) + "\n"
        data = line.encode()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # no following a link planted where the log file should be
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(self.path, flags, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
        except OSError as exc:
            raise BackendError(
                f"route {self.name!r}: cannot append to {self.path}: {exc.strerror or exc}",
                hint="check that the folder exists or can be created and is writable",
            ) from None

    def __repr__(self) -> str:
        return f"LogFileNotifier({self.name!r}, path={str(self.path)!r})"


# -- webhooks ----------------------------------------------------------------------------


class WebhookNotifier:
    """POSTs each alert as a JSON object (:meth:`AlertMessage.to_dict`) to ``url``.

    Any answer outside 2xx is a failure: 5xx, 408 and 429 may pass and are retried, other
    4xx and 3xx mean the route is wrong. ``headers`` are sent with every request. The post
    goes through the outbound guard with ``policy`` (default: the working directory's
    settings, read at send time).
    """

    kind = "webhook"

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        *,
        name: str | None = None,
        policy: OutboundPolicy | None = None,
    ):
        self.name = name or self.kind
        self.url = url
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.policy = policy
        split_url(url, where=f"route {self.name!r}")  # refused now, not at the first alert

    def payload(self, alert: AlertMessage) -> dict[str, Any]:
        """The JSON object posted for ``alert``."""
        return alert.to_dict()

    def send(self, alert: AlertMessage) -> None:
        body = json.dumps(self.payload(alert), default=str).encode()
        self.post(body)

    def post(self, body: bytes) -> None:
        """POST ``body`` (JSON) to the checked address of ``url``; raise unless 2xx."""
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"plinth/{__version__}",
            **self.headers,
        }
        http_request(
            "POST",
            self.url,
            body=body,
            headers=headers,
            timeout=self.timeout,
            policy=self.policy or OutboundPolicy.from_settings(),
            where=f"route {self.name!r}",
            max_bytes=0,
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, url={redact_url(self.url)!r})"


def _slack_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


class SlackNotifier(WebhookNotifier):
    """POSTs ``{"text": ...}`` with a one-paragraph summary to a Slack-compatible webhook.

    Works with Slack incoming webhooks and the compatible endpoints of Mattermost,
    Rocket.Chat and Discord (``.../slack`` URLs).
    """

    kind = "slack"

    def payload(self, alert: AlertMessage) -> dict[str, Any]:
        return {"text": slack_text(alert)}


def slack_text(alert: AlertMessage) -> str:
    """The Slack message for ``alert``: title line, message, where it came from."""
    mark = ":red_circle:" if alert.severity == "critical" else ":warning:"
    head = f"{mark} *{_slack_escape(alert.title)}* ({alert.severity})"
    origin = f"monitor `{_slack_escape(alert.monitor)}`, check `{_slack_escape(alert.check)}`"
    if alert.report_id:
        origin += f", report `{alert.report_id}`"
    return f"{head}\n{_slack_escape(alert.message)}\n_{origin}_"


# -- e-mail ------------------------------------------------------------------------------


class EmailNotifier:
    """Sends each alert as a plain-text e-mail through an SMTP server.

    The password is never stored: it is read at send time from the environment variable
    named by ``password_env`` (``username`` turns on login).
    """

    def __init__(
        self,
        host: str,
        *,
        port: int = 25,
        sender: str,
        to: Sequence[str],
        username: str | None = None,
        password_env: str | None = None,
        starttls: bool = False,
        timeout: float = 10.0,
        name: str = "email",
        policy: OutboundPolicy | None = None,
    ):
        self.name = name
        self.host = host
        self.port = port
        self.sender = sender
        self.to = list(to)
        self.username = username
        self.password_env = password_env
        self.starttls = starttls
        self.timeout = timeout
        self.policy = policy

    def message(self, alert: AlertMessage) -> EmailMessage:
        """The e-mail for ``alert``."""
        msg = EmailMessage()
        title = " ".join(alert.title.split())
        msg["Subject"] = f"[plinth {alert.severity}] {title}"
        try:  # the e-mail policy refuses CR/LF in a header: as a usage error, not a crash
            msg["From"] = self.sender
            msg["To"] = ", ".join(self.to)
        except ValueError as exc:
            raise UsageError(
                f"route {self.name!r}: the from or to address cannot be sent: {exc}",
                hint="write plain addresses, with no line breaks or control characters",
                field="to",
            ) from None
        lines = [
            alert.message,
            "",
            f"Monitor:   {alert.monitor}",
            f"Check:     {alert.check}",
            f"Severity:  {alert.severity}",
        ]
        if alert.report_id:
            lines.append(f"Report:    {alert.report_id}")
        if alert.details:
            lines += ["", "Details:"]
            lines += [f"  {key}: {value}" for key, value in sorted(alert.details.items())]
        lines += ["", f"Fingerprint: {alert.fingerprint}"]
        msg.set_content("\n".join(lines) + "\n")
        return msg

    def _password(self) -> str | None:
        if self.username is None:
            return None
        value = os.environ.get(self.password_env) if self.password_env else None
        if not value:
            raise UsageError(
                f"route {self.name!r}: environment variable {self.password_env} is not set",
                hint=f"export {self.password_env} with the SMTP password of {self.username}",
                field="password_env",
            )
        return value

    def send(self, alert: AlertMessage) -> None:
        msg = self.message(alert)
        password = self._password()
        where = f"route {self.name!r}: SMTP {self.host}:{self.port}"
        try:
            policy = self.policy or OutboundPolicy.from_settings()
            with GuardedSMTP(
                self.host, self.port, policy=policy, timeout=self.timeout, where=where
            ) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username is not None and password is not None:
                    smtp.login(self.username, password)
                smtp.send_message(msg)
        except SMTP_REFUSALS as exc:
            raise ConfigError(
                f"{where} refused the alert: {_smtp_text(exc)}",
                hint="check the route's from, to, username and password",
            ) from None
        except OSError as exc:  # SMTP errors are OSErrors too
            raise BackendError(
                f"{where} failed: {_smtp_text(exc)}",
                hint="check that the mail server is up and reachable from here",
            ) from None

    def __repr__(self) -> str:
        return f"EmailNotifier({self.name!r}, host={self.host!r}, to={self.to!r})"


def _smtp_text(exc: BaseException) -> str:
    """The server's reply line (code and first line of text, cut short), or the OS error."""
    code = getattr(exc, "smtp_code", None)
    error = getattr(exc, "smtp_error", None)
    if code is not None and isinstance(error, bytes):
        lines = error.decode("utf-8", "replace").splitlines() or [""]
        first = "".join(c for c in lines[0] if c.isprintable())[:120]
        return f"{code} {first}".rstrip()
    return " ".join(str(exc).split())[:200] or type(exc).__name__
