"""A model of one experiment's log on an object store: many workers racing for its commits, on a simulated clock.

It answers a question no machine of ours can measure: how far one log on S3 scales, with hundreds of
workers and per-request latencies of tens of milliseconds (docs/object-storage.md, "How far one log
scales"). It is a deterministic discrete-event simulation (a heap of events, a seed, no wall clock):

* **The store.** Commit ``v`` is one object. A conditional PUT of it takes effect at one instant during
  the request (its *landing*), and of the PUTs of ``v`` the first to land wins; the others are refused. A
  GET sees an object if it landed before the GET's own instant; a LIST sees every object landed before
  its instant. How long a request takes, and at which instant it acts, comes from a latency model:
  :class:`Lognormal` (a cloud store: requests independent, latency lognormal, the instant uniform within
  it) or :class:`Fifo` (one server answering one request at a time, as the local moto server does).
* **The writer** mirrors :meth:`schedy.adapters.stream.StreamView.transact` on a store without a lock,
  request for request: read the commits after its cursor, fold them and decide (CPU time), PUT the next
  version if absent; when the PUT is refused, read the winning commit back (one GET, which the next read
  reuses, as :class:`~schedy.adapters.objectstore.ObjectLogStore` does) and try again after the waits of
  the real retry policy, :class:`schedy.adapters.stream.Backoff`, driven on the simulated clock: its
  ``monotonic`` is the clock and its ``sleep`` is recorded and then waited by the event loop (it is always
  the last thing ``before_call`` and ``lost`` do, so deferring it changes nothing). Two readers:
  ``"probe"`` is ``ObjectLogStore.read``'s: GET the next version; while all are there, the next 2, 4, 8...
  up to ``window`` at once (``lanes`` in flight); after a read that got a commit, one GET past the first
  missing one. ``"list"`` is the reader before it: one LIST after the cursor, then a GET of each new
  commit, ``lanes`` in flight.
* **The worker** claims a job, trains for a drawn duration while renewing its lease every quarter of the
  lease (each renewal is a commit, as :mod:`schedy.adapters.leases` writes it, next one a quarter-lease
  after the previous one is written), reports, and claims again. With ``combined`` the report and the next
  claim are one commit: a protocol Schedy does not have, modelled to show what it would give.

Not modelled: opening (the conditional-write check and the snapshot, once per worker process), snapshot
writes (one PUT per ``snapshot_every`` commits), lost replies and retries of failed requests, and what an
expired lease does to the job (the lapses are counted, the job is not handed out again).
"""

import heapq
import math
import random
from bisect import bisect_right
from collections import Counter, namedtuple
from statistics import NormalDist

from ..adapters.stream import Backoff
from ..core.events import DEFAULT_LEASE
from ..errors import ConflictError

CLAIM, REPORT, BEAT, BOTH, CREATED = "claim", "report", "heartbeat", "report+claim", "created"

SIZES = {CLAIM: 372, REPORT: 204, BEAT: 217, BOTH: 426, CREATED: 386}
"""Bytes of one commit object of each kind: a random search of two hyperparameters, a worker id of 28
characters, as benchmarks/store_scaling.py measures them on objects the real code writes (BOTH, which
Schedy does not write, is a claim and a report in one envelope)."""

FOLD = 9e-6
"""CPU seconds to fold one commit read (``schedy.core.state.fold``, measured by benchmarks/store_scaling.py)."""

S3_STANDARD = {"PUT": 0.005 / 1000, "LIST": 0.005 / 1000, "GET": 0.0004 / 1000}
"""Dollars per request of S3 Standard in us-east-1 (PUT, COPY, POST, LIST: $0.005 per 1,000; GET and
all other requests: $0.0004 per 1,000). A refused conditional PUT is billed as a PUT and a GET answered
404 as a GET."""

Landing = namedtuple("Landing", "instant worker kind job")
"""A commit as the store holds it (``worker`` is what Backoff.read looks at)."""

_Z99 = NormalDist().inv_cdf(0.99)
_INV = NormalDist().inv_cdf


