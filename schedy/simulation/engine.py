"""The simulation engine: simulated workers on a discrete-event clock, driving the real decisions in memory.

Every change to the simulated experiment is what the append loop of a real
worker would write (:meth:`schedy.adapters.stream.StreamView.transact`): a
pure decision of :mod:`schedy.core.decide` on the folded state, its events
made into ``Commit(version, now, worker, events)`` and folded with
:func:`schedy.core.state.apply`. ``now`` is the simulated clock; the commits
stay in memory as :class:`~schedy.core.codec.Commit` objects (nothing is
encoded in the loop), and :meth:`Simulation.save` writes them to a real log.

A simulated worker does what the worker loop of docs/pbt.md does: it asks
``next_job``; if every member is busy it waits until another worker reports
(or a lease lapses) and asks again; it loads the model state its job
continues from (the simulation keeps one model state per job, as real
workers keep one checkpoint per job), trains it with the problem, renews its
lease every ``heartbeat`` seconds, and reports the score with ``update_job``.
An ASHA or Hyperband job trains its configuration from its parent's model
(from scratch at rung 0) up to its resource, counted in segments: the
resource of its rung minus its parent's, with a report after each segment.
A worker may die mid-segment: then it reports nothing, its lease lapses, the
next writer records the expiry (``decide.expire_leases`` through the
decision it makes), and the segment is redone.

The budget counts segments *reported* (accepted by ``update_job``). A claim
reserves what it will train: one segment (PBT), or, for a random or manual
search job claimed for the first time, its length (less if the budget has
less left), and for an ASHA or Hyperband job, the segments from its parent's
resource to its own (or less). A PBT claim that dies, or whose report is
refused, gives its segment back to the budget; any other job keeps what it
reserved until it is trained to its end, by whichever worker resumes it
(a job handed out again is resumed whatever the budget). The experiment is
marked DONE once the budget is reported, so a segment lost to a death is
wasted time, never budget.
"""

import heapq
import math

import numpy as np

from .. import samplers
from ..adapters.api import Experiment, SchedyDB
from ..adapters.naming import check_name, stream_key
from ..core import decide, halving, pbt, schedulers, values
from ..core import events as ev
from ..core import snapshot as snapshots
from ..core.codec import Commit, encode_commit
from ..core.snapshot import commit_crc, encode_snapshot
from ..core.state import apply, lineage, oldest_queued
from ..errors import ConflictError, NoJobError, ResourceExistsError, SchedyError
from .problems import Durations, Failures, Problem

START = 1735689600.0
"""Where the simulated clock starts: 2025-01-01T00:00:00Z, in seconds since the Unix epoch."""

OPERATOR = "simulation"
"""The worker id of the commits the simulation writes as an operator (creating, adding jobs, stopping)."""

_ASK, _BEAT, _END, _DIE, _RESTART, _ALARM = range(6)


class _Worker:
    __slots__ = (
        "slot",
        "wid",
        "speed",
        "epoch",
        "restarts",
        "job",
        "expected",
        "claimed_at",
        "hps",
        "hps_log",
        "model",
        "done",
        "length",
        "lost",
        "reserved",
        "base",
        "full",
    )

    def __init__(self, slot, speed):
        self.slot, self.wid, self.speed = slot, f"sim-{slot}", speed
        self.epoch = self.restarts = 0
        self.job = None
        self.lost = False
        self.reserved = 0  # PBT: budget segments this worker's claim holds and has not reported (0 or 1)
        self.base = 0  # segments the model of its job had trained before it (ASHA and Hyperband: the parent's)


