"""The demo's serving story: the champion answers real requests, a challenger as its canary.

Once the loop (:mod:`plinth.demo.loop`) has a champion, a deployment spec
(``deployment.yaml``) serves ``flight-delays@champion`` — and, while a rollout sets the
``challenger`` alias, ``flight-delays@challenger`` as a canary to half the traffic — on a
local port with the feature
service ``delay_features`` — a request sends the flight's keys (tail number, carrier,
origin, destination) and its scheduled hour and weekday, the server looks up the rest. The
feature views are materialized to the online store as of September 1, a few hundred
September flights (a month no model has seen) are sent as single-row requests
from a few threads, ``/metrics`` is read back, and one request id is walked back to the
training set its model was trained on and the feature views that built it. The server runs
in this process (uvicorn in a thread), so the demo needs no second terminal; ``plinth serve
deployment.yaml`` runs the same thing.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from plinth.context import Context
    from plinth.demo.flow import Live
    from plinth.demo.monitoring import MonitorStory

__all__ = ["ServeStory", "request_lineage", "serve_september", "serving"]

DEPLOYMENT = """\
# Served by plinth demo; run it yourself with: plinth serve deployment.yaml
name: flight-delays
model: flight-delays@champion
canary: {model: flight-delays@challenger, traffic: 0.5}   # while a rollout sets the alias
features: {service: delay_features}   # a request sends keys; the server looks up the rest
logging: {sample: 1.0}
limits: {max_rows: 1000}
"""
#: The month sent to the server: after every month the models trained or were scored on.
REQUEST_MONTH = 9
#: Metric families printed from /metrics.
SHOWN_METRICS = (
    "plinth_predictions_total",
    "plinth_request_duration_seconds_count",
    "plinth_request_duration_seconds_sum",
    "plinth_batch_size_count",
    "plinth_errors_total",
    "plinth_prediction_log_rows_total",
)


@dataclass(frozen=True)
class ServeStory:
    """What the serving step did: the champion, the requests and one request's lineage."""

    champion: str
    requests: int
    errors: int
    request_id: str
    lineage: dict[str, Any]
    monitoring: MonitorStory | None = None
    #: The request shown: sent with keys only, and what the server answered.
    keys_request: dict[str, Any] | None = None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str, timeout: float = 5.0) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:  # noqa: S310 - local
            return int(answer.status), answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(  # noqa: S310 - the demo's own local server
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310
            return int(answer.status), dict(json.loads(answer.read()))
    except urllib.error.HTTPError as error:
        return error.code, dict(json.loads(error.read() or b"{}"))


def requests_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The flights of ``frame`` as request records: keys and the schedule, no features."""
    from plinth.demo.data import REQUEST

    records = frame[REQUEST].astype(object).to_dict(orient="records")
    return [{str(k): v for k, v in r.items()} for r in records]


def _records(data: pd.DataFrame, rows: int, seed: int = 0) -> list[dict[str, Any]]:
    """``rows`` September flights as request records."""
    month = data[data["month"] == REQUEST_MONTH]
    return requests_of(month.sample(n=min(rows, len(month)), random_state=seed))


def _show_request(url: str, record: dict[str, Any], echo: Callable[[str], None]) -> dict[str, Any]:
    """Send one request with keys only and print it with its answer."""
    status, body = _post(url, {"records": [record]})
    echo("  one request, keys only:")
    echo(f"    POST /v1/predict {json.dumps({'records': [record]})}")
    shown = {k: body[k] for k in ("predictions", "model_version", "request_id") if k in body}
    echo(f"    -> {status} {json.dumps(shown if status == 200 else body)}")
    return {"request": record, "status": status, "answer": body}


@contextmanager
def serving(ctx: Context, directory: Path, echo: Callable[[str], None] = print) -> Iterator[Live]:
    """Serve ``deployment.yaml`` (``flight-delays@champion``, canary
    ``flight-delays@challenger``) on a free local port in a thread, as of the newest
    flights; yields the :class:`~plinth.demo.flow.Live` server, stopped on exit."""
    import uvicorn

    from plinth.demo.flow import Live
    from plinth.errors import BackendError
    from plinth.serving.app import create_app
    from plinth.serving.spec import DeploymentSpec

    spec_path = directory / "deployment.yaml"
    spec_path.write_text(DEPLOYMENT, encoding="utf-8")
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    app = create_app(DeploymentSpec.load(spec_path), ctx=ctx, poll_seconds=2.0)
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
    )
    thread = threading.Thread(target=server.run, name="plinth-demo-server", daemon=True)
    started = time.perf_counter()
    thread.start()
    try:
        deadline = started + 60
        while True:
            try:
                if _get(f"{base}/ready", timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            if time.perf_counter() > deadline or not thread.is_alive():
                raise BackendError(
                    f"the demo server on {base} did not become ready within 60 s",
                    hint=f"run it in the foreground to see why: plinth serve {spec_path}",
                )
            time.sleep(0.05)
        echo(
            f"  {spec_path.name} served on {base} (ready in {time.perf_counter() - started:.1f} s)"
        )
        yield Live(base, app.state.server)
    finally:
        server.should_exit = True  # shutdown flushes the prediction log
        thread.join(timeout=60)


def serve_september(
    ctx: Context,
    directory: Path,
    data: pd.DataFrame,
    live: Live,
    echo: Callable[[str], None] = print,
    *,
    requests: int = 300,
    monitor_rows: int = 0,
    after_month: Callable[[Any], Any] | None = None,
) -> ServeStory:
    """Send ``requests`` September flights to the served champion and read ``/metrics``;
    with ``monitor_rows``, replay that many flights of each later month and monitor them
    (``after_month(row)`` after each month's evaluation)."""
    from plinth import models
    from plinth.demo.features import materialize_until
    from plinth.demo.train import MODEL

    champion = str(models.get(f"{MODEL}@champion", ctx=ctx).ref)
    echo("")
    echo(f"Serving September: {champion} is flight-delays@champion")
    materialize_until(ctx, datetime(2013, REQUEST_MONTH, 1, tzinfo=UTC), echo)
    records = _records(data, requests)
    url = f"{live.url}/v1/predict"
    shown = _show_request(url, records[0], echo)
    with ThreadPoolExecutor(max_workers=8) as pool:
        answers = list(pool.map(lambda r: _post(url, {"records": [r]}), records))
    ok = [body for status, body in answers if status == 200]
    late = sum(1 for body in ok if body["predictions"][0] >= 0.5)
    echo(
        f"  sent {len(records)} September flights, one per request, from 8 threads: "
        f"{len(ok)} answered, {late} predicted late (p >= 0.5)"
    )
    metrics = _get(f"{live.url}/metrics")[1].decode()
    echo("  /metrics (excerpt: the predict route, non-zero series):")
    for line in metrics.splitlines():
        name, _, value = line.rpartition(" ")
        if (
            line.startswith(SHOWN_METRICS)
            and value not in ("0.0", "0")
            and ("route=" not in name or 'route="/v1/predict"' in name)
        ):
            echo(f"    {line}")
    monitoring = None
    if monitor_rows:
        from plinth.demo.monitoring import replay_months

        monitoring = replay_months(
            ctx,
            directory,
            data,
            lambda body: _post(url, body),
            live.server.predlog.flush,
            echo,
            rows=monitor_rows,
            after_month=after_month,
        )
    live.server.predlog.flush()
    request_id = str(ok[0]["request_id"]) if ok else ""
    return ServeStory(
        champion, len(records), len(records) - len(ok), request_id, {}, monitoring, shown
    )


def request_lineage(ctx: Context, request_id: str) -> dict[str, Any]:
    """The lineage of one logged request (after the server flushed its log)."""
    from plinth.serving.predlog import lineage_of_request

    return lineage_of_request(ctx, request_id) if request_id else {}
