"""Resource limits of the model server: bodies, numbers, strings and nesting a client sends,
and the prediction log's memory bound."""

from __future__ import annotations

import re
import socket
import threading
import time
import warnings
from collections.abc import Iterator
from typing import Any

import pytest

import plinth
from plinth.context import Context
from plinth.serving.app import create_app
from plinth.serving.predlog import PredictionLog
from plinth.serving.spec import DeploymentSpec, save_deployment

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # starlette's TestClient warns once on import
    from starlette.testclient import TestClient

pytest.importorskip("sklearn")

ROW = b'{"distance": 0.5, "hour": 3}'
SPEC = "name: web\nmodel: m@champion\n"


class RecordingLog:
    """A prediction log that keeps what it is given (so a test sees nothing was logged)."""

    def __init__(self) -> None:
        self.appended: list[str] = []
        self.rows_logged = 0
        self.rows_dropped = 0

    def append(self, request_id: str, *args: Any, **kwargs: Any) -> None:
        self.appended.append(request_id)

    def close(self) -> None:
        pass


@pytest.fixture
def served_project(project: Context) -> Context:
    """A project with model ``m`` (alias champion) on (distance: float, hour: int)."""
    import numpy as np
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"distance": rng.normal(size=60), "hour": rng.integers(0, 24, 60)})
    model = LogisticRegression().fit(frame, frame["distance"] > 0)
    with plinth.start_run(experiment="serving") as run:
        run.log_model(model, name="m", input_example=frame.head())
    plinth.models.set_alias("m", "champion", 1)
    return project


@pytest.fixture
def log() -> RecordingLog:
    return RecordingLog()


@pytest.fixture
def client(served_project: Context, log: RecordingLog) -> Iterator[TestClient]:
    spec = DeploymentSpec.from_yaml(SPEC + "limits: {max_body_bytes: 100000}\n")
    with TestClient(create_app(spec, ctx=served_project, predlog=log)) as c:
        yield c


def _post(client: TestClient, body: bytes) -> Any:
    return client.post("/v1/predict", content=body, headers={"content-type": "application/json"})


def _fields(answer: Any) -> dict[str, str]:
    return {e["field"]: e["message"] for e in answer.json()["errors"]}


def _errors(client: TestClient, kind: str) -> float:
    text = client.get("/metrics").text
    match = re.search(rf'plinth_errors_total\{{deployment="web",type="{kind}"\}} (\S+)', text)
    assert match, text
    return float(match[1])


def _still_serves(client: TestClient) -> None:
    answer = _post(client, b'{"records": [' + ROW + b"]}")
    assert answer.status_code == 200, answer.text


# -- numbers ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b'{"records": [{"distance": 0.5, "hour": 1e300}]}', "records[0].hour"),
        (b'{"records": [{"distance": 0.5, "hour": -1e300}]}', "records[0].hour"),
        (b'{"records": [{"distance": 0.5, "hour": 9223372036854775808}]}', "records[0].hour"),
        (b'{"records": [{"distance": 0.5, "hour": 18446744073709551616}]}', "records[0].hour"),
        (b'{"records": [{"distance": 0.5, "hour": 9.3e18}]}', "records[0].hour"),
        (b'{"columns": {"distance": [0.5, 1.0], "hour": [3, 1e300]}}', "columns.hour[1]"),
        (
            b'{"records": [{"distance": 0.5, "hour": 3}, {"distance": 0.5, "hour": 1e19}]}',
            "records[1].hour",
        ),
    ],
)
def test_integer_out_of_int64_range_is_a_422_naming_the_field_not_a_model_error(
    client: TestClient, log: RecordingLog, body: bytes, field: str
) -> None:
    answer = _post(client, body)
    assert answer.status_code == 422, answer.text
    assert "out of range" in _fields(answer)[field]
    assert _errors(client, "model") == 0
    assert _errors(client, "validation") == 1
    assert log.appended == []  # refused before the model: nothing predicted, nothing logged
    _still_serves(client)


@pytest.mark.parametrize(
    "number",
    [b"1e400", b"-1e400", b"1" + b"0" * 400, b"NaN", b"Infinity", b"-Infinity", b"nan"],
)
def test_number_no_double_holds_or_nan_literal_is_a_422_not_a_500(
    client: TestClient, log: RecordingLog, number: bytes
) -> None:
    answer = _post(client, b'{"records": [{"distance": ' + number + b', "hour": 3}]}')
    assert answer.status_code == 422, answer.text
    assert "body" in _fields(answer)
    assert _errors(client, "model") == 0
    assert _errors(client, "internal") == 0
    assert log.appended == []
    _still_serves(client)


