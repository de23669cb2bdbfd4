"""The conformance suite every log store must pass.

The contract is :class:`schedy.adapters.store.LogStore` (a ``typing.Protocol``): this suite checks that a store
has every method of it, with the protocol's parameters, and that each method means what the protocol says.
Subclass :class:`LogStoreConformance` in test_stores.py and implement
``make_store(tmp_path)`` (a fresh, empty store) and ``reopen(store)`` (a second,
independent handle on the same data, as another process would open it).
"""

import inspect
import subprocess
import sys
import textwrap
from contextlib import nullcontext

import pytest

from schedy.adapters.store import Destination, LogStore, Record, Scan, StoredSnapshot
from schedy.adapters.stream import StreamView
from schedy.core.check import find_double_claims
from schedy.core.codec import Commit, decode_commit, encode_commit
from schedy.core.decide import Decision
from schedy.core.snapshot import commit_crc, encode_snapshot
from schedy.core.state import fold


def record(version, text="x"):
    return encode_commit(Commit(version, float(version), "w", [{"type": "Test", "text": text}]))


CREATE = {
    "type": "ExperimentCreated",
    "format": 1,
    "name": "s",
    "kind": "manual",
    "params": {"scheduler": {"Manual": {}}},
    "status": "RUNNING",
    "seed": 1,
}


def add_job(s, v, now, lapsed):
    return Decision(
        [
            {
                "type": "JobAdded",
                "job": str(s.next_number),
                "hyperparameters": {"v": v},
                "status": "QUEUED",
                "results": {},
            }
        ]
    )


def replay(store: LogStore, key: str):
    """The state of ``key`` folded from commit 1, ignoring every snapshot."""
    records, _ = store.read(key, store.initial_cursor())
    return fold(decode_commit(r) for r in records)


def protocol_methods():
    """The names of LogStore's methods (its data attributes, such as ``snapshot_every``, are not methods)."""
    return sorted(n for n, v in vars(LogStore).items() if inspect.isfunction(v) and not n.startswith("_"))


