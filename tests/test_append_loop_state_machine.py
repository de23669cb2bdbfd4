"""A Hypothesis state machine over the real append loop: several workers, one fake clock, leases that lapse.

Three workers (three SchedyDB objects on one database, as three processes would open it) share a manual
search and a small Population Based Training. Each has its own record of the claims it has seen (its own
monotonic function, tests/fakeclock.py), and the clock moves only when a rule says so. The model predicts
what the rules of docs/crash-recovery.md say must happen: a worker takes a job back once *it* has watched the
claim go a whole lease unrenewed; a holder's put that keeps a job RUNNING renews it, another's note does not; a
holder whose claim lapsed is refused. Every step is checked against the log: no double claim, the jobs as
the model has them, and a reader replaying the log (from a snapshot or not) finds the state the writers have.

Runs on the memory store and on the file store.
"""

import itertools
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field

import hypothesis.strategies as st
from conftest import log_commits
from fakeclock import FakeClock
from hypothesis import HealthCheck, event, settings
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import schedy
from schedy.core import events as ev
from schedy.core.check import find_double_claims
from schedy.core.state import apply
from schedy.errors import NoJobError, UnsafeUpdateError

LEASE = 10  # fake seconds; the clock moves by whole seconds, so the arithmetic of leases is exact
WORKERS = 3
MANUAL, PBT = "queue", "pbt"


@dataclass
class JobModel:
    status: str
    results: dict
    holder: str = None
    claim: int = None  # which claim holds it (a Job object is good for the claim it was handed out with)
    renewal: int = None  # changes whenever a worker watching the claim must start timing it again
    until: float = None  # the claim's lease_until: for people and audit (no decision reads it)
    member: int = None


@dataclass
class ExperimentModel:
    expired: str  # what a job whose lease lapsed becomes
    jobs: dict = field(default_factory=dict)
    queue: list = field(default_factory=list)  # QUEUED jobs in the order next_job hands them out
    seen: dict = field(default_factory=lambda: {w: {} for w in range(WORKERS)})  # worker -> job -> (renewal, since)


@dataclass
class Held:
    worker: int
    name: str
    job: object  # the schedy.Job the worker was handed
    claim: int


