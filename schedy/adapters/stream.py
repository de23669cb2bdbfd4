"""The one append loop every log store shares.

A :class:`StreamView` caches the folded state of one stream and the store
cursor after the last commit it read. Every write is
``transact(decide)``: catch up with the log, fold, run the pure decision,
append its events as the next commit; on conflict, catch up and decide again
(on a store without a lock, after the waits :class:`Backoff` sets).
"""

import logging
import os
import random
import secrets
import threading
import time
from collections import deque
from contextlib import nullcontext
from functools import partial

import orjson

from ..core import leases
from ..core import snapshot as snapshots
from ..core.codec import BadRecord, Commit, decode_commit, encode_commit
from ..core.snapshot import commit_crc, decode_snapshot, encode_snapshot
from ..core.state import apply, fold
from ..errors import ConflictError, CorruptLogError, ReadOnlyError
from .bulk import collector_paused
from .store import LogStore

log = logging.getLogger("schedy")

# Retrying after a lost race (stores without a lock: object storage). See Backoff and docs/object-storage.md.
LONGEST_WAIT = 1.0  # seconds: no single wait of the retry loop (backoff or courtesy) is longer
GIVE_UP_AFTER = 300.0  # seconds: a call still losing races this long after its first try raises ConflictError


class Backoff:
    """How a writer on a store without a lock shares the log with writers that race it for the next commit.

    Each :class:`StreamView` has one; :meth:`StreamView.transact` consults it only on a store whose
    ``exclusive()`` holds nothing (object storage): on the file store, whose lock makes writers queue
    instead of race, nothing here runs. Waits are counted in *attempts*, the running mean of how long
    one read-decide-put attempt of this writer takes (about two requests), so that the policy needs no
    tuning per store. The writer remembers who wrote the last ``window`` commits it read or wrote;
    ``n`` is the number of other writers among them.

    * **A loser tries again at once** (it has just read the winning commit), then after a random wait of
      up to ``loser`` x (n + 1) attempts. The wait does not grow with the number of races lost in a
      row, so a writer that keeps losing is not pushed further back than the others.
    * **A writer over its share makes way.** Without this, a writer in a tight loop is always one read
      ahead of the writers it beat, and wins every race. So a writer in a tight loop (its last two
      writes each began within four attempts of its commit before: no work between them) that wrote
      more than its share, 1 / (n + 1), of the recent commits first waits a random time of up to
      ``courtesy`` x n attempts. A writer that works between its commits leaves the others room anyway,
      and never waits here.
    * **A probe for writers it cannot see.** A starving writer has no commits to read, so from the
      other side starving it looks exactly like being alone. A writer in a tight loop that is not over
      its share therefore also waits, once after its 4th, 12th, 28th... such write, then every
      ``probe_max``-th (every 4th again once a writer it had not seen appears), for as long as a writer
      it cannot see needs to read and put once. Alone in a tight loop this costs about 2.5%.
    * **Bounds.** No single wait is longer than ``longest_wait`` seconds. There is no limit on the number
      of attempts: a call raises :class:`~schedy.errors.ConflictError` (having written nothing) only when
      it loses a race ``give_up_after`` seconds or more after its first attempt.

    ``rng`` (a ``random.Random``; by default the ``random`` module, which a forked child reseeds),
    ``sleep`` and ``monotonic`` are injectable, so that tests run the policy on a fake clock.
    """

    def __init__(
        self,
        longest_wait=None,
        give_up_after=None,
        *,
        window=32,
        courtesy=2.0,
        loser=0.5,
        probe=True,
        probe_max=128,
        rng=None,
        sleep=None,
        monotonic=None,
    ):
        self.longest_wait = LONGEST_WAIT if longest_wait is None else longest_wait
        self.give_up_after = GIVE_UP_AFTER if give_up_after is None else give_up_after
        self.courtesy, self.loser, self.probe, self.probe_max = courtesy, loser, probe, probe_max
        self.rng = random if rng is None else rng
        self._sleep, self._monotonic = sleep, monotonic
        self.attempt = 0.005  # running mean of one attempt's duration (s)
        self.last_commit = None  # monotonic time this writer's last commit was acknowledged
        self.recent = deque(maxlen=window)  # authors of the last commits read or written (None: this writer)
        self.short_gap = False  # whether this writer's previous write began right after its commit before
        self.probe_every = self.until_probe = 4

    def monotonic(self):
        return (self._monotonic or time.monotonic)()

    def sleep(self, seconds):
        (self._sleep or time.sleep)(seconds)  # looked up at each call, so that a patched time.sleep applies

    def _measure(self, began, now):
        if began is not None:
            self.attempt += 0.25 * (now - began - self.attempt)

    def _others(self):
        """(other writers among the recent commits, commits of this writer among them, commits)."""
        recent = tuple(self.recent)  # a copy taken at once: another thread may be appending
        return len(set(recent)) - (None in recent), recent.count(None), len(recent)

    def read(self, commits, me):
        """``commits`` were read from the log before an attempt of this writer: note who wrote them."""
        if commits:
            known = set(self.recent)
            authors = [None if c.worker == me else c.worker for c in commits]
            self.recent.extend(authors)
            if not known.issuperset(authors):  # a writer not seen lately: it may have been starving
                self.probe_every = self.until_probe = 4

    def before_call(self):
        """Called before the first attempt of a write: make way if this writer is taking more than its share."""
        if self.last_commit is None or not self.courtesy:
            return
        short = self.monotonic() - self.last_commit < 4 * self.attempt
        tight, self.short_gap = short and self.short_gap, short
        if not tight:
            return  # this writer left the log alone for a while just before (work between jobs): no need
        n, own, total = self._others()
        if n and own * (n + 1) > total:  # more than its share of the recent commits
            self.sleep(self.rng.uniform(0, min(self.longest_wait, self.courtesy * n * self.attempt)))
        elif self.probe:
            self.until_probe -= 1
            if self.until_probe > 0:
                return
            self.probe_every = self.until_probe = min(self.probe_max, 2 * self.probe_every)
            # Long enough for a writer we cannot see, waiting at most one loser wait, to read and put once.
            low = (self.loser * (n + 2) + 1) * self.attempt
            self.sleep(min(self.longest_wait, self.rng.uniform(low, 2 * low)))

    def won(self, began):
        now = self.monotonic()
        self._measure(began, now)
        self.last_commit = now
        self.recent.append(None)

    def lost(self, lost, began, started, label):
        """Race number ``lost`` in a row was lost: wait before the next attempt, or raise ConflictError."""
        now = self.monotonic()
        self._measure(began, now)
        if now - started >= self.give_up_after:
            raise ConflictError(
                f"experiment {label!r}: still losing the race for the next commit to other writers "
                f"after {now - started:.0f} s and {lost} attempts (the limit is {self.give_up_after:g} "
                f"s); nothing was written"
            )
        if lost > 1:
            n = max(1, self._others()[0])
            self.sleep(self.rng.uniform(0, min(self.longest_wait, self.loser * (n + 1) * self.attempt)))