class _Engine:
    def __init__(
        self,
        experiment,
        problem,
        workers,
        budget,
        seed,
        durations,
        failures,
        heartbeat,
        segments_per_job,
        jobs,
        name,
        start,
        keep_states=False,
    ):
        if not isinstance(experiment, Experiment) or experiment._kind is None:
            raise TypeError(
                "simulate needs a ManualSearch, RandomSearch, PopulationBasedTraining, ASHA, Hyperband or "
                "BayesianSearch definition, "
                f"got {type(experiment).__name__}"
            )
        if not isinstance(problem, Problem):
            if callable(problem):
                problem = Problem(problem)
            else:
                raise TypeError(f"problem must be a schedy.simulation.Problem or a callable, got {problem!r}")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
        seed = int(seed)
        self.kind = experiment._kind
        self.params = experiment._params()
        self.pbt = self.kind == "pbt"
        config = pbt.Config.from_log(self.params) if self.pbt else None
        # ASHA and Hyperband: the ladder of resources, counted in segments
        self.ladder = halving.Config.from_log(self.params, self.kind) if self.kind in halving.KINDS else None
        # A Bayesian search: each job trains its configuration for segments_per_job segments, as random search's.
        self.bayes = schedulers.BayesScheduler.config(self.params) if self.kind == "bayesian" else None
        ranked = config or self.ladder or self.bayes  # the definition that names the score and its direction
        self.score_name = ranked.result_name if ranked else (problem.score or "score")
        if ranked and problem.score not in (None, ranked.result_name):
            raise ValueError(
                f"the experiment ranks by {ranked.result_name!r} but the problem reports {problem.score!r}"
            )
        self.objective = ranked.objective if ranked else (problem.objective or pbt.MAXIMIZE)
        if ranked and problem.objective not in (None, ranked.objective):
            raise ValueError(
                f"the experiment's objective is {ranked.objective!r} but the problem's is {problem.objective!r}"
            )
        if self.ladder:
            _check_ladder(self.ladder)
        self.problem, self.steps = problem, problem.steps
        self.workers_n = problem.workers if workers is None else workers
        if isinstance(self.workers_n, bool) or not isinstance(self.workers_n, int) or self.workers_n < 1:
            raise ValueError(f"workers must be a positive integer, got {self.workers_n!r}")
        self.budget = problem.budget if budget is None else budget
        if self.budget is not None and (
            isinstance(self.budget, bool) or not isinstance(self.budget, int) or self.budget < 1
        ):
            raise ValueError(f"budget must be a positive integer (segments), got {self.budget!r}")
        endless = (
            self.kind == "random"
            or (config is not None and config.max_generations is None)
            or (self.ladder is not None and self.ladder.max_jobs is None)
            or (self.bayes is not None and self.bayes.max_jobs is None)
        )
        if self.budget is None and endless:
            raise ValueError(
                "this experiment never ends by itself (random search, PBT without max_generations, ASHA, "
                "Hyperband or a Bayesian search without max_jobs): give simulate a budget (in segments)"
            )
        self.durations = problem.durations if durations is None else durations
        if not isinstance(self.durations, Durations):
            raise TypeError(f"durations must be a schedy.simulation.Durations, got {self.durations!r}")
        self.failures = Failures() if failures is None else failures
        if isinstance(self.failures, (int, float)) and not isinstance(self.failures, bool):
            self.failures = Failures(rate=float(self.failures))
        if not isinstance(self.failures, Failures):
            raise TypeError(f"failures must be a schedy.simulation.Failures or a rate, got {self.failures!r}")
        self.lease = ev.check_lease(experiment.lease)
        self.heartbeat = self.lease / 4 if heartbeat is None else heartbeat
        if (
            isinstance(self.heartbeat, bool)
            or not isinstance(self.heartbeat, (int, float))
            or not (0 < self.heartbeat < self.lease)
        ):
            raise ValueError(
                f"heartbeat must be a number of seconds in (0, lease = {self.lease}): a worker must renew "
                f"its claim before the lease lapses, got {self.heartbeat!r}"
            )
        self.segments_per_job = problem.segments if segments_per_job is None else segments_per_job
        if (
            isinstance(self.segments_per_job, bool)
            or not isinstance(self.segments_per_job, int)
            or self.segments_per_job < 1
        ):
            raise ValueError(f"segments_per_job must be a positive integer, got {self.segments_per_job!r}")
        if jobs is None:
            own = self.kind == "manual" or (config is not None and not config.initial_distributions)
            jobs = problem.jobs if own else []
        self.jobs = [values.encode_mapping(j, "hyperparameters") for j in jobs]
        self.name = check_name(experiment.name if name is None else name)
        self.label = f"simulated experiment {self.name!r}"
        self.start = float(start)
        self.status = experiment.status

        ss = np.random.SeedSequence(seed)
        self.seed = seed
        self.exp_seed = (
            experiment.seed if experiment.seed is not None else int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))
        )
        # Three streams, as when workers explored by themselves: the third is unused now (exploring is
        # the experiment's, seeded by its own seed), and kept so that a seed's timings do not change.
        timing, problem_rng, _ = (np.random.default_rng(s) for s in ss.spawn(3))
        self.timing, self.prng = timing, problem_rng

        self.state, self.commits = None, []
        self.heap, self.seq = [], 0
        self.idle, self.alarm_at, self.alarm_from = [], None, None
        self.models, self.progress, self.spans = {}, {}, {}
        self.reports = []  # (time, member or job number, job number, segment, score, slot)
        self.states = [] if keep_states else None  # the model state of each report
        # The budget (segments reported): ``reported`` so far; ``reserved`` = reported + what claims will still
        # report (PBT), or the sum of ``quota`` (random and manual search: segments reserved for each job claimed
        # so far, its length or less when the budget had less left; a job keeps its quota until trained to it).
        self.reported = self.reserved = 0
        self.quota = {}
        self.stats = dict(segments=0, heartbeats=0, deaths=0, expired=0, refused=0, asks=0, waited=0)
        self.wake = False

    # -- the log ---------------------------------------------------------------------------------

    def _commit(self, t, worker, events):
        state = self.state
        c = Commit(state.version + 1 if state is not None else 1, t, worker, events)
        self.state = apply(state, c, self.label)
        self.commits.append(c)
        for e in events:
            kind = e["type"]
            if kind == ev.JOB_LEASE_EXPIRED:
                self.stats["expired"] += 1
                self.wake = True
            elif kind == ev.EXPERIMENT_UPDATED:
                self.wake = True

    def _decide(self, t, worker, fn):
        """Run one decision on the current state; append its events as one commit. Return (value, error)."""
        state = self.state
        try:
            d = fn(state, state.version + 1)
        except SchedyError as e:
            return None, e
        if d.events:
            self._commit(t, worker, d.events)
        return d.value, d.error

    # -- the clock -------------------------------------------------------------------------------

    def _push(self, t, kind, slot, epoch=0):
        self.seq += 1
        heapq.heappush(self.heap, (t, self.seq, kind, slot, epoch))

    def _wake_idle(self, t):
        idle, self.idle = self.idle, []
        for slot in idle:
            self._push(t, _ASK, slot, self.workers[slot].epoch)

    def _arm(self, t):
        """While some worker waits, wake it when the earliest lease lapses (a lost worker's segment is redone).

        Leases that lapsed before ``t`` are left out: the waiting workers have seen them (a decision records
        them; a worker waiting for the budget has no use for them).
        """
        if not self.idle:
            return
        future = [until for until in self.state.claims.values() if until >= t]
        if not future:
            return
        at = math.nextafter(min(future), math.inf)
        if self.alarm_at is None or at < self.alarm_at:
            self.alarm_at, self.alarm_from = at, t
            self._push(at, _ALARM, -1)

    def run(self):
        created = decide.create_experiment(
            None,
            name=self.name,
            kind=self.kind,
            params=self.params,
            status=self.status,
            seed=self.exp_seed,
            lease=self.lease,
        )
        self._commit(self.start, OPERATOR, created.events)
        self.created = self.state.created
        for hps in self.jobs:
            _, error = self._decide(
                self.start,
                OPERATOR,
                lambda s, v, hps=hps: decide.add_job(
                    s, name=self.name, hyperparameters=hps, status=ev.QUEUED, results={}, incarnation=self.created
                ),
            )
            if error is not None:
                raise error
        d = self.durations
        speeds = np.exp(d.worker_spread * self.timing.standard_normal(self.workers_n))
        self.workers = [_Worker(i, float(s)) for i, s in enumerate(speeds)]
        for w in self.workers:
            self._push(self.start, _ASK, w.slot, 0)
        heap, workers = self.heap, self.workers
        while heap:
            t, _, kind, slot, epoch = heapq.heappop(heap)
            if kind == _ALARM:
                self._alarm(t)
            else:
                w = workers[slot]
                if epoch != w.epoch:
                    continue  # an event of a segment that ended or of a worker that died
                if kind == _ASK:
                    self._ask(w, t)
                elif kind == _END:
                    self._end(w, t)
                elif kind == _BEAT:
                    self._beat(w, t)
                elif kind == _DIE:
                    self._die(w, t)
                else:
                    self._restart(w, t)
            if self.wake:
                self.wake = False
                if self.idle:
                    self._wake_idle(t)
        return self._result()

    # -- what a worker does ----------------------------------------------------------------------

    def _ask(self, w, t):
        if self.state.status != ev.RUNNING:
            return  # the experiment is DONE (it finished by itself, or the budget is reported): the worker stops
        budget = self.budget
        if budget is not None and self.reported >= budget:
            self._stop(t)
            return  # the budget is reported: the worker stops
        resume = by_id = None
        if budget is not None and self.reserved >= budget:
            # random or manual search: a job that keeps its quota, handed out again, may still be claimed
            resume, by_id = self._resumable(t)
            if resume is None:
                self._wait(w, t)  # every segment of the budget is held by a claim: wait, one may be given back
                return
        self.stats["asks"] += 1
        wid = w.wid
        if not by_id:
            job_id, error = self._decide(
                t,
                wid,
                lambda s, v: decide.next_job(
                    s,
                    name=self.name,
                    worker=wid,
                    version=v,
                    now=t,
                    incarnation=self.created,
                    sample=samplers.suggest,
                ),
            )
        else:  # behind jobs never started in the queue of a manual search: claim it by its id, as Job.try_run does
            job_id, error = self._decide(
                t,
                wid,
                lambda s, v: decide.claim_job(
                    s, name=self.name, job_id=resume, worker=wid, expected_version=None, incarnation=self.created, now=t
                ),
            )
        if error is not None:
            if not isinstance(error, NoJobError):
                raise error
            if not error.finished:
                # Waiting (the next job depends on running ones) or empty (a job may come back when a lease
                # lapses): ask again when something changes.
                self.stats["waited"] += 1
                self._wait(w, t)
            return
        self._start_job(w, job_id, t)

    def _wait(self, w, t):
        self.idle.append(w.slot)
        self._arm(t)

    def _resumable(self, t):
        """With the budget fully reserved: ``(job, by_id)``, a random or manual search job that keeps its quota,
        queued at ``t``, or ``(None, None)``.

        The oldest queued job when it is one (``next_job`` hands it out: ``by_id`` False), else the first queued
        of them (a manual search queues a job handed out again behind the jobs never started: ``by_id`` True).
        """
        if self.pbt:
            return None, None
        state, _ = decide.expire_leases(self.state, t)  # what the next decision will see
        head = oldest_queued(state)
        if head is None or head in self.quota:
            return head, False
        waiting = [j for j in self.quota if state.jobs[j].status == ev.QUEUED]
        return (min(waiting, key=lambda j: state.jobs[j].queue_seq), True) if waiting else (None, None)

    def _stop(self, t):
        """The budget is reported: mark the experiment DONE, as an operator stopping a search would."""
        if self.state.status == ev.RUNNING:
            self._decide(
                t,
                OPERATOR,
                lambda s, v: decide.update_experiment(s, name=self.name, status=ev.DONE, incarnation=self.created),
            )

    def _give_back(self, w):
        """A PBT claim that will report nothing (its worker died, or lost the claim): its segment is not spent."""
        if w.reserved:
            self.reserved -= w.reserved
            w.reserved = 0
            self.wake = True  # a worker waiting for the budget may claim it

    def _start_job(self, w, job_id, t):
        job = self.state.jobs[job_id]
        w.epoch += 1
        w.job, w.expected, w.claimed_at, w.lost = job_id, job.version, t, False
        w.hps_log = job.hyperparameters
        if self.pbt:
            w.model = self.models.get(job.parent) if job.parent is not None else None
            w.done, w.length = 0, 1
            if self.budget is not None:
                self.reserved += 1
                w.reserved = 1
        else:
            w.base, w.full = self._span(job) if self.ladder else (0, self.segments_per_job)
            # resumed from its last progress report; else from its parent's model (a promotion), or from scratch
            w.done, w.model = self.progress.get(job_id) or (0, self.models.get(job.parent))
            if job_id not in self.quota:  # claimed for the first time: reserve its length, or what the budget has left
                quota = w.full if self.budget is None else min(w.full, self.budget - self.reserved)
                if quota < 1:
                    raise AssertionError(f"{self.label}: job {job_id} claimed with no budget left")
                self.quota[job_id] = quota
                self.reserved += quota
            w.length = self.quota[job_id]
        w.hps = values.decode_mapping(w.hps_log)
        self._segment(w, t)
        self._push(t + self.heartbeat, _BEAT, w.slot, w.epoch)

    def _span(self, job):
        """ASHA and Hyperband: ``(base, length)``, the segments ``job``'s parent trained its model to, and the
        segments ``job`` trains on top of them to reach its own resource."""
        ladder, jobs = self.ladder, self.state.jobs
        base = 0
        if job.parent is not None:
            parent = jobs[job.parent]
            base = int(ladder.resource_of(parent.member, parent.generation))
        return base, int(ladder.resource_of(job.member, job.generation)) - base

    def _segment(self, w, t):
        d, rng = self.durations, self.timing
        duration = d.mean * w.speed * math.exp(d.spread * rng.standard_normal() - d.spread * d.spread / 2)
        rate = self.failures.rate
        if rate and rng.random() < rate:
            self._push(t + duration * rng.random(), _DIE, w.slot, w.epoch)
        else:
            self._push(t + duration, _END, w.slot, w.epoch)

    def _end(self, w, t):
        job_id, wid = w.job, w.wid
        model, score = self.problem.step(w.hps, w.model, self.steps, self.prng)
        if isinstance(score, bool) or not isinstance(score, (int, float, np.integer, np.floating)):
            raise TypeError(
                f"problem {self.problem.name!r} returned a score of type {type(score).__name__}, not a number"
            )
        score = float(score)
        done = w.done + 1
        final = done >= w.length
        if self.pbt:
            results = dict(self.state.jobs[job_id].results)
            results[self.score_name] = values.encode(score)
        else:
            results = {self.score_name: values.encode(score)}
        # A job whose quota is shorter than its length (a full training; up to its resource) was cut by the
        # budget: PRUNED.
        status = ev.RUNNING if not final else ev.DONE if self.pbt or done >= w.full else ev.PRUNED
        hps, expected = w.hps_log, w.expected
        _, error = self._decide(
            t,
            wid,
            lambda s, v: decide.update_job(
                s,
                name=self.name,
                job_id=job_id,
                worker=wid,
                status=status,
                hyperparameters=hps,
                results=results,
                expected_version=expected,
                incarnation=self.created,
                now=t,
            ),
        )
        if error is not None:  # this worker lost the job (its lease lapsed): the report is refused
            self.stats["refused"] += 1
            self._give_back(w)  # PBT: the segment is redone (or another trained) on the budget it held
            w.job = None
            w.epoch += 1
            self._ask(w, t)
            return
        w.done = done
        w.reserved = 0  # PBT: the segment it held is reported (still in ``reserved``)
        self.reported += 1
        self.stats["segments"] += 1
        job = self.state.jobs[job_id]
        self.reports.append(
            (
                t,
                job.member if job.member is not None else job.number,
                job.number,
                (job.generation + 1) if self.pbt else w.base + w.done,
                score,
                w.slot,
            )
        )
        if self.states is not None:
            self.states.append(model)
        if self.pbt:
            self.models[job_id] = model
        else:
            self.progress[job_id] = (w.done, model)
            if self.ladder:
                self.models[job_id] = model  # where a promotion of this job starts
        if final:
            self.spans[job_id] = (w.claimed_at, t, w.slot)
            w.job = None
            w.epoch += 1
            self.wake = True
            self._ask(w, t)
        else:
            w.expected, w.model = job.version, model
            self._segment(w, t)

    def _beat(self, w, t):
        if w.job is None or w.lost:
            return
        job_id, wid, claimed_at = w.job, w.wid, w.claimed_at
        _, error = self._decide(
            t,
            wid,
            lambda s, v: decide.heartbeat(
                s, name=self.name, job_id=job_id, worker=wid, now=t, incarnation=self.created, claimed_at=claimed_at
            ),
        )
        if error is not None:
            w.lost = True  # like the real heartbeat thread: stop renewing; the report will be refused
            self._give_back(w)
            return
        self.stats["heartbeats"] += 1
        self._push(t + self.heartbeat, _BEAT, w.slot, w.epoch)

    def _die(self, w, t):
        self.stats["deaths"] += 1
        self._give_back(w)  # PBT; a random or manual search job keeps its quota, for whoever resumes it
        w.epoch += 1
        w.job = None
        self._push(t + self.failures.restart, _RESTART, w.slot, w.epoch)

    def _restart(self, w, t):
        w.restarts += 1
        w.wid = f"sim-{w.slot}.{w.restarts}"
        self._ask(w, t)

    def _alarm(self, t):
        self.alarm_at = None
        if not self.idle:
            return
        if any(self.alarm_from <= until < t for until in self.state.claims.values()):
            self._wake_idle(t)  # a lease lapsed: the waiting workers ask, and the first records the expiry
        else:
            self._arm(t)  # renewed meanwhile

    # -- the result ------------------------------------------------------------------------------

    def _result(self):
        r = self.reports
        reports = {
            "time": np.array([x[0] - self.start for x in r], dtype=float),
            "member": np.array([x[1] for x in r], dtype=np.int64),
            "job": np.array([x[2] for x in r], dtype=np.int64),
            "segment": np.array([x[3] for x in r], dtype=np.int64),
            "score": np.array([x[4] for x in r], dtype=float),
            "worker": np.array([x[5] for x in r], dtype=np.int64),
        }
        stats = dict(
            self.stats, commits=len(self.commits), end=(self.commits[-1].time - self.start) if self.commits else 0.0
        )
        return Simulation(
            name=self.name,
            kind=self.kind,
            seed=self.seed,
            problem=self.problem.name,
            workers=self.workers_n,
            objective=self.objective,
            score_name=self.score_name,
            start=self.start,
            commits=self.commits,
            state=self.state,
            models=self.models,
            spans={k: (a - self.start, b - self.start, s) for k, (a, b, s) in self.spans.items()},
            reports=reports,
            states=self.states,
            stats=stats,
        )


