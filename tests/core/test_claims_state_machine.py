"""The optimistic-concurrency protocol, modelled over the pure core.

An in-memory log (a list of commits) holds one experiment. Simulated workers
each keep their own, possibly stale, view: the state folded up to the last
version they read. To write, a worker decides from its view and appends at
``view.version + 1``; the append succeeds only if that is the head of the log,
otherwise the worker catches up and decides again. This is the loop of
schedy.adapters.stream.StreamView.transact, without the I/O.
"""

import math

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from schedy.core import decide, values
from schedy.core import events as ev
from schedy.core.check import DoubleClaim, find_double_claims
from schedy.core.codec import Commit, decode_commit, encode_commit
from schedy.core.state import apply, fold, oldest_queued
from schedy.errors import NoJobError, SchedyError, UnsafeUpdateError

NAME = "exp"
MANUAL = {"scheduler": {"Manual": {}}}
RANDOM = {
    "scheduler": {
        "RandomSearch": {
            "distributions": {
                "lr": {"loguniform": {"low": 1e-4, "high": 1}},
                "opt": {"choice": {"values": ["sgd", "adam"]}},
            }
        }
    }
}


def hps_for(kind, i):
    return {"lr": 0.001 * (i + 1), "opt": "sgd"} if kind == "random" else {"i": i}


class Log:
    """The shared log: only ever appended to at its head."""

    def __init__(self):
        self.commits = []
        self.head_state = None  # the log folded as it grows
        self.states = [None]  # states[v]: the state after commit v, for checking views

    @property
    def version(self):
        return len(self.commits)

    def append(self, version, worker, events):
        """Conditional append: True if ``version`` is the next one, else False (nothing written)."""
        if version != self.version + 1:
            return False
        c = Commit(version, version * 1.5, worker, events)
        self.head_state = apply(self.head_state, c)
        self.commits.append(c)
        self.states.append(self.head_state)
        return True


class Worker:
    def __init__(self, name):
        self.name = name
        self.view = None  # state folded up to self.version
        self.held = {}  # job id -> version of the claim (the expected_version of a safe put)
        self.revoked = {}  # jobs taken from this worker behind its back: job id -> expected_version
        self.finished = []  # (job id, the expected_version it used): stale from then on

    @property
    def version(self):
        return self.view.version if self.view is not None else 0

    def read(self, log, n=None):
        """Fold up to ``n`` commits that are new to this worker (all of them if None)."""
        new = log.commits[self.version :] if n is None else log.commits[self.version : self.version + n]
        self.view = fold(new, self.view)


def transact(log, worker, decide_fn, stats):
    """The append loop: decide from the view, append at view.version + 1, on conflict catch up and retry.

    Returns the decision; raises the decision's refusal, as decided from an up-to-date view.
    """
    while True:
        v = worker.version
        try:
            decision = decide_fn(worker.view, v + 1)
        except (SchedyError, ValueError):
            if v == log.version:
                raise  # refused on an up-to-date view: final
            worker.read(log)  # refused on a stale view: the real loop reads before deciding
            stats["stale_refusals"] += 1
            continue
        if not decision.events:
            if v == log.version:
                return decision
            worker.read(log)
            continue
        if log.append(v + 1, worker.name, decision.events):
            worker.view = apply(worker.view, log.commits[-1])
            if decision.error is not None:
                raise decision.error
            return decision
        stats["conflicts"] += 1  # the head moved since this worker read: its decision is void
        worker.read(log)


