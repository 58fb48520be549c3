"""A suite for the serving edge, inferred over a model's inputs only.

The training suite expects the target and ids and knows nothing of ``prediction``; the
serving edge sees only the model's inputs (and pass-through fields). This suite is inferred
from the profile of the dataset version the model's run used (found through lineage: run
—used→ dataset version), restricted to the signature's inputs, keeping the row-level checks
the edge runs; without lineage it comes from the signature alone (nulls refused)::

    suite = serving_suite("price@champion")
    Path("serving.yaml").write_text(suite.to_yaml())
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from plinth.errors import UsageError

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.validation import Suite

__all__ = ["serving_suite"]

#: Checks kept from the inferred suite: the row-level ones the serving edge runs.
_ROW_CHECKS = ("between", "allowed_values", "regex", "string_length", "max_null_fraction")


def serving_suite(ref: str, *, name: str | None = None, ctx: Context | None = None) -> Suite:
    """A suite over the inputs of model ``ref`` (``NAME@ALIAS``), for ``validate:`` in a
    deployment or ``plinth models predict --suite``."""
    from plinth.context import resolve_context
    from plinth.registry import api
    from plinth.registry.flavors.signature import Signature

    context = resolve_context(ctx)
    version = api.get(ref, ctx=context)
    if version.signature is None:
        raise UsageError(
            f"{version.ref} has no signature, so its inputs are unknown",
            hint="log the model with an input_example (run.log_model(m, name=..., "
            "input_example=df.head()))",
            field="model",
        )
    signature = Signature.from_dict(version.signature)
    inputs = [spec.name for spec in signature.inputs]
    suite_name = name or f"{version.model}-serving"
    data = [d.get("ref") for d in api.card(version.ref, ctx=context).get("data") or []]
    for data_ref in data:
        profile = _profile(data_ref, context)
        if profile is not None and set(inputs) <= set(profile.columns):
            return _from_profile(profile, data_ref, inputs, version.ref, suite_name)
    return _from_signature(inputs, version.ref, suite_name)


def _profile(ref: Any, ctx: Context) -> Any:
    from plinth.datasets import profile

    if not isinstance(ref, str):
        return None
    try:
        return profile(ref, ctx=ctx)
    except UsageError:  # a file dataset, not a table: no profile
        return None


def _from_profile(profile: Any, source: str, inputs: list[str], model: str, name: str) -> Suite:
    from plinth.validation.inference import suite_from_profile
    from plinth.validation.suites import Suite, SuiteCheck

    only = dataclasses.replace(profile, columns={c: profile.columns[c] for c in inputs})
    inferred = suite_from_profile(only, source, None, name=name)
    checks: list[SuiteCheck] = []
    for check in inferred.checks:
        if check.check not in _ROW_CHECKS:
            continue
        if check.check == "max_null_fraction":
            # One request cannot hold a share: a column without nulls in training refuses
            # them; one with nulls accepts them (the model saw them).
            if only.columns[check.column].null_count:
                continue
            check = dataclasses.replace(
                check, args={"value": 0}, comment="no nulls in the training data"
            )
        checks.append(dataclasses.replace(check, index=len(checks)))
    header = (
        f"A serving suite for {model}: its inputs only ({', '.join(inputs)}), inferred from "
        f"{source}, the data its run used.",
        "Row-level checks only: table-level checks are skipped at the serving edge.",
        "The tolerances are guesses: edit them before relying on this suite. See docs/serving.md.",
    )
    return Suite(name, tuple(checks), header=header)


def _from_signature(inputs: list[str], model: str, name: str) -> Suite:
    from plinth.validation.suites import Suite

    found = Suite.from_dict(
        {
            "suite": name,
            "checks": [{"check": "max_null_fraction", "column": c, "value": 0} for c in inputs],
        },
        where=f"serving suite of {model}",
    )
    header = (
        f"A serving suite for {model} from its signature alone (its run used no recorded "
        "dataset version): nulls are refused.",
        "Add ranges (between) and allowed_values by hand. See docs/serving.md.",
    )
    return dataclasses.replace(found, header=header)