def make_backoff():
    """The retry policy of a new StreamView (a function, so that a benchmark can swap it)."""
    return Backoff()


class StreamView:
    """The state of one experiment's stream as this process last read it."""

    def __init__(self, store: LogStore, key, label, worker, clock=time.time, backoff=None, monotonic=time.monotonic):
        self.store, self.key, self.label = store, key, label
        self.worker = worker  # a callable returning the current worker id
        self.clock = clock  # stamps commits and leases (for people and audit; no decision compares it)
        self.monotonic = monotonic  # times the claims this process has seen go unrenewed (core.leases)
        self.lapsed = ()  # the claims seen unrenewed for their lease, as of the last read
        self._where = store.describe(key)
        self.backoff = backoff if backoff is not None else make_backoff()
        self.state = None
        self.cursor = store.initial_cursor()
        self.snapshot = None  # how opening went: None (no snapshot due), "used", or "ignored: <why>"
        self._lock = threading.RLock()
        self._pid = os.getpid()
        self._snapshot_memo: dict = {}  # the encoded blocks of jobs of the last snapshot this view wrote
        self._racy = None  # whether the store has no lock (exclusive() holds nothing): known at the first write

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
            self._observe(state)
            if (
                opening
                and self.snapshot is None
                and self.state
                and self.state.version >= snapshots.interval(self.state, self.store.snapshot_every)
            ):
                self.snapshot = f"ignored: missing (the log has {self.state.version} commits)"
                log.warning(
                    "experiment %r: no snapshot found although the log has %d commits; replayed it all",
                    self.label,
                    self.state.version,
                )
            return self.state

    def commits(self):
        """Every commit of the stream, read and decoded afresh (history; the cached state is untouched)."""
        records, _ = self.store.read(self.key, self.store.initial_cursor())
        return list(self._commits(records, 1))

    def transact(self, decide, cached_ok=False):
        """Append the events of ``decide(state, version, now, lapsed)`` as commit ``version``.

        ``lapsed`` lists the claims this view has seen go unrenewed for their lease (:mod:`schedy.core.leases`);
        decisions pass it on to :func:`schedy.core.decide.expire_leases`.

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
                    decision = decide(state, state.version + 1, self.clock(), ())
                except Exception:  # noqa: BLE001 - decide again on the fresh log below
                    decision = None
                if decision is not None and not decision.events and decision.error is None:
                    return decision.value, state
        backoff, racy = self.backoff, self._racy
        if racy:
            backoff.before_call()
        lost, started, began, observe = 0, None, None, None
        while True:
            with self._guard():
                ctx = self.store.exclusive(self.key, meanwhile=self._read_others)
                if racy is None:  # a store whose exclusive() holds nothing lets writers race: see Backoff
                    racy = self._racy = ctx.__class__ is nullcontext
                if racy:
                    began = backoff.monotonic()
                    if observe is None:
                        observe = partial(backoff.read, me=self.worker())
                with ctx:
                    state = self.refresh(observe if self.state is not None else None)  # not a whole log at open
                    version = (state.version if state else 0) + 1
                    now = self.clock()
                    decision = decide(state, version, now, self.lapsed)
                    if not decision.events:
                        return _outcome(decision), state
                    commit = Commit(version, now, self.worker(), decision.events)
                    new_state = apply(state, commit, f"experiment {self.label!r}")
                    line = encode_commit(commit, token=secrets.token_hex(8))
                    before = self.cursor
                    cursor = self.store.append(self.key, before, version, line, sync=False)
                    if cursor is not None:
                        self.state, self.cursor = new_state, cursor
                        self._observe(new_state)
                        if racy:
                            backoff.won(began)
                if cursor is not None:
                    # Synced after the lock is released, so that other writers append meanwhile and one
                    # sync can cover several commits; the caller hears of the commit only once it is durable.
                    created = before == self.store.initial_cursor()
                    if decision.durable or created:
                        self.store.sync(self.key, created)
                    if snapshots.due(new_state, self.store.snapshot_every):
                        self._write_snapshot(new_state, cursor, line)
                    return _outcome(decision), new_state
            # Lost a race: another writer appended first. Read its commit and decide again (see Backoff).
            lost += 1
            if started is None:
                started = began if began is not None else backoff.monotonic()
            backoff.lost(lost, began, started, self.label)

    def _observe(self, state):
        """Note the claims of ``state`` as seen now, and which of them lapsed (see schedy.core.leases)."""
        watch = _watch(self._where, self.monotonic)
        watch.sightings, self.lapsed = leases.observe(watch.sightings, state, self.monotonic(), watch.lease)
        watch.lease = state.lease if state is not None else None

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


class _Watch:
    def __init__(self):
        self.sightings = {}  # job id -> core.leases.Sighting
        self.lease = None  # the experiment's lease as last seen


_WATCHES: dict[tuple, _Watch] = {}  # (stream location, monotonic clock) -> _Watch
_WATCHES_GUARD = threading.Lock()


def _new_guard_after_fork():
    # The parent's guard may have been held by a thread the fork did not copy. The sightings stay valid:
    # the monotonic clock is the machine's.
    global _WATCHES_GUARD
    _WATCHES_GUARD = threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_new_guard_after_fork)


def _watch(where, monotonic):
    """What this process has seen of a stream's claims, shared by all its views of that stream on that clock.

    Shared so that a claim this process saw, through any SchedyDB, is timed from then on: a second SchedyDB
    opened later in the same process does not wait a lease more. (Sightings from another clock would be
    meaningless, hence the clock in the key.)
    """
    with _WATCHES_GUARD:
        w = _WATCHES.get((where, monotonic))
        if w is None:
            w = _WATCHES[(where, monotonic)] = _Watch()
        return w


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
        raise ReadOnlyError(
            f"experiment {self.label!r} as of {self.moment} is a read-only view of the past; "
            f"open it without as_of to change it"
        )
