"""The one append loop every log store shares.

A :class:`StreamView` caches the folded state of one stream and the store
cursor after the last commit it read. Every write is
``transact(decide)``: catch up with the log, fold, run the pure decision,
append its events as the next commit; on conflict, catch up and decide again.
"""

import logging
import os
import random
import secrets
import threading
import time
from contextlib import nullcontext

import orjson

from ..core.codec import BadRecord, Commit, decode_commit, encode_commit
from ..core import snapshot as snapshots
from ..core.snapshot import commit_crc, decode_snapshot, encode_snapshot
from ..core.state import apply, fold
from ..errors import ConflictError, CorruptLogError, ReadOnlyError
from .bulk import collector_paused

MAX_ATTEMPTS = 50
log = logging.getLogger("schedy")


class StreamView:
    """The state of one experiment's stream as this process last read it."""

    def __init__(self, store, key, label, worker, clock=time.time):
        self.store, self.key, self.label = store, key, label
        self.worker = worker  # a callable returning the current worker id
        self.clock = clock
        self.state = None
        self.cursor = store.initial_cursor()
        self.snapshot = None  # how opening went: None (no snapshot due), "used", or "ignored: <why>"
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._snapshot_memo = {}  # the encoded blocks of jobs of the last snapshot this view wrote

    def _guard(self):
        if self._pid != os.getpid():  # a lock copied by fork may be held by a thread that no longer exists
            self._lock, self._pid = threading.RLock(), os.getpid()
        return self._lock

    def _commits(self, records, first):
        for version, rec in enumerate(records, first):
            try:
                yield decode_commit(rec)
            except BadRecord as e:
                raise CorruptLogError(
                    f"experiment {self.label!r}: commit {version} is damaged ({e}) in {self.store.describe(self.key)}"
                ) from None

    def _open_from_snapshot(self):
        """Start from the stream's newest snapshot if it checks out; otherwise say why and start from commit 1."""
        try:
            data = self.store.latest_snapshot(self.key)
            if data is None:
                return
            state, cursor, crc = decode_snapshot(data)
            tail = self.store.last_record_tail(self.key, cursor)
            if tail[-10:-2] != crc.encode("ascii"):
                raise BadRecord(f"the log no longer holds commit {state.version} as the snapshot saw it")
        except Exception as e:  # noqa: BLE001 - whatever is wrong with a snapshot, the log is the truth
            self.snapshot = f"ignored: {e}"
            log.warning("experiment %r: snapshot ignored, replaying the whole log (%s)", self.label, e)
            return
        self.state, self.cursor, self.snapshot = state, cursor, "used"

    def refresh(self, observe=None):
        """Read and fold the commits appended since the last read; return the state.

        ``observe``, if given, is called with the list of commits read, before they are folded.
        """
        with self._guard():
            opening = self.state is None and self.cursor == self.store.initial_cursor()
            if opening:
                with collector_paused():
                    self._open_from_snapshot()
            records, cursor = self.store.read(self.key, self.cursor)
            state = self.state
            if records:
                first = state.version + 1 if state else 1
                with collector_paused() if len(records) > 100 else nullcontext():
                    commits = self._commits(records, first)
                    if observe is not None:
                        commits = list(commits)
                        observe(commits)
                    state = fold(commits, state, f"experiment {self.label!r}")
            self.state, self.cursor = state, cursor  # together: an interrupt must not leave one without the other
            if (opening and self.snapshot is None and self.state
                    and self.state.version >= snapshots.interval(self.state, self.store.snapshot_every)):
                self.snapshot = f"ignored: missing (the log has {self.state.version} commits)"
                log.warning("experiment %r: no snapshot found although the log has %d commits; replayed it all",
                            self.label, self.state.version)
            return self.state

    def commits(self):
        """Every commit of the stream, read and decoded afresh (history; the cached state is untouched)."""
        records, _ = self.store.read(self.key, self.store.initial_cursor())
        return list(self._commits(records, 1))

    def transact(self, decide, cached_ok=False):
        """Append the events of ``decide(state, version, now)`` as commit ``version``.

        Return the decision's value and the state right after it (or raise the
        decision's error once its events are written). With ``cached_ok``, a
        decision that writes nothing on the state as last read is taken
        without reading the log first (entering a job this worker just
        claimed costs no request).
        """
        if cached_ok and self.state is not None:
            with self._guard():
                state = self.state
                try:
                    decision = decide(state, state.version + 1, self.clock())
                except Exception:  # noqa: BLE001 - decide again on the fresh log below
                    decision = None
                if decision is not None and not decision.events and decision.error is None:
                    return decision.value, state
        for attempt in range(MAX_ATTEMPTS):
            with self._guard():
                with self.store.exclusive(self.key, meanwhile=self._read_others):
                    state = self.refresh()
                    version = (state.version if state else 0) + 1
                    now = self.clock()
                    decision = decide(state, version, now)
                    if not decision.events:
                        return _outcome(decision), state
                    commit = Commit(version, now, self.worker(), decision.events)
                    new_state = apply(state, commit, f"experiment {self.label!r}")
                    line = encode_commit(commit, token=secrets.token_hex(8))
                    before = self.cursor
                    cursor = self.store.append(self.key, before, version, line, sync=False)
                    if cursor is not None:
                        self.state, self.cursor = new_state, cursor
                if cursor is not None:
                    # Synced after the lock is released, so that other writers append meanwhile and one
                    # sync can cover several commits; the caller hears of the commit only once it is durable.
                    created = before == self.store.initial_cursor()
                    if decision.durable or created:
                        self.store.sync(self.key, created)
                    if snapshots.due(new_state, self.store.snapshot_every):
                        self._write_snapshot(new_state, cursor, line)
                    return _outcome(decision), new_state
            if attempt:  # a lost race means another writer progressed: retry at once, then back off with jitter
                time.sleep(random.uniform(0, min(1.0, 0.002 * 2**attempt)))
        raise ConflictError(
            f"experiment {self.label!r}: gave up after {MAX_ATTEMPTS} attempts lost to concurrent writers; nothing was written"
        )

    def _read_others(self):
        """Fold the commits other writers appended since the last read (while waiting for the lock); True if any."""
        before = self.state
        try:
            return self.refresh() is not before
        except Exception:  # noqa: BLE001 - e.g. a damaged line the lock's holder (schedy repair) is cutting off
            return False  # the read under the lock decides, and raises if the log is still wrong

    def _write_snapshot(self, state, cursor, line):
        # A snapshot only saves time: failing to write one must not fail the commit it follows.
        try:
            with collector_paused():
                data = encode_snapshot(state, cursor, commit_crc(line), self._snapshot_memo)
            self.store.write_snapshot(self.key, state.version, data)
        except Exception as e:  # noqa: BLE001
            log.warning("experiment %r: could not write a snapshot at commit %d (%s)", self.label, state.version, e)


def _outcome(decision):
    if decision.error is not None:
        raise decision.error
    return decision.value


class FrozenView:
    """A stream as it was at one moment of its log: reads return that state, writes raise ReadOnlyError."""

    def __init__(self, label, state, commits, moment):
        self.label, self.state, self.moment = label, state, moment
        self._commits = tuple(commits)
        self.snapshot = None

    def refresh(self):
        return self.state

    def commits(self):
        # Copies: the frozen state shares its values with these commits' events, and a caller may change them.
        return [c._replace(events=orjson.loads(orjson.dumps(c.events))) for c in self._commits]

    def transact(self, decide, cached_ok=False):
        raise ReadOnlyError(f"experiment {self.label!r} as of {self.moment} is a read-only view of the past; "
                            f"open it without as_of to change it")