class ClaimProtocol(RuleBasedStateMachine):
    @initialize(
        kind=st.sampled_from(["manual", "random"]),
        n_workers=st.integers(3, 5),
        n_jobs=st.integers(0, 4),
        seed=st.integers(0, 2**63 - 1),
    )
    def setup(self, kind, n_workers, n_jobs, seed):
        self.kind = kind
        self.log = Log()
        self.stats = {"conflicts": 0, "stale_refusals": 0}
        self.operator_writes(
            lambda s: decide.create_experiment(
                s, name=NAME, kind=kind, params=MANUAL if kind == "manual" else RANDOM, status=ev.RUNNING, seed=seed
            )
        )
        self.n_added = 0
        for _ in range(n_jobs):
            self.add_job()
        self.workers = [Worker(f"w{i}") for i in range(n_workers)]

    # ------------------------------------------------------------ helpers

    def operator_writes(self, decide_fn):
        """The operator always decides on the head (it has just read the whole log)."""
        d = decide_fn(self.log.head_state)
        assert d.events
        assert self.log.append(self.log.version + 1, "operator", d.events)
        return d

    def worker(self, i):
        return self.workers[i % len(self.workers)]

    def held_pairs(self):
        return sorted((w.name, j) for w in self.workers for j in w.held)

    def by_name(self, name):
        return next(w for w in self.workers if w.name == name)

    # ------------------------------------------------------------ rules

    @rule(i=st.integers(0, 4), n=st.one_of(st.none(), st.integers(0, 3)))
    def catch_up(self, i, n):
        self.worker(i).read(self.log, n)

    @rule(i=st.integers(0, 4))
    def next_job(self, i):
        w = self.worker(i)
        before = self.log.version
        try:
            d = transact(
                self.log,
                w,
                lambda s, v: decide.next_job(s, name=NAME, worker=w.name, version=v, now=v * 1.5),
                self.stats,
            )
        except NoJobError:
            head = self.log.head_state
            assert self.log.version == before
            assert head.status == ev.DONE or (self.kind == "manual" and oldest_queued(head) is None)
            return
        job_id = d.value
        assert self.log.states[-2].status == ev.RUNNING  # decided on a RUNNING experiment
        head = self.log.head_state
        job = head.jobs[job_id]
        assert job.worker == w.name and job.status == ev.RUNNING
        assert job.version == self.log.version == w.version
        for other in self.workers:
            assert job_id not in other.held, f"{job_id} handed to {w.name} while {other.name} holds it"
        w.held[job_id] = job.version

    @precondition(lambda self: self.held_pairs())
    @rule(data=st.data(), loss=st.floats())
    def finish(self, data, loss):
        name, job_id = data.draw(st.sampled_from(self.held_pairs()))
        w = self.by_name(name)
        expected = w.held.pop(job_id)
        results = values.encode_mapping({"loss": loss}, "results")

        def put(s, v):
            job = decide.require_job(s, NAME, job_id)
            return decide.update_job(
                s,
                name=NAME,
                job_id=job_id,
                worker=w.name,
                status=ev.DONE,
                hyperparameters=job.hyperparameters,
                results=results,
                expected_version=expected,
            )

        transact(self.log, w, put, self.stats)
        job = self.log.head_state.jobs[job_id]
        assert job.status == ev.DONE and job.worker is None and job.results == results
        assert job.version == self.log.version
        w.finished.append((job_id, expected))

    @precondition(lambda self: any(w.finished or w.revoked for w in self.workers))
    @rule(data=st.data(), fresh=st.booleans(), claim=st.booleans())
    def stale_put_is_refused(self, data, fresh, claim):
        """A put (or try_run) naming a version the job no longer has is refused, and writes nothing."""
        candidates = sorted((w.name, j, e) for w in self.workers for j, e in [*w.finished, *w.revoked.items()])
        name, job_id, expected = data.draw(st.sampled_from(candidates))
        w = self.by_name(name)
        if fresh:
            w.read(self.log)
        before = self.log.version
        results = values.encode_mapping({"loss": 0.0, "late": True}, "results")

        def put(s, v):
            job = decide.require_job(s, NAME, job_id)
            if claim:
                return decide.claim_job(s, name=NAME, job_id=job_id, worker=w.name, expected_version=expected)
            return decide.update_job(
                s,
                name=NAME,
                job_id=job_id,
                worker=w.name,
                status=ev.DONE,
                hyperparameters=job.hyperparameters,
                results=results,
                expected_version=expected,
            )

        with pytest.raises(UnsafeUpdateError):
            transact(self.log, w, put, self.stats)
        assert self.log.version == before
        w.revoked.pop(job_id, None)

    @precondition(lambda self: self.held_pairs())
    @rule(data=st.data(), requeue=st.booleans())
    def operator_takes_a_held_job(self, data, requeue):
        """The operator requeues a held job (as a lease expiry would) or overwrites its results."""
        name, job_id = data.draw(st.sampled_from(self.held_pairs()))
        w = self.by_name(name)
        job = self.log.head_state.jobs[job_id]
        status = ev.QUEUED if requeue else ev.RUNNING
        results = {"note": values.encode(self.log.version)}
        self.operator_writes(
            lambda s: decide.update_job(
                s,
                name=NAME,
                job_id=job_id,
                worker="operator",
                status=status,
                hyperparameters=job.hyperparameters,
                results=results,
                expected_version=None,
            )
        )
        w.revoked[job_id] = w.held.pop(job_id)

    @rule(status=st.sampled_from([ev.QUEUED, ev.QUEUED, ev.DONE]))
    def add_job(self, status=ev.QUEUED):
        kind = self.log.head_state.kind
        hps = values.encode_mapping(hps_for(kind, self.n_added), "hyperparameters")
        self.n_added += 1
        self.operator_writes(lambda s: decide.add_job(s, name=NAME, hyperparameters=hps, status=status, results={}))

    @rule(status=st.sampled_from([ev.DONE, ev.RUNNING]))
    def set_experiment_status(self, status):
        if self.log.head_state.status != status:
            self.operator_writes(lambda s: decide.update_experiment(s, name=NAME, status=status))

    # ------------------------------------------------------------ invariants

    @invariant()
    def no_double_claim(self):
        assert find_double_claims(self.log.commits) == []

    @invariant()
    def views_are_folds_of_the_log(self):
        head = fold(self.log.commits)
        assert head == self.log.head_state
        for w in self.workers:
            assert w.version <= self.log.version
            # However it read (one commit at a time, in chunks, all at once), a view is the prefix state.
            assert w.view == self.log.states[w.version]
            if w.version == self.log.version:
                assert w.view == head

    @invariant()
    def each_job_has_one_holder(self):
        holders = {}
        for w in self.workers:
            for job_id in w.held:
                assert job_id not in holders, f"job {job_id} held by {holders[job_id]} and {w.name}"
                holders[job_id] = w.name
        head = self.log.head_state
        for job_id, name in holders.items():
            job = head.jobs[job_id]
            assert job.worker == name and job.status == ev.RUNNING

    def teardown(self):
        if not hasattr(self, "log"):
            return
        for w in self.workers:
            w.read(self.log)
            assert w.view == self.log.head_state
        decoded = [decode_commit(encode_commit(c)[:-1]) for c in self.log.commits]
        assert fold(decoded) == self.log.head_state
        assert find_double_claims(decoded) == []


