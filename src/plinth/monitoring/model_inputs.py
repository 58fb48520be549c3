"""Which columns a model's feature drift compares: its inputs, not its target or ids.

The inputs come from the model version's signature. The target is the first found of: the
signature's output name (when it names a column, not the default ``output``), a run param
``target``/``label``/``label_column``/``target_column``, or the one column of the training
data that is neither an input, nor named like an id, nor in the served data (``logged``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from plinth.context import Context

__all__ = ["ModelColumns", "model_columns", "model_exclusions"]

_PARAMS = ("target", "label", "label_column", "target_column")
_GENERIC_OUTPUTS = frozenset({"output", "prediction", "predictions", "0"})


@dataclass(frozen=True)
class ModelColumns:
    """A model version's input columns (None when its signature has none) and target."""

    model: str
    inputs: tuple[str, ...] | None
    target: str | None

    def exclusions(self, names: Iterable[str], passthrough: Iterable[str] = ()) -> dict[str, str]:
        """Each of ``names`` that is not an input, with the reason it is not compared;
        ``passthrough`` names the deployment's pass-through fields."""
        through = set(passthrough)
        out: dict[str, str] = {}
        for name in names:
            if name == self.target:
                out[name] = f"the target of {self.model}"
            elif name == "prediction":
                out[name] = "the model's output: see prediction_drift"
            elif name in through:
                out[name] = "a pass-through field of the deployment, not a model input"
            elif self.inputs is not None and name not in self.inputs:
                out[name] = f"not an input of {self.model}"
        return out


def model_columns(model_ref: str, logged: Iterable[str] = (), *, ctx: Context) -> ModelColumns:
    """The inputs and target of ``model_ref`` (NAME@VERSION or NAME@ALIAS)."""
    from plinth.monitoring._compare import ID_NAME
    from plinth.registry import api

    card = api.card(model_ref, ctx=ctx)
    signature: dict[str, Any] = card.get("signature") or {}
    fields = signature.get("inputs") or []
    inputs = [str(f["name"]) for f in fields if f.get("shape") is None]
    outputs = [str(f["name"]) for f in signature.get("outputs") or []]
    target = None
    if len(outputs) == 1 and outputs[0] not in _GENERIC_OUTPUTS:
        target = outputs[0]
    params = (card.get("run") or {}).get("params") or {}
    for key in _PARAMS:
        if target is None and isinstance(params.get(key), str):
            target = params[key]
    if target is None and inputs:
        known = {*inputs, *logged}
        for data in card.get("data") or []:
            if data.get("missing") or not data.get("id"):
                continue
            version = ctx.ledger.datasets.get_version_by_id(data["id"])
            rest = [
                str(c["name"])
                for c in version.schema or []
                if c["name"] not in known and not ID_NAME.search(str(c["name"]))
            ]
            if len(rest) == 1:
                target = rest[0]
                break
    return ModelColumns(str(card["ref"]), tuple(inputs) if inputs else None, target)


def model_exclusions(
    model_ref: str, reference: Any, current: Any, *, ctx: Context
) -> dict[str, str]:
    """The columns of either side of a drift comparison that ``model_ref`` does not take,
    each with the reason (for ``drift(..., exclude=)``)."""
    from plinth.monitoring._sides import source

    current_names = source(current, "current").names
    model = model_columns(model_ref, current_names, ctx=ctx)
    return model.exclusions([*source(reference, "reference").names, *current_names])
