"""The outbound-connection guard: every connection plinth makes to an address taken from a
config file or a record (webhooks, Slack, e-mail, a monitor's server check) goes through here.

- a scheme allow-list per use (``http``/``https`` for webhooks and server checks);
- resolve, then check every address: cloud metadata, link-local, unspecified, multicast and
  reserved addresses are always refused, however spelled (IPv4-mapped, IPv4-compatible,
  NAT64, 6to4 and Teredo forms; decimal, octal and hex IPv4); loopback and private ranges
  only where :class:`OutboundPolicy` (the ``outbound_allow_*`` settings) allows them;
- the connection goes to the address that was checked (``Host`` and TLS name stay the URL's);
- redirects are never followed and proxy variables (``HTTP_PROXY``...) never used;
- messages never carry the peer's answer: the status line only, URLs redacted.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import re
import smtplib
import socket
import ssl
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import SplitResult, unquote, urlsplit

from plinth.errors import BackendError, ConfigError, UsageError

if TYPE_CHECKING:
    from plinth.settings import Settings

__all__ = [
    "HTTP",
    "METADATA_ADDRESSES",
    "METADATA_HOSTS",
    "SMTP_REFUSALS",
    "GuardedSMTP",
    "HttpAnswer",
    "OutboundPolicy",
    "address_kind",
    "check_headers",
    "check_host",
    "guarded_socket",
    "http_request",
    "redact_text",
    "redact_url",
    "split_url",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The schemes webhooks and server checks may use.
HTTP = ("http", "https")
#: Cloud instance-metadata services (AWS, AWS IPv6, GCP/Azure/OCI, Alibaba).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254", "100.100.100.200")
)
#: Host names of metadata services, refused before any DNS lookup.
METADATA_HOSTS = frozenset(
    {
        "metadata",
        "metadata.google.internal",
        "metadata.goog",
        "instance-data",
        "instance-data.ec2.internal",
    }
)

_NET = ipaddress.ip_network
#: Kinds of address, worst first; the first five are refused whatever the settings say.
_ALWAYS = ("metadata", "link-local", "unspecified", "multicast", "reserved")
_ORDER = (*_ALWAYS, "loopback", "private")
_RANGES: tuple[tuple[str, ipaddress.IPv4Network | ipaddress.IPv6Network], ...] = (
    ("unspecified", _NET("0.0.0.0/8")),
    ("unspecified", _NET("::/128")),
    ("link-local", _NET("169.254.0.0/16")),
    ("link-local", _NET("fe80::/10")),
    ("multicast", _NET("224.0.0.0/4")),
    ("multicast", _NET("ff00::/8")),
    ("reserved", _NET("240.0.0.0/4")),  # 255.255.255.255 included
    ("loopback", _NET("127.0.0.0/8")),
    ("loopback", _NET("::1/128")),
    ("private", _NET("10.0.0.0/8")),
    ("private", _NET("172.16.0.0/12")),
    ("private", _NET("192.168.0.0/16")),
    ("private", _NET("100.64.0.0/10")),  # carrier-grade NAT
    ("private", _NET("198.18.0.0/15")),
    ("private", _NET("fc00::/7")),
    ("private", _NET("fec0::/10")),
    ("private", _NET("64:ff9b:1::/48")),  # local-use NAT64: a translator on this network
)
_NAT64 = _NET("64:ff9b::/96")
_NAT64_LOCAL = _NET("64:ff9b:1::/48")
_SIIT = _NET("::ffff:0:0:0/96")
_COMPAT = _NET("::/96")
# Where RFC 6052 puts the IPv4 bytes for prefixes /48, /56, /64 and /96 (two slices), and
# where the suffix, zero for that layout, starts; byte 8 is zero in all but /96.
_RFC6052 = ((6, 8, 9, 11, 11), (7, 8, 9, 12, 12), (9, 13, 13, 13, 13), (12, 16, 16, 16, 16))
_HINTS = {
    "loopback": "set outbound_allow_loopback: true in plinth.yaml "
    "(PLINTH_OUTBOUND_ALLOW_LOOPBACK=1) if this target is meant; by default only the "
    "embedded SQLite setup allows loopback",
    "private": "set outbound_allow_private: true in plinth.yaml "
    "(PLINTH_OUTBOUND_ALLOW_PRIVATE=1) if this target on a private network is meant",
}
_NEVER_HINT = (
    "cloud metadata, link-local, unspecified, multicast and reserved addresses are never "
    "reached from a config file or a record; point it at another host"
)


@dataclass(frozen=True)
class OutboundPolicy:
    """Which non-public ranges a connection may reach; metadata and link-local never."""

    allow_loopback: bool = False
    allow_private: bool = False

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> OutboundPolicy:
        """The policy of ``settings`` (default: those of the working directory's project).

        Loopback is allowed by default with the embedded SQLite ledger (one person's
        machine) and refused in a team setup (any other ledger) unless set.
        """
        if settings is None:
            from plinth.settings import load_settings

            settings = load_settings()
        loopback = settings.outbound_allow_loopback
        if loopback is None:
            loopback = settings.metadata.strip().lower().startswith("sqlite")
        return cls(allow_loopback=bool(loopback), allow_private=settings.outbound_allow_private)

    def allows(self, kind: str | None) -> bool:
        if kind is None:
            return True
        if kind == "loopback":
            return self.allow_loopback
        if kind == "private":
            return self.allow_private
        return False


# -- addresses ---------------------------------------------------------------------------


def _embedded(ip: IPAddress) -> Iterator[ipaddress.IPv4Address]:
    """Every IPv4 address an IPv6 address carries (mapped, NAT64, 6to4, Teredo...)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return
    low = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip.ipv4_mapped is not None:
        yield ip.ipv4_mapped
    if ip in _SIIT or ip in _NAT64 or (ip in _COMPAT and int(ip) > 1):
        yield low
    if ip in _NAT64_LOCAL:  # the prefix length is the local network's choice: try each
        packed = ip.packed
        for a, b, c, d, suffix in _RFC6052:
            v4 = ipaddress.IPv4Address(packed[a:b] + packed[c:d])
            fits = suffix == 16 or (packed[8] == 0 and not any(packed[suffix:]))
            if fits and int(v4):
                yield v4
    if ip.sixtofour is not None:
        yield ip.sixtofour
    if ip.teredo is not None:
        yield from ip.teredo


def _own_kind(ip: IPAddress) -> str | None:
    if ip in METADATA_ADDRESSES:
        return "metadata"
    for kind, network in _RANGES:
        if ip.version == network.version and ip in network:
            return kind
    return None


def address_kind(address: str | IPAddress) -> str | None:
    """``None`` for a public address, else the worst of: metadata, link-local, unspecified,
    multicast, reserved, loopback, private (embedded IPv4 forms included)."""
    ip = _parse_ip(str(address)) if isinstance(address, str) else address
    if ip is None:
        raise ValueError(f"not an IP address: {address!r}")
    if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id:
        ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    kinds = [_own_kind(ip), *(_own_kind(v4) for v4 in _embedded(ip))]
    found = [k for k in kinds if k is not None]
    return min(found, key=_ORDER.index) if found else None


_INET_ATON = re.compile(r"[0-9a-fA-FxX.]+")


def _parse_ip(host: str) -> IPAddress | None:
    """``host`` as an IP address, odd IPv4 spellings (``2130706433``, ``0177.1``) included."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    if _INET_ATON.fullmatch(host):
        try:  # what the C resolver makes of it, so the check sees the real address
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def _refusal(where: str, host: str, address: str, kind: str, field: str) -> UsageError:
    said = f"{host} is" if address == host else f"{host} resolves to {address},"
    article = "an" if kind[0] in "aeiou" else "a"
    text = "a cloud metadata" if kind == "metadata" else f"{article} {kind}"
    return UsageError(
        f"{where}: {said} {text} address; plinth does not connect there",
        hint=_HINTS.get(kind, _NEVER_HINT),
        field=field,
    )


def check_host(
    host: str, port: int, policy: OutboundPolicy, *, where: str, field: str = "host"
) -> list[str]:
    """Resolve ``host`` and check every address it has; the addresses to connect to.

    :class:`UsageError` for a refused host, :class:`BackendError` when it does not resolve.
    """
    name = host.strip().strip("[]").rstrip(".").lower()
    try:
        if not name.isascii():
            name = name.encode("idna").decode("ascii")
    except UnicodeError:
        name = ""
    if not name:
        raise UsageError(f"{where}: {host!r} is not a valid host name", field=field)
    if name in METADATA_HOSTS:
        raise _refusal(where, name, name, "metadata", field)
    literal = _parse_ip(name.split("%", 1)[0])
    if literal is not None:
        addresses = [str(literal)]
    else:
        try:
            infos = socket.getaddrinfo(name, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError) as exc:
            raise BackendError(
                f"{where}: cannot resolve {name}: {exc}",
                hint="check the host name and this machine's DNS",
            ) from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    for address in addresses:
        kind = address_kind(address.split("%", 1)[0])
        if not policy.allows(kind):
            assert kind is not None
            raise _refusal(where, name, address, kind, field)
    return addresses


def _connect_any(addresses: Sequence[str], port: int, timeout: float | None) -> socket.socket:
    """A TCP connection to the first of ``addresses`` (already checked) that answers."""
    error: OSError | None = None
    for address in addresses:
        try:
            return socket.create_connection((address, port), timeout)
        except OSError as exc:
            error = exc
    raise error or OSError("no address to connect to")


def guarded_socket(
    host: str,
    port: int,
    timeout: float | None,
    policy: OutboundPolicy,
    *,
    where: str = "connection",
    field: str = "host",
) -> socket.socket:
    """A TCP connection to ``host:port`` made only to addresses the policy allows."""
    return _connect_any(check_host(host, port, policy, where=where, field=field), port, timeout)


#: What an SMTP server says when it refuses the message for good (retrying will not help).
SMTP_REFUSALS: tuple[type[smtplib.SMTPException], ...] = (
    smtplib.SMTPAuthenticationError,
    smtplib.SMTPRecipientsRefused,
    smtplib.SMTPSenderRefused,
    smtplib.SMTPNotSupportedError,
)


class GuardedSMTP(smtplib.SMTP):
    """:class:`smtplib.SMTP` whose connection goes through :func:`guarded_socket`;
    STARTTLS still checks the certificate for ``host``."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        policy: OutboundPolicy,
        timeout: float,
        where: str = "SMTP",
    ):
        self._policy = policy
        self._where = where
        super().__init__(host, port, timeout=timeout)

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        return guarded_socket(host, port, timeout, self._policy, where=self._where)


