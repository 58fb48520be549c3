"""The metric journal: SIGKILL and outages lose nothing; replays store each point once."""

from __future__ import annotations

import mmap
import os
import signal
import struct
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import plinth
from plinth.testing.tcpproxy import TcpProxy
from plinth.tracking.journal import READY_CHUNK, JournalWriter, OpenJournal


def _pg(schema: str, port: int = 5432) -> str:
    return f"postgresql+psycopg://root@127.0.0.1:{port}/test?options=-csearch_path%3D{schema}"


def test_journal_ignores_a_torn_tail_and_grows(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path, "r" * 36, 0, capacity=4)
    for i in range(10):  # past the initial capacity: the map grows
        writer.append("k", float(i), i, 1000 + i)
    # A record whose body was written but whose marker was not: a writer killed mid-record.
    with open(writer.path, "r+b") as f, mmap.mmap(f.fileno(), 0) as mm:
        struct.pack_into("<Iqqd", mm, 128 + 10 * 32 + 4, 0, 10, 1010, 10.0)
    writer.close(remove=False)
    journal = OpenJournal.try_open(writer.path)
    assert journal is not None
    (records,) = list(journal.records())
    assert [r.value for r in records] == [float(i) for i in range(10)]
    journal.close()


def test_journal_pages_are_written_ahead_of_the_records(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path, "r" * 36, 0)
    # Allocated with pwrite, not first touched through the map (a slow page fault).
    assert os.stat(writer.path).st_blocks * 512 >= 64 << 10
    points = 3 * READY_CHUNK // 32  # across several pwrite chunks and one growth of the map
    for i in range(points):
        writer.append(f"k{i % 3}", float(i), i, 1000 + i)
    assert os.stat(writer.path).st_blocks * 512 >= points * 32
    assert [r.value for r in writer.read(points - 2)] == [float(points - 2), float(points - 1)]
    writer.close(remove=False)
    journal = OpenJournal.try_open(writer.path)
    assert journal is not None
    assert sum(len(batch) for batch in journal.records()) == points
    journal.close()


def test_a_live_journal_cannot_be_taken_over(tmp_path: Path) -> None:
    writer = JournalWriter(tmp_path, "r" * 36, 0)
    assert OpenJournal.try_open(writer.path) is None
    writer.close(remove=False)
    journal = OpenJournal.try_open(writer.path)
    assert journal is not None
    journal.close()


CHILD = textwrap.dedent(
    """
    import mmap, os, struct, sys, plinth
    plinth.init(system_metrics=False)
    progress = open(sys.argv[1], "r+b")
    counter = mmap.mmap(progress.fileno(), 8)
    run = plinth.start_run(experiment="kill")
    print(run.id, flush=True)
    for i in range(100_000):
        run.log_metric("x", float(i), step=i)
        struct.pack_into("<q", counter, 0, i + 1)   # i+1 calls have returned
    run.end()
    """
)


def test_sigkill_loses_no_point_that_was_returned(tmp_path: Path) -> None:
    progress = tmp_path / "progress"
    progress.write_bytes(b"\0" * 8)
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(progress)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    run_id = proc.stdout.readline().strip()
    deadline = time.monotonic() + 60
    while struct.unpack("<q", progress.read_bytes())[0] < 20_000:
        assert time.monotonic() < deadline
        assert proc.poll() is None
        time.sleep(0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()
    returned = struct.unpack("<q", progress.read_bytes())[0]
    assert 20_000 <= returned < 100_000, "the child was killed mid-loop"

    ctx = plinth.init(tmp_path)
    try:
        info = plinth.get_run(run_id)  # ingests the dead process's journal first
        assert info.status == "crashed"
        assert "ended without closing the run" in (info.error or "")
        values = plinth.metric_history(run_id, "x").values
        assert set(range(returned)) <= {int(v) for v in values}
        assert len(values) == len(set(values)), "each point stored once"
        assert not list((tmp_path / ".plinth" / "journals").glob("*.plj"))
        again = plinth.metric_history(run_id, "x").values
        assert again == values
    finally:
        ctx.close()


WRITER = textwrap.dedent(
    """
    import sys, time, plinth
    plinth.init(system_metrics=False)
    while time.time() < float(sys.argv[1]):
        time.sleep(0.001)
    with plinth.start_run(experiment="parallel") as run:
        for i in range(5000):
            run.log_metric("x", float(i))
    print(run.id)
    """
)


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_eight_processes_log_at_once(
    tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PLINTH_")}
    if backend == "postgres":
        env["PLINTH_METADATA"] = _pg(request.getfixturevalue("pg_schema"))
    start = time.time() + 3.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, str(start)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(8)
    ]
    outputs = [p.communicate(timeout=240) for p in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err
        assert "locked" not in err.lower(), err
        assert "warning" not in err.lower(), err
    run_ids = [out.strip() for out, _ in outputs]
    overrides = {"metadata": env["PLINTH_METADATA"]} if backend == "postgres" else {}
    ctx = plinth.init(tmp_path, **overrides)
    try:
        total = 0
        for run_id in run_ids:
            values = plinth.metric_history(run_id, "x").values
            assert values == [float(i) for i in range(5000)]
            total += len(values)
            assert plinth.get_run(run_id).status == "finished"
        assert total == 40_000
    finally:
        ctx.close()


@pytest.mark.postgres
def test_postgres_outage_mid_run_loses_nothing(
    tmp_path: Path, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with TcpProxy(("127.0.0.1", 5432)) as proxy:
        ctx = plinth.init(
            tmp_path, metadata=_pg(pg_schema, proxy.port), system_metrics=False, connect_timeout=1
        )
        try:
            run = plinth.start_run(experiment="outage")
            for i in range(1000):
                run.log_metric("x", float(i), step=i)
            assert run.flush(10)
            proxy.block()  # PostgreSQL "goes down"
            started = time.perf_counter()
            for i in range(1000, 3000):
                run.log_metric("x", float(i), step=i)  # must neither raise nor wait
            assert time.perf_counter() - started < 1.0
            assert not run.flush(1.5), "nothing can reach the ledger while it is down"
            proxy.unblock()
            assert run.flush(30), "points are ingested once the ledger is back"
            run.end()
            values = plinth.metric_history(run.id, "x").values
            assert values == [float(i) for i in range(3000)]
            assert plinth.get_run(run.id).status == "finished"
        finally:
            ctx.close()


@pytest.mark.postgres
def test_run_closed_during_an_outage_is_finished_by_the_next_call(
    tmp_path: Path, pg_schema: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    url_direct = _pg(pg_schema)
    with TcpProxy(("127.0.0.1", 5432)) as proxy:
        ctx = plinth.init(
            tmp_path,
            metadata=_pg(pg_schema, proxy.port),
            system_metrics=False,
            connect_timeout=1,
            flush_timeout=1,
        )
        run = plinth.start_run(experiment="outage")
        proxy.block()
        for i in range(500):
            run.log_metric("x", float(i), step=i)
        run.end()  # cannot reach the ledger: the journal stays on disk
        ctx.close()
    journals = list((tmp_path / ".plinth" / "journals").glob("*.plj"))
    assert len(journals) == 1
    # A later call (another process, in real life) finds the journal of a closed writer.
    ctx = plinth.init(tmp_path, metadata=url_direct)
    try:
        info = plinth.get_run(run.id)
        assert info.status == "finished", "the status recorded at close wins over 'crashed'"
        assert len(plinth.metric_history(run.id, "x")) == 500
        assert not list((tmp_path / ".plinth" / "journals").glob("*.plj"))
    finally:
        ctx.close()