def _check_ladder(ladder):
    """Refuse an ASHA or Hyperband definition whose resources are not whole numbers of segments."""
    for b in range(ladder.bracket_count):
        for rung in range(ladder.rungs(b)):
            r = ladder.resource(b, rung)
            if not float(r).is_integer():
                raise ValueError(
                    f"simulate counts resources in segments, so every rung must train to a whole number of them: "
                    f"rung {rung} of bracket {b} trains to {r!r} (min_resource {ladder.min_resource!r}, "
                    f"max_resource {ladder.max_resource!r}, reduction_factor {ladder.reduction_factor!r})"
                )


def simulate(
    experiment,
    problem,
    *,
    workers=None,
    budget=None,
    seed=0,
    durations=None,
    failures=None,
    heartbeat=None,
    segments_per_job=None,
    jobs=None,
    name=None,
    db=None,
    start=START,
    keep_states=False,
):
    """Run ``experiment`` on a simulated ``problem`` with ``workers`` simulated workers; return a :class:`Simulation`.

    ``experiment`` is an unbound definition (``schedy.PopulationBasedTraining``,
    ``RandomSearch``, ``ManualSearch``, ``ASHA`` or ``Hyperband``); ``problem``
    a :class:`~schedy.simulation.problems.Problem` or a callable
    ``(hyperparameters, state, steps, rng) -> (state, score)``. ``budget``
    is the number of segments to report: once that many are reported, the
    simulation marks the experiment DONE (PBT with ``max_generations``, ASHA
    or Hyperband with ``max_jobs`` may finish first). A segment cut short by
    a failure, or whose report is refused, is wasted time, not budget: it is
    trained again. A random or manual search job reserves its
    ``segments_per_job`` segments when it is first claimed, or what is left
    of the budget; an ASHA or Hyperband job, the segments from its parent's
    resource to its own (resources are counted in segments: a promotion
    continues from its parent's model, a rung-0 job starts from scratch). A
    job that the budget cuts short ends ``PRUNED``. ``durations``
    (:class:`Durations`) and ``failures`` (:class:`Failures`, or a
    probability per segment) model time. ``heartbeat`` is the interval of
    lease renewals (default: a quarter of the experiment's lease, as a real
    ``with job:`` block). ``jobs`` are hyperparameters of jobs added before
    the start (default: the problem's, for a manual search or a PBT
    population of your own jobs). ``workers``, ``budget``, ``durations`` and
    ``segments_per_job`` default to the problem's. ``start`` is the clock
    reading of the first commit (seconds since the Unix epoch). With
    ``keep_states``, ``Simulation.states`` holds the model state of every
    report. The same arguments give the same log, bit for bit.

    With ``db`` (a :class:`schedy.SchedyDB` or its location), the log is then
    written there under ``name`` (default: the experiment's name).
    """
    sim = _Engine(
        experiment,
        problem,
        workers,
        budget,
        seed,
        durations,
        failures,
        heartbeat,
        segments_per_job,
        jobs,
        name,
        start,
        keep_states,
    ).run()
    if db is not None:
        sim.save(db)
    return sim


