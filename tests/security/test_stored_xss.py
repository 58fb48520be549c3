"""Stored XSS: text someone else wrote (column names, category values, check arguments,
names in spec files) in every HTML page plinth writes, and the headers the server sends."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from plinth.errors import UsageError
from plinth.guards.html import POLICY, csp_meta, csp_policy, script_hash
from plinth.monitoring import drift
from plinth.monitoring.spec import MonitorSpec
from plinth.serving.spec import DeploymentSpec
from plinth.validation import Suite, validate

COLUMN = "<script>alert(1)</script>"
VALUE = '"><img src=x onerror=alert(2)>'
ATTR = "x' onmouseover='alert(3)"


class Page(HTMLParser):
    """Every element and attribute of a page, its CSP meta tags and its text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.scripts: list[str] = []
        self.text: list[str] = []
        self._in_script = False
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self._in_script = True
            self.scripts.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data
        else:
            self.text.append(data)

    def policies(self) -> list[str]:
        return [
            a.get("content") or ""
            for t, a in self.tags
            if t == "meta" and (a.get("http-equiv") or "").lower() == "content-security-policy"
        ]


def assert_safe(html: str, *payloads: str) -> None:
    """``html`` shows each payload as text, runs nothing, and carries the strict policy."""
    page = Page(html)
    policies = page.policies()
    assert len(policies) == 1, "one CSP meta tag"
    policy = policies[0]
    assert "default-src 'none'" in policy
    head = [t for t, _ in page.tags]
    assert head.index("meta") < head.index("title"), "the policy comes before any content"
    assert head[head.index("title") - 1] == "meta"
    for script in page.scripts:  # a script runs only when the policy names its hash
        assert script_hash(script) in policy, script[:80]
    assert "script-src" not in policy or page.scripts
    for tag, attrs in page.tags:
        handlers = [name for name in attrs if name.lower().startswith("on")]
        assert not handlers, (tag, attrs)
        assert tag != "img", attrs
        for value in attrs.values():
            assert "javascript:" not in (value or "").lower()
    text = "".join(page.text)
    for payload in payloads:
        assert payload[:40] in text, f"{payload!r} is shown as text"


def test_csp_helpers_are_strict_and_hash_scripts() -> None:
    assert POLICY == "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    assert csp_policy() == POLICY
    assert "script-src" not in POLICY
    # The value browsers compute for `alert(1)` (sha256, base64).
    assert script_hash("alert(1)") == "'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='"
    assert csp_policy(["alert(1)"]).endswith("script-src " + script_hash("alert(1)"))
    meta = Page(f"<head>{csp_meta()}<title>t</title></head>").policies()
    assert meta == [POLICY]


def test_validation_report_escapes_column_values_and_check_arguments(tmp_path: Path) -> None:
    table = pa.table({COLUMN: ["ok", VALUE, ATTR], "n": [1, 2, 3]})
    suite = Suite.from_dict(
        {
            "suite": "s",
            "checks": [
                {"check": "allowed_values", "column": COLUMN, "values": ["ok", ATTR]},
                {"check": "regex", "column": COLUMN, "pattern": "^<b onclick=x>"},
                {"check": "required_columns", "columns": [VALUE, COLUMN]},
                {"check": "unique", "column": COLUMN},
            ],
        }
    )
    report = tmp_path / "report.html"
    result = validate(table, suite, report_path=report)
    assert not result.success
    html = report.read_text(encoding="utf-8")
    assert_safe(html, COLUMN, VALUE, "<b onclick=x>")
    assert "<script>alert" not in html
    assert_safe(result.to_html(), COLUMN, VALUE)