class Lognormal:
    """Latency of a cloud store: each request independent, lognormal with this median and 99th percentile
    (seconds; equal, a constant latency). A request acts on the store at a uniform instant within its
    latency, or at the fraction ``at`` of it."""

    def __init__(self, median=0.025, p99=0.100, at=None):
        if not 0 < median <= p99:
            raise ValueError(f"need 0 < median <= p99, got {median!r} and {p99!r}")
        if at is not None and not 0 <= at <= 1:
            raise ValueError(f"at must be a fraction of the latency, in [0, 1], got {at!r}")
        self.median, self.p99, self.at = median, p99, at
        self.mu, self.sigma = math.log(median), math.log(p99 / median) / _Z99

    @classmethod
    def with_mean(cls, mean, spread=4.0, at=None):
        """The lognormal of this mean whose p99 is ``spread`` times its median."""
        sigma = math.log(spread) / _Z99
        median = mean / math.exp(sigma**2 / 2)
        return cls(median, median * spread, at)

    def __repr__(self):
        return f"Lognormal(median={self.median:g}, p99={self.p99:g}{'' if self.at is None else f', at={self.at:g}'})"

    def mean(self):
        return math.exp(self.mu + self.sigma**2 / 2)

    def session(self, rng):
        return _LognormalSession(self, rng)


class _LognormalSession:
    def __init__(self, spec, rng):
        self.mu, self.sigma, self.at, self.rng = spec.mu, spec.sigma, spec.at, rng

    def _at(self):
        return self.rng.random() if self.at is None else self.at

    def one(self, t, kind):
        """(instant, reply) of one request sent at ``t``."""
        latency = self.rng.lognormvariate(self.mu, self.sigma)
        return t + self._at() * latency, t + latency

    def _longest(self, n):
        """The longest of ``n`` latencies, drawn at once (inverse CDF of the maximum)."""
        if n <= 0 or not self.sigma:
            return 0.0 if n <= 0 else math.exp(self.mu)
        p = (1.0 - self.rng.random()) ** (1.0 / n)
        return math.exp(self.mu + self.sigma * _INV(min(p, 1 - 1e-15)))

    def wave(self, t, sure, open_, lanes):
        """``sure + open_`` GETs asked together at ``t`` through ``lanes`` threads (in that order: the ``open_``
        last ones are those whose answer is not known yet): (reply of the last, instants of the ``open_``)."""
        instants = []
        while sure + open_ > 0:
            k = min(lanes, sure + open_)
            ks = min(k, sure)
            longest = self._longest(ks)
            for _ in range(k - ks):
                latency = self.rng.lognormvariate(self.mu, self.sigma)
                longest = max(longest, latency)
                instants.append(t + self._at() * latency)
            t += longest
            sure, open_ = sure - ks, open_ - (k - ks)
        return t, instants

    def waves(self, t, sizes, lanes):
        """Reply of waves of GETs of objects that exist, each wave asked when the one before has its replies."""
        for n in sizes:
            t = self.wave(t, n, 0, lanes)[0]
        return t


class Fifo:
    """Latency of one server that answers one request at a time (moto is one Python process).

    ``service`` (seconds, or a dict by kind: GET, PUT, LIST) is the server's time per request, ``client``
    the rest of a round trip (the client's work and the loopback), half before the server and half
    after; ``jitter`` is the sigma of a lognormal factor on each service time.
    """

    def __init__(self, service, client=0.0, jitter=0.0):
        self.service = service if isinstance(service, dict) else {k: service for k in ("GET", "PUT", "LIST")}
        self.client, self.jitter = client, jitter

    def __repr__(self):
        service = ", ".join(f"{k} {v * 1000:.2f} ms" for k, v in self.service.items())
        return f"Fifo(service: {service}; client {self.client * 1000:.2f} ms; jitter {self.jitter:g})"

    def session(self, rng):
        return _FifoSession(self, rng)