# -- HTTP --------------------------------------------------------------------------------


def split_url(
    url: str, *, schemes: Sequence[str] = HTTP, where: str, field: str = "url"
) -> SplitResult:
    """``url`` split, with an allowed scheme and a host; no DNS lookup (config time)."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise UsageError(f"{where}: bad url {redact_url(url)}: {exc}", field=field) from None
    if parts.scheme.lower() not in schemes:
        raise UsageError(
            f"{where}: url scheme {parts.scheme or '(none)'!r} is not allowed",
            hint=f"the url starts with {' or '.join(s + '://' for s in schemes)}",
            field=field,
        )
    if not parts.hostname:
        raise UsageError(f"{where}: url {redact_url(url)} names no host", field=field)
    return parts


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


@dataclass(frozen=True)
class HttpAnswer:
    """A 2xx answer: status, reason and body (at most ``max_bytes``; 0: not read)."""

    status: int
    reason: str
    body: bytes


#: RFC 9110 ``token``: what a header name may be.
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
#: A header value: visible latin-1 text, spaces and tabs; no CR, LF, NUL or other controls
#: (``http.client`` lets ``\r\n `` through as an obsolete line fold, and NUL through).
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\xa0-\xff]*")


def check_headers(headers: Mapping[str, str], *, where: str, field: str = "headers") -> None:
    """Refuse a header name that is not an RFC 9110 token, or a value with a control
    character (CR, LF, NUL, a line fold...) or outside latin-1: such a header could add
    headers or a second request on the wire. The value is never shown: it may be a secret."""
    for name, value in headers.items():
        if not isinstance(name, str) or not _HEADER_NAME.fullmatch(name):
            raise UsageError(
                f"{where}: header name {name!r} is not a valid HTTP header name",
                hint="header names are letters, digits and -, with no spaces, colons or "
                "control characters",
                field=field,
            )
        if not isinstance(value, str) or not _HEADER_VALUE.fullmatch(value):
            raise UsageError(
                f"{where}: the value of header {name!r} holds a line break, a control "
                "character or a character outside latin-1",
                hint="header values are single-line text; remove CR, LF, NUL and other "
                "control characters",
                field=f"{field}.{name}",
            )


def _status_line(status: int, reason: str) -> str:
    # the reason phrase is the peer's text too: one short printable line of it at most
    clean = "".join(c for c in reason if c.isprintable())[:60].strip()
    return f"HTTP {status} {clean}".rstrip()


def http_request(
    method: str,
    url: str,
    *,
    policy: OutboundPolicy,
    where: str,
    timeout: float,
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
    schemes: Sequence[str] = HTTP,
    max_bytes: int = 1 << 20,
    field: str = "url",
) -> HttpAnswer:
    """One request to the checked, pinned address of ``url``; no redirects, no proxies.

    Anything but a 2xx raises, naming the status line only: :class:`BackendError` for what
    may pass (5xx, 408, 425, 429, a refused connection), :class:`ConfigError` otherwise (a
    3xx: redirects are not followed). User info in the URL is sent as basic auth.
    """
    parts = split_url(url, schemes=schemes, where=where, field=field)
    check_headers(headers or {}, where=where)  # before any lookup or connection
    scheme = parts.scheme.lower()
    port = parts.port or (443 if scheme == "https" else 80)
    host = parts.hostname or ""
    addresses = check_host(host, port, policy, where=where, field=field)
    sent = {"User-Agent": "plinth", **(headers or {})}
    if parts.username is not None:
        user = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        sent["Authorization"] = "Basic " + base64.b64encode(user.encode()).decode()
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    cls = _PinnedHTTPSConnection if scheme == "https" else _PinnedHTTPConnection
    conn = cls(host.strip("[]"), port, addresses, timeout)
    shown = f"{method} {redact_url(url)}"
    response: http.client.HTTPResponse | None = None
    try:
        conn.request(method, target, body=body, headers=sent)
        response = conn.getresponse()
        status, reason = response.status, response.reason
        data = response.read(max_bytes + 1) if max_bytes and 200 <= status < 300 else b""
    except ValueError as exc:  # a header that cannot go on the wire; not shown: secrets
        raise UsageError(
            f"{where}: a header name or value cannot be sent ({type(exc).__name__})",
            hint="header names and values are single-line latin-1 text",
            field="headers",
        ) from None
    except http.client.HTTPException as exc:  # its text may quote the peer: the type only
        raise BackendError(
            f"{where}: {shown} failed: the answer is not valid HTTP ({type(exc).__name__})",
            hint="check that an HTTP server listens at that address",
        ) from None
    except OSError as exc:
        raise BackendError(
            f"{where}: {shown} failed: {exc.strerror or exc or type(exc).__name__}",
            hint="check that the server is up and reachable from here",
        ) from None
    finally:
        if response is not None:  # it holds the socket once the peer said Connection: close
            response.close()
        conn.close()
    line = f"{where}: {shown} answered {_status_line(status, reason)}"
    if 200 <= status < 300:
        if len(data) > max_bytes:
            raise BackendError(f"{where}: {shown}: the answer is over {max_bytes} bytes")
        return HttpAnswer(status, reason, data)
    if 300 <= status < 400:
        raise ConfigError(
            f"{line}; redirects are not followed",
            hint="use the final address in the url",
            field=field,
        )
    if status >= 500 or status in (408, 425, 429):
        raise BackendError(line, hint="the server failed; it may pass")
    raise ConfigError(line, hint="check the url and headers", field=field)


# -- redaction ---------------------------------------------------------------------------

_URL_RE = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def redact_url(url: str) -> str:
    """``scheme://host[:port]/…``: the URL without user, password, path and query
    (webhook URLs carry their secret in the path or the query)."""
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
