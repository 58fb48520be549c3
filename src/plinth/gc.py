"""Garbage collection: delete blobs that no ledger record references, and log it.

Safe against writers running at the same time: blobs younger than a grace period are kept
(a writer puts the blob before it records the reference), and the set of referenced digests
is read again just before deleting.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from plinth.context import Context
from plinth.entities import GcEvent

__all__ = ["DEFAULT_GRACE_SECONDS", "GcPlan", "collect_garbage", "plan_gc"]

#: Blobs written in the last hour are never collected (they may be about to be referenced).
DEFAULT_GRACE_SECONDS = 3600.0


@dataclass(frozen=True)
class GcPlan:
    """What ``plinth gc`` would delete."""

    digests: list[str]
    bytes: int
    blobs_total: int
    kept_young: int
    sizes: dict[str, int] = field(default_factory=dict, repr=False)

    @property
    def count(self) -> int:
        return len(self.digests)


def plan_gc(ctx: Context, *, grace_seconds: float = DEFAULT_GRACE_SECONDS) -> GcPlan:
    """Unreferenced blobs older than ``grace_seconds``; nothing is deleted."""
    import time

    cutoff = time.time() - grace_seconds
    blobs = list(ctx.blobs.iter_blobs())  # list before reading references: see module doc
    referenced = ctx.ledger.gc.referenced_digests()
    sizes: dict[str, int] = {}
    young = 0
    for blob in blobs:
        if blob.digest in referenced:
            continue
        if blob.modified > cutoff:
            young += 1
            continue
        sizes[blob.digest] = blob.size
    digests = sorted(sizes)
    return GcPlan(
        digests=digests,
        bytes=sum(sizes.values()),
        blobs_total=len(blobs),
        kept_young=young,
        sizes=sizes,
    )


def collect_garbage(ctx: Context, plan: GcPlan) -> GcEvent:
    """Delete the blobs of ``plan`` that are still unreferenced, logging the event first.

    The event is written before any delete, so no blob ever disappears unlogged.
    """
    referenced = ctx.ledger.gc.referenced_digests()
    doomed = [d for d in plan.digests if d not in referenced]
    event = ctx.ledger.gc.record(
        blobs_deleted=len(doomed),
        bytes_deleted=sum(plan.sizes[d] for d in doomed),
        digests=doomed,
    )
    for digest in doomed:
        ctx.blobs.delete(digest)
    return event