class _FifoSession:
    def __init__(self, spec, rng):
        self.spec, self.rng, self.free = spec, rng, 0.0

    def _serve(self, t, kind):
        start = max(t + self.spec.client / 2, self.free)
        s = self.spec.service[kind]
        if self.spec.jitter:
            s *= self.rng.lognormvariate(0.0, self.spec.jitter)
        self.free = start + s
        return start + s / 2

    def one(self, t, kind):
        instant = self._serve(t, kind)
        return instant, self.free + self.spec.client / 2

    def wave(self, t, sure, open_, lanes):
        for _ in range(sure):
            self._serve(t, "GET")
        instants = [self._serve(t, "GET") for _ in range(open_)]
        return (self.free + self.spec.client / 2) if sure + open_ else t, instants

    def waves(self, t, sizes, lanes):
        for n in sizes:
            t = self.wave(t, n, 0, lanes)[0]
        return t


class _Worker:
    __slots__ = (
        "backoff",
        "called",
        "cursor",
        "first_claim",
        "first_done",
        "lease_until",
        "n",
        "rng",
        "slept",
        "stopped",
        "trained",
        "trained_until",
        "training",
        "wid",
        "won",
    )

    def __init__(self, n, rng):
        self.n, self.wid, self.rng = n, f"worker-{n}", rng
        self.cursor, self.won, self.called, self.slept = 1, None, False, 0.0
        self.first_claim = self.first_done = None
        self.trained = 0.0  # seconds trained inside the measured window
        self.training = None  # (start, end) of the job being trained
        self.trained_until = None  # when the last job's training ended
        self.lease_until = None
        self.stopped = None


def _durations(duration):
    if callable(duration):
        return duration
    if isinstance(duration, (tuple, list)):
        low, high = duration
        return lambda rng: rng.uniform(low, high)
    return lambda rng: duration


