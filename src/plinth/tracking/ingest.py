"""Moving journaled metric points into the ledger: a background thread, and recovery.

The :class:`Ingester` thread of a live run copies new journal records into the ledger in
batches. When the ledger is unreachable it logs one warning, keeps the points in the journal
and retries with back-off; training never sees an exception. Re-ingesting is harmless: the
ledger stores each ``(run, seq)`` once.

:func:`recover_journals` is called by later plinth calls on the same machine: it ingests the
journals of processes that are gone and closes their runs — with the status the process
recorded when it closed the run, or ``crashed`` when it died without closing it.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from plinth.entities import MetricPoint
from plinth.errors import NotFoundError
from plinth.tracking.deferred import Deferred, call_later
from plinth.tracking.journal import (
    JOURNAL_SUFFIX,
    SLOT_BITS,
    JournalRecord,
    JournalWriter,
    OpenJournal,
    parse_journal_name,
)

if TYPE_CHECKING:
    from plinth.context import Context
    from plinth.ledger import Ledger

__all__ = [
    "Ingester",
    "RecoveredRun",
    "journal_dir",
    "journal_points",
    "recover_journals",
    "write_end_marker",
]

log = logging.getLogger("plinth.tracking")

BATCH = 50_000


def journal_dir(ctx: Context) -> Path:
    return ctx.settings.data_dir / "journals"


def _points(slot: int, records: Sequence[JournalRecord]) -> list[MetricPoint]:
    base = slot << SLOT_BITS
    return [MetricPoint(r.key, r.value, r.step, r.timestamp, base | r.index) for r in records]


class Ingester(threading.Thread):
    """Copies a live journal into the ledger every ``interval`` seconds, or when asked.

    :meth:`start_soon` starts the thread only once it has something to do (a pending
    ``job``, the first ``interval`` elapsed, or a :meth:`flush`): a run ended before that
    never starts it, and its end stores every point itself.
    """

    def __init__(
        self,
        ledger: Callable[[], Ledger],
        writer: JournalWriter,
        *,
        interval: float = 0.5,
        job: Callable[[], bool] | None = None,
    ):
        """``job``, if given, runs first and again each cycle until it returns True."""
        super().__init__(name=f"plinth-ingest-{writer.run_id[:8]}", daemon=True)
        self._ledger = ledger
        self._writer = writer
        self._interval = interval
        self._wake = threading.Event()
        self._done = threading.Condition()
        self._stop_requested = False
        self._halt = False
        self._job = job
        self._failing_since: float | None = None
        self._start_lock = threading.Lock()
        self._deferred: Deferred | None = None
        self._launched = False
        self.ingested = 0
        self.last_error: BaseException | None = None

    def start_soon(self) -> None:
        """Start the thread now when a job waits, else after ``interval`` seconds."""
        if self._job is not None:
            self.start_now()
        else:
            self._deferred = call_later(self._interval, self.start_now)

    def start_now(self) -> None:
        """Start the thread unless it was started or halted already."""
        with self._start_lock:
            if self._halt or self._launched:
                return
            self._launched = True
            self._wake.set()  # started late: there may be points to ingest at once
            self.start()

    def run(self) -> None:
        backoff = self._interval
        while True:
            if self._job is not None and not self._halt and self._job():
                self._job = None
            self._wake.wait(backoff)
            self._wake.clear()
            if self._halt:
                return
            ok = self.ingest_pending()
            backoff = self._interval if ok else min(backoff * 2, 30.0)
            if self._stop_requested and (ok or self._writer.count == self.ingested):
                return

    def ingest_pending(self) -> bool:
        """Ingest what is committed now; False (after a warning) when the ledger fails."""
        target = self._writer.count
        try:
            while self.ingested < target:
                stop = min(target, self.ingested + BATCH)
                records = self._writer.read(self.ingested, stop)
                self._ledger().runs.log_metrics(
                    self._writer.run_id, _points(self._writer.slot, records)
                )
                self.ingested = stop
                self._writer.mark_ingested(stop)
        except Exception as exc:  # any ledger failure: keep the points, retry later
            self.last_error = exc
            if self._failing_since is None:
                self._failing_since = time.monotonic()
                log.warning(
                    "plinth: cannot write metrics of run %s to the ledger (%s); they are kept "
                    "in %s and will be ingested when it is back",
                    self._writer.run_id,
                    exc,
                    self._writer.path,
                )
            return False
        finally:
            with self._done:
                self._done.notify_all()
        if self._failing_since is not None:
            log.warning(
                "plinth: ledger reachable again; metrics of run %s ingested", self._writer.run_id
            )
            self._failing_since = None
        return True

    def flush(self, timeout: float) -> bool:
        """Wait until every point committed so far is in the ledger; False on timeout."""
        target = self._writer.count
        deadline = time.monotonic() + timeout
        if self.ingested < target:
            self.start_now()
        with self._done:
            while self.ingested < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self.is_alive():
                    return self.ingested >= target
                self._wake.set()
                self._done.wait(min(remaining, 0.25))
        return True

    def stop(self, timeout: float) -> bool:
        """Flush within ``timeout`` seconds and stop the thread; True when all was ingested."""
        flushed = self.flush(timeout)
        self._stop_requested = True
        self._wake.set()
        with self._start_lock:
            launched = self._launched
            if not launched:  # never needed: it never will be
                self._halt = True
        if self._deferred is not None and not launched:
            self._deferred.cancel()
        if launched:
            self.join(timeout=max(0.1, min(timeout, 5.0)))
        return flushed and self.ingested >= self._writer.count

    def halt(self, timeout: float) -> bool:
        """Stop the thread without a last ingest (its caller ingests the rest); True once it
        has stopped, False if it is still busy in the ledger after ``timeout`` seconds."""
        with self._start_lock:
            self._halt = True
        if self._deferred is not None:
            self._deferred.cancel()
        self._wake.set()
        if self.is_alive():
            self.join(timeout=timeout)
        return not self.is_alive()


def journal_points(writer: JournalWriter, start: int, stop: int) -> list[MetricPoint]:
    """The ledger points of a live journal's records ``start`` up to ``stop``."""
    return _points(writer.slot, writer.read(start, stop))


