"""A request's lineage as text: the lines ``plinth lineage`` and ``plinth demo`` print.

The chain is :func:`plinth.serving.lookup.lineage_of_request`'s: the prediction (its
deployment, batch, inputs and output), the model version, the run, its code commit, its
environment and the dataset versions the run used, with their validation results.
"""

from __future__ import annotations

from typing import Any

__all__ = ["lineage_lines"]


def _when(ms: int | None) -> str:
    if ms is None:
        return "-"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "Z"


def _value(value: Any) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= 60 else text[:57] + "..."


def lineage_lines(chain: dict[str, Any]) -> list[str]:
    """The chain as indented lines, one record per level, each under what it came from."""
    p = chain["prediction"]
    batch = p["batch"]
    out = [
        f"request {p['request_id']}  at {_when(p['ts_ms'])}",
        f"  deployment  {p['deployment']['ref']}  (batch {batch['id']}, {batch['rows']} rows)",
    ]
    for i, row in enumerate(p["rows"]):
        label = "inputs" if len(p["rows"]) == 1 else f"row {i}"
        shown = ", ".join(f"{k}={_value(v)}" for k, v in row["inputs"].items())
        out.append(f"  {label:<10}  {shown}  ->  prediction {_value(row['prediction'])}")
    mv = chain["model_version"]
    if mv is None:
        out.append(f"  model       {p['model_version']} (no longer in the registry)")
        return out
    aliases = f"  [{', '.join(mv['aliases'])}]" if mv["aliases"] else ""
    out.append(f"  model       {mv['ref']}  ({mv['flavor']}){aliases}")
    run = chain["run"]
    if run is None:
        out.append("    run       - (not produced by a recorded run)")
    else:
        name = f" {run['name']}" if run["name"] else ""
        out.append(f"    run       {run['id']}{name}  ({run['status']})")
        code = chain["code"] or {}
        commit = code.get("commit") or "- (not in a git repository)"
        branch = f" on {code['branch']}" if code.get("branch") else ""
        dirty = " + uncommitted changes" if code.get("dirty") else ""
        out.append(f"      code    {commit}{branch}{dirty}")
    env = chain["environment"]
    if env is None or env["missing"]:
        out.append("      env     -")
    else:
        out.append(
            f"      env     python {env['python']} on {env['platform']}, "
            f"{env['packages']} packages ({(env['digest'] or '')[:12]})"
        )
    if not chain["data"]:
        out.append("      data    - (the run used no dataset version)")
    for d in chain["data"]:
        if d.get("missing"):
            out.append(f"      data    {d['id']} (no longer in the ledger)")
            continue
        checks = d["validations"]
        if checks:
            latest = checks[0]
            verdict = (
                f"{'passed' if latest['success'] else 'FAILED'} suite {latest['suite']} "
                f"v{latest['suite_number']} "
                f"({latest['error_count']} errors, {latest['warning_count']} warnings)"
            )
        else:
            verdict = "not validated"
        rows = "?" if d["row_count"] is None else d["row_count"]
        out.append(f"      data    {d['ref']}  {d['status']}, {rows} rows, {verdict}")
    return out
