"""Alert routes from monitor YAML: each ``routes:`` mapping checked and built into a
:class:`~plinth.monitoring.notifiers.Notifier`, every mistake naming the route and the key::

    routes:
      - {name: ops-log, type: log, path: alerts.log}
      - {name: hook, type: webhook, url: "https://hooks.internal/alerts"}
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from plinth.errors import UsageError
from plinth.monitoring.notifiers import (
    EmailNotifier,
    LogFileNotifier,
    Notifier,
    SlackNotifier,
    WebhookNotifier,
)

__all__ = ["notifier_from_spec", "notifiers_from_spec"]


_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # type: (required keys, optional keys), besides "name" and "type"
    "log": (("path",), ()),
    "webhook": (("url",), ("headers", "timeout", "allow_link_local")),
    "slack": (("url",), ("timeout", "allow_link_local")),
    "email": (
        ("host", "from", "to"),
        ("port", "username", "password_env", "starttls", "timeout"),
    ),
}
_FORBIDDEN_HEADERS = frozenset({"host", "content-length", "transfer-encoding"})


class _Spec:
    """Typed reads from one route mapping, each failure naming the route and the key."""

    def __init__(self, raw: Mapping[str, Any], name: str, index: int | None):
        self.raw = raw
        self.name = name
        self.prefix = f"routes[{index}]." if index is not None else ""

    def error(self, key: str, message: str, hint: str | None = None) -> UsageError:
        return UsageError(
            f"alert route {self.name!r}: {message}",
            hint=hint or "see the Alerts section of docs/monitoring.md",
            field=self.prefix + key,
        )

    def text(self, key: str) -> str | None:
        value = self.raw.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise self.error(key, f"{key!r} must be a non-empty string, got {value!r}")
        return value

    def required(self, key: str) -> str:
        value = self.text(key)
        assert value is not None  # required keys were checked present
        return value

    def flag(self, key: str) -> bool:
        value = self.raw.get(key, False)
        if not isinstance(value, bool):
            raise self.error(key, f"{key!r} must be true or false, got {value!r}")
        return value

    def number(self, key: str, default: float) -> float:
        value = self.raw.get(key, default)
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise self.error(key, f"{key!r} must be a positive number of seconds, got {value!r}")
        return float(value)


def _suggest(name: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" — did you mean {close[0]!r}?" if close else ""


def notifier_from_spec(
    route: Mapping[str, Any], *, root: Path | str | None = None, index: int | None = None
) -> Notifier:
    """The notifier a route mapping of a monitor's YAML describes.

    A relative log ``path`` is taken from ``root`` (the project root) when given; ``index``
    (the route's place in the list) goes into the error's ``field``. Example::

        notifier_from_spec({"name": "ops", "type": "webhook", "url": "https://h.internal/a"})
    """
    prefix = f"routes[{index}]." if index is not None else ""
    if not isinstance(route, Mapping):
        raise UsageError(
            f"an alert route is a mapping like {{type: log, path: alerts.log}}, "
            f"not {type(route).__name__}",
            field=prefix.rstrip(".") or None,
        )
    kind = route.get("type")
    raw_name = route.get("name", kind if isinstance(kind, str) else None)
    label = raw_name if isinstance(raw_name, str) else f"#{(index or 0) + 1}"
    spec = _Spec(route, label, index)
    if kind not in _KEYS:
        text = "has no 'type' key" if kind is None else f"unknown type {kind!r}"
        raise spec.error(
            "type",
            text + (_suggest(str(kind), list(_KEYS)) if kind is not None else ""),
            hint=f"route types: {', '.join(sorted(_KEYS))}",
        )
    name = spec.required("name") if "name" in route else str(kind)
    if len(name) > 100:
        raise spec.error("name", f"the name is {len(name)} characters long; the limit is 100")
    required, optional = _KEYS[str(kind)]
    allowed = ("name", "type", *required, *optional)
    for key in route:
        if key == "password":
            raise spec.error(
                "password",
                "a password is never written in a route",
                hint="put it in an environment variable and name that with password_env",
            )
        if key not in allowed:
            raise spec.error(
                str(key),
                f"unknown key {key!r}{_suggest(str(key), allowed)}",
                hint=f"a {kind} route accepts: {', '.join(allowed)}",
            )
    for key in required:
        if key not in route:
            raise spec.error(
                key, f"missing key {key!r}", hint=f"a {kind} route needs: {', '.join(required)}"
            )
    if kind == "log":
        path = Path(spec.required("path"))
        if root is not None and not path.is_absolute():
            path = Path(root) / path
        return LogFileNotifier(path, name=name)
    if kind in ("webhook", "slack"):
        url = spec.required("url")
        scheme = urlsplit(url).scheme
        if scheme not in ("http", "https"):
            raise spec.error(
                "url",
                f"url scheme {scheme or '(none)'!r} is not allowed",
                hint="webhook urls start with https:// or http://",
            )
        timeout = spec.number("timeout", 5.0)
        allow = spec.flag("allow_link_local")
        if kind == "slack":
            return SlackNotifier(url, None, timeout, allow, name=name)
        headers = route.get("headers") or {}
        if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise spec.error("headers", "headers must map names to strings")
        for key in headers:
            if key.lower() in _FORBIDDEN_HEADERS:
                raise spec.error("headers", f"header {key!r} is set by plinth")
        return WebhookNotifier(url, headers, timeout, allow, name=name)
    # email
    to = route["to"]
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not to or not all(isinstance(a, str) and a for a in to):
        raise spec.error("to", "'to' must be an address or a non-empty list of addresses")
    port = route.get("port", 25)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise spec.error("port", f"'port' must be a TCP port number, got {port!r}")
    username = spec.text("username")
    password_env = spec.text("password_env")
    if username is not None and password_env is None:
        raise spec.error(
            "password_env",
            "a username needs password_env, the environment variable holding the password",
        )
    if password_env is not None and username is None:
        raise spec.error("username", "password_env is set but username is not")
    return EmailNotifier(
        spec.required("host"),
        port=port,
        sender=spec.required("from"),
        to=to,
        username=username,
        password_env=password_env,
        starttls=spec.flag("starttls"),
        timeout=spec.number("timeout", 10.0),
        name=name,
    )


def notifiers_from_spec(
    routes: Sequence[Mapping[str, Any]], *, root: Path | str | None = None
) -> list[Notifier]:
    """Every route of a monitor's ``routes:`` list; names must be distinct (they key the
    cool-down), a route without one is named after its type."""
    if not isinstance(routes, Sequence) or isinstance(routes, str | bytes):
        raise UsageError("'routes' must be a list of route mappings", field="routes")
    notifiers: list[Notifier] = []
    seen: dict[str, int] = {}
    for index, route in enumerate(routes):
        notifier = notifier_from_spec(route, root=root, index=index)
        if notifier.name in seen:
            raise UsageError(
                f"alert routes {seen[notifier.name] + 1} and {index + 1} are both named "
                f"{notifier.name!r}",
                hint="give each route a distinct name: it keys the de-duplication",
                field=f"routes[{index}].name",
            )
        seen[notifier.name] = index
        notifiers.append(notifier)
    return notifiers