class AppendLoop(RuleBasedStateMachine):
    store = None  # "memory" or "file"

    def __init__(self):
        super().__init__()
        self.dir = None
        if self.store == "file":
            self.dir = tempfile.mkdtemp(prefix="schedy-machine-")
            self.path = f"{self.dir}/db"
        else:
            self.path = f"memory://machine-{uuid.uuid4().hex}/db"
        self.clock = FakeClock()
        self.ids = itertools.count(1)
        self.dbs = [
            schedy.SchedyDB(
                self.path,
                worker=f"w{w}",
                clock=self.clock,
                monotonic=self.clock.watcher(),
                snapshot_every=4,
                durable=False,
            )
            for w in range(WORKERS)
        ]
        self.dbs[0].add_experiment(schedy.ManualSearch(MANUAL, lease=LEASE))
        self.dbs[0].add_experiment(
            schedy.PopulationBasedTraining(
                PBT,
                "min",
                "loss",
                schedy.pbt.Truncate(),
                initial_distributions={"lr": schedy.random.Uniform(0, 1)},
                population_size=2,
                max_generations=3,
                lease=LEASE,
                seed=11,
            )
        )
        self.exps = [{name: db.get_experiment(name) for name in (MANUAL, PBT)} for db in self.dbs]
        self.model = {MANUAL: ExperimentModel(expired=ev.QUEUED), PBT: ExperimentModel(expired=ev.CRASHED)}
        self.held = []

    def teardown(self):
        for db in self.dbs:
            _close(db)
        if self.dir is not None:
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- the model ------------------------------------------------------------------------------------------

    def observe(self, name, w):
        """Worker ``w`` reads ``name``'s log now: note each claim's renewal when first seen; return what lapsed."""
        m, now = self.model[name], self.clock.now
        seen = {}
        for job_id, job in m.jobs.items():
            if job.status == ev.RUNNING:
                old = m.seen[w].get(job_id)
                seen[job_id] = old if old is not None and old[0] == job.renewal else (job.renewal, now)
        m.seen[w] = seen
        return sorted(j for j, (_, since) in seen.items() if now - since >= LEASE)

    def expire(self, name, job_ids):
        m = self.model[name]
        if job_ids:
            event(f"{name}: a lease lapsed")
        for job_id in job_ids:
            job = m.jobs[job_id]
            job.status, job.holder, job.claim, job.renewal, job.until = m.expired, None, None, None, None
            if m.expired == ev.QUEUED:
                m.queue.append(job_id)

    def claim(self, name, w, job_id):
        job = self.model[name].jobs[job_id]
        job.status, job.holder, job.claim, job.renewal = ev.RUNNING, f"w{w}", next(self.ids), next(self.ids)
        job.until = self.clock.now + LEASE
        return job.claim

    def heartbeat(self, job, changed):
        """The holder wrote: a new version of the job if it ``changed``, and a new lease_until if time moved."""
        until = self.clock.now + LEASE
        if until != job.until:  # a renewal is a new lease_until (or a new claim): a new version alone is not
            job.renewal = next(self.ids)
        job.until = until

    def holds(self, held):
        job = self.model[held.name].jobs[held.job.job_id]
        return job.status == ev.RUNNING and job.claim == held.claim

    # -- rules ----------------------------------------------------------------------------------------------

    @rule(w=st.integers(0, WORKERS - 1))
    def add_job(self, w):
        m = self.model[MANUAL]
        self.observe(MANUAL, w)  # adding a job reads the log, and records no expiry
        job = self.exps[w][MANUAL].add_job({"n": next(self.ids)})
        assert job.job_id not in m.jobs
        m.jobs[job.job_id] = JobModel(ev.QUEUED, {})
        m.queue.append(job.job_id)

    @rule(w=st.integers(0, WORKERS - 1))
    def next_job(self, w):
        m = self.model[MANUAL]
        self.expire(MANUAL, self.observe(MANUAL, w))
        try:
            job = self.exps[w][MANUAL].next_job()
        except NoJobError:
            assert not m.queue, "a queued job was not handed out"
        else:
            assert m.queue and job.job_id == m.queue[0], "not the job that waited longest"
            m.queue.pop(0)
            self.held.append(Held(w, MANUAL, job, self.claim(MANUAL, w, job.job_id)))
        self.observe(MANUAL, w)

    @rule(w=st.integers(0, WORKERS - 1))
    def pbt_next_job(self, w):
        m = self.model[PBT]
        self.expire(PBT, self.observe(PBT, w))
        try:
            job = self.exps[w][PBT].next_job()
        except NoJobError as e:
            event(f"pbt: no job ({'finished' if e.finished else 'waiting'})")
        else:
            assert job.job_id not in m.jobs, "PBT handed out a segment that already existed"
            assert not [j for j in m.jobs.values() if j.member == job.member and j.status == ev.RUNNING], (
                "two segments of one member running at once"
            )
            m.jobs[job.job_id] = JobModel(ev.RUNNING, dict(job.results), member=job.member)
            self.held.append(Held(w, PBT, job, self.claim(PBT, w, job.job_id)))
        self.observe(PBT, w)

    def _put(self, held, status, changes):
        """The holder writes ``changes`` (and ``status``); return whether the model expected it to be accepted."""
        job_id = held.job.job_id
        self.expire(held.name, self.observe(held.name, held.worker))
        expected = self.holds(held)
        held.job.status = status
        held.job.results.update(changes)
        try:
            held.job.put()
        except UnsafeUpdateError:
            assert not expected, "the holder's put was refused"
            event(f"{held.name}: a put from a holder whose lease lapsed was refused")
        else:
            assert expected, "a put from a worker whose claim lapsed was accepted"
            job = self.model[held.name].jobs[job_id]
            job.results.update(changes)
            if status == ev.RUNNING:
                self.heartbeat(job, bool(changes))  # a put that keeps the job RUNNING renews the lease
            else:
                job.status, job.holder, job.claim, job.renewal, job.until = status, None, None, None, None
        self.observe(held.name, held.worker)
        return expected

    @precondition(lambda self: self.held)
    @rule(
        data=st.data(),
        act=st.sampled_from(["finish", "crash", "progress", "renew", "die"]),
        loss=st.floats(0, 1, allow_nan=False),
    )
    def holder(self, data, act, loss):
        """A worker holding a job reports a score and ends it (DONE: the PBT rule ranks members by it), reports
        it CRASHED (its with-block raised), reports progress or only renews (a put that keeps the job RUNNING,
        as its with-block's heartbeat does), or dies (nothing more from it about this job: only a lapsed lease
        gives it back)."""
        held = data.draw(st.sampled_from(self.held))
        if act in ("progress", "renew"):
            if not self._put(held, ev.RUNNING, {"step": next(self.ids)} if act == "progress" else {}):
                self.held.remove(held)
            return
        self.held.remove(held)
        if act == "finish":
            self._put(held, ev.DONE, {"loss": loss})
        elif act == "crash":
            self._put(held, ev.CRASHED, {"error": "boom"})

    @precondition(lambda self: any(m.jobs for m in self.model.values()))
    @rule(data=st.data(), w=st.integers(0, WORKERS - 1))
    def note(self, data, w):
        """Another worker (or the holder, through a copy of its own) adds a result to any job."""
        name = data.draw(st.sampled_from([n for n, m in self.model.items() if m.jobs]))
        m = self.model[name]
        job_id = data.draw(st.sampled_from(sorted(m.jobs)))
        lapsed = self.observe(name, w)  # get_job reads the log; its put then records what lapsed
        copy = self.exps[w][name].get_job(job_id)
        self.expire(name, lapsed)
        note = next(self.ids)
        copy.results["note"] = note
        try:
            copy.put()
        except UnsafeUpdateError:
            assert job_id in lapsed, "a note on an up-to-date copy was refused"
            event(f"{name}: a note on a job whose lease lapsed as it was written was refused")
        else:
            assert job_id not in lapsed, "a put on a copy older than the expiry it recorded was accepted"
            job = m.jobs[job_id]
            job.results["note"] = note
            if job.status == ev.RUNNING and job.holder == f"w{w}":
                self.heartbeat(job, True)  # the holder's own put renews its lease
        self.observe(name, w)

    @rule(seconds=st.sampled_from([1, LEASE // 2, LEASE - 1, LEASE, LEASE + 1, 3 * LEASE]))
    def advance(self, seconds):
        """Time passes for every worker: leases lapse for those who have watched a claim long enough."""
        self.clock.advance(seconds)

    # -- invariants -----------------------------------------------------------------------------------------

    @invariant()
    def the_log_agrees_with_the_model_and_with_every_reader(self):
        reader = schedy.SchedyDB(self.path, monotonic=FakeClock())
        try:
            self._check_reader(reader)
        finally:
            _close(reader)  # one reader per step: its open log files must not pile up across examples

    def _check_reader(self, reader):
        for name, m in self.model.items():
            commits = log_commits(reader, name)
            assert find_double_claims(commits) == []
            states = [None]  # the state after each commit, by version
            for c in commits:
                states.append(apply(states[-1], c))
            replayed = states[-1]
            opened = reader.get_experiment(name)._view.state  # from the newest snapshot, if one checks out
            assert opened == replayed
            for exps in self.exps:  # what each worker last read is the state at a commit of the log
                cached = exps[name]._view.state
                assert cached == states[cached.version]
            assert set(replayed.jobs.keys()) == set(m.jobs)
            for job_id, job in m.jobs.items():
                got = replayed.jobs[job_id]
                assert (got.status, got.worker, got.results, got.lease_until) == (
                    job.status,
                    job.holder,
                    job.results,
                    job.until,
                ), job_id
            if name == MANUAL:
                queue = [
                    j
                    for seq, j in replayed.queue[replayed.queue_head :]
                    if j in replayed.jobs and replayed.jobs[j].status == ev.QUEUED and replayed.jobs[j].queue_seq == seq
                ]
                assert queue == m.queue
            else:
                running = [j.member for j in replayed.jobs.values() if j.status == ev.RUNNING]
                assert len(running) == len(set(running)), "two segments of one member running at once"


MACHINE_SETTINGS = settings(
    max_examples=40, stateful_step_count=50, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _close(db):
    close = getattr(db._store, "close", None)  # the file store keeps its logs open; object stores hold nothing
    if close is not None:
        close()


class OnMemory(AppendLoop):
    store = "memory"


class OnFile(AppendLoop):
    store = "file"


TestAppendLoopOnTheMemoryStore = OnMemory.TestCase
TestAppendLoopOnTheMemoryStore.settings = MACHINE_SETTINGS
TestAppendLoopOnTheFileStore = OnFile.TestCase
TestAppendLoopOnTheFileStore.settings = MACHINE_SETTINGS
