"""Train one flight-delay model as a tracked run: ``python -m plinth.demo.train --model hgb``.

This module is the demo's reproducible entry point: ``plinth demo`` calls :func:`main` in
process for each configuration and records ``python -m plinth.demo.train <args>`` as the
run's entry point, so ``plinth reproduce RUN_ID`` reruns exactly one model. A run trains on
a version of the training set the feature store built (``--data flights-training@1``,
:mod:`plinth.demo.features`), loaded in the run so that its lineage names it.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from plinth.tracking import ActiveRun

__all__ = ["EXPERIMENT", "MODEL", "main", "parse_args", "train"]

EXPERIMENT = "flight-delays"
#: The registered model every demo run logs a version of.
MODEL = "flight-delays"


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m plinth.demo.train", description=__doc__)
    parser.add_argument("--model", choices=["logreg", "hgb"], required=True)
    parser.add_argument("--name", default=None, help="run name (default: from the params)")
    parser.add_argument("--C", dest="C", type=float, default=1.0, help="logreg: inverse L2")
    parser.add_argument("--learning-rate", type=float, default=0.1, help="hgb")
    parser.add_argument("--max-iter", type=int, default=100, help="hgb: boosting rounds")
    parser.add_argument("--max-leaf-nodes", type=int, default=31, help="hgb")
    parser.add_argument("--train-rows", type=int, default=150_000)
    parser.add_argument("--holdout-rows", type=int, default=40_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--holdout-month",
        type=int,
        default=None,
        help="the month held out (default: the newest month in the data); the months "
        "before it are trained on",
    )
    parser.add_argument(
        "--first-month", type=int, default=1, help="the first month trained on (default: 1)"
    )
    parser.add_argument(
        "--data",
        default="flights-training",
        help="the training set to train on (e.g. flights-training@1, built by the feature "
        "store), loaded in the run so that it records which data it used; default: its "
        "latest version",
    )
    return parser.parse_args(list(argv))


def _params(args: argparse.Namespace) -> dict[str, Any]:
    common = {
        "model": args.model,
        "train_rows": args.train_rows,
        "holdout_rows": args.holdout_rows,
        "seed": args.seed,
        "first_month": args.first_month,
        **({"holdout_month": args.holdout_month} if args.holdout_month is not None else {}),
        **({"data": args.data} if args.data else {}),
    }
    if args.model == "logreg":
        return {**common, "C": args.C}
    return {
        **common,
        "learning_rate": args.learning_rate,
        "max_iter": args.max_iter,
        "max_leaf_nodes": args.max_leaf_nodes,
    }


def _model(args: argparse.Namespace, categories: Mapping[str, list[str]]) -> Any:
    import numpy as np
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

    from plinth.demo.data import CATEGORICAL, NUMERIC

    if args.model == "logreg":
        numeric = Pipeline(
            [("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]
        )
        encode = OneHotEncoder(
            categories=[categories[c] for c in CATEGORICAL], handle_unknown="ignore"
        )
        features = ColumnTransformer([("num", numeric, NUMERIC), ("cat", encode, CATEGORICAL)])
        return Pipeline(
            [("features", features), ("clf", LogisticRegression(C=args.C, max_iter=1000))]
        )
    # Categories are encoded inside the pipeline, so the logged model takes the raw columns
    # (strings for carrier, origin, dest) that a request to the served model carries.
    encode_cat = OrdinalEncoder(
        categories=[categories[c] for c in CATEGORICAL],
        handle_unknown="use_encoded_value",
        unknown_value=np.nan,
    )
    features = ColumnTransformer(
        [("cat", encode_cat, CATEGORICAL), ("num", "passthrough", NUMERIC)],
        verbose_feature_names_out=False,
    )
    clf = HistGradientBoostingClassifier(
        learning_rate=args.learning_rate,
        max_iter=args.max_iter,
        max_leaf_nodes=args.max_leaf_nodes,
        categorical_features=list(range(len(CATEGORICAL))),
        early_stopping=False,
        random_state=args.seed,
    )
    return Pipeline([("features", features), ("clf", clf)])


def _frame(df: pd.DataFrame) -> pd.DataFrame:
    """The model's input: the feature columns as they arrive (categories as strings)."""
    from plinth.demo.data import CATEGORICAL, NUMERIC

    x = df[[*NUMERIC, *CATEGORICAL]].copy()
    for column in CATEGORICAL:
        x[column] = x[column].astype(object)
    return x


