"""Where alerts go: a log file, a JSON webhook, a Slack-compatible webhook, e-mail (SMTP).

A :class:`Notifier` has a ``name`` and a ``send(alert)`` that raises on failure: a
:class:`~plinth.errors.BackendError` for what may pass (a refused connection, HTTP 5xx, an
SMTP timeout), another :class:`~plinth.errors.PlinthError` for what will not (a refused
target, HTTP 4xx, a missing password). :func:`plinth.monitoring.alerts.deliver` retries the
first kind only and records both. :mod:`plinth.monitoring.routes` builds routes from
monitor YAML::

    routes:
      - {name: ops-log, type: log, path: alerts.log}
      - {name: hook, type: webhook, url: "https://hooks.internal/alerts", headers: {X-Team: ml}}
      - {name: chat, type: slack, url: "https://hooks.slack.com/services/T0/B0/XXXX"}
      - {name: mail, type: email, host: smtp.internal, port: 587, starttls: true,
         from: plinth@corp.com, to: [ml-oncall@corp.com],
         username: plinth, password_env: SMTP_PASSWORD}

Webhooks are guarded against server-side request forgery: only ``http`` and ``https``, and
a host that is, or resolves to, a link-local or cloud metadata address is refused unless the
route sets ``allow_link_local: true``. The connection goes to the very address that was
checked (the ``Host`` header and TLS name stay the URL's), so a DNS answer that changes
between check and connect cannot redirect it; redirects are not followed and proxy
variables (``HTTPS_PROXY``) are not used. Loopback and private ranges are allowed.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import os
import re
import smtplib
import socket
import ssl
from collections.abc import Mapping, Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import unquote, urlsplit

from plinth._version import __version__
from plinth.errors import BackendError, ConfigError, PlinthError, UsageError

if TYPE_CHECKING:
    from plinth.monitoring.alerts import AlertMessage

__all__ = [
    "EmailNotifier",
    "LogFileNotifier",
    "Notifier",
    "SlackNotifier",
    "WebhookNotifier",
    "check_webhook_target",
    "redact_text",
    "redact_url",
]

#: Addresses of cloud instance-metadata services (AWS, AWS IPv6, GCP/Azure/OCI, Alibaba).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
#: Host names of metadata services, refused before any DNS lookup.
METADATA_HOSTS = frozenset({"metadata", "metadata.google.internal", "metadata.goog"})

#: What a failing ``send`` may raise without it being a bug.
DELIVERY_ERRORS: tuple[type[BaseException], ...] = (
    PlinthError,
    OSError,
    http.client.HTTPException,
)
#: Bytes of a webhook's answer kept for the error message.
_BODY_PREVIEW = 200
_SSRF_HINT = (
    "point the route at another host, or set allow_link_local: true on the route if this "
    "target is really meant"
)


@runtime_checkable
class Notifier(Protocol):
    """One alert route: ``send`` delivers one alert or raises a PlinthError saying why not."""

    name: str

    def send(self, alert: AlertMessage) -> None: ...


# -- redaction ---------------------------------------------------------------------------

_URL_RE = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str) -> str:
    """``scheme://host[:port]/…``: the URL without user, password, path and query.

    Webhook URLs carry their secret in the path (Slack) or the query, so neither is shown.
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "<url>"
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port is not None else host
    rest = "/…" if parts.path.strip("/") or parts.query or parts.fragment else ""
    return f"{parts.scheme}://{netloc}{rest}"


def redact_text(text: str) -> str:
    """``text`` with every URL in it redacted by :func:`redact_url`."""
    return _URL_RE.sub(lambda m: redact_url(m.group(0)), text)


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
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
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


def _refused_kind(address: str) -> str | None:
    """``"a cloud metadata"`` or ``"a link-local"`` for an address alerts may not go to."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip in METADATA_ADDRESSES:
        return "a cloud metadata"
    return "a link-local" if ip.is_link_local else None


def check_webhook_target(
    url: str, *, allow_link_local: bool = False, route: str = "webhook"
) -> tuple[str, int, list[str]]:
    """Check ``url`` against the SSRF rule and resolve it: ``(host, port, addresses)``.

    Raises :class:`~plinth.errors.UsageError` for a scheme other than http(s), or a host
    that is or resolves to a link-local or metadata address (unless ``allow_link_local``),
    and :class:`~plinth.errors.BackendError` when the name does not resolve.
    """
    where = f"route {route!r}"
    try:
        parts = urlsplit(url)
        host = (parts.hostname or "").rstrip(".")
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise UsageError(f"{where}: bad url {redact_url(url)}: {exc}", field="url") from None
    if parts.scheme not in ("http", "https"):
        raise UsageError(
            f"{where}: url scheme {parts.scheme or '(none)'!r} is not allowed",
            hint="webhook urls start with https:// or http://",
            field="url",
        )
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        host = ""
    if not host:
        raise UsageError(f"{where}: url {redact_url(url)} names no valid host", field="url")
    if not allow_link_local and host in METADATA_HOSTS:
        raise UsageError(
            f"{where}: {host} is a cloud metadata service; plinth does not post alerts there",
            hint=_SSRF_HINT,
            field="url",
        )
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise BackendError(
            f"{where}: cannot resolve {host}: {exc}",
            hint="check the host name in the route's url and this machine's DNS",
        ) from None
    addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    if not allow_link_local:
        for address in addresses:
            kind = _refused_kind(address)
            if kind is not None:
                said = f"{host} is" if address == host else f"{host} resolves to {address},"
                raise UsageError(
                    f"{where}: {said} {kind} address; plinth does not post alerts there",
                    hint=_SSRF_HINT,
                    field="url",
                )
    return host, port, addresses


def _connect_any(addresses: Sequence[str], port: int, timeout: float | None) -> socket.socket:
    """A TCP connection to the first of ``addresses`` that answers."""
    error: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as exc:
            error = exc
    raise error or OSError("no address to connect to")


class _PinnedHTTPConnection(http.client.HTTPConnection):
    """An HTTP connection to checked addresses; ``Host`` stays the URL's host."""

    def __init__(self, host: str, port: int, addresses: Sequence[str], timeout: float):
        super().__init__(host, port, timeout=timeout)
        self._addresses = addresses

    def connect(self) -> None:
        self.sock = _connect_any(self._addresses, self.port, self.timeout)


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """An HTTPS connection to checked addresses; the certificate is checked for the host."""

    def __init__(self, host: str, port: int, addresses: Sequence[str], timeout: float):
        self._ssl = ssl.create_default_context()
        super().__init__(host, port, timeout=timeout, context=self._ssl)
        self._addresses = addresses

    def connect(self) -> None:
        sock = _connect_any(self._addresses, self.port, self.timeout)
        try:
            self.sock = self._ssl.wrap_socket(sock, server_hostname=self.host)
        except BaseException:
            sock.close()
            raise


