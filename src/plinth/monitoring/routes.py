"""Alert routes from monitor YAML: each ``routes:`` mapping checked and built into a
:class:`~plinth.monitoring.notifiers.Notifier`, every mistake naming the route and the key::

    routes:
      - {name: ops-log, type: log, path: alerts.log}
      - {name: hook, type: webhook, url: "https://hooks.internal/alerts"}

A log route's ``path`` must stay inside the project root (checked with
:func:`plinth.guards.paths.safe_join`, symlinks included); webhooks, Slack and e-mail
connect through the outbound guard with the project's settings.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth.errors import ConfigError, InvalidPathError, UsageError
from plinth.guards.net import OutboundPolicy, check_headers, split_url
from plinth.guards.paths import safe_join
from plinth.monitoring.notifiers import (
    EmailNotifier,
    LogFileNotifier,
    Notifier,
    SlackNotifier,
    WebhookNotifier,
)

if TYPE_CHECKING:
    from plinth.settings import Settings

__all__ = ["notifier_from_spec", "notifiers_from_spec"]


_KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # type: (required keys, optional keys), besides "name" and "type"
    "log": (("path",), ()),
    "webhook": (("url",), ("headers", "timeout", "allow_link_local")),  # see _no_link_local
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


def _log_path(spec: _Spec, root: Path, base: Path) -> Path:
    """The log route's path: relative to ``base``, and inside ``root`` wherever it points."""
    raw = spec.required("path")
    resolved_root = root.resolve()
    candidate = (base / raw).resolve()
    try:
        if not candidate.is_relative_to(resolved_root):
            raise InvalidPathError(f"it resolves outside the project root {resolved_root}")
        return safe_join(resolved_root, candidate.relative_to(resolved_root).as_posix())
    except InvalidPathError as exc:
        raise spec.error(
            "path",
            f"log path {raw!r} is refused: {exc.message.split(': ', 1)[-1]}",
            hint="write the alert log inside the project, e.g. path: alerts.log",
        ) from None


def _no_link_local(spec: _Spec) -> None:
    """``allow_link_local: true`` used to open metadata addresses to a route: no more."""
    if spec.flag("allow_link_local"):
        raise ConfigError(
            f"alert route {spec.name!r}: allow_link_local is no longer supported; "
            "link-local and cloud metadata addresses are always refused",
            hint="remove allow_link_local and point the route at another host; loopback and "
            "private ranges are allowed by the outbound_allow_loopback and "
            "outbound_allow_private settings",
            field=spec.prefix + "allow_link_local",
        )


def notifier_from_spec(
    route: Mapping[str, Any],
    *,
    root: Path | str | None = None,
    index: int | None = None,
    base: Path | str | None = None,
    settings: Settings | None = None,
) -> Notifier:
    """The notifier a route mapping of a monitor's YAML describes.

    A relative log ``path`` is taken from ``base`` (default ``root``) and must resolve
    inside ``root``, the project root (default: that of ``settings``). Connections follow
    the outbound policy of ``settings`` (default: the working directory's project).
    ``index`` (the route's place in the list) goes into the error's ``field``. Example::

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
    if settings is None:
        from plinth.settings import load_settings

        settings = load_settings(root) if root is not None else load_settings()
    project_root = Path(root) if root is not None else settings.root
    policy = OutboundPolicy.from_settings(settings)
    if kind == "log":
        path = _log_path(spec, project_root, Path(base) if base is not None else project_root)
        return LogFileNotifier(path, name=name)
    if kind in ("webhook", "slack"):
        url = spec.required("url")
        try:
            split_url(url, where=f"alert route {name!r}", field=spec.prefix + "url")
        except UsageError as exc:
            raise spec.error("url", exc.message.split(": ", 1)[-1], hint=exc.hint) from None
        timeout = spec.number("timeout", 5.0)
        _no_link_local(spec)
        if kind == "slack":
            return SlackNotifier(url, None, timeout, name=name, policy=policy)
        headers = route.get("headers") or {}
        if not isinstance(headers, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
        ):
            raise spec.error("headers", "headers must map names to strings")
        for key in headers:
            if key.lower() in _FORBIDDEN_HEADERS:
                raise spec.error("headers", f"header {key!r} is set by plinth")
        try:  # a line break in a name or value would add headers on the wire
            check_headers(headers, where=f"alert route {name!r}", field=spec.prefix + "headers")
        except UsageError as exc:
            raise spec.error("headers", exc.message.split(": ", 1)[-1], hint=exc.hint) from None
        return WebhookNotifier(url, headers, timeout, name=name, policy=policy)
    # email
    to = route["to"]
    if isinstance(to, str):
        to = [to]
    if not isinstance(to, list) or not to or not all(isinstance(a, str) and a for a in to):
        raise spec.error("to", "'to' must be an address or a non-empty list of addresses")
    for key, values in (("from", [route["from"]]), ("to", to)):
        for value in values:  # a line break would add headers (Bcc:) to every alert
            if isinstance(value, str) and not value.isprintable():
                raise spec.error(
                    key,
                    f"{key!r} address {value!r} holds a line break or a control character",
                    hint="write one plain address, e.g. ml-oncall@corp.com",
                )
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
        policy=policy,
    )


def notifiers_from_spec(
    routes: Sequence[Mapping[str, Any]],
    *,
    root: Path | str | None = None,
    base: Path | str | None = None,
    settings: Settings | None = None,
) -> list[Notifier]:
    """Every route of a monitor's ``routes:`` list (``root``, ``base`` and ``settings`` as
    in :func:`notifier_from_spec`); names must be distinct (they key the cool-down), a
    route without one is named after its type."""
    if not isinstance(routes, Sequence) or isinstance(routes, str | bytes):
        raise UsageError("'routes' must be a list of route mappings", field="routes")
    if settings is None:  # read once for every route
        from plinth.settings import load_settings

        settings = load_settings(root) if root is not None else load_settings()
    notifiers: list[Notifier] = []
    seen: dict[str, int] = {}
    for index, route in enumerate(routes):
        notifier = notifier_from_spec(route, root=root, index=index, base=base, settings=settings)
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