def train(args: argparse.Namespace, data: pd.DataFrame, run: ActiveRun) -> dict[str, float]:
    """Fit, evaluate on the holdout month and log everything to ``run``."""
    import numpy as np
    from sklearn.metrics import (
        accuracy_score,
        log_loss,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    from plinth.demo.data import CATEGORICAL, TARGET, split

    categories = {c: sorted(data[c].dropna().unique().tolist()) for c in CATEGORICAL}
    train_df, holdout_df = split(
        data,
        train_rows=args.train_rows,
        holdout_rows=args.holdout_rows,
        seed=args.seed,
        holdout_month=args.holdout_month,
        first_month=args.first_month,
    )
    x_train, y_train = _frame(train_df), train_df[TARGET].to_numpy()
    x_hold, y_hold = _frame(holdout_df), holdout_df[TARGET].to_numpy()
    run.log_metrics({"train_rows": len(x_train), "holdout_rows": len(x_hold)})

    model = _model(args, categories)
    started = time.perf_counter()
    model.fit(x_train, y_train)
    fit_seconds = time.perf_counter() - started

    if args.model == "hgb":  # the learning curve, one point per boosting round
        encoded = model[:-1].transform(x_hold)
        for step, proba in enumerate(model[-1].staged_predict_proba(encoded)):
            run.log_metric(
                "holdout_log_loss_curve", log_loss(y_hold, proba[:, 1], labels=[0, 1]), step=step
            )
    score = model.predict_proba(x_hold)[:, 1]
    predicted = (score >= 0.5).astype(np.int64)
    metrics = {
        "holdout_auc": float(roc_auc_score(y_hold, score)),
        "holdout_log_loss": float(log_loss(y_hold, score, labels=[0, 1])),
        "holdout_accuracy": float(accuracy_score(y_hold, predicted)),
        "holdout_precision": float(precision_score(y_hold, predicted, zero_division=0)),
        "holdout_recall": float(recall_score(y_hold, predicted, zero_division=0)),
        "train_auc": float(roc_auc_score(y_train, model.predict_proba(x_train)[:, 1])),
        "timing/fit_seconds": fit_seconds,
    }
    run.log_metrics(metrics)
    run.log_predictions(y_hold, predicted, ids=holdout_df["id"].to_numpy(), scores=score)
    if args.model == "logreg":
        run.log_weights(model, stage="final")
    else:
        from sklearn.inspection import permutation_importance

        # On the encoded columns, through the classifier only: the encoding is one value to
        # one value per column, so shuffling an encoded column is shuffling the raw one, and
        # the pipeline's DataFrame handling is not paid 17 x 3 times.
        sample = min(2000, len(x_hold))
        result = permutation_importance(
            model[-1],
            encoded[:sample],
            y_hold[:sample],
            scoring="roc_auc",
            n_repeats=3,
            random_state=args.seed,
        )
        names = [str(n) for n in model[:-1].get_feature_names_out()]
        run.log_dict(
            {n: float(v) for n, v in zip(names, result.importances_mean, strict=True)},
            "weights/permutation_importance.json",
        )
    # Registered as a version of one model: plinth demo points `champion` at the best.
    run.log_model(model, name=MODEL, input_example=x_hold.head(5))
    return metrics


def run_name(args: argparse.Namespace) -> str:
    if args.name:
        return str(args.name)
    if args.model == "logreg":
        return f"logreg-C{args.C:g}"
    return f"hgb-lr{args.learning_rate:g}-it{args.max_iter}-leaves{args.max_leaf_nodes}"


def main(
    argv: Sequence[str] | None = None,
    *,
    data: pd.DataFrame | None = None,
    entry_point: Mapping[str, Any] | None = None,
) -> str:
    """Train one model in a tracked run and return the run id (on ``data`` when given,
    else on the dataset version ``--data`` names)."""
    import plinth

    args = parse_args(sys.argv[1:] if argv is None else argv)
    if argv is None:  # python -m plinth.demo.train: the project of the working directory
        plinth.init()
    frame = data
    plinth.seed_everything(args.seed)
    with plinth.start_run(
        experiment=EXPERIMENT,
        name=run_name(args),
        params=_params(args),
        tags={"demo": "nycflights13"},
        entry_point=entry_point,
        nested=False,
    ) as run:
        if frame is None:  # in the run: it records the exact version it used
            frame = plinth.datasets.load(args.data, to="pandas")
        train(args, frame, run)
    return run.id


if __name__ == "__main__":
    print(main())