def _retryable_status(status: int) -> bool:
    return status >= 500 or status in (408, 425, 429)


class WebhookNotifier:
    """POSTs each alert as a JSON object (:meth:`AlertMessage.to_dict`) to ``url``.

    Any answer outside 2xx is a failure: 5xx, 408 and 429 may pass and are retried, other
    4xx mean the route is wrong. ``headers`` are sent with every request.
    """

    kind = "webhook"

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        allow_link_local: bool = False,
        *,
        name: str | None = None,
    ):
        self.name = name or self.kind
        self.url = url
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.allow_link_local = allow_link_local
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https"):
            check_webhook_target(url, route=self.name)  # refused now, not at the first alert

    def payload(self, alert: AlertMessage) -> dict[str, Any]:
        """The JSON object posted for ``alert``."""
        return alert.to_dict()

    def send(self, alert: AlertMessage) -> None:
        body = json.dumps(self.payload(alert), default=str).encode()
        self.post(body)

    def post(self, body: bytes) -> None:
        """POST ``body`` (JSON) to the checked address of ``url``; raise unless 2xx."""
        host, port, addresses = check_webhook_target(
            self.url, allow_link_local=self.allow_link_local, route=self.name
        )
        parts = urlsplit(self.url)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {
            "Content-Type": "application/json",
            "User-Agent": f"plinth/{__version__}",
            **self.headers,
        }
        if parts.username is not None:
            user = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            headers["Authorization"] = "Basic " + base64.b64encode(user.encode()).decode()
        cls = _PinnedHTTPSConnection if parts.scheme == "https" else _PinnedHTTPConnection
        conn = cls(host, port, addresses, self.timeout)
        shown = redact_url(self.url)
        try:
            conn.request("POST", target, body=body, headers=headers)
            response = conn.getresponse()
            status, reason = response.status, response.reason
            preview = response.read(_BODY_PREVIEW).decode("utf-8", "replace")
        except ValueError as exc:  # a header that cannot go on the wire; not shown: secrets
            raise UsageError(
                f"route {self.name!r}: a header name or value cannot be sent "
                f"({type(exc).__name__})",
                hint="header names and values are single-line latin-1 text",
                field="headers",
            ) from None
        except (OSError, http.client.HTTPException) as exc:
            text = str(exc) or type(exc).__name__
            raise BackendError(
                f"route {self.name!r}: POST {shown} failed: {text}",
                hint="check that the webhook server is up and reachable from here",
            ) from None
        finally:
            conn.close()
        if 200 <= status < 300:
            return
        answer = " ".join(preview.split())
        message = f"route {self.name!r}: POST {shown} answered HTTP {status} {reason}".rstrip()
        if answer:
            message += f": {answer}"
        if _retryable_status(status):
            raise BackendError(message, hint="the webhook server failed; it is retried")
        raise ConfigError(message, hint="check the route's url and headers", field="url")

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

_PERMANENT_SMTP = (
    smtplib.SMTPAuthenticationError,
    smtplib.SMTPRecipientsRefused,
    smtplib.SMTPSenderRefused,
    smtplib.SMTPNotSupportedError,
)


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

    def message(self, alert: AlertMessage) -> EmailMessage:
        """The e-mail for ``alert``."""
        msg = EmailMessage()
        title = " ".join(alert.title.split())
        msg["Subject"] = f"[plinth {alert.severity}] {title}"
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
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
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
                if self.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.username is not None and password is not None:
                    smtp.login(self.username, password)
                smtp.send_message(msg)
        except _PERMANENT_SMTP as exc:
            raise ConfigError(
                f"{where} refused the alert: {_smtp_text(exc)}",
                hint="check the route's from, to, username and password",
            ) from None
        except OSError as exc:  # smtplib.SMTPException is an OSError
            raise BackendError(
                f"{where} failed: {_smtp_text(exc)}",
                hint="check that the mail server is up and reachable from here",
            ) from None

    def __repr__(self) -> str:
        return f"EmailNotifier({self.name!r}, host={self.host!r}, to={self.to!r})"


def _smtp_text(exc: BaseException) -> str:
    code = getattr(exc, "smtp_code", None)
    error = getattr(exc, "smtp_error", None)
    if code is not None and isinstance(error, bytes):
        return f"{code} {error.decode('utf-8', 'replace')}"
    return " ".join(str(exc).split()) or type(exc).__name__