ClaimProtocol.TestCase.settings = settings(
    max_examples=150, stateful_step_count=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
TestClaimProtocol = ClaimProtocol.TestCase


# ---------------------------------------------------------------- the protocol, step by step


def manual_log(n_jobs):
    log = Log()
    log.append(
        1,
        "op",
        decide.create_experiment(None, name=NAME, kind="manual", params=MANUAL, status=ev.RUNNING, seed=1).events,
    )
    for i in range(n_jobs):
        log.append(
            log.version + 1,
            "op",
            decide.add_job(log.head_state, name=NAME, hyperparameters={"i": i}, status=ev.QUEUED, results={}).events,
        )
    return log


def test_stale_decision_conflicts_and_is_decided_again():
    log = manual_log(2)
    a, b = Worker("a"), Worker("b")
    a.read(log)
    b.read(log)
    stats = {"conflicts": 0, "stale_refusals": 0}
    da = transact(log, a, lambda s, v: decide.next_job(s, name=NAME, worker="a", version=v, now=0.0), stats)
    # b's view still shows job 1 queued: its first decision is the same claim, which must not land.
    assert decide.next_job(b.view, name=NAME, worker="b", version=b.version + 1, now=0.0).value == da.value == "1"
    db = transact(log, b, lambda s, v: decide.next_job(s, name=NAME, worker="b", version=v, now=0.0), stats)
    assert stats["conflicts"] == 1
    assert db.value == "2"
    assert [c.worker for c in log.commits[-2:]] == ["a", "b"]
    assert find_double_claims(log.commits) == []


def test_refusal_from_a_stale_view_is_not_final():
    log = manual_log(0)
    a = Worker("a")
    a.read(log)
    log.append(
        2, "op", decide.add_job(log.head_state, name=NAME, hyperparameters={}, status=ev.QUEUED, results={}).events
    )
    stats = {"conflicts": 0, "stale_refusals": 0}
    d = transact(log, a, lambda s, v: decide.next_job(s, name=NAME, worker="a", version=v, now=0.0), stats)
    assert d.value == "1" and stats["stale_refusals"] == 1


def test_stale_put_after_requeue_is_refused():
    log = manual_log(1)
    a, b = Worker("a"), Worker("b")
    stats = {"conflicts": 0, "stale_refusals": 0}
    transact(log, a, lambda s, v: decide.next_job(s, name=NAME, worker="a", version=v, now=0.0), stats)
    claimed_at = a.view.jobs["1"].version
    # The job goes back to the queue (a lease expiry, say) and b takes it.
    log.append(
        log.version + 1,
        "op",
        decide.update_job(
            log.head_state, name=NAME, job_id="1", worker="op", status=ev.QUEUED, hyperparameters={"i": 0}, results={}
        ).events,
    )
    transact(log, b, lambda s, v: decide.next_job(s, name=NAME, worker="b", version=v, now=0.0), stats)
    # a, still holding its old copy, tries to write its results: refused, nothing written.
    n = log.version
    with pytest.raises(UnsafeUpdateError):
        transact(
            log,
            a,
            lambda s, v: decide.update_job(
                s,
                name=NAME,
                job_id="1",
                worker="a",
                status=ev.DONE,
                hyperparameters={"i": 0},
                results={"loss": 1},
                expected_version=claimed_at,
            ),
            stats,
        )
    assert log.version == n and log.head_state.jobs["1"].worker == "b"
    assert find_double_claims(log.commits) == []


# ---------------------------------------------------------------- the checker catches what it must


def C(version, *events, worker="x"):
    return Commit(version, float(version), worker, list(events))


CREATED = ev.experiment_created(NAME, "manual", MANUAL, ev.RUNNING, 1)


def test_checker_reports_a_planted_double_claim():
    log = [
        C(1, CREATED),
        C(2, ev.job_added("1", {}, ev.QUEUED, {}), ev.job_added("2", {}, ev.QUEUED, {})),
        C(3, ev.job_claimed("1", "alice"), worker="alice"),
        C(4, ev.job_claimed("2", "carol"), worker="carol"),
        C(5, ev.job_updated("1", results={"loss": 1}), worker="alice"),  # no status: not a release
        C(6, ev.job_claimed("1", "bob"), worker="bob"),
    ]
    assert find_double_claims(log) == [DoubleClaim(version=6, job_id="1", holder="alice", worker="bob")]
    assert find_double_claims(log[:5]) == []


def test_checker_reports_every_double_claim():
    log = [
        C(1, CREATED),
        C(2, ev.job_added("1", {}, ev.QUEUED, {}), ev.job_claimed("1", "a"), ev.job_claimed("1", "b")),
        C(3, ev.job_claimed("1", "c")),
        C(4, ev.job_updated("1", status=ev.RUNNING), ev.job_claimed("1", "a")),  # RUNNING is not a release
    ]
    assert find_double_claims(log) == [
        DoubleClaim(2, "1", "a", "b"),
        DoubleClaim(3, "1", "b", "c"),
        DoubleClaim(4, "1", "c", "a"),
    ]


def test_same_worker_claiming_twice_is_a_double_claim():
    log = [
        C(1, CREATED, ev.job_added("1", {}, ev.QUEUED, {})),
        C(2, ev.job_claimed("1", "a")),
        C(3, ev.job_claimed("1", "a")),
    ]
    assert find_double_claims(log) == [DoubleClaim(3, "1", "a", "a")]


def test_broken_protocol_is_caught():
    """Workers that append without checking the head (renumbering their commit) double-claim a job."""
    log = manual_log(2)
    a, b = Worker("a"), Worker("b")
    a.read(log)
    b.read(log)  # both see jobs 1 and 2 queued, at the same version
    for w in (a, b):
        d = decide.next_job(
            w.view, name=NAME, worker=w.name, version=w.version + 1, now=0.0
        )  # both decide on the same stale view
        log.commits.append(Commit(len(log.commits) + 1, 0.0, w.name, d.events))  # no head check
    found = find_double_claims(log.commits)
    assert found == [DoubleClaim(version=5, job_id="1", holder="a", worker="b")]
    # The fold accepts the log (it is well formed), which is why the checker exists.
    assert fold(log.commits).jobs["1"].worker == "b"

    # The same schedule with the head check: b's decision conflicts, it catches up and takes job 2.
    log = manual_log(2)
    a, b = Worker("a"), Worker("b")
    a.read(log)
    b.read(log)
    stats = {"conflicts": 0, "stale_refusals": 0}
    for w in (a, b):
        transact(log, w, lambda s, v, w=w: decide.next_job(s, name=NAME, worker=w.name, version=v, now=0.0), stats)
    assert stats["conflicts"] == 1
    assert find_double_claims(log.commits) == []
    assert {j: s.worker for j, s in log.head_state.jobs.items()} == {"1": "a", "2": "b"}


@pytest.mark.parametrize(
    "release",
    [
        ev.job_updated("1", status=ev.DONE),
        ev.job_updated("1", status=ev.CRASHED, results={"e": 1}),
        ev.job_updated("1", status=ev.PRUNED),
        ev.job_updated("1", status=ev.QUEUED),
    ],
)
def test_status_change_releases(release):
    log = [
        C(1, CREATED, ev.job_added("1", {}, ev.QUEUED, {})),
        C(2, ev.job_claimed("1", "a")),
        C(3, release),
        C(4, ev.job_claimed("1", "b")),
    ]
    assert find_double_claims(log) == []
    fold(log)  # and it is a valid log


def test_delete_releases():
    log = [
        C(1, CREATED, ev.job_added("1", {}, ev.QUEUED, {})),
        C(2, ev.job_claimed("1", "a")),
        C(3, ev.job_deleted("1")),
        C(4, ev.job_added("2", {}, ev.QUEUED, {})),
        C(5, ev.job_claimed("2", "b")),
    ]
    assert find_double_claims(log) == []
    fold(log)
    # The checker reads any commits, even ones the fold would refuse: a deletion releases that very id.
    odd = [
        C(1, CREATED, ev.job_added("1", {}, ev.QUEUED, {})),
        C(2, ev.job_claimed("1", "a")),
        C(3, ev.job_deleted("1")),
        C(4, ev.job_claimed("1", "b")),
    ]
    assert find_double_claims(odd) == []


def test_recreation_releases():
    log = [
        C(1, CREATED, ev.job_added("1", {}, ev.QUEUED, {})),
        C(2, ev.job_claimed("1", "a")),
        C(3, ev.experiment_deleted()),
        C(4, CREATED),
        C(5, ev.job_added("2", {}, ev.QUEUED, {})),
        C(6, ev.job_claimed("2", "b")),
    ]
    assert find_double_claims(log) == []
    fold(log)
    # Re-creation without deletion also starts a new incarnation for the checker.
    log2 = [
        C(1, CREATED, ev.job_added("1", {}, ev.QUEUED, {})),
        C(2, ev.job_claimed("1", "a")),
        C(3, CREATED),
        C(4, ev.job_added("1", {}, ev.QUEUED, {})),
        C(5, ev.job_claimed("1", "b")),
    ]
    assert find_double_claims(log2) == []


def test_release_of_one_job_does_not_release_another():
    log = [
        C(1, CREATED, ev.job_added("1", {}, ev.QUEUED, {}), ev.job_added("2", {}, ev.QUEUED, {})),
        C(2, ev.job_claimed("1", "a"), ev.job_claimed("2", "a")),
        C(3, ev.job_updated("2", status=ev.DONE), ev.job_deleted("2")),
        C(4, ev.job_claimed("1", "b")),
    ]
    assert find_double_claims(log) == [DoubleClaim(4, "1", "a", "b")]


def test_experiment_deletion_alone_does_not_release():
    # Only a new incarnation (ExperimentCreated) releases; a tombstone by itself does not.
    log = [
        C(1, CREATED, ev.job_added("1", {}, ev.QUEUED, {})),
        C(2, ev.job_claimed("1", "a")),
        C(3, ev.experiment_deleted()),
        C(4, ev.job_claimed("1", "b")),
    ]
    assert find_double_claims(log) == [DoubleClaim(4, "1", "a", "b")]


def test_nan_results_do_not_confuse_the_checker():
    log = [
        C(1, CREATED, ev.job_added("1", {}, ev.QUEUED, {})),
        C(2, ev.job_claimed("1", "a")),
        C(3, ev.job_updated("1", status=ev.DONE, results=values.encode_mapping({"l": math.nan}, "r"))),
        C(4, ev.job_claimed("1", "b")),
    ]
    assert find_double_claims([decode_commit(encode_commit(c)[:-1]) for c in log]) == []