class LogStoreConformance:
    def make_store(self, tmp_path) -> LogStore:
        raise NotImplementedError

    def reopen(self, store: LogStore) -> LogStore:
        raise NotImplementedError

    def subprocess_store_expr(self, store: LogStore):
        """Python expression that opens this store in another process (None: skip process tests)."""
        return None

    @pytest.fixture
    def store(self, tmp_path) -> LogStore:
        return self.make_store(tmp_path)

    def append(self, store: LogStore, key, cursor, version, text="x"):
        with store.exclusive(key):
            return store.append(key, cursor, version, record(version, text))

    # -- the protocol itself ----------------------------------------------------------------------------------

    def test_the_store_implements_the_log_store_protocol(self, store):
        """Every method of LogStore, taking the protocol's parameters (by name, kind and default); more only with
        a default. ``isinstance`` with a runtime-checkable protocol checks only that the names exist."""
        assert isinstance(store, LogStore)
        assert isinstance(store.snapshot_every, int)
        assert len(protocol_methods()) >= 10  # the protocol is read correctly
        for name in protocol_methods():
            wanted = list(inspect.signature(getattr(LogStore, name)).parameters.values())[1:]  # without self
            given = inspect.signature(getattr(store, name)).parameters
            for p in wanted:
                assert p.name in given, f"{type(store).__name__}.{name} lacks the parameter {p.name!r}"
                q = given[p.name]
                assert q.kind == p.kind, f"{type(store).__name__}.{name}: {p.name!r} is {q.kind}, not {p.kind}"
                assert (q.default is q.empty) == (p.default is p.empty) and (
                    p.default is p.empty or q.default == p.default
                ), f"{type(store).__name__}.{name}: {p.name!r} defaults to {q.default!r}, not {p.default!r}"
            extra = [
                q.name
                for q in given.values()
                if q.name not in {p.name for p in wanted}
                and q.default is q.empty
                and q.kind not in (q.VAR_POSITIONAL, q.VAR_KEYWORD)
            ]
            assert not extra, f"{type(store).__name__}.{name} requires parameters the protocol does not: {extra}"

    def test_exclusive_is_a_nullcontext_exactly_when_writers_race(self, store):
        """StreamView tells a store without a lock by its nullcontext: then a second writer is not kept out."""
        ctx = store.exclusive("s")
        with ctx:
            first = store.append("s", store.initial_cursor(), 1, record(1))
        assert first is not None
        if isinstance(ctx, nullcontext):
            other = self.reopen(store)
            with store.exclusive("s"), other.exclusive("s"):  # two writers at once: nothing holds them apart
                assert other.append("s", first, 2, record(2)) is not None

    def test_an_unknown_stream_is_empty_and_reading_it_creates_nothing(self, store):
        start = store.initial_cursor()
        assert store.read("nothing", start) == ([], start)
        assert store.keys() == []

    def test_appended_records_are_read_back_in_order(self, store):
        cursor = store.initial_cursor()
        for v in range(1, 6):
            cursor = self.append(store, "s", cursor, v, f"r{v}")
            assert cursor is not None
        records, end = store.read("s", store.initial_cursor())
        assert [decode_commit(r).events[0]["text"] for r in records] == [f"r{v}" for v in range(1, 6)]
        assert end == cursor
        assert store.keys() == ["s"]

    def test_appends_left_unsynced_are_read_and_then_synced(self, store):
        """The append loop appends without syncing under the lock, then calls sync(key) after it."""
        cursor = store.initial_cursor()
        for v in range(1, 4):
            with store.exclusive("s"):
                cursor = store.append("s", cursor, v, record(v, f"r{v}"), sync=False)
            store.sync("s", created=v == 1)
        records, end = store.read("s", store.initial_cursor())
        assert [decode_commit(r).events[0]["text"] for r in records] == ["r1", "r2", "r3"] and end == cursor

    def test_reading_from_a_cursor_returns_only_newer_records(self, store):
        c1 = self.append(store, "s", store.initial_cursor(), 1)
        c2 = self.append(store, "s", c1, 2)
        records, end = store.read("s", c1)
        assert [decode_commit(r).version for r in records] == [2] and end == c2
        assert store.read("s", c2) == ([], c2)

    def test_append_at_a_stale_cursor_is_a_conflict_and_writes_nothing(self, store):
        start = store.initial_cursor()
        c1 = self.append(store, "s", start, 1, "first")
        assert self.append(store, "s", start, 1, "second") is None
        records, _ = store.read("s", start)
        assert [decode_commit(r).events[0]["text"] for r in records] == ["first"]
        assert self.append(store, "s", c1, 2) is not None

    def test_another_handle_sees_every_acknowledged_record(self, store):
        cursor = store.initial_cursor()
        for v in range(1, 4):
            cursor = self.append(store, "s", cursor, v)
        other = self.reopen(store)
        records, _ = other.read("s", other.initial_cursor())
        assert [decode_commit(r).version for r in records] == [1, 2, 3]
        assert other.keys() == ["s"]

    def test_streams_are_independent(self, store):
        self.append(store, "a", store.initial_cursor(), 1, "in a")
        self.append(store, "b", store.initial_cursor(), 1, "in b")
        assert store.keys() == ["a", "b"]
        (ra,), _ = store.read("a", store.initial_cursor())
        assert decode_commit(ra).events[0]["text"] == "in a"

    def test_a_writer_alone_takes_the_lock_without_waiting(self, store):
        """``exclusive(key, meanwhile=...)`` is what StreamView calls; ``meanwhile`` is only for waiting writers."""
        calls = []
        with store.exclusive("s", meanwhile=lambda: calls.append(1) or False):
            assert store.append("s", store.initial_cursor(), 1, record(1)) is not None
        assert calls == []
        assert len(store.read("s", store.initial_cursor())[0]) == 1

    def test_the_append_loop_retries_until_it_wins(self, store):
        """Two views on two handles: the stale one catches up and appends the next version."""
        a = StreamView(store, "s", "s", lambda: "a")
        b = StreamView(self.reopen(store), "s", "s", lambda: "b")
        create = {
            "type": "ExperimentCreated",
            "format": 1,
            "name": "s",
            "kind": "manual",
            "params": {"scheduler": {"Manual": {}}},
            "status": "RUNNING",
            "seed": 1,
        }
        a.transact(lambda s, v, now, lapsed: Decision([create]))
        b.refresh()
        add = lambda s, v, now, lapsed: Decision(
            [{"type": "JobAdded", "job": str(s.next_number), "hyperparameters": {}, "status": "QUEUED", "results": {}}]
        )
        a.transact(add)
        b.transact(add)  # b is one commit behind: it must catch up, not overwrite
        assert a.refresh() == b.state
        assert sorted(a.state.jobs) == ["1", "2"]

    def test_processes_appending_concurrently_lose_nothing(self, store):
        expr = self.subprocess_store_expr(store)
        if expr is None:
            pytest.skip("this store lives in one process")
        script = textwrap.dedent(f"""
            import sys
            from schedy.adapters.stream import StreamView
            from schedy.core.decide import Decision
            store = {expr}
            view = StreamView(store, "s", "s", lambda: sys.argv[1])
            for i in range(100):
                view.transact(lambda s, v, now, lapsed: Decision([{{"type": "JobAdded", "job": str(s.next_number),
                    "hyperparameters": {{"w": sys.argv[1], "i": i}}, "status": "QUEUED", "results": {{}}}}]))
        """)
        create = {
            "type": "ExperimentCreated",
            "format": 1,
            "name": "s",
            "kind": "manual",
            "params": {"scheduler": {"Manual": {}}},
            "status": "RUNNING",
            "seed": 1,
        }
        StreamView(store, "s", "s", lambda: "main").transact(lambda s, v, now, lapsed: Decision([create]))
        procs = [subprocess.Popen([sys.executable, "-c", script, f"w{n}"]) for n in range(4)]
        # The timeout only stops a hang: on a loaded machine Azurite took more than 120 s for these 400 commits.
        assert [p.wait(timeout=900) for p in procs] == [0] * 4
        records, _ = self.reopen(store).read("s", store.initial_cursor())
        commits = [decode_commit(r) for r in records]
        assert [c.version for c in commits] == list(range(1, 402))
        seen = {(e["hyperparameters"]["w"], e["hyperparameters"]["i"]) for c in commits[1:] for e in c.events}
        assert seen == {(f"w{n}", i) for n in range(4) for i in range(100)}
        assert find_double_claims(commits) == []

    # -- snapshots: write_snapshot / latest_snapshot / last_record_tail, and the view that uses them --

    def test_a_stream_without_snapshot_has_none(self, store):
        assert store.latest_snapshot("nothing") is None
        self.append(store, "s", store.initial_cursor(), 1)
        assert store.latest_snapshot("s") is None

    def test_the_newest_snapshot_is_returned_to_every_handle(self, store):
        cursor = store.initial_cursor()
        for v in range(1, 5):
            cursor = self.append(store, "s", cursor, v)
        store.write_snapshot("s", 2, b"snapshot at 2\n")
        assert store.latest_snapshot("s") == b"snapshot at 2\n"
        store.write_snapshot("s", 4, b"snapshot at 4\n")
        assert store.latest_snapshot("s") == b"snapshot at 4\n"
        assert self.reopen(store).latest_snapshot("s") == b"snapshot at 4\n"
        assert store.latest_snapshot("other") is None

    def test_snapshots_are_neither_records_nor_streams(self, store):
        c1 = self.append(store, "s", store.initial_cursor(), 1)
        store.write_snapshot("s", 1, b"snapshot\n")
        records, end = store.read("s", store.initial_cursor())
        assert [decode_commit(r).version for r in records] == [1] and end == c1
        assert store.keys() == ["s"]
        assert self.append(store, "s", c1, 2) is not None

    def test_the_tail_of_the_record_at_a_cursor_ends_with_its_crc(self, store):
        cursor, cursors = store.initial_cursor(), []
        for v in range(1, 4):
            cursor = self.append(store, "s", cursor, v, f"text {v}")
            cursors.append(cursor)
        for v, c in enumerate(cursors, 1):
            tail = self.reopen(store).last_record_tail("s", c)
            assert tail[-10:-2] == commit_crc(record(v, f"text {v}")).encode("ascii")
        assert store.last_record_tail("s", store.initial_cursor()) == b""
        assert store.last_record_tail("nothing", cursors[-1]) == b""

    def test_a_view_opens_from_the_newest_snapshot_with_the_state_of_a_full_replay(self, store):
        store.snapshot_every = 3
        writer = StreamView(store, "s", "s", lambda: "w")
        writer.transact(lambda s, v, now, lapsed: Decision([CREATE]))
        for _ in range(7):
            writer.transact(add_job)  # commits 1..8: snapshots at 3 and 6
        other = self.reopen(store)
        latest = other.latest_snapshot("s")
        assert latest is not None and b'"version":6' in latest
        reader = StreamView(other, "s", "s", lambda: "r")
        assert reader.refresh() == replay(other, "s") == writer.state
        assert reader.snapshot == "used"
        assert reader.state.version == 8 and len(reader.state.jobs) == 7

    def test_a_snapshot_that_does_not_match_the_log_is_ignored(self, store, caplog):
        writer = StreamView(store, "s", "s", lambda: "w")
        writer.transact(lambda s, v, now, lapsed: Decision([CREATE]))
        for _ in range(3):
            writer.transact(add_job)
        # A well-formed snapshot of the current state, but naming a commit CRC the log does not hold.
        store.write_snapshot("s", 4, encode_snapshot(writer.state, writer.cursor, "00000000"))
        reader = StreamView(self.reopen(store), "s", "s", lambda: "r")
        with caplog.at_level("WARNING", logger="schedy"):
            assert reader.refresh() == writer.state
        assert reader.snapshot.startswith("ignored")
        assert any(r.name == "schedy" and "snapshot" in r.getMessage() for r in caplog.records)

    # -- verify and repair: scan, snapshot_records, repair_lock, set_aside_records, set_aside_snapshots ------

    def test_an_unknown_stream_scans_as_none(self, store):
        assert store.scan("nothing") is None
        assert store.snapshot_records("nothing") == []

    def test_a_scan_lists_every_record_at_the_cursor_after_it(self, store):
        """A record's position is the cursor a reader has after reading it: what append returned for it."""
        cursor, cursors = store.initial_cursor(), []
        for v in range(1, 5):
            cursor = self.append(store, "s", cursor, v, f"text {v}")
            cursors.append(cursor)
        found = self.reopen(store).scan("s")
        assert isinstance(found, Scan) and found.torn is None and found.strays == []
        assert all(isinstance(r, Record) and isinstance(r.where, str) and r.where for r in found.records)
        assert [r.data for r in found.records] == store.read("s", store.initial_cursor())[0]
        assert [r.position for r in found.records] == cursors
        if found.numbered:
            assert [r.position for r in found.records] == [1, 2, 3, 4]  # the version each record is stored as
        for i, r in enumerate(found.records):
            assert store.last_record_tail("s", r.position) == r.data[-18:]
            assert store.read("s", r.position) == ([x.data for x in found.records[i + 1 :]], cursors[-1])
        assert store.scan("s") == found  # scanning changes nothing

    def test_snapshot_records_lists_the_snapshots_oldest_first(self, store):
        cursor = store.initial_cursor()
        for v in range(1, 5):
            cursor = self.append(store, "s", cursor, v)
        store.write_snapshot("s", 2, b"snapshot at 2\n")
        store.write_snapshot("s", 4, b"snapshot at 4\n")
        found = self.reopen(store).snapshot_records("s")
        assert found and all(isinstance(s, StoredSnapshot) for s in found)
        assert found[-1].data == store.latest_snapshot("s") == b"snapshot at 4\n"
        assert all(isinstance(store.describe_snapshot("s", s.name), str) for s in found)

    def test_repair_sets_records_aside_and_the_log_goes_on_after_the_ones_kept(self, store):
        cursor, cursors = store.initial_cursor(), []
        for v in range(1, 6):
            cursor = self.append(store, "s", cursor, v, f"text {v}")
            cursors.append(cursor)
        self.append(store, "other", store.initial_cursor(), 1)
        found = store.scan("s")
        planned = store.damaged_destination("s", "20000101T000000Z")
        assert store.scan("s") == found, "naming the destination changes nothing"
        with store.repair_lock("s"):
            went = store.set_aside_records("s", found.records[2:], found.torn, found.strays, "20000101T000000Z")
        assert isinstance(went, Destination) and went.where == planned
        other = self.reopen(store)
        records, end = other.read("s", other.initial_cursor())
        assert [decode_commit(r).events[0]["text"] for r in records] == ["text 1", "text 2"] and end == cursors[1]
        rescanned = other.scan("s")
        assert rescanned is not None and rescanned.records == found.records[:2]
        assert len(other.read("other", other.initial_cursor())[0]) == 1  # other streams are untouched
        assert other.keys() == ["other", "s"]  # what was set aside is neither a record nor a stream
        assert self.append(other, "s", cursors[1], 3, "again") is not None

    def test_repair_sets_snapshots_aside_where_readers_no_longer_use_them(self, store):
        cursor = store.initial_cursor()
        for v in range(1, 3):
            cursor = self.append(store, "s", cursor, v)
        store.write_snapshot("s", 2, b"snapshot at 2\n")
        names = [s.name for s in store.snapshot_records("s")]
        with store.repair_lock("s"):
            moved = store.set_aside_snapshots("s", names, "20000101T000000Z")
        assert len(moved) == len(names) and all(isinstance(m, str) and "20000101T000000Z" in m for m in moved)
        assert store.snapshot_records("s") == [] and store.latest_snapshot("s") is None
        assert [decode_commit(r).version for r in store.read("s", store.initial_cursor())[0]] == [1, 2]