class Simulation:
    """The outcome of :func:`simulate`: the log, and what happened in it.

    ``commits`` is the log (a list of :class:`~schedy.core.codec.Commit`),
    ``state`` its fold. ``reports`` holds one entry per segment reported, as
    numpy arrays of equal length: ``time`` (simulated seconds since the
    start), ``member`` (the PBT member or the ASHA configuration, else the
    job number), ``job`` (job number), ``segment`` (segments the reported
    model has trained, its parents' included), ``score`` and ``worker`` (the
    simulated machine); ``states`` the model state of each report (with
    ``keep_states``, else None). ``models`` maps each job id to the model
    state its last segment produced (PBT, ASHA and Hyperband); ``spans``
    each finished job to ``(claimed, finished, worker)`` times. ``stats``
    counts segments (reported: one per entry of ``reports``), commits,
    heartbeats, deaths, lapsed leases (``expired``), refused reports,
    ``asks`` (``next_job`` decisions), those answered with no job yet
    (``waited``), and the simulated ``end`` time.
    """

    def __init__(self, **fields):
        self.__dict__.update(fields)

    def __repr__(self):
        return (
            f"<Simulation {self.name!r} ({self.kind}, seed {self.seed}): {self.stats['segments']} segments, "
            f"{self.stats['commits']} commits, best {self.score_name} {self.best_score:.6g}>"
        )

    def _better(self, a, b):
        return pbt._better(a, b, self.objective)

    def best_over_time(self):
        """``(times, best)``: after each report, the best score reported so far (NaN scores are ignored)."""
        s = self.reports["score"]
        acc = np.fmax.accumulate if self.objective == pbt.MAXIMIZE else np.fmin.accumulate
        return self.reports["time"], acc(s) if len(s) else s

    def best_at(self, t):
        """The best score reported by simulated time ``t`` (seconds since the start); NaN before the first."""
        times, best = self.best_over_time()
        i = np.searchsorted(times, t, side="right")
        return float(best[i - 1]) if i else math.nan

    @property
    def best_score(self):
        """The best score any segment reported."""
        return float(self.best_over_time()[1][-1]) if len(self.reports["score"]) else math.nan

    def score(self, job):
        """The score of a job (a JobState), NaN if it has none."""
        raw = job.results.get(self.score_name)
        x = values.decode(raw) if raw is not None else math.nan
        return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else math.nan

    @property
    def final_population(self):
        """PBT: each member's latest DONE segment; other kinds: every DONE job. As JobStates, by member/number."""
        jobs = sorted(self.state.jobs.values(), key=lambda j: j.number)
        done = [j for j in jobs if j.status == ev.DONE]
        if self.kind != "pbt":
            return done
        latest = {}
        for j in done:
            latest[j.member] = j
        return [latest[m] for m in sorted(latest)]

    @property
    def best_job(self):
        """The DONE job with the best score (the first reported among equals), or None."""
        best = None
        for j in sorted(self.state.jobs.values(), key=lambda j: j.number):
            if j.status == ev.DONE and (best is None or self._better(self.score(j), self.score(best))):
                best = j
        return best

    def lineage(self, job_id=None):
        """The chain of jobs (JobStates) from generation 0 to ``job_id`` (default: the best job)."""
        if job_id is None:
            best = self.best_job
            if best is None:
                return []
            job_id = best.job_id
        return lineage(self.state, job_id)

    def schedule(self, job_id=None):
        """The hyperparameter schedule that produced a job (default: the best): one dict per segment of its lineage.

        Keys: ``job``, ``generation``, ``member``, ``start`` and ``end`` (simulated seconds), ``hyperparameters``
        (decoded) and ``score``.
        """
        rows = []
        for j in self.lineage(job_id):
            start, end, _ = self.spans.get(j.job_id, (math.nan, math.nan, None))
            rows.append(
                {
                    "job": j.job_id,
                    "generation": j.generation,
                    "member": j.member,
                    "start": start,
                    "end": end,
                    "hyperparameters": values.decode_mapping(j.hyperparameters),
                    "score": self.score(j),
                }
            )
        return rows

    def log(self):
        """The log as bytes, one line per commit, exactly as :meth:`save` writes it."""
        return b"".join(encode_commit(c) for c in self.commits)

    def save(self, db, name=None):
        """Write the log into ``db`` (a SchedyDB or its location) as experiment ``name`` (default: its own); return it.

        The experiment must not exist there yet (nor have existed: its stream must be empty). The commits are
        written in order, with the snapshots a real writer would write; the experiment returned is read back
        from the store.
        """
        db = db if isinstance(db, SchedyDB) else SchedyDB(db)
        name = check_name(self.name if name is None else name)
        commits = self.commits
        if name != self.name:
            first = commits[0]
            renamed = [dict(e, name=name) if e["type"] == ev.EXPERIMENT_CREATED else e for e in first.events]
            commits = [first._replace(events=renamed), *commits[1:]]
        write_log(db, name, commits)
        return db.get_experiment(name)