# -- strings and nesting -----------------------------------------------------------------
def test_huge_string_value_is_refused_without_echoing_it_back(
    client: TestClient, log: RecordingLog
) -> None:
    huge = "x" * 90_000
    answer = _post(client, b'{"records": [{"distance": "%s", "hour": 3}]}' % huge.encode())
    assert answer.status_code == 422
    assert "records[0].distance" in _fields(answer)
    assert len(answer.content) < 1_000, "the error must not carry the value back"
    assert log.appended == []


def test_huge_key_name_is_refused_without_echoing_it_back(
    client: TestClient, log: RecordingLog
) -> None:
    key = "k" * 90_000
    answer = _post(client, b'{"records": [{"distance": 0.5, "hour": 3, "%s": 1}]}' % key.encode())
    assert answer.status_code == 422
    assert len(answer.content) < 1_000, "the error must not carry the key back"
    assert any(f.startswith("records[0].kkk") for f in _fields(answer))
    columns = b'{"columns": {"distance": [0.5], "hour": [3], "%s": [1]}}' % key.encode()
    assert len(_post(client, columns).content) < 1_000
    assert len(_post(client, b'{"%s": 1}' % key.encode()).content) < 1_000
    assert log.appended == []


@pytest.mark.parametrize("depth", [100, 5_000, 40_000])
def test_deeply_nested_json_is_a_4xx_not_a_500(
    client: TestClient, log: RecordingLog, depth: int
) -> None:
    value = b"[" * depth + b"1" + b"]" * depth
    for body in (
        b'{"records": [{"distance": ' + value + b', "hour": 3}]}',
        b'{"records": ' + value + b"}",
        b'{"columns": {"distance": ' + value + b', "hour": [3]}}',
        value,
    ):
        answer = _post(client, body)
        assert 400 <= answer.status_code < 500, answer.text[:200]
    assert _errors(client, "model") == 0
    assert _errors(client, "internal") == 0
    assert log.appended == []
    _still_serves(client)


# -- bodies ------------------------------------------------------------------------------
@pytest.fixture
def live_server(served_project: Context) -> Iterator[tuple[int, RecordingLog]]:
    """The app under a real uvicorn in a thread, with a body limit of 1,000 bytes."""
    import uvicorn

    log = RecordingLog()
    spec = DeploymentSpec.from_yaml(SPEC + "limits: {max_body_bytes: 1000}\n")
    app = create_app(spec, ctx=served_project, predlog=log)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.started
    try:
        yield port, log
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def _status_of(conn: socket.socket) -> int:
    conn.settimeout(10)
    data = b""
    while b"\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return int(data.split(b" ", 2)[1])


def test_body_declared_over_the_limit_is_a_413_before_it_is_sent(
    live_server: tuple[int, RecordingLog],
) -> None:
    port, log = live_server
    with socket.create_connection(("127.0.0.1", port)) as conn:
        # Claims 1 GB but sends 100 bytes: the answer must come without the rest, i.e. the
        # server neither waits for nor buffers what it will refuse.
        conn.sendall(
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 1000000000\r\n\r\n" + b" " * 100
        )
        assert _status_of(conn) == 413
    assert log.appended == []