class StoreModel:
    """``workers`` workers sharing one experiment's log on an object store; see the module's docstring.

    ``duration``: seconds a job trains (a number, a ``(low, high)`` range drawn uniformly, or a function of
    a ``random.Random``). ``latency``: :class:`Lognormal` (default: median 25 ms, p99 100 ms) or
    :class:`Fifo`. ``reader``: ``"probe"`` or ``"list"``; ``window``: the most GETs a read asks for at once
    (``WINDOW`` of schedy.adapters.objectstore); ``lanes``: how many of them are in flight (its pool's threads).
    ``jobs``: None for a search that never runs out (a random search), or the number of queued jobs to
    drain. ``lease``: seconds (renewed every quarter of it; ``None``: Schedy's default; ``0``: no
    renewals). ``decide`` and ``fold``: CPU seconds of a decision and of folding one commit read.
    ``sizes``: bytes of each kind of commit. ``policy(rng=, sleep=, monotonic=)`` builds the retry policy
    of each worker (default :class:`~schedy.adapters.stream.Backoff`). ``seed`` makes it all repeatable.
    """

    def __init__(
        self,
        workers,
        duration,
        *,
        latency=None,
        reader="probe",
        window=64,
        lanes=16,
        jobs=None,
        lease=None,
        combined=False,
        decide=0.0002,
        fold=FOLD,
        sizes=None,
        policy=Backoff,
        prices=None,
        seed=0,
    ):
        if reader not in ("probe", "list"):
            raise ValueError(f"reader must be 'probe' or 'list', got {reader!r}")
        if workers < 1 or window < 1 or lanes < 1:
            raise ValueError("need at least one worker and one GET in flight")
        self.n, self.reader, self.window, self.lanes = workers, reader, window, lanes
        self.jobs, self.combined = jobs, combined
        self.duration = _durations(duration)
        self.latency = latency if latency is not None else Lognormal()
        self.lease = DEFAULT_LEASE if lease is None else lease
        self.beat = self.lease / 4 if self.lease else 0.0
        self.decide, self.fold = decide, fold
        self.sizes = {**SIZES, **(sizes or {})}
        self.prices = S3_STANDARD if prices is None else prices
        self.policy, self.seed = policy, seed
        rng = random.Random(f"store-model:{seed}")
        self.net = self.latency.session(random.Random(rng.random()))
        self.now = 0.0
        # The log: best[v - 1] is the earliest-landing PUT of version v so far (final once anyone saw v).
        # Version 1 is the experiment's creation, already there.
        self.best = [Landing(0.0, "operator", "created", None)]
        self.instants = [0.0]  # best[i].instant: increasing with the version
        self.authors = ["operator"]  # best[i].worker
        self.sums = [0, self.sizes[CREATED]]  # sums[v]: bytes of versions 1..v (for v < len)
        self._claims = [0, 0]  # claims among versions 1..v, for v < len
        self.workers = [_Worker(i, random.Random(rng.random())) for i in range(workers)]
        self._heap, self._seq, self._pending = [], 0, {}
        self.t0 = None  # start of the measured window; nothing is counted before it
        self.stop_new_at = math.inf  # no call starts after this (a measurement of a fixed window)
        self._finished_one = 0  # workers that have finished a job
        self._stand_ins = {}  # author -> a commit of theirs, for Backoff.read
        self._reset_counts()

    # -- counting ----------------------------------------------------------------------------------------

    def _reset_counts(self):
        self.requests = Counter()
        self.bytes, self.slept = 0, 0.0
        self.commits = Counter()
        self.lost = self.gave_up = self.lapsed = 0
        self.claim_waits, self.report_waits, self.beat_waits, self.cycles = [], [], [], []
        self.between = []  # from the end of a job's training to the start of the next one's (report and claim)

    def _counting(self):
        return self.t0 is not None and self.now >= self.t0

    # -- the store ---------------------------------------------------------------------------------------

    def _head(self, instant):
        """The number of versions landed at ``instant``."""
        return bisect_right(self.instants, instant)

    def _bytes(self, lo, hi):
        """Bytes of versions lo+1 .. hi (all registered)."""
        sums = self.sums
        while len(sums) <= hi:
            sums.append(sums[-1] + self.sizes[self.best[len(sums) - 1].kind])
        return sums[hi] - sums[lo]

    def _claims_upto(self, v):
        claims = self._claims
        while len(claims) <= v:
            claims.append(claims[-1] + (self.best[len(claims) - 1].kind in (CLAIM, BOTH)))
        return claims[v]

    def _put(self, w, v, kind, job):
        instant, reply = self.net.one(self.now, "PUT")
        mine = Landing(instant, w.wid, kind, job)
        if v == len(self.best) + 1:
            self.best.append(mine)
            self.instants.append(instant)
            self.authors.append(w.wid)
        elif v > len(self.best) + 1:
            raise AssertionError(f"a PUT of version {v} by a writer that cannot have read {v - 1}")
        elif instant < self.best[v - 1].instant:
            # Lands before the PUT of v registered first, which will be refused. Only the newest version can
            # be overtaken: a PUT of v + 1 means that someone saw v landed, before this PUT was sent.
            assert v == len(self.best), "an older version overtaken"
            self.best[-1] = mine
            self.instants[-1] = instant
            self.authors[-1] = w.wid

        def outcome():
            won = self.best[v - 1] is mine
            if self._counting():
                self.requests["PUT" if won else "PUT refused"] += 1
                self.bytes += self.sizes[kind]
                if won:
                    self.commits[kind] += 1
                else:
                    self.lost += 1
            return won

        return reply, outcome

    def _get_probe(self, v):
        """GET version ``v``, which may not exist: the outcome is whether it was there."""
        instant, reply = self.net.one(self.now, "GET")

        def outcome():
            there = v <= len(self.best) and self.best[v - 1].instant <= instant
            if self._counting():
                self.requests["GET"] += 1
                self.requests["GET 404"] += not there
                self.bytes += self.sizes[self.best[v - 1].kind] if there else 0
            return there

        return reply, outcome

    def _get_one(self, w, v):
        """Read back commit ``v`` after a refused PUT (it exists: it landed before that PUT)."""
        _, reply = self.net.one(self.now, "GET")

        def outcome():
            if self._counting():
                self.requests["GET"] += 1
                self.bytes += self.sizes[self.best[v - 1].kind]
            w.won = v

        return reply, outcome

    def _get_wave(self, cursor, count):
        """GET versions cursor+1 .. cursor+count at once. The outcome: how many of them, from the first, were
        there; and whether one after the first missing one was (None if the missing one was the last asked)."""
        sure = max(0, min(count, self._head(self.now) - cursor))
        reply, instants = self.net.wave(self.now, sure, count - sure, self.lanes)

        def outcome():
            found, seen_all, there_count, later = sure, True, 0, False
            nbytes = self._bytes(cursor, cursor + sure)
            for i, instant in enumerate(instants):
                v = cursor + sure + i + 1
                there = v <= len(self.best) and self.best[v - 1].instant <= instant
                if there:
                    nbytes += self.sizes[self.best[v - 1].kind]
                    there_count += 1
                    later = later or not seen_all
                seen_all = seen_all and there
                found += seen_all
            if self._counting():
                self.requests["GET"] += count
                self.requests["GET 404"] += count - sure - there_count
                self.bytes += nbytes
            return found, (None if found == count - 1 else later)

        return reply, outcome

    def _list(self, cursor):
        instant, reply = self.net.one(self.now, "LIST")

        def outcome():
            if self._counting():
                self.requests["LIST"] += 1
            return max(0, self._head(instant) - cursor)

        return reply, outcome

    def _get_batch(self, cursor, n):
        reply = self.net.wave(self.now, n, 0, self.lanes)[0]

        def outcome():
            if self._counting():
                self.requests["GET"] += n
                self.bytes += self._bytes(cursor, cursor + n)

        return reply, outcome

    # -- the writer: StreamView.transact on a store without a lock -----------------------------------------

    def _sure_waves(self, cursor, head, wave):
        """The waves of GETs from ``cursor``, the first of ``wave`` GETs, whose objects all landed before now
        (``head``), sent one after another, as one event: ``(versions, next wave's size)``."""
        got, sizes = 0, []
        while cursor + got + wave <= head:
            sizes.append(wave)
            got += wave
            wave = min(self.window, 2 * wave)
        reply = self.net.waves(self.now, sizes, self.lanes)

        def outcome():
            if self._counting():
                self.requests["GET"] += got
                self.bytes += self._bytes(cursor, cursor + got)
            return got, wave

        return reply, outcome

    def _read(self, w):
        """Read the commits after the cursor, as the store's ``read`` does; return the range of versions read."""
        lo = w.cursor
        if w.won is not None:  # the commit that beat our last PUT, read back then: no need to GET it again
            if w.won == w.cursor + 1:
                w.cursor += 1
            w.won = None
        if self.reader == "list":
            new = yield self._list(w.cursor)
            if new:
                yield self._get_batch(w.cursor, new)
                w.cursor += new
            return lo, w.cursor
        # ObjectLogStore.read: GET cursor + 1; while all are there, the next 2, 4, 8... up to ``window``.
        wave = 1
        while True:
            head = self._head(self.now)
            if w.cursor + wave <= head:  # behind: these waves only fetch what has surely landed (one event)
                got, wave = yield self._sure_waves(w.cursor, head, wave)
                w.cursor += got
                continue
            found, later = yield self._get_wave(w.cursor, wave)
            w.cursor += found
            if found == wave:
                wave = min(self.window, 2 * wave)
                continue
            if wave == 1:
                return lo, w.cursor  # the first GET: caught up
            # A read that got a commit looks one past the first missing one; if a later one is there, the
            # missing one is asked for again (it landed meanwhile: commits land in order).
            if later is None:
                later = yield self._get_probe(w.cursor + 2)
            if not later:
                return lo, w.cursor
            again = yield self._get_probe(w.cursor + 1)
            assert again, "a commit landed after a later one"
            w.cursor += 1

    def _observe(self, w, lo, hi):
        """Backoff.read of the commits lo+1 .. hi. Only the authors matter to it (which ones, and the last
        ``window`` of them in order), so a long read is handed over as one commit per author of its older
        part followed by its last 64 commits: the same outcome at a fraction of the cost."""
        if hi - lo <= 128:
            commits = self.best[lo:hi]
        else:
            tail = self.best[hi - 64 : hi]
            older = set(self.authors[lo : hi - 64]).difference(self.authors[hi - 64 : hi])
            stand_ins = self._stand_ins
            commits = [stand_ins.get(a) or stand_ins.setdefault(a, Landing(0.0, a, None, None)) for a in sorted(older)]
            commits += tail
        w.backoff.read(commits, w.wid)

    def _waited(self, w):
        slept, w.slept = w.slept, 0.0
        if self._counting():
            self.slept += slept
        return self.now + slept, None

    def _transact(self, w, kind, job=None):
        """One write call: ``(kind written, job claimed or None)``; a claim with no job left writes nothing."""
        b = w.backoff
        if w.called:  # StreamView knows the store has no lock only after its first write
            b.before_call()
            if w.slept:
                yield self._waited(w)
        w.called = True
        lost, started = 0, None
        while True:
            began = self.now
            lo, hi = yield from self._read(w)
            if hi > lo:
                self._observe(w, lo, hi)
            cpu = self.decide + self.fold * (hi - lo)
            if cpu:
                yield self.now + cpu, None
            decided_at = self.now
            write, claimed = kind, job
            if kind in (CLAIM, BOTH):
                claims = self._claims_upto(w.cursor)
                if self.jobs is not None and claims >= self.jobs:
                    if kind == CLAIM:
                        return None, None  # NoJobError: nothing is written
                    write, claimed = REPORT, None
                else:
                    claimed = claims + 1
            won = yield self._put(w, w.cursor + 1, write, claimed)
            if won:
                w.cursor += 1
                b.won(began)
                late = write in (BEAT, REPORT, BOTH) and w.lease_until is not None and decided_at > w.lease_until
                if late and self._counting():
                    self.lapsed += 1  # the lease had lapsed: any writer would have handed the job out again
                w.lease_until = decided_at + self.lease if write in (CLAIM, BEAT, BOTH) and self.lease else None
                return write, claimed
            yield self._get_one(w, w.cursor + 1)
            lost += 1
            if started is None:
                started = began
            try:
                b.lost(lost, began, started, "model")
            except ConflictError:  # the caller would see it and call again (benchmarks/contention.py does)
                if self._counting():
                    self.gave_up += 1
                lost, started = 0, None
            if w.slept:
                yield self._waited(w)

    # -- the worker ----------------------------------------------------------------------------------------

    def _worker(self, w):
        job = None
        while self.now < self.stop_new_at:
            asked = self.now
            write, claimed = yield from self._transact(w, BOTH if self.combined and job is not None else CLAIM)
            if write in (REPORT, BOTH):
                self._done(w, asked)
            if claimed is None:
                break
            if self._counting():
                self.claim_waits.append(self.now - asked)
                if w.trained_until is not None:
                    self.between.append(self.now - w.trained_until)
            if w.first_claim is None:
                w.first_claim = self.now
            job, start = claimed, self.now
            end = start + self.duration(w.rng)
            w.training = (start, end)
            beat_at = start + self.beat if self.beat else math.inf
            while beat_at < end:
                yield beat_at, None
                t = self.now
                yield from self._transact(w, BEAT, job)
                if self._counting():
                    self.beat_waits.append(self.now - t)
                beat_at = self.now + self.beat
            if self.now < end:
                yield end, None
            self._trained(w, start, end)
            w.training, w.trained_until = None, end
            if not self.combined:
                t = self.now
                yield from self._transact(w, REPORT, job)
                self._done(w, t)
                job = None
                if self._counting():
                    self.cycles.append(self.now - asked)
        w.stopped = self.now

    def _done(self, w, reported_from):
        if self._counting():
            self.report_waits.append(self.now - reported_from)
        if w.first_done is None:
            w.first_done = self.now
            self._finished_one += 1

    def _trained(self, w, start, end):
        if self.t0 is not None:
            w.trained += max(0.0, min(end, self._end) - max(start, self.t0))

    # -- the event loop ----------------------------------------------------------------------------------

    def _push(self, t, n):
        self._seq += 1
        heapq.heappush(self._heap, (t, self._seq, n))

    def _start(self):
        for w in self.workers:
            w.backoff = self.policy(rng=random.Random(w.rng.random()), sleep=self._sleeper(w), monotonic=self._clock)
            self._pending[w.n] = (self._worker(w), None)
            self._push(0.0, w.n)

    def _sleeper(self, w):
        def sleep(seconds):
            w.slept += seconds

        return sleep

    def _clock(self):
        return self.now

    def _step(self):
        t, _, n = heapq.heappop(self._heap)
        self.now = t
        gen, outcome = self._pending[n]
        try:
            action = gen.send(None if outcome is None else outcome())
        except StopIteration:
            del self._pending[n]
            return
        self._pending[n] = (gen, action[1])
        self._push(action[0], n)

    def run_window(self, seconds):
        """Every worker calls from time 0 and starts no call after ``seconds`` (as the benchmarks' workers do);
        run until all have stopped. Everything is counted."""
        self.t0, self.stop_new_at, self._end = 0.0, seconds, math.inf
        self._start()
        while self._heap:
            self._step()
        self._end = max(w.stopped for w in self.workers)
        return self.summary()

    def run_steady(self, min_window=0.0, claims_per_worker=2.0, max_time=math.inf):
        """Run from a launch (every worker asks at time 0); count from the moment every worker has finished
        its first job, until the workers have claimed ``claims_per_worker`` jobs each and ``min_window``
        seconds have passed (or ``max_time`` seconds of simulated time, whatever comes first)."""
        self._end = math.inf
        self._start()
        target = claims_per_worker * self.n
        while self._heap and self.now < max_time:
            self._step()
            if self.t0 is None:
                if self._finished_one == self.n:
                    self.t0 = self.now
                    self._reset_counts()
            elif len(self.claim_waits) >= target and self.now - self.t0 >= min_window:
                break
        if self.t0 is None:  # the launch did not end within max_time: count what there is
            self.t0 = 0.0
        self._end = self.now
        for w in self.workers:
            if w.training is not None:
                self._trained(w, *w.training)
        return self.summary()

    # -- results -------------------------------------------------------------------------------------------

    def summary(self):
        """The figures of the measured window, as a dict (times in seconds, money in dollars)."""
        seconds = max(self._end - self.t0, 1e-12)
        claims = self.commits[CLAIM] + self.commits[BOTH]
        per = max(claims, 1)
        requests = {k: self.requests[k] for k in ("LIST", "GET", "GET 404", "PUT", "PUT refused")}
        cost = (
            self.prices["PUT"] * (requests["PUT"] + requests["PUT refused"])
            + self.prices["LIST"] * requests["LIST"]
            + self.prices["GET"] * requests["GET"]
        )
        firsts = [w.first_claim for w in self.workers if w.first_claim is not None]
        return {
            "workers": self.n,
            "seconds": seconds,
            "claims": claims,
            "commits": sum(self.commits.values()),
            "claims_per_s": claims / seconds,
            "commits_per_s": sum(self.commits.values()) / seconds,
            "commits_by_kind": dict(self.commits),
            "requests": requests,
            "requests_per_claim": {k: v / per for k, v in requests.items()},
            "bytes_per_claim": self.bytes / per,
            "lost_per_claim": self.lost / per,
            "slept_per_claim": self.slept / per,
            "claim_wait": _quantiles(self.claim_waits),
            "report_wait": _quantiles(self.report_waits),
            "between_jobs": _quantiles(self.between),
            "heartbeat_wait": _quantiles(self.beat_waits),
            "cycle": _quantiles(self.cycles),
            "busy": sum(w.trained for w in self.workers) / (self.n * seconds),
            "gave_up": self.gave_up,
            "lapsed": self.lapsed,
            "launch": max(firsts) if len(firsts) == self.n else None,
            "cost_per_1000_jobs": 1000 * cost / per,
        }


def _quantiles(values):
    if not values:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None, "mean": None}
    s = sorted(values)
    return {
        "n": len(s),
        "p50": s[len(s) // 2],
        "p95": s[min(len(s) - 1, int(0.95 * len(s)))],
        "p99": s[min(len(s) - 1, int(0.99 * len(s)))],
        "max": s[-1],
        "mean": sum(s) / len(s),
    }
