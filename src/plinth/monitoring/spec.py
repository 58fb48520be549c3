"""Monitor files: the YAML that says what ``plinth monitor run`` checks, parsed strictly.

::

    name: delays-monitor              # default: the deployment's (or dataset's) name
    deployment: delays                # or ``dataset: flights``
    reference: lineage                # default; or a dataset version such as flights@9
    window: {rows: 5000}              # or {time: 1d}; default {time: 1d}
    checks:
      drift: {share: 0.3}             # feature drift; columns, methods, thresholds optional
      prediction_drift: {}            # the window's predictions against the first window's
      feature_skew: {}                # served features against the model's training set
      validation: {suite: suite.yaml} # a suite run on the window's rows
      performance: {min: {roc_auc: 0.7}, max: {log_loss: 0.6}}
      server: {url: http://127.0.0.1:8000, p95_ms: 50, error_rate: 0.01}
    alerts:
      cooldown: 1h
      routes:
        - {name: ops, type: log, path: alerts.log}

Every problem is a :class:`~plinth.errors.UsageError` naming the file and the key.
``digest`` is the BLAKE3 of the text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from plinth.errors import UsageError
from plinth.guards.net import HTTP, split_url
from plinth.specfile import (
    check_mapping,
    check_number,
    no_unknown,
    parse_yaml,
    read_yaml,
    short_repr,
)

__all__ = ["MonitorSpec", "Window", "parse_duration"]

_HINT = (
    "a monitor is 'deployment: NAME' (or 'dataset: NAME') with a window, checks and alert "
    "routes; see docs/monitoring.md"
)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
_TOP = ("name", "deployment", "dataset", "reference", "window", "checks", "alerts")
_CHECKS = ("drift", "prediction_drift", "feature_skew", "validation", "performance", "server")


def parse_duration(value: Any, where: str = "<duration>", key: str = "duration") -> float:
    """Seconds (> 0) in ``30s``, ``15m``, ``1h``, ``1d`` or ``2w`` (a bare number is seconds)."""
    from plinth.specfile import duration_seconds

    try:
        seconds = duration_seconds(value)
    except ValueError:
        seconds = 0.0
    if seconds <= 0:
        raise UsageError(
            f"{where}: '{key}' must be a duration such as 30s, 15m, 1h or 1d; "
            f"got {short_repr(value)}",
            field=key,
        )
    return seconds


@dataclass(frozen=True)
class Window:
    """The newest ``rows`` logged rows (whole batches), or the last ``seconds``."""

    rows: int | None = None
    seconds: float | None = None

    def describe(self) -> str:
        return f"last {self.rows} rows" if self.rows else f"last {self.seconds:g} s"


@dataclass(frozen=True)
class MonitorSpec:
    """A parsed monitor file; ``checks`` maps each enabled check to its options."""

    name: str
    deployment: str | None
    dataset: str | None
    reference: str
    window: Window
    checks: dict[str, dict[str, Any]]
    routes: list[dict[str, Any]] = field(default_factory=list)
    cooldown_seconds: float = 3600.0
    text: str = ""
    base_dir: Path = Path()

    @property
    def digest(self) -> str:
        import blake3

        return blake3.blake3(self.text.encode("utf-8")).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: what the ledger records with each report."""
        return {
            "name": self.name,
            "deployment": self.deployment,
            "dataset": self.dataset,
            "reference": self.reference,
            "window": {"rows": self.window.rows, "seconds": self.window.seconds},
            "checks": _redacted(self.checks),
            "routes": [r.get("name", r.get("type")) for r in self.routes],
            "cooldown_seconds": self.cooldown_seconds,
        }

    @classmethod
    def load(cls, path: str | Path) -> MonitorSpec:
        """Read and parse a monitor file (relative paths in it are from its folder)."""
        data, text = read_yaml(path, what="monitor", hint=_HINT)
        return cls.from_dict(data, where=str(path), text=text, base_dir=Path(path).parent)

    @classmethod
    def from_yaml(cls, text: str, where: str = "<monitor>") -> MonitorSpec:
        data = parse_yaml(text, where=where, what="monitor", hint=_HINT)
        return cls.from_dict(data, where=where, text=text)

    @classmethod
    def from_dict(
        cls, data: Any, *, where: str = "<monitor>", text: str = "", base_dir: Path = Path()
    ) -> MonitorSpec:
        if not isinstance(data, Mapping):
            raise UsageError(
                f"{where}: a monitor is a mapping, not {short_repr(data)}",
                hint=_HINT,
                field="monitor",
            )
        no_unknown(data, _TOP, where, "")
        deployment = _name(data.get("deployment"), where, "deployment")
        dataset = _name(data.get("dataset"), where, "dataset")
        if (deployment is None) == (dataset is None):
            raise UsageError(
                f"{where}: say what to watch with exactly one of 'deployment' or 'dataset'",
                hint=_HINT,
                field="deployment",
            )
        name = _name(data.get("name"), where, "name") or deployment or dataset
        assert name is not None
        reference = data.get("reference", "lineage")
        if not isinstance(reference, str) or not reference.strip():
            raise UsageError(
                f"{where}: 'reference' is 'lineage' or a dataset version such as flights@9; "
                f"got {short_repr(reference)}",
                field="reference",
            )
        if reference not in ("lineage", "previous"):
            from plinth.refs import parse_ref

            try:
                parse_ref(reference, what="dataset", field="reference")
            except UsageError as exc:
                raise UsageError(
                    f"{where}: 'reference': {exc.message}", hint=exc.hint, field="reference"
                ) from None
        if dataset is not None and reference == "lineage":
            reference = "previous"
        window = _window(data.get("window"), where)
        checks = _checks(data.get("checks"), where, deployment is not None)
        routes, cooldown = _alerts(data.get("alerts"), where)
        return cls(
            name=name,
            deployment=deployment,
            dataset=dataset,
            reference=reference,
            window=window,
            checks=checks,
            routes=routes,
            cooldown_seconds=cooldown,
            text=text,
            base_dir=base_dir,
        )


