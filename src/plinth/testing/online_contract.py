"""The contract every :class:`OnlineStore` must pass, for plinth's backends and plugins alike.

Subclass :class:`OnlineStoreContract` in a test module and provide an ``open_online``
fixture: a callable that opens the same, initially empty store each time it is called (the
contract reopens it to check that writes persist) and that closes and removes what it
opened when the test ends::

    import pytest
    from plinth.testing.online_contract import OnlineStoreContract

    class TestMyStore(OnlineStoreContract):
        @pytest.fixture
        def open_online(self, tmp_path):
            yield lambda: MyOnlineStore(tmp_path / "online")
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from plinth.errors import UsageError
from plinth.storage.online import OnlineRow, OnlineStore, encode_key

__all__ = ["OnlineStoreContract", "redis_unreachable"]

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
MS = timedelta(milliseconds=1)
FEATURES = {
    "temp": "float64",
    "count": "int64",
    "station": "string",
    "open": "bool",
    "seen": "timestamp",
}


def _row(key: object, ts: datetime, **values: object) -> OnlineRow:
    return OnlineRow(key, values, ts)  # type: ignore[arg-type]


class OnlineStoreContract:
    """Behaviour a user relies on, whatever backend serves their features."""

    @pytest.fixture
    def online(self, open_online: Callable[[], OnlineStore]) -> OnlineStore:
        return open_online()

    # -- typed values, columns, missing keys ----------------------------------------------

    def test_write_then_read_typed_columns_in_key_order(self, online: OnlineStore) -> None:
        seen = datetime(2026, 2, 28, 8, 30, 15, 123456, tzinfo=UTC)
        rows = [
            _row(("JFK",), T0, temp=21.5, count=3, station="north", open=True, seen=seen),
            _row(("LGA",), T0, temp=-4.0, count=-(2**62), station="é|\"'{", open=False),
        ]
        assert online.write("weather", rows, FEATURES) == 2
        got = online.read("weather", [("LGA",), ("EWR",), ("JFK",)], FEATURES)
        assert got == {
            "temp": [-4.0, None, 21.5],
            "count": [-(2**62), None, 3],
            "station": ["é|\"'{", None, "north"],
            "open": [False, None, True],
            "seen": [None, None, seen],
        }
        assert type(got["temp"][0]) is float
        assert type(got["count"][2]) is int
        assert got["seen"][2].tzinfo is not None

    def test_read_a_subset_of_features_and_unknown_ones_are_missing(
        self, online: OnlineStore
    ) -> None:
        online.write("v", [_row("a", T0, temp=1.0, count=2)], FEATURES)
        assert online.read("v", ["a"], {"count": "int64"}) == {"count": [2]}
        assert online.read("v", ["a"], {"added_later": "string"}) == {"added_later": [None]}

    def test_nulls_and_absent_features_read_as_none(self, online: OnlineStore) -> None:
        online.write("v", [_row(1, T0, temp=None, station="s")], FEATURES)
        got = online.read("v", [1], FEATURES)
        assert got["temp"] == [None]
        assert got["count"] == [None]
        assert got["station"] == ["s"]

    def test_float_edge_values_round_trip(self, online: OnlineStore) -> None:
        values = [0.1 + 0.2, -0.0, 1e308, 5e-324, math.inf, -math.inf]
        online.write("f", [_row(i, T0, temp=v) for i, v in enumerate(values)], FEATURES)
        got = online.read("f", list(range(len(values))), {"temp": "float64"})["temp"]
        assert got == values
        assert math.copysign(1.0, got[1]) == -1.0
        online.write("f", [_row(99, T0, temp=float("nan"), count=7)], FEATURES)
        nan = online.read("f", [99], FEATURES)
        assert math.isnan(nan["temp"][0])
        assert nan["count"] == [7]

    def test_an_int_is_accepted_as_float64(self, online: OnlineStore) -> None:
        online.write("f", [_row(1, T0, temp=3)], FEATURES)
        [value] = online.read("f", [1], FEATURES)["temp"]
        assert value == 3.0
        assert type(value) is float

    def test_no_keys_reads_empty_columns(self, online: OnlineStore) -> None:
        assert online.read("v", [], FEATURES) == {name: [] for name in FEATURES}

    # -- entity keys ------------------------------------------------------------------------

    def test_compound_keys_and_int_vs_string_are_distinct(self, online: OnlineStore) -> None:
        rows = [
            _row((1, "AA"), T0, count=1),
            _row(("1", "AA"), T0, count=2),
            _row((1, "AA", 0), T0, count=3),
            _row(1, T0, count=4),
        ]
        online.write("k", rows, FEATURES)
        keys: list[Any] = [(1, "AA"), ("1", "AA"), (1, "AA", 0), (1,), 1, ("AA", 1)]
        assert online.read("k", keys, {"count": "int64"}) == {"count": [1, 2, 3, 4, 4, None]}

    @pytest.mark.parametrize("bad", [1.5, True, None, (), ("a", None), 2**64, b"x"])
    def test_bad_entity_keys_are_refused(self, online: OnlineStore, bad: object) -> None:
        with pytest.raises(UsageError, match="key"):
            online.write("k", [_row(bad, T0, count=1)], FEATURES)
        with pytest.raises(UsageError, match="key"):
            online.read("k", [bad], FEATURES)  # type: ignore[list-item]

    def test_many_keys_in_one_read_with_duplicates(self, online: OnlineStore) -> None:
        online.write("m", [_row(i, T0, count=i * 10) for i in range(0, 1500, 2)], FEATURES)
        keys = [*range(1500), 4, 4]
        got = online.read("m", keys, {"count": "int64"})["count"]
        assert got == [k * 10 if k % 2 == 0 else None for k in keys]

    # -- last writer wins by event time, idempotent ----------------------------------------

    def test_an_older_event_never_overwrites_a_newer_one(self, online: OnlineStore) -> None:
        online.write("lww", [_row("a", T0, count=2)], FEATURES)
        online.write("lww", [_row("a", T0 - timedelta(microseconds=1), count=1)], FEATURES)
        assert online.read("lww", ["a"], FEATURES)["count"] == [2]
        online.write("lww", [_row("a", T0 + timedelta(microseconds=1), count=3)], FEATURES)
        assert online.read("lww", ["a"], FEATURES)["count"] == [3]

    def test_within_a_batch_the_newest_event_wins_whatever_the_order(
        self, online: OnlineStore
    ) -> None:
        rows = [
            _row("a", T0 + timedelta(hours=1), count=2),
            _row("a", T0, count=1),
            _row("b", T0, count=1),
            _row("b", T0 + timedelta(hours=1), count=2),
        ]
        online.write("lww", rows, FEATURES)
        assert online.read("lww", ["a", "b"], FEATURES)["count"] == [2, 2]

    def test_an_equal_event_time_replaces_and_rewrites_change_nothing(
        self, online: OnlineStore
    ) -> None:
        online.write("lww", [_row("a", T0, count=1, station="x")], FEATURES)
        online.write("lww", [_row("a", T0, count=5)], FEATURES)
        once = online.read("lww", ["a"], FEATURES)
        assert once["count"] == [5]
        assert once["station"] == [None]  # the whole entry is replaced, not merged
        for _ in range(2):
            online.write("lww", [_row("a", T0, count=5)], FEATURES)
        assert online.read("lww", ["a"], FEATURES) == once

    def test_time_zones_are_the_same_instant(self, online: OnlineStore) -> None:
        paris = timezone(timedelta(hours=1))
        online.write("tz", [_row("a", T0, count=1)], FEATURES)
        # 12:30 in Paris is 11:30 UTC: older than T0, so it does not replace it.
        online.write(
            "tz", [_row("a", T0.replace(hour=12, minute=30, tzinfo=paris), count=2)], FEATURES
        )
        assert online.read("tz", ["a"], FEATURES)["count"] == [1]
        naive = datetime(2026, 3, 1, 12, 0, 1)  # taken as UTC: one second after T0
        online.write("tz", [_row("a", naive, count=3, seen=naive)], FEATURES)
        got = online.read("tz", ["a"], FEATURES)
        assert got["count"] == [3]
        assert got["seen"] == [naive.replace(tzinfo=UTC)]

    def test_concurrent_writers_keep_the_newest_event(self, online: OnlineStore) -> None:
        def writer(hour: int) -> None:
            for _ in range(5):
                online.write("race", [_row("k", T0 + timedelta(hours=hour), count=hour)], FEATURES)

        threads = [threading.Thread(target=writer, args=(h,)) for h in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert online.read("race", ["k"], FEATURES)["count"] == [7]

    # -- TTL at read --------------------------------------------------------------------------

    def test_ttl_makes_old_values_missing_and_the_boundary_is_inclusive(
        self, online: OnlineStore
    ) -> None:
        ttl = timedelta(days=7)
        now = T0 + ttl
        rows = [
            _row("edge", T0, count=1),  # exactly now - ttl: present
            _row("old", T0 - timedelta(microseconds=1), count=2),  # just older: missing
            _row("fresh", now, count=3),
        ]
        online.write("ttl", rows, FEATURES)
        keys = ["edge", "old", "fresh"]
        assert online.read("ttl", keys, FEATURES, ttl=ttl, now=now)["count"] == [1, None, 3]
        # every column of an expired key is missing, not only some
        assert online.read("ttl", ["old"], FEATURES, ttl=ttl, now=now) == {
            name: [None] for name in FEATURES
        }
        assert online.read("ttl", keys, FEATURES)["count"] == [1, 2, 3]  # no ttl: never expires

    def test_ttl_defaults_to_the_current_time(self, online: OnlineStore) -> None:
        recent = datetime.now(UTC) - timedelta(minutes=1)
        online.write("ttl", [_row("new", recent, count=1), _row("old", T0, count=2)], FEATURES)
        got = online.read("ttl", ["new", "old"], FEATURES, ttl=timedelta(hours=1))
        assert got["count"] == [1, None]

    def test_a_negative_ttl_is_refused(self, online: OnlineStore) -> None:
        with pytest.raises(UsageError, match="ttl"):
            online.read("ttl", ["a"], FEATURES, ttl=timedelta(seconds=-1))

    # -- views, deletion, persistence -------------------------------------------------------

    def test_views_are_independent_and_delete_view_removes_only_one(
        self, online: OnlineStore
    ) -> None:
        online.write("a", [_row("k", T0, count=1)], FEATURES)
        online.write("a.b", [_row("k", T0, count=2)], FEATURES)
        online.write("a-b", [_row("k", T0, count=3)], FEATURES)
        online.delete_view("a")
        online.delete_view("never-written")
        assert online.read("a", ["k"], FEATURES)["count"] == [None]
        assert online.read("a.b", ["k"], FEATURES)["count"] == [2]
        assert online.read("a-b", ["k"], FEATURES)["count"] == [3]
        online.write("a", [_row("k", T0 - timedelta(days=1), count=4)], FEATURES)
        assert online.read("a", ["k"], FEATURES)["count"] == [4]  # deleted: an older event fits

    def test_writes_persist_across_reopening(
        self, open_online: Callable[[], OnlineStore], online: OnlineStore
    ) -> None:
        online.write("p", [_row("k", T0, station="kept")], FEATURES)
        online.close()
        with open_online() as again:
            assert again.read("p", ["k"], FEATURES)["station"] == ["kept"]
            again.check()

    # -- refusals: nothing is written ------------------------------------------------------

    @pytest.mark.parametrize(
        ("values", "field"),
        [
            ({"count": 1.5}, "features.count"),
            ({"count": True}, "features.count"),
            ({"count": 2**63}, "features.count"),
            ({"temp": "1.0"}, "features.temp"),
            ({"open": 1}, "features.open"),
            ({"station": 5}, "features.station"),
            ({"seen": "2026-01-01"}, "features.seen"),
            ({"nope": 1}, "features.nope"),
        ],
    )
    def test_a_bad_value_refuses_the_whole_batch(
        self, online: OnlineStore, values: dict[str, object], field: str
    ) -> None:
        rows = [_row("good", T0, count=1), _row("bad", T0, **values)]
        with pytest.raises(UsageError) as info:
            online.write("bad", rows, FEATURES)
        assert info.value.field == field
        assert online.read("bad", ["good"], FEATURES)["count"] == [None]

    @pytest.mark.parametrize("view", ["", "a:b", "a*", "../x", "-a", "a b", "a\n"])
    def test_bad_view_names_are_refused(self, online: OnlineStore, view: str) -> None:
        with pytest.raises(UsageError, match="view"):
            online.write(view, [_row("k", T0, count=1)], FEATURES)
        with pytest.raises(UsageError, match="view"):
            online.read(view, ["k"], FEATURES)
        with pytest.raises(UsageError, match="view"):
            online.delete_view(view)

    def test_unknown_types_and_bad_timestamps_are_refused(self, online: OnlineStore) -> None:
        with pytest.raises(UsageError, match="unknown type 'float32'"):
            online.write("v", [_row("k", T0, x=1.0)], {"x": "float32"})
        with pytest.raises(UsageError, match="event_timestamp"):
            online.write("v", [_row("k", "2026-01-01", count=1)], FEATURES)  # type: ignore[arg-type]
        with pytest.raises(UsageError, match="row"):
            online.write("v", [("k", {"count": 1})], FEATURES)  # type: ignore[list-item]

    # -- column batches: the same entries as row batches -----------------------------------

    def test_write_columns_stores_what_write_stores(self, online: OnlineStore) -> None:
        import pyarrow as pa

        floats = [0.1 + 0.2, -0.0, 1e308, 5e-324, math.inf, -math.inf, math.nan, None, 3.0]
        n = len(floats)
        columns: dict[str, Any] = {
            "temp": pa.array(floats, pa.float64()),
            "count": pa.array([None if i % 3 == 0 else i * 2**40 - 2**62 for i in range(n)]),
            "station": pa.chunked_array(
                [[None, "é|\"'{\n\x01\\"], [f"s{i}" if i % 2 else None for i in range(2, n)]]
            ),
            "open": pa.array([i % 2 == 0 for i in range(n)]),
            "seen": pa.array(
                [T0 - timedelta(days=40_000, microseconds=i) for i in range(n)],
                pa.timestamp("us", "UTC"),
            ),
        }
        keys = [pa.array([i % 4 for i in range(n)]), pa.array(["a", 'b"', "ü"] * 3)]
        events = [T0 + timedelta(microseconds=i % 2) for i in range(n)]
        assert online.write_columns("cols", keys, columns, pa.array(events), FEATURES) == n
        rows = [
            OnlineRow(
                (i % 4, ["a", 'b"', "ü"][i % 3]),
                {name: column[i].as_py() for name, column in columns.items()},
                events[i],
            )
            for i in range(n)
        ]
        assert online.write("rows", rows, FEATURES) == n
        wanted = [row.key for row in rows]
        got = online.read("cols", wanted, FEATURES)
        assert repr(got) == repr(online.read("rows", wanted, FEATURES))  # NaN == NaN, -0.0
        assert got["station"][1] == "é|\"'{\n\x01\\"
        texts = [encode_key(key) for key in wanted]
        assert online._get("cols", texts) == online._get("rows", texts)  # the stored form

    def test_write_columns_from_python_sequences_and_other_arrow_types(
        self, online: OnlineStore
    ) -> None:
        import pyarrow as pa

        micros = [1_772_366_400_000_000, 1_772_366_400_000_001]  # T0 and 1 us later
        naive = [datetime(2026, 3, 1, 12), datetime(2026, 3, 1, 12, 0, 0, 1)]
        columns: dict[str, Any] = {
            "temp": pa.array([1, None], pa.int8()),  # an int is accepted as float64
            "count": [3, float("nan")],  # NaN outside float64 is null, as in write
            "station": pa.array(["x", "y"]).dictionary_encode(),
            "seen": pa.array([naive[0], naive[0] + MS], pa.timestamp("ms")),  # naive: UTC
        }
        online.write_columns("seq", [["k1", "k2"]], columns, micros, FEATURES)
        assert online.read("seq", ["k1", "k2"], FEATURES) == {
            "temp": [1.0, None],
            "count": [3, None],
            "station": ["x", "y"],
            "open": [None, None],
            "seen": [T0, T0 + MS],
        }
        assert type(online.read("seq", ["k1"], FEATURES)["temp"][0]) is float
        # The event times as given, whatever their form: T0 is just expired at T0 + 1 us.
        counts = {"count": [5, 6]}
        online.write_columns("seq2", [pa.array([1, 2], pa.uint8())], counts, naive, FEATURES)
        online.write_columns("seq3", [[1, 2]], counts, pa.array(micros), FEATURES)
        later = T0 + timedelta(microseconds=1)
        for view in ("seq", "seq2", "seq3"):
            keys: list[Any] = ["k1", "k2"] if view == "seq" else [1, 2]
            got = online.read(view, keys, {"station": "string", "count": "int64"},
                              ttl=timedelta(0), now=later)  # fmt: skip
            assert got == {
                "station": [None, "y" if view == "seq" else None],
                "count": [None, None if view == "seq" else 6],
            }

    def test_write_columns_keeps_the_newest_event(self, online: OnlineStore) -> None:
        import pyarrow as pa

        online.write("lww", [_row("a", T0, count=2), _row("c", T0, count=2)], FEATURES)
        hour = timedelta(hours=1)
        online.write_columns(
            "lww",
            [pa.array(["a", "b", "b", "c", "c"])],
            {"count": pa.array([1, 2, 1, 3, 4])},
            pa.array([T0 - hour, T0 + hour, T0, T0, T0]),
            FEATURES,
        )
        # a: older than stored; b: newest in the batch wins; c: equal replaces, in order
        assert online.read("lww", ["a", "b", "c"], FEATURES)["count"] == [2, 2, 4]

    @pytest.mark.parametrize(
        ("name", "column", "field"),
        [
            ("count", [1, 1.5], "features.count"),
            ("count", "float64-array", "features.count"),
            ("count", [1, True], "features.count"),
            ("count", "uint64-too-big", "features.count"),
            ("temp", ["1.0", "2.0"], "features.temp"),
            ("temp", "bool-array", "features.temp"),
            ("open", [True, 1], "features.open"),
            ("station", "int-array", "features.station"),
            ("seen", ["2026-01-01", None], "features.seen"),
            ("nope", [1, 2], "features.nope"),
            ("count", [1, 2, 3], "features.count"),  # one value too many
        ],
    )
    def test_write_columns_refuses_the_whole_batch(
        self, online: OnlineStore, name: str, column: Any, field: str
    ) -> None:
        import pyarrow as pa

        arrays = {
            "float64-array": pa.array([1.0, 2.5]),
            "uint64-too-big": pa.array([1, 2**63], pa.uint64()),
            "bool-array": pa.array([True, False]),
            "int-array": pa.array([1, 2]),
        }
        given = arrays.get(column, column) if isinstance(column, str) else column
        with pytest.raises(UsageError) as info:
            online.write_columns("bad", [["good", "bad"]], {name: given}, [T0, T0], FEATURES)
        assert info.value.field == field
        assert online.read("bad", ["good"], FEATURES)["count"] == [None]

    @pytest.mark.parametrize(
        ("keys", "arrow_type"),
        [
            ([[1.5, 2.5]], "float64"),
            ([[1, None]], "int64"),
            ([["a", None]], "string"),
            ([[True, False]], "bool_"),
            ([[1, 2**64 - 1]], "uint64"),
            ([["a"]], "string"),  # one key for two rows
            ([], None),
            ("ab", None),
        ],
    )
    def test_write_columns_refuses_bad_keys(
        self, online: OnlineStore, keys: Any, arrow_type: str | None
    ) -> None:
        import pyarrow as pa

        tries = [keys]
        if arrow_type is not None:
            tries.append([pa.array(k, getattr(pa, arrow_type)()) for k in keys])
        for given in tries:
            with pytest.raises(UsageError, match="key") as info:
                online.write_columns("k", given, {"count": [1, 2]}, [T0, T0], FEATURES)
            assert info.value.field == "key"
        assert online.read("k", [1, "a"], FEATURES)["count"] == [None, None]

    def test_write_columns_refuses_bad_event_times(self, online: OnlineStore) -> None:
        import pyarrow as pa

        for events in (["2026-01-01"], [None], pa.array([None], pa.timestamp("us")), [True]):
            with pytest.raises(UsageError, match="event_timestamp"):
                online.write_columns("e", [["k"]], {"count": [1]}, events, FEATURES)
        with pytest.raises(UsageError, match="unknown type"):
            online.write_columns("e", [["k"]], {}, [T0], {"x": "float32"})
        with pytest.raises(UsageError, match="view"):
            online.write_columns("a:b", [["k"]], {}, [T0], FEATURES)
        assert online.write_columns("e", [[]], {"count": []}, [], FEATURES) == 0
        assert online.read("e", ["k"], FEATURES)["count"] == [None]

    def test_describe_names_the_store(self, online: OnlineStore) -> None:
        assert online.describe()
        assert online.describe() in repr(online)


def redis_unreachable(uri: str) -> str | None:
    """Why the Redis at ``uri`` cannot be used for the Redis runs of the contract (None when
    it answers a PING); skips the calling test when redis-py is not installed."""
    redis = pytest.importorskip("redis", reason="redis-py is not installed (the 'redis' extra)")
    client = redis.Redis.from_url(uri, socket_connect_timeout=1)
    try:
        client.ping()
    except redis.RedisError as exc:
        return f"Redis is unreachable at {uri}: {exc}"
    finally:
        client.close()
    return None