def write_log(db, name, commits):
    """Append ``commits`` (starting at version 1) to the empty stream of ``name`` in ``db``, with snapshots.

    On the local file store, the lines between two snapshots are appended
    with one write (and one sync); other stores take one append per commit.
    """
    from ..adapters.filestore import FileLogStore

    store, key = db._store, stream_key(name)
    every = store.snapshot_every
    batch = isinstance(store, FileLogStore)
    with store.exclusive(key):
        records, cursor = store.read(key, store.initial_cursor())
        if records:
            raise ResourceExistsError(
                f"the database already holds a log for an experiment named {name!r}; "
                "save the simulation under another name"
            )
        state, pending, first, memo = None, [], 1, {}
        for c in commits:
            line = encode_commit(c)
            state = apply(state, c, f"experiment {name!r}")
            if batch:
                pending.append(line)
                if not snapshots.due(state, every) and c is not commits[-1]:
                    continue
                line, pending, version = b"".join(pending), [], first
                first = c.version + 1
            else:
                version = c.version
            cursor = store.append(key, cursor, version, line)
            if cursor is None:
                raise ConflictError(
                    f"experiment {name!r}: another writer appended to its log while the simulation was being written"
                )
            if snapshots.due(state, every):
                store.write_snapshot(key, c.version, encode_snapshot(state, cursor, commit_crc(encode_commit(c)), memo))