@dataclass(frozen=True)
class RecoveredRun:
    run_id: str
    points: int
    status: str | None


def write_end_marker(
    writer: JournalWriter,
    status: str,
    error: str | None,
    end_time: int,
    source: dict[str, Any] | None = None,
) -> None:
    """Record how the run ended (and its source, if not stored yet), for recovery when the
    ledger could not be told."""
    tmp = writer.end_path.with_name(writer.end_path.name + ".tmp")
    end = {"status": status, "error": error, "end_time": end_time, "source": source}
    tmp.write_text(json.dumps(end))
    os.replace(tmp, writer.end_path)


def recover_journals(ctx: Context) -> list[RecoveredRun]:
    """Ingest journals left by dead processes on this machine and close their runs."""
    folder = journal_dir(ctx)
    try:
        names = [e.name for e in os.scandir(folder) if e.name.endswith(JOURNAL_SUFFIX)]
    except FileNotFoundError:
        return []
    host = socket.gethostname().replace(".", "_")
    recovered = []
    for name in sorted(names):
        parsed = parse_journal_name(name)
        if parsed is None or parsed[2] != host:
            continue
        journal = OpenJournal.try_open(folder / name)
        if journal is None:  # its writer is alive
            continue
        try:
            recovered.append(_recover_one(ctx, journal, parsed[3]))
        except NotFoundError:
            log.warning("plinth: journal %s belongs to a run this ledger does not have", name)
        except Exception as exc:
            log.warning("plinth: could not recover journal %s yet: %s", name, exc)
        finally:
            journal.close()
    return recovered


def _recover_one(ctx: Context, journal: OpenJournal, pid: int) -> RecoveredRun:
    runs = ctx.ledger.runs
    run = runs.get_run(journal.run_id)
    count = journal.ingested
    points = 0
    for records in journal.records():
        runs.log_metrics(journal.run_id, _points(journal.slot, records))
        count = records[-1].index + 1
        points += len(records)
        journal.mark_ingested(count)
    end: dict[str, Any] | None = None
    if journal.end_path.exists():
        end = json.loads(journal.end_path.read_text())
    status = None
    if run.status == "running":
        if end is not None:
            status = str(end["status"])
            runs.finish(
                run.id,
                status,
                error=end.get("error"),
                end_time=end.get("end_time"),
                source=end.get("source"),
            )
        else:
            status = "crashed"
            last_write = int(journal.path.stat().st_mtime * 1000)
            runs.set_status(
                run.id,
                status,
                error=f"process {pid} on {socket.gethostname()} ended without closing the run",
                end_time=max(last_write, run.start_time),
            )
    journal.remove()
    return RecoveredRun(run.id, points, status)
