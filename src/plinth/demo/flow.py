"""The steps of the demo's closed loop, wired by ``pipeline.py`` in the demo project.

``plinth demo`` writes :data:`PIPELINE` into the project as ``pipeline.py`` (for a person to
read, and for ``plinth agent pipeline.py:retrain`` to run): each new version of ``flights``
and each drift alert of the monitor ``flight-delays`` starts the pipeline ``retrain``:

1. :func:`validated` — the validation gate: a quarantined version (or one failing the suite)
   stops the run, the failures sent to ``alerts.log``;
2. :func:`training_set` — the feature store's point-in-time training set of that version;
3. :func:`train` — the newest month held out, the months before it trained on (the newest
   ``recent_months`` only, after a drift alert); the four-model grid while there is no
   champion, then the champion's configuration;
4. :func:`challenger` — the challenger gate: the candidate must beat the champion on the
   newest month's ROC AUC, with no airport worse by more than a tolerance;
5. :func:`canary` — served as the canary of the running server to half the traffic,
   then promoted (``champion`` moved by compare-and-swap) or rolled back.

The canary needs the server ``plinth demo`` runs in its own process (:data:`LIVE`); the
demo may inject a latency regression into one canary, and says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError
from plinth.pipelines.steps import step

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import DatasetVersion, ModelVersion

__all__ = [
    "LIVE",
    "PIPELINE",
    "ROUTES",
    "Live",
    "canary",
    "challenger",
    "train",
    "training_set",
    "validated",
]

#: Where every gate failure, promotion and rollback is sent (the monitor's route too).
ROUTES = ({"name": "ops-log", "type": "log", "path": "alerts.log"},)
#: How much a challenger must beat the champion by (ROC AUC on the newest month), and how
#: much worse it may be on one origin airport.
MARGIN = 0.0
SLICE_TOLERANCE = 0.03
#: Holdout rows the gate scores both versions on.
GATE_ROWS = 3000
#: The canary: its share of traffic and the requests each variant must answer.
CANARY_TRAFFIC = 0.5
CANARY_REQUESTS = 30

PIPELINE = '''\
"""The demo's closed loop: new flights or a drift alert -> validate, features, train,
gate, canary, promote or roll back. Written by plinth demo; the steps are in
plinth.demo.flow. Run it yourself: plinth pipeline run pipeline.py:retrain
Watch its triggers: plinth triggers list pipeline.py:retrain; plinth agent pipeline.py:retrain
"""

import plinth
from plinth.demo.flow import ROUTES, canary, challenger, train, training_set, validated


@plinth.pipeline(
    triggers=[
        # each new version of flights: version=flights@N
        {{"dataset": "flights", "param": "version"}},
        # a drift alert of the deployment's monitor: retrain on the newest 3 months
        {{"monitor": "flight-delays", "on": "drift", "param": "report",
          "params": {{"recent_months": 3}}}},
    ],
    alerts=ROUTES,
)
def retrain(
    version: str = "flights@latest",
    report: str = "",
    recent_months: int = 0,
    train_rows: int = {train_rows},
):
    checked = validated(version)                 # quarantined or failing: the run stops
    data = training_set(checked)                 # point in time, by the feature store
    candidate = train(data, recent_months=recent_months, train_rows=train_rows)
    passed = challenger(candidate, data)         # must beat the champion on the newest month
    canary(passed, data)                         # promote, or roll back
'''


@dataclass
class Live:
    """The server ``plinth demo`` runs: its base URL, the app's server object, and a
    latency regression to inject into the next canary (seconds; 0: none)."""

    url: str
    server: Any
    inject_next_canary: float = 0.0
    injected: list[str] = field(default_factory=list)


#: The running demo server (set by plinth.demo.loop while it serves).
LIVE: list[Live] = []


def _ctx() -> Context:
    from plinth.context import resolve_context
    from plinth.pipelines.executors import current_step

    here = current_step()
    return here.ctx if here is not None else resolve_context(None)


def _champion(ctx: Context) -> ModelVersion | None:
    from plinth import models
    from plinth.demo.train import MODEL
    from plinth.errors import NotFoundError

    try:
        return models.get(f"{MODEL}@champion", ctx=ctx)
    except NotFoundError:
        return None


@step(cache=False)
def validated(version: str) -> DatasetVersion:
    """The validation gate on ``version``: it passes unless the version is quarantined or
    fails the suite (``flights-suite.yaml``); a failure stops the run and is sent to the
    alert route."""
    import plinth.datasets as datasets
    from plinth.pipelines.gates import validation_gate

    ctx = _ctx()
    found = datasets.get(version, ctx=ctx)
    suite = ctx.settings.root / "flights-suite.yaml"
    validation_gate(found, suite if suite.is_file() else None, routes=ROUTES, ctx=ctx)
    return found


@step
def training_set(version: DatasetVersion) -> DatasetVersion:
    """The training set of ``version`` built by the feature store (``delay_features`` as of
    each flight's scheduled hour), saved as a version of ``flights-training``."""
    from plinth.demo.features import SERVICE, TRAINING_SET, entity_rows
    from plinth.features.training import get_training_set

    ctx = _ctx()
    built = get_training_set(
        entity_rows(ctx, version.ref),
        SERVICE,
        save_as=TRAINING_SET,
        message=f"flights of {version.ref} with the features of {SERVICE}, as of each "
        "scheduled hour",
        ctx=ctx,
    )
    found: DatasetVersion = built.version
    return found


def _months(ctx: Context, data: DatasetVersion) -> list[int]:
    import pyarrow.compute as pc

    import plinth.datasets as datasets

    table = datasets.load(data.ref, to="arrow", ctx=ctx)
    return sorted(int(m) for m in pc.unique(table.column("month")).to_pylist())


def _configs(ctx: Context, champion: ModelVersion | None) -> list[list[str]]:
    """The grid while there is no champion; then the champion's own configuration."""
    from plinth.demo import CONFIGS

    if champion is None or champion.run_id is None:
        return [list(c) for c in CONFIGS]
    params = ctx.ledger.runs.get_params(champion.run_id)
    if params.get("model") == "logreg":
        return [["--model", "logreg", "--C", str(params.get("C", 1.0))]]
    return [
        [
            "--model",
            "hgb",
            "--learning-rate",
            str(params.get("learning_rate", 0.1)),
            "--max-iter",
            str(params.get("max_iter", 100)),
            "--max-leaf-nodes",
            str(params.get("max_leaf_nodes", 31)),
        ]
    ]


@step
def train(data: DatasetVersion, recent_months: int = 0, train_rows: int = 40_000) -> ModelVersion:
    """Train on ``data`` with its newest month held out (tracked runs, each a version of
    ``flight-delays``); returns the best version by holdout ROC AUC."""
    from plinth import models
    from plinth.demo import train as trainer
    from plinth.versioning.code import module_entry_point

    ctx = _ctx()
    months = _months(ctx, data)
    if len(months) < 2:
        raise UsageError(f"{data.ref} holds one month: nothing to train on before it")
    holdout = months[-1]
    first = max(months[0], holdout - recent_months) if recent_months else months[0]
    sizes = ["--train-rows", str(train_rows), "--holdout-rows", str(min(train_rows, 10_000))]
    window = ["--holdout-month", str(holdout), "--first-month", str(first)]
    best: tuple[float, str] | None = None
    for config in _configs(ctx, _champion(ctx)):
        argv = [*config, *sizes, *window, "--data", data.ref]
        run_id = trainer.main(argv, entry_point=module_entry_point("plinth.demo.train", argv))
        auc = float(ctx.ledger.runs.latest_metrics(run_id)["holdout_auc"])
        if best is None or auc > best[0]:
            best = (auc, run_id)
    assert best is not None
    version: ModelVersion = next(
        v for v in models.versions(trainer.MODEL, ctx=ctx) if v.run_id == best[1]
    )
    return version


def _holdout(ctx: Context, data: DatasetVersion) -> Any:
    import plinth.datasets as datasets
    from plinth.demo.data import CATEGORICAL

    frame = datasets.load(data.ref, to="pandas", ctx=ctx)
    newest = frame[frame["month"] == frame["month"].max()]
    newest = newest.sample(n=min(GATE_ROWS, len(newest)), random_state=0).reset_index(drop=True)
    for column in CATEGORICAL:  # as the model takes them (and a request sends them)
        newest[column] = newest[column].astype(object)
    return newest


@step(cache=False)
def challenger(candidate: ModelVersion, data: DatasetVersion) -> ModelVersion:
    """The challenger gate: ``candidate`` must beat ``flight-delays@champion`` on ROC AUC
    over the newest month of ``data`` (the same rows for both), by more than
    :data:`MARGIN`, and lose no more than :data:`SLICE_TOLERANCE` on any origin airport.
    Passes unopposed while there is no champion; a candidate that already is the champion
    (a cached rerun) passes through untouched."""
    from plinth.demo.train import MODEL
    from plinth.pipelines.gates import challenger_gate

    ctx = _ctx()
    champion = _champion(ctx)
    if champion is not None and champion.id == candidate.id:
        return candidate
    frame = _holdout(ctx, data)
    challenger_gate(
        MODEL,
        candidate,
        holdout=frame,
        target="late",
        metric="roc_auc",
        margin=MARGIN,
        slices={"origin": SLICE_TOLERANCE},
        routes=ROUTES,
        ctx=ctx,
    )
    return candidate


class Slow:
    """A served model answering ``seconds`` late: the injected latency regression."""

    def __init__(self, model: Any, seconds: float) -> None:
        self._model, self._seconds = model, seconds

    def predict_proba(self, data: Any) -> Any:
        time.sleep(self._seconds)
        return self._model.predict_proba(data)

    def predict(self, data: Any) -> Any:
        time.sleep(self._seconds)
        return self._model.predict(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._model, name)


@step(cache=False)
def canary(candidate: ModelVersion, data: DatasetVersion) -> dict[str, Any]:
    """Serve ``candidate`` as the canary to half the traffic, replay the newest month's
    flights until both variants answered :data:`CANARY_REQUESTS` requests, then promote it
    or roll it back (:func:`plinth.pipelines.rollout.watch_canary`). The first champion is
    made champion directly: nothing is served yet to compare it with."""
    from plinth.demo.train import MODEL
    from plinth.pipelines.decisions import placed, record
    from plinth.registry import api

    ctx, pipeline_run_id = placed(_ctx(), None)
    champion = _champion(ctx)
    if champion is not None and champion.id == candidate.id:
        return {"outcome": "unchanged", "model_version": candidate.ref}
    if champion is None:
        api.set_alias(
            MODEL, "champion", candidate.number, expected=None, reason="first champion", ctx=ctx
        )
        decision = record(
            "promote",
            MODEL,
            "promoted",
            {
                "moved": {"alias": "champion", "from": None, "to": candidate.number},
                "reasons": [],
                "note": "no champion yet: promoted without a canary (nothing served to "
                "compare it with)",
            },
            ctx=ctx,
            pipeline_run_id=pipeline_run_id,
        )
        return {"outcome": "promoted", "model_version": candidate.ref, "decision": decision.id}
    if not LIVE:
        raise UsageError(
            "no server is running to serve the canary",
            hint="the canary step runs inside plinth demo, which serves flight-delays",
        )
    return _rollout(ctx, LIVE[0], candidate, data)


def _rollout(
    ctx: Context, live: Live, candidate: ModelVersion, data: DatasetVersion
) -> dict[str, Any]:
    import httpx

    from plinth.demo.serving import requests_of
    from plinth.demo.train import MODEL
    from plinth.pipelines.rollout import start_canary, watch_canary

    start_canary(MODEL, candidate.number, deployment="flight-delays", ctx=ctx)
    live.server.refresh()  # load the canary now rather than at the next alias poll
    injected = live.inject_next_canary
    out: dict[str, Any] = {"model_version": candidate.ref}
    if injected and live.server.canary is not None and live.server.canary.current is not None:
        served = live.server.canary.current
        served.model = Slow(served.model, injected)
        live.inject_next_canary = 0.0
        out["injected"] = f"+{injected * 1000:.0f} ms on every canary answer (demo fault)"
        live.injected.append(candidate.ref)
    records = requests_of(_holdout(ctx, data))
    result: Any = None
    with httpx.Client(base_url=live.url, timeout=30) as client:
        sent = 0
        for start in range(0, len(records), CANARY_REQUESTS):
            for record in records[start : start + CANARY_REQUESTS]:
                client.post("/v1/predict", json={"records": [record]})
                sent += 1
            result = watch_canary(
                client,
                min_requests=CANARY_REQUESTS,
                max_latency_ratio=2.0,
                latency_slack_ms=50.0,
                routes=ROUTES,
                ctx=ctx,
            )
            if result.outcome != "waiting":
                break
    live.server.refresh()  # follow the aliases: promoted is primary, the canary is out
    if result is None or result.outcome == "waiting":
        raise UsageError(f"the canary of {candidate.ref} had too little traffic ({sent})")
    out.update(outcome=result.outcome, requests=sent, decision=result.decision.id)
    return out


def write_pipeline(directory: Path, *, train_rows: int) -> Path:
    """Write ``pipeline.py`` into the demo project; returns its path."""
    path = directory / "pipeline.py"
    path.write_text(PIPELINE.format(train_rows=train_rows), encoding="utf-8")
    return path


#: What each step is called in the timeline.
STEP_NAMES: dict[str, str] = {
    "validated": "validate",
    "training_set": "features",
    "train": "train",
    "challenger": "gate",
    "canary": "canary",
}