def _redacted(checks: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """``checks`` with any password in the server url masked: reports are stored."""
    from plinth.settings import redact

    server = checks.get("server")
    if not server or not isinstance(server.get("url"), str):
        return checks
    return {**checks, "server": {**server, "url": redact(server["url"])}}


def _name(value: Any, where: str, key: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise UsageError(
            f"{where}: '{key}' must be a name (letters, digits, _ . -), got {short_repr(value)}",
            hint=_HINT,
            field=key,
        )
    return value


def _window(value: Any, where: str) -> Window:
    if value is None:
        return Window(seconds=86400.0)
    raw = check_mapping(value, where, "window", _HINT)
    no_unknown(raw, ("rows", "time"), where, "window.")
    if ("rows" in raw) == ("time" in raw):
        raise UsageError(
            f"{where}: 'window' is either {{rows: N}} or {{time: DURATION}}, not both or neither",
            hint="e.g. window: {rows: 5000} or window: {time: 1d}",
            field="window",
        )
    if "rows" in raw:
        rows = raw["rows"]
        if isinstance(rows, bool) or not isinstance(rows, int) or rows <= 0:
            raise UsageError(
                f"{where}: 'window.rows' must be a positive whole number, got {short_repr(rows)}",
                field="window.rows",
            )
        return Window(rows=rows)
    return Window(seconds=parse_duration(raw["time"], where, "window.time"))


_CHECK_KEYS: dict[str, tuple[str, ...]] = {
    "drift": (
        "columns",
        "exclude",
        "share",
        "methods",
        "thresholds",
        "unseen_min_count",
        "null_share_change",
    ),
    "prediction_drift": ("method", "threshold"),
    "feature_skew": (
        "service",
        "columns",
        "exclude",
        "share",
        "methods",
        "thresholds",
        "unseen_min_count",
        "null_share_change",
    ),
    "validation": ("suite",),
    "performance": ("min", "max", "key", "label_column", "task", "threshold"),
    "server": ("url", "p95_ms", "error_rate", "timeout"),
}


def _checks(value: Any, where: str, for_deployment: bool) -> dict[str, dict[str, Any]]:
    if value is None:
        return {"drift": {}}
    raw = check_mapping(value, where, "checks", _HINT)
    no_unknown(raw, _CHECKS, where, "checks.")
    checks: dict[str, dict[str, Any]] = {}
    for name, options in raw.items():
        if options is False:
            continue
        opts = {} if options in (None, True) else check_mapping(options, where, f"checks.{name}")
        no_unknown(opts, _CHECK_KEYS[name], where, f"checks.{name}.")
        if not for_deployment and name in (
            "prediction_drift",
            "feature_skew",
            "performance",
            "server",
        ):
            raise UsageError(
                f"{where}: 'checks.{name}' needs a deployment (its predictions or its server); "
                "a dataset monitor runs drift and validation",
                field=f"checks.{name}",
            )
        checks[name] = _check_options(name, dict(opts), where)
    if not checks:
        raise UsageError(f"{where}: 'checks' enables no check", hint=_HINT, field="checks")
    return checks


def _check_options(name: str, opts: dict[str, Any], where: str) -> dict[str, Any]:
    at = f"checks.{name}"
    if name == "feature_skew" and "service" in opts:
        _service(opts["service"], where, f"{at}.service")
    if name in ("drift", "feature_skew"):
        if "share" in opts:
            share = check_number(opts["share"], where, f"{at}.share")
            skew = name == "feature_skew"
            if not (0 <= share <= 1 if skew else 0 < share <= 1):
                span = "[0, 1] (0: any feature)" if skew else "(0, 1]"
                raise UsageError(
                    f"{where}: '{at}.share' is the share of drifted columns that means the data "
                    f"drifted, in {span}; got {share}",
                    field=f"{at}.share",
                )
        for key in ("columns", "exclude"):
            cols = opts.get(key)
            if cols is not None and (
                not isinstance(cols, list) or not all(isinstance(c, str) for c in cols)
            ):
                raise UsageError(f"{where}: '{at}.{key}' must be a list of names", field=at)
        count = opts.get("unseen_min_count")
        whole = isinstance(count, int) and not isinstance(count, bool)
        if count is not None and (not whole or count < 1):
            raise UsageError(
                f"{where}: '{at}.unseen_min_count' is the rows a new category needs to be "
                f"flagged, a whole number of 1 or more; got {short_repr(count)}",
                field=f"{at}.unseen_min_count",
            )
        if "null_share_change" in opts:
            change = check_number(opts["null_share_change"], where, f"{at}.null_share_change")
            if not 0 <= change <= 1:
                raise UsageError(
                    f"{where}: '{at}.null_share_change' is a change of the missing share, in "
                    f"[0, 1]; got {change}",
                    field=f"{at}.null_share_change",
                )
        for key in ("methods", "thresholds"):
            if key in opts:
                check_mapping(opts[key], where, f"{at}.{key}")
        for method, value in (opts.get("thresholds") or {}).items():
            check_number(value, where, f"{at}.thresholds.{method}")
    elif name == "prediction_drift" and "threshold" in opts:
        check_number(opts["threshold"], where, f"{at}.threshold")
    elif name == "validation":
        if not isinstance(opts.get("suite"), str):
            raise UsageError(
                f"{where}: '{at}.suite' must name a suite file (suite.yaml)", field=f"{at}.suite"
            )
    elif name == "performance":
        for bound in ("min", "max"):
            for metric, value in check_mapping(opts.get(bound, {}), where, f"{at}.{bound}").items():
                check_number(value, where, f"{at}.{bound}.{metric}")
                _check_metric(metric, opts.get("task"), where, f"{at}.{bound}")
        if "threshold" in opts:
            check_number(opts["threshold"], where, f"{at}.threshold")
        if not opts.get("min") and not opts.get("max"):
            raise UsageError(
                f"{where}: '{at}' needs a threshold: min: {{roc_auc: 0.7}} or max: {{rmse: 10}}",
                field=at,
            )
    elif name == "server":
        url = opts.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise UsageError(
                f"{where}: '{at}.url' must be the server's http(s) address, "
                f"got {short_repr(url, 60)}",
                field=f"{at}.url",
            )
        # scheme and host checked now; the address is checked when it is fetched
        split_url(url, schemes=HTTP, where=f"{where}: '{at}.url'", field=f"{at}.url")
        for key in ("p95_ms", "error_rate", "timeout"):
            if key in opts:
                check_number(opts[key], where, f"{at}.{key}")
    return opts


def _service(value: Any, where: str, at: str) -> None:
    from plinth.refs import parse_ref

    hint = "the feature service the model was trained on: NAME or NAME@N"
    if not isinstance(value, str) or not value.strip():
        raise UsageError(
            f"{where}: '{at}' must name a feature service, got {short_repr(value)}",
            hint=hint,
            field=at,
        )
    try:
        ref = parse_ref(value, what="feature service", field=at)
    except UsageError as exc:
        raise UsageError(f"{where}: '{at}': {exc.message}", hint=hint, field=at) from None
    if ref.label is not None:
        raise UsageError(
            f"{where}: '{at}' is NAME or NAME@N, not {short_repr(value)}", hint=hint, field=at
        )


def _alerts(value: Any, where: str) -> tuple[list[dict[str, Any]], float]:
    if value is None:
        return [], 3600.0
    raw = check_mapping(value, where, "alerts", _HINT)
    no_unknown(raw, ("cooldown", "routes"), where, "alerts.")
    cooldown = 3600.0
    if raw.get("cooldown") is not None:
        cooldown = (
            0.0
            if raw["cooldown"] == 0
            else parse_duration(raw["cooldown"], where, "alerts.cooldown")
        )
    routes = raw.get("routes") or []
    if not isinstance(routes, list) or not all(isinstance(r, Mapping) for r in routes):
        raise UsageError(
            f"{where}: 'alerts.routes' must be a list of mappings such as "
            "{type: log, path: alerts.log}",
            field="alerts.routes",
        )
    return [dict(r) for r in routes], cooldown


def _check_metric(metric: str, task: Any, where: str, at: str) -> None:
    from plinth.monitoring.metrics import TASKS, check_metric

    try:
        check_metric(metric, task=task if task in TASKS else None, field=at)
    except UsageError as exc:
        raise UsageError(f"{where}: '{at}': {exc.message}", hint=exc.hint, field=at) from None