def test_drift_report_escapes_column_names_categories_and_skipped_reasons(
    tmp_path: Path,
) -> None:
    categories = [VALUE, ATTR, "<svg onload=alert(4)>"]
    reference = pa.table(
        {
            COLUMN: [categories[i % 2] for i in range(200)],
            ATTR: [float(i % 7) for i in range(200)],
            "id<img src=x onerror=alert(5)>": [f"id-{i}" for i in range(200)],
        }
    )
    current = pa.table(
        {
            COLUMN: [categories[i % 3] for i in range(200)],
            ATTR: [float(i % 7) + 3.0 for i in range(200)],
            "id<img src=x onerror=alert(5)>": [f"id-{i}" for i in range(200)],
        }
    )
    report = drift(reference, current)
    assert report.drifted
    assert report.skipped, "the id-like column is listed as not tested"
    path = tmp_path / "drift.html"
    report.to_html(path)
    html = path.read_text(encoding="utf-8")
    assert html == report.to_html()
    assert_safe(html, COLUMN, ATTR, "id<img src=x onerror=alert(5)>")
    assert "<svg onload" not in html


@pytest.mark.parametrize(
    "name", [VALUE, "web\n", "web\n<script>", "web<script>alert(1)</script>", "web\r"]
)
def test_markup_or_trailing_newline_in_a_deployment_name_is_refused(name: str) -> None:
    with pytest.raises(UsageError) as caught:
        DeploymentSpec.from_dict({"name": name, "model": "m@champion"})
    assert caught.value.field == "name"
    with pytest.raises(UsageError):
        DeploymentSpec.from_dict({"name": "web", "model": name.replace("web", "m") + "@champion"})


@pytest.mark.parametrize("name", [VALUE, "delays\n", "delays\n<img src=x onerror=alert(1)>"])
@pytest.mark.parametrize("key", ["name", "deployment", "dataset"])
def test_markup_or_trailing_newline_in_a_monitor_name_is_refused(key: str, name: str) -> None:
    data: dict[str, Any] = {"deployment": "delays", key: name}
    with pytest.raises(UsageError) as caught:
        MonitorSpec.from_dict(data)
    assert key in str(caught.value)


def test_model_server_answers_carry_the_policy_and_nosniff() -> None:
    import warnings

    from plinth.serving.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    spec = DeploymentSpec.from_dict({"name": "web", "model": "m@champion"})
    app = create_app(spec, models={"m@champion": object()}, log_predictions=False)
    client = TestClient(app)  # not started: every route still answers, with its headers
    for method, path in (("GET", "/health"), ("GET", "/ready"), ("POST", "/v1/predict")):
        answer = client.request(method, path, content=f'{{"{COLUMN}": 1}}')
        assert answer.headers["content-security-policy"].startswith("default-src 'none'")
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-type"].startswith("application/json")


def test_unknown_route_wrong_method_and_crash_answers_carry_the_policy_and_nosniff() -> None:
    """Starlette's own 404/405/500 are plain text without headers: a client could get an
    unprotected answer (and a traceback) just by asking for a path that is not a route."""
    import warnings

    from plinth.serving.app import create_app

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    spec = DeploymentSpec.from_dict({"name": "web", "model": "m@champion"})
    app = create_app(spec, models={"m@champion": object()}, log_predictions=False)

    def boom() -> bytes:
        raise RuntimeError("secret detail from inside the server")

    app.state.server.metrics.render = boom
    client = TestClient(app, raise_server_exceptions=False)
    probes = (
        ("GET", "/<script>alert(1)</script>", 404),
        ("GET", "/v1/predict", 405),
        ("POST", "/health", 405),
        ("GET", "/metrics", 500),
    )
    for method, path, status in probes:
        answer = client.request(method, path)
        assert answer.status_code == status
        assert answer.headers["content-security-policy"].startswith("default-src 'none'")
        assert answer.headers["x-content-type-options"] == "nosniff"
        assert answer.headers["content-type"].startswith("application/json")
        assert "<script>" not in answer.text
        assert "secret detail" not in answer.text
        assert answer.json()["errors"][0]["type"]
    assert "POST" in client.get("/v1/predict").headers["allow"]