def test_streamed_body_over_the_limit_is_a_413_before_it_ends(
    live_server: tuple[int, RecordingLog],
) -> None:
    port, log = live_server
    with socket.create_connection(("127.0.0.1", port)) as conn:
        conn.sendall(
            b"POST /v1/predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        piece = b" " * 600
        for _ in range(3):  # 1,800 bytes and the body is still open: no final chunk sent
            conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
        assert _status_of(conn) == 413
    assert log.appended == []
    import httpx

    ok = httpx.post(
        f"http://127.0.0.1:{port}/v1/predict", content=b'{"records": [' + ROW + b"]}", timeout=10
    )
    assert ok.status_code == 200
    assert len(log.appended) == 1


# -- the prediction log ----------------------------------------------------------------
def _deployment(ctx: Context) -> Any:
    return save_deployment(DeploymentSpec.from_yaml(SPEC), ctx)


def test_flood_of_large_requests_is_dropped_and_counted_past_the_log_byte_bound(
    served_project: Context,
) -> None:
    deployment = _deployment(served_project)
    predlog = PredictionLog(
        served_project, deployment, flush_seconds=3600, max_buffered_bytes=50_000
    )
    spec = DeploymentSpec.from_yaml(SPEC + "limits: {max_body_bytes: 200000}\n")
    pad = b" " * 20_000  # 20 kB bodies: two fit the 50 kB bound, the rest do not
    body = b'{"records": [' + ROW + b"]}" + pad
    with TestClient(create_app(spec, ctx=served_project, predlog=predlog)) as c:
        answers = [_post(c, body) for _ in range(30)]
        metrics = c.get("/metrics").text
        buffered = predlog.bytes_buffered
        dropped = predlog.rows_dropped
    assert [a.status_code for a in answers] == [200] * 30  # never blocks nor fails a request
    assert buffered <= 50_000
    assert dropped == 28
    assert 'plinth_prediction_log_dropped_total{deployment="web"} 28.0' in metrics
    batches = served_project.ledger.deployments.batches(deployment.id)
    assert sum(b.rows for b in batches) == 2  # only what fitted was written (on close)
    assert batches[-1].dropped == 28


def test_prediction_log_byte_bound_comes_from_the_setting(
    served_project: Context,
) -> None:
    ctx = Context.open(served_project.settings.root, prediction_log_max_bytes=1_000)
    try:
        predlog = PredictionLog(ctx, _deployment(ctx), flush_seconds=3600)
        assert predlog.max_buffered_bytes == 1_000
        predlog.append("r1", 0, "m@1", {"x": ["a" * 800]}, [1])
        predlog.append("r2", 0, "m@1", {"x": ["b" * 800]}, [1])  # estimated: over the bound
        assert (predlog.rows_buffered, predlog.rows_dropped) == (1, 1)
        assert predlog.bytes_buffered <= 1_000
    finally:
        ctx.close()


def test_log_filling_past_half_its_byte_bound_is_written_early(served_project: Context) -> None:
    deployment = _deployment(served_project)
    predlog = PredictionLog(served_project, deployment, flush_seconds=3600, max_buffered_bytes=1000)
    with predlog:
        predlog.append("r1", 0, "m@1", {"x": [1.0]}, [1], nbytes=600)
        deadline = time.monotonic() + 20
        while predlog.batches_written == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert predlog.batches_written == 1  # long before the hour's flush
        assert predlog.bytes_buffered == 0
    assert predlog.rows_dropped == 0


# -- config files a pull request can change --------------------------------------------
_HUGE_INT = "9" * 5_000  # past Python's 4,300-digit int conversion limit
_DEEP = "[" * 50_000 + "]" * 50_000  # past the YAML composer's recursion


@pytest.mark.parametrize("value", [_HUGE_INT, _DEEP], ids=["huge_int", "deep_nesting"])
def test_huge_int_or_deep_nesting_in_any_config_file_is_a_usage_error_not_a_traceback(
    tmp_path: Any, value: str
) -> None:
    from plinth.errors import ConfigError, UsageError
    from plinth.monitoring.spec import MonitorSpec
    from plinth.settings import load_settings
    from plinth.validation import Suite

    (tmp_path / "plinth.yaml").write_text(f"project: p\nconnect_timeout: {value}\n")
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(ConfigError, match="not usable YAML"):
        load_settings(tmp_path)
    texts = {
        "suite": f"suite: s\nchecks:\n  - {{check: between, column: x, min: {value}}}\n",
        "deployment": f"name: web\nmodel: m@champion\nlimits: {{max_rows: {value}}}\n",
        "monitor": f"deployment: web\nschedule: {value}\n",
    }
    readers = {"suite": Suite.from_yaml, "deployment": DeploymentSpec.from_yaml}
    readers["monitor"] = MonitorSpec.from_yaml
    for what, text in texts.items():
        with pytest.raises(UsageError, match="unreadable YAML") as caught:
            readers[what](text, where="evil.yaml")
        assert caught.value.hint
        assert len(str(caught.value)) < 300
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing written


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_non_finite_float_setting_in_plinth_yaml_is_refused(tmp_path: Any, value: str) -> None:
    """``serve_alias_poll_seconds: .nan`` or ``flush_timeout: .inf`` would hang or crash
    later, far from the file that caused it."""
    from plinth.errors import ConfigError
    from plinth.settings import load_settings

    for name in ("serve_alias_poll_seconds", "flush_timeout", "connect_timeout"):
        (tmp_path / "plinth.yaml").write_text(f"project: p\n{name}: {value}\n")
        with pytest.raises(ConfigError, match=name):
            load_settings(tmp_path)
        with pytest.raises(ConfigError, match=name):
            load_settings(tmp_path, env={f"PLINTH_{name.upper()}": value.lstrip(".")})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["plinth.yaml"]


def _edge_spec(tmp_path: Any, pattern: str) -> DeploymentSpec:
    import json

    suite = {"suite": "edge", "checks": [{"check": "regex", "column": "code", "pattern": pattern}]}
    (tmp_path / "serving.yaml").write_text(json.dumps(suite))
    path = tmp_path / "deployment.yaml"
    path.write_text(
        SPEC + "passthrough: {code: {type: string}}\n"
        "validate: {suite: serving.yaml, mode: reject}\n"
    )
    return DeploymentSpec.load(path)


def test_edge_regex_the_engine_cannot_compile_stops_the_server_before_it_starts(
    tmp_path: Any, log: RecordingLog
) -> None:
    """A backreference (not RE2) used to fail every request with a 500 and a traceback."""
    from plinth.errors import UsageError

    spec = _edge_spec(tmp_path, r"^(a+)\1$")
    with pytest.raises(UsageError, match="does not compile") as caught:
        create_app(spec, models={"m@champion": object()}, predlog=log)
    assert caught.value.field == "checks[0].pattern"
    assert log.appended == []


def test_catastrophic_backtracking_regex_at_the_edge_answers_in_linear_time(
    served_project: Context, tmp_path: Any, log: RecordingLog
) -> None:
    """``(a+)+$`` on ``aaaa…!`` takes exponential time in a backtracking engine; the edge
    runs RE2 (linear), so a hostile suite or request value cannot stall the server."""
    spec = _edge_spec(tmp_path, "^(a+)+$")
    value = "a" * 5_000 + "!"
    body = b'{"records": [{"distance": 0.5, "hour": 3, "code": "%s"}]}' % value.encode()
    with TestClient(create_app(spec, ctx=served_project, predlog=log)) as client:
        start = time.perf_counter()
        answer = _post(client, body)
        assert time.perf_counter() - start < 5
        assert answer.status_code == 422, answer.text[:300]
        assert value not in answer.text  # the long value is not echoed back
        assert log.appended == []


def _alias_bomb(indent: str) -> str:
    """Nine levels of nine shared references: instant to load, 9**9 items to print."""
    text = f"{indent}- &a [l, l, l, l, l, l, l, l, l]\n"
    for i in range(1, 9):
        previous, name = chr(96 + i), chr(97 + i)
        text += f"{indent}- &{name} [" + ", ".join([f"*{previous}"] * 9) + "]\n"
    return text


def test_yaml_alias_bomb_in_a_suite_or_deployment_is_refused_quickly(tmp_path: Any) -> None:
    """Refusing the value used to build its whole repr for the message: a hang."""
    from plinth.errors import UsageError
    from plinth.validation import Suite

    suite = "suite: s\nchecks:\n  - check: allowed_values\n    column: x\n    values:\n"
    deployment = "name: web\nmodel: m@champion\nlimits:\n"
    start = time.perf_counter()
    with pytest.raises(UsageError, match="must be a non-empty list") as caught:
        Suite.from_yaml(suite + _alias_bomb("      "), where="evil.yaml")
    assert len(str(caught.value)) < 400
    with pytest.raises(UsageError, match="must be a mapping") as caught:
        DeploymentSpec.from_yaml(deployment + _alias_bomb("  "), where="evil.yaml")
    assert len(str(caught.value)) < 400
    assert time.perf_counter() - start < 5
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_model_returning_unique_labels_cannot_grow_metrics_without_bound() -> None:
    from prometheus_client import generate_latest

    from plinth.serving.metrics import MAX_CLASS_SERIES, ServingMetrics

    metrics = ServingMetrics("d")
    for start in range(0, 5_000, 500):
        labels = [f"class-{i}" for i in range(start, start + 500)]
        metrics.observe_predictions("m@1", "primary", labels, "label")
    metrics.observe_predictions("m@1", "primary", ["x" * 10_000], "label")
    text = generate_latest(metrics.registry).decode()
    series = [ln for ln in text.splitlines() if ln.startswith("plinth_prediction_class_total{")]
    assert len(series) == MAX_CLASS_SERIES + 1  # the first classes by name, the rest as other
    assert any('class="other"' in ln for ln in series)
    assert "x" * 100 not in text
    # every prediction is still counted
    assert sum(float(ln.rsplit(" ", 1)[1]) for ln in series) == 5_001
