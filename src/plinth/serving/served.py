"""A loaded model ready to serve, and the slot that swaps it when its alias moves.

:class:`ServedModel` knows how to turn a batch of decoded requests into the model's input
(a 2-D float array, or a DataFrame with named columns only when the model needs one) and
its output into one plain list per request. :class:`ModelSlot` holds the current one for a
``NAME@ALIAS``; :meth:`ModelSlot.refresh` (run off the request path) reads the alias and,
when it moved, loads the new version and swaps a single reference.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from plinth._extras import require
from plinth.errors import NotFoundError, UsageError
from plinth.serving.batcher import Batcher, Item
from plinth.serving.decode import Decoder

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.entities import ModelVersion
    from plinth.serving.metrics import ServingMetrics

__all__ = ["ModelSlot", "ServedModel"]

log = logging.getLogger("plinth.serving")

_NUMERIC = ("integer", "number", "boolean")

#: A lineage summary, or how to read it when first asked for.
_Lineage = dict[str, Any] | Callable[[], dict[str, Any]]


class ServedModel:
    """One model version: its decoder, batcher, output kind and lineage summary.

    ``output`` is ``probability`` (a binary classifier: the positive class's probability),
    ``label`` (a classifier's predicted class) or ``value`` (whatever ``predict`` returns).
    """

    def __init__(
        self,
        model: Any,
        name: str,
        role: str,
        *,
        max_rows: int,
        wait_s: float,
        arriving: Callable[[], int],
        metrics: ServingMetrics,
        version: ModelVersion | None = None,
        lineage: _Lineage | None = None,
        passthrough: Sequence[tuple[str, str, bool]] = (),
    ) -> None:
        signature = getattr(model, "signature", None)
        if signature is None:
            raise UsageError(
                f"{name} has no signature, so its requests cannot be checked",
                hint="log the model with an input_example (run.log_model(m, name=..., "
                "input_example=df.head()))",
                field="model",
            )
        self.model = model
        self.name = name
        self.role = role
        self.version = version
        self.signature = signature
        # A callable is read on first use (GET /v1/model), not while the server starts.
        self._lineage = lineage if lineage is None or isinstance(lineage, dict) else None
        self._lineage_source = None if isinstance(lineage, dict) else lineage
        self.metrics = metrics
        if signature.is_tensor:
            inputs = [(signature.inputs[0].name, "tensor")]
        else:
            inputs = [(spec.name, spec.dtype) for spec in signature.inputs]
        clash = [p[0] for p in passthrough if p[0] in dict(inputs)]
        if clash:
            raise UsageError(
                f"pass-through field {clash[0]!r} is an input of {name}; a pass-through "
                "field is never given to the model",
                hint="remove it from the deployment's passthrough list",
                field=f"passthrough.{clash[0]}",
            )
        self.decoder = Decoder(inputs, max_rows=max_rows, passthrough=passthrough)
        native = getattr(model, "model", model)
        classes = getattr(native, "classes_", None)
        self.positive_class: Any = None
        if classes is not None and hasattr(native, "predict_proba") and len(classes) == 2:
            self.output = "probability"
            self.positive_class = classes[1].item() if hasattr(classes[1], "item") else classes[1]
        elif classes is not None:
            self.output = "label"
        else:
            self.output = "value"
        # the prediction log's column types: the signature's, so batches share a schema
        self.log_types = self.decoder.log_types()
        if self.output == "probability":
            self.log_types["prediction"] = "double"
        # the histogram's buckets follow this version's own predictions (stored when logged)
        stored = (version.signature or {}) if version is not None else {}
        metrics.prediction_buckets(name, self.output, stored.get("prediction_quantiles"))
        groups = self.decoder.groups
        numeric = all(groups[n] in _NUMERIC for n in self.decoder.names)
        self.as_frame = not signature.is_tensor and (
            not numeric or getattr(native, "feature_names_in_", None) is not None
        )
        if self.as_frame:  # refused at load, not on every request
            require("pandas", feature=f"serving {name} (a model that takes a DataFrame)")
        if self.as_frame and numeric and _array_safe(native, self.decoder.names):
            # Fitted on a DataFrame, but a plain scikit-learn estimator over numbers in
            # the signature's order: an array gives the same answers without a per-batch
            # DataFrame (checked once below on a probe row).
            self.as_frame = not _same_on_arrays(self, native)
        self.batcher = Batcher(
            self._predict_batch,
            max_rows=max_rows,
            wait_s=wait_s,
            arriving=arriving,
            on_batch=metrics.batch_size.observe,
        )

    def _input(self, columns: dict[str, list[Any]]) -> Any:
        import numpy as np

        names, groups = self.decoder.names, self.decoder.groups
        if self.signature.is_tensor:
            return np.asarray(columns[names[0]], dtype=float)
        if not self.as_frame:
            # Row-major straight from the decoded values (null -> NaN), in signature order.
            rows = zip(*[columns[name] for name in names], strict=True)
            return np.array(list(rows), dtype=float)
        import pandas as pd

        data = {}
        for name in names:
            group = groups[name]
            if group == "number":
                data[name] = np.array(columns[name], dtype=float)
            elif group == "integer":
                data[name] = np.array(columns[name], dtype=np.int64)
            elif group == "boolean":
                data[name] = np.array(columns[name], dtype=bool)
            else:
                data[name] = np.array(columns[name], dtype=object)
        return pd.DataFrame(data, columns=names, copy=False)

    def predict_columns(self, columns: dict[str, list[Any]]) -> list[Any]:
        """Predictions for decoded columns, as a plain list (one per row)."""
        import numpy as np

        data = self._input(columns)
        if self.output == "probability":
            out = np.asarray(self.model.predict_proba(data))[:, 1]
        else:
            out = np.asarray(self.model.predict(data))
        values: list[Any] = out.tolist()
        return values

    def _predict_batch(self, items: Sequence[Item]) -> list[list[Any]]:
        if len(items) == 1:
            predictions = self.predict_columns(items[0].columns)
        else:
            merged: dict[str, list[Any]] = {}
            for name in self.decoder.names:
                column: list[Any] = []
                for item in items:
                    column.extend(item.columns[name])
                merged[name] = column
            predictions = self.predict_columns(merged)
        if len(predictions) != sum(item.rows for item in items):
            raise RuntimeError(
                f"{self.name} returned {len(predictions)} predictions for "
                f"{sum(item.rows for item in items)} rows"
            )
        self.metrics.observe_predictions(self.name, self.role, predictions, self.output)
        out = []
        start = 0
        for item in items:
            out.append(predictions[start : start + item.rows])
            start += item.rows
        return out

    def describe(self) -> dict[str, Any]:
        """What ``GET /v1/model`` says about this model."""
        output: dict[str, Any] = {"kind": self.output}
        if self.output == "probability":
            output["description"] = (
                f"the probability of the positive class {self.positive_class!r} "
                "(predict_proba's second column)"
            )
        elif self.output == "label":
            output["description"] = "the predicted class"
        else:
            output["description"] = "the model's predict() value"
        version = self.version
        return {
            "model_version": self.name,
            "role": self.role,
            "flavor": getattr(self.model, "flavor", None),
            "signature": self.signature.to_dict(),
            "output": output,
            "version": None
            if version is None
            else {
                "id": version.id,
                "model": version.model,
                "number": version.number,
                "run_id": version.run_id,
                "metrics": version.metrics,
                "created_at": version.created_at,
            },
            "lineage": self.lineage,
        }

    @property
    def lineage(self) -> dict[str, Any]:
        """The version's lineage summary (run, commit, environment, data), read once."""
        if self._lineage is None:
            source = self._lineage_source
            self._lineage = source() if source is not None else {}
        return self._lineage

    def close(self) -> None:
        self.batcher.close()


#: scikit-learn's warning when an estimator fitted on a DataFrame is given an array.
_NO_NAMES = r"X does not have valid feature names"


def _array_safe(native: Any, names: Sequence[str]) -> bool:
    """A plain (not composite) scikit-learn estimator fitted on exactly ``names`` in order."""
    fitted = getattr(native, "feature_names_in_", None)
    if fitted is None or [str(n) for n in fitted] != list(names):
        return False
    if not type(native).__module__.startswith("sklearn."):
        return False
    composite = ("steps", "transformers", "estimator", "estimators", "base_estimator")
    return not any(hasattr(native, attr) for attr in composite)


def _same_on_arrays(served: ServedModel, native: Any) -> bool:
    """Whether the model answers a probe batch the same given an array as given a frame.

    When it does, scikit-learn's warning about an array without feature names is
    silenced for this estimator's module (it is expected from now on).
    """
    import warnings

    import numpy as np

    names = served.decoder.names
    probe = {name: [0.0, 1.0, -1.0] for name in names}
    try:
        served.as_frame = True
        framed = served.predict_columns(probe)
        served.as_frame = False
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_NO_NAMES, category=UserWarning)
            arrayed = served.predict_columns(probe)
        same = bool(np.array_equal(np.asarray(framed), np.asarray(arrayed)))
    except Exception:  # whatever the array path does wrong, the frame path stays
        same = False
    finally:
        served.as_frame = True
    if same:
        warnings.filterwarnings(
            "ignore", message=_NO_NAMES, category=UserWarning, module=r"sklearn\."
        )
    return same


def _lineage(ctx: Context, ref: str) -> dict[str, Any]:
    from plinth.registry import api

    try:
        card = api.card(ref, ctx=ctx)
    except Exception as exc:  # the summary is informative; serving does not depend on it
        log.warning("plinth: no lineage summary for %s: %s", ref, exc)
        return {}
    run = card.get("run") or {}
    return {
        "run_id": run.get("id"),
        "run_name": run.get("name"),
        "code_commit": card.get("code_commit"),
        "environment_id": (card.get("environment") or {}).get("id"),
        "data": [d.get("ref") for d in card.get("data") or []],
    }


def _alias_unset(ref: str, ctx: Context) -> bool:
    """Whether ``ref`` is ``NAME@ALIAS`` of a registered model whose alias is not set."""
    from plinth.refs import parse_ref
    from plinth.registry import api

    parsed = parse_ref(ref, what="model")
    if parsed.label is None:
        return False
    try:
        return parsed.label not in api.aliases(parsed.name, ctx=ctx)
    except NotFoundError:  # no such model: a mistake in the deployment file
        return False


class ModelSlot:
    """The model serving one role (primary, canary, shadow) for a reference like ``m@champion``.

    ``current`` is swapped as a whole: a request reads it once and keeps that model.
    """

    def __init__(
        self,
        ref: str,
        role: str,
        *,
        ctx: Context | None,
        make: Callable[[Any, str, ModelVersion | None, _Lineage], ServedModel],
        metrics: ServingMetrics,
        model: Any = None,
    ) -> None:
        self.ref = ref
        self.role = role
        self._ctx = ctx
        self._make = make
        self._metrics = metrics
        self._injected = model
        self._lock = threading.Lock()
        self.current: ServedModel | None = None
        self.reloads = 0

    def refresh(self) -> bool:
        """Read the alias and load the version it names if that is not the one served.

        Does database and disk I/O: call it from a worker thread, never on the request
        path. Returns True when a new version was swapped in.
        """
        with self._lock:
            if self._injected is not None:
                if self.current is None:
                    self._swap(self._make(self._injected, self.ref, None, {}))
                    return True
                return False
            from plinth.registry import api

            assert self._ctx is not None
            try:
                version = api.get(self.ref, ctx=self._ctx)
            except NotFoundError:
                if self.role != "canary" or not _alias_unset(self.ref, self._ctx):
                    raise
                # A canary whose alias is not set (yet, or any more: a rolled-back rollout)
                # answers nothing: every request goes to the primary until the alias is set.
                previous, self.current = self.current, None
                if previous is None:
                    return False
                log.info("plinth: canary %s is unset; no longer served", self.ref)
                self._metrics.retired(previous.name, self.role)
                return True
            current = self.current
            if (
                current is not None
                and current.version is not None
                and current.version.id == version.id
            ):
                return False
            model = api.load(version, ctx=self._ctx)
            ctx, ref = self._ctx, version.ref
            served = self._make(model, ref, version, lambda: _lineage(ctx, ref))
            self._swap(served)
            return True

    def _swap(self, served: ServedModel) -> None:
        previous = self.current
        self.current = served  # one reference: requests see the old model or the new one
        self._metrics.served(served.name, self.role, None if previous is None else previous.name)
        if previous is not None:
            self.reloads += 1
            log.info("plinth: %s %s now serves %s", self.role, self.ref, served.name)
            # Not closed: requests that read the old model still finish on it; its thread
            # ends when the last of them lets go of it.
