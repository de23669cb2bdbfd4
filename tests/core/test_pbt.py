"""Population Based Training, driven through the pure core only.

The generation step (:func:`schedy.core.pbt.propose`, reached through
:func:`schedy.core.decide.next_job`) is run against a live state, one commit
per decision, exactly as the imperative shell would. An independent model of
the documented semantics (who is ready, who is ranked where, who may copy whom,
how far explore may move a value) is recomputed from the state just before
every commit and compared with what the decision did.
"""

import math

import hypothesis
import numpy as np
import pytest
from _replay import redecide
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from schedy.core import decide, pbt, schedulers, values
from schedy.core import events as ev
from schedy.core.check import find_double_claims
from schedy.core.codec import Commit, decode_commit, encode_commit
from schedy.core.distributions import Choice, Constant, LogUniform, Normal, Uniform
from schedy.core.pbt import AddNoise, BinaryTournament, Config, Perturb, Resample, Truncate
from schedy.core.state import apply, fold, lineage, oldest_queued
from schedy.errors import NoJobError

NAME = "pbt-exp"
NAN = math.nan
INF = math.inf

# ---------------------------------------------------------------- the independent model


def event(what):
    """Count ``what`` in Hypothesis's statistics (``--hypothesis-show-statistics``), when a property test runs."""
    if currently_in_test_context():
        hypothesis.event(what)


def number_or_nan(raw):
    """A score in log form as a float; NaN if it is absent or not a number."""
    if raw is None:
        return NAN
    x = values.decode(raw)
    return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) else NAN


def better(a, b, objective):
    """Strictly better; NaN is worse than everything, even under 'max'."""
    if math.isnan(a):
        return False
    if math.isnan(b):
        return True
    return a < b if objective == "min" else a > b


class Model:
    """What the semantics say about a state, recomputed from scratch.

    ``generation`` is the generation the deciding member finished: with the
    SAME_GENERATION rule, each member is compared by its DONE segment of that
    generation; with LATEST, by its latest DONE segment.
    """

    def __init__(self, state, cfg, generation=None):
        self.cfg = cfg
        self.state = state
        jobs = {m: [state.jobs[j] for j in ids if j in state.jobs] for m, ids in state.members.items()}
        self.active = {m: js for m, js in jobs.items() if js and js[-1].status != ev.PRUNED}
        self.latest = {m: js[-1] for m, js in self.active.items()}
        self.last_done = {
            m: next((j for j in reversed(js) if j.status == ev.DONE), None) for m, js in self.active.items()
        }
        self.pending = []  # members whose segment of `generation` is still to come
        if cfg.ranking == pbt.SAME_GENERATION and generation is not None:
            self.compared = {
                m: next((j for j in reversed(js) if j.status == ev.DONE and j.generation == generation), None)
                for m, js in self.active.items()
            }
            # Members that have not finished `generation` yet: training it, or behind it (not those past it).
            self.pending = sorted(
                m for m, j in self.latest.items() if self.compared[m] is None and j.generation <= generation
            )
        else:
            self.compared = self.last_done
        self.last_gen = None if cfg.max_generations is None else cfg.max_generations - 1

    def waits(self, member):
        """Why the ready ``member`` cannot be decided now ("synchronous" or "pending"), or None."""
        latest, cfg = self.latest[member], self.cfg
        if latest.status == ev.CRASHED:
            return None  # redone at once
        g = latest.generation
        if cfg.synchronous and self.behind(g):
            return "synchronous"
        if not isinstance(cfg.exploit, Truncate) or cfg.ranking != pbt.SAME_GENERATION:
            return None
        mg = Model(self.state, cfg, g)
        ranking, k, top, bottom, undecided = mg.truncation()
        own = mg.score(member)
        if own == (-INF if cfg.objective == "min" else INF):
            return None  # nothing can be strictly better: it never copies

        def better_ones(group):
            return [t for t in group if mg.eligible(t) and better(mg.score(t), own, cfg.objective)]

        # Its side of the cut is undecided; or it is surely in the bottom, no member surely in the top is
        # better, and pending members may yet be.
        if member in undecided or (member in bottom and not better_ones(top) and mg.pending):
            return "pending"
        return None

    def copies_if_pending_score(self, member, extreme):
        """Whether full information would make ``member`` copy, if every pending member ranked at the ``extreme``
        ("best": above every ranked member, and strictly better than ``member`` unless nothing can be; "worst":
        below all of them, NaN). Independent of the rule's arithmetic."""
        cfg = self.cfg
        mg = Model(self.state, cfg, self.latest[member].generation)
        ranked = mg.ranking()
        order = mg.pending + ranked if extreme == "best" else ranked + mg.pending
        n = len(order)
        k = math.floor(n * cfg.exploit.proportion)
        if not k or order.index(member) < n - k:
            return False
        own = mg.score(member)
        unbeatable = own == (-INF if cfg.objective == "min" else INF)

        def better_than_own(t):
            if t in mg.pending:
                return extreme == "best" and not unbeatable
            return mg.eligible(t) and better(mg.score(t), own, cfg.objective)

        return any(better_than_own(t) for t in order[:k])

    def behind(self, g):
        """Members that have not finished generation ``g`` (what a synchronous population waits for)."""
        return sorted(m for m, d in self.last_done.items() if d is None or d.generation < g)

    def score(self, m):
        return number_or_nan(self.compared[m].results.get(self.cfg.result_name))

    def ranking(self):
        def key(m):
            s = self.score(m)
            if math.isnan(s):
                return (1, 0.0, m)
            return (0, s if self.cfg.objective == "min" else -s, m)

        return sorted((m for m in self.active if self.compared[m] is not None), key=key)

    def eligible(self, m):
        d = self.compared.get(m)
        return d is not None and (self.last_gen is None or d.generation < self.last_gen)

    def ready(self):
        out = []
        for m, j in self.latest.items():
            if j.status == ev.CRASHED:
                out.append((j.generation, j.version, m))
            elif j.status == ev.DONE and (self.last_gen is None or j.generation < self.last_gen):
                out.append((j.generation + 1, j.version, m))
        return sorted(out)

    def filling(self):
        """True while the initial population is still being sampled."""
        return self.cfg.population_size is not None and len(self.state.members) < self.cfg.population_size

    def truncation(self):
        """``(ranking, k, top, bottom, undecided)``: the members surely in the top and surely in the bottom,
        whatever the pending members score, and those whose side depends on it."""
        ranking = self.ranking()
        n, p = len(ranking) + len(self.pending), len(self.pending)
        k = math.floor(n * self.cfg.exploit.proportion)
        if not k:
            return ranking, k, [], [], []
        return ranking, k, ranking[: max(k - p, 0)], ranking[max(n - k, 0) :], ranking[max(n - k - p, 0) : n - k]


def carried_results(results, cfg):
    return {k: v for k, v in results.items() if k != cfg.result_name}


def carried(parent, cfg):
    return {} if parent is None else carried_results(parent.results, cfg)


def strategies_of(spec):
    return spec if isinstance(spec, list) else [spec]


def support(dist):
    """An interval holding every sample of ``dist``."""
    if isinstance(dist, (Uniform, LogUniform)):
        return (dist.low, dist.high)
    if isinstance(dist, Normal):
        return (-INF, INF)
    if isinstance(dist, Choice):
        return (min(dist.values), max(dist.values))
    if isinstance(dist, Constant):
        return (dist.value, dist.value)
    raise AssertionError(dist)


def clamp(x, low, high, integer):
    if low is not None:
        x = max(x, math.ceil(low) if integer else low)
    if high is not None:
        x = min(x, math.floor(high) if integer else high)
    return x


def reachable(v, spec, integer):
    """Intervals that explore may take numeric value ``v`` to (interval arithmetic over the chain)."""
    lo = hi = v
    out = []
    for s in strategies_of(spec):
        if isinstance(s, Resample):
            out.append(support(s.distribution))  # if it fires, the chain ends with a sample
            continue
        if isinstance(s, Perturb):
            ends = [lo * s.min_factor, lo * s.max_factor, hi * s.min_factor, hi * s.max_factor]
            a, b = min(ends), max(ends)
            if integer:  # rounding, or a forced move of 1 when rounding would not move it
                a, b = min(a - 0.5, lo - 1), max(b + 0.5, hi + 1)
        else:  # AddNoise: anywhere, then clamped
            a, b = -INF, INF
        lo, hi = clamp(a, s.low, s.high, integer), clamp(b, s.low, s.high, integer)
    out.append((lo, hi))
    return out


def within(x, intervals):
    def tol(e):
        return 1e-9 * max(1.0, abs(e)) if math.isfinite(e) else 0.0

    return any(a - tol(a) <= x <= b + tol(b) for a, b in intervals)


def check_explored(old_hps, new_hps, cfg):
    """Explored values stay within the factors and clamps (PB2: within its bounds); the others are copied."""
    assert set(old_hps) == set(new_hps)
    if isinstance(cfg.explore, pbt.PB2):
        for name, raw in old_hps.items():
            if name in cfg.explore.bounds:
                low, high = cfg.explore.bounds[name]
                new = values.decode(new_hps[name])
                assert low <= new <= high and type(new) is type(values.decode(raw)), (name, raw, new)
            else:
                assert new_hps[name] == raw, name
        return
    for name, raw in old_hps.items():
        if name not in cfg.explore:
            assert new_hps[name] == raw, name
            continue
        old, new = values.decode(raw), values.decode(new_hps[name])
        spec = strategies_of(cfg.explore[name])
        dist = cfg.initial_distributions.get(name)
        numeric = isinstance(old, (int, float)) and not isinstance(old, bool)
        if isinstance(dist, Choice) and (old in dist.values or not numeric):
            resampled = [x for s in spec if isinstance(s, Resample) for x in s.distribution.values]
            assert new in dist.values + resampled, (name, old, new)
            if len(dist.values) == 1 and not resampled:
                assert new == old  # a one-value choice stays
            elif not resampled:
                # A Perturb on a choice moves to a neighbouring value.
                assert abs(dist.values.index(new) - dist.values.index(old)) == 1, (name, old, new, dist.values)
            continue
        assert type(new) is type(old), (name, old, new)  # ints stay ints, floats stay floats
        assert within(new, reachable(old, spec, type(old) is int)), (name, old, new, spec)


def check_sampled(hps, cfg):
    assert set(hps) == set(cfg.initial_distributions)
    for name, dist in cfg.initial_distributions.items():
        x = values.decode(hps[name])
        if isinstance(dist, (Uniform, LogUniform)):
            assert dist.low <= x < dist.high
        elif isinstance(dist, Choice):
            assert x in dist.values
        elif isinstance(dist, Constant):
            assert x == dist.value
        else:
            assert isinstance(x, float)


# ---------------------------------------------------------------- the simulation


class Sim:
    """A live PBT experiment: decisions on the head state, one commit each, checked against the model."""

    def __init__(self, cfg, seed=0):
        self.cfg = cfg
        self.commits = []
        self.state = None
        self.exploits = 0
        self.added_with = {}  # job id -> the results its JobAdded event carried
        # Leases long enough never to lapse here: these runs test PBT, not crash recovery.
        self.append(
            decide.create_experiment(
                None, name=NAME, kind="pbt", params=cfg.to_log(), status=ev.RUNNING, seed=seed, lease=1e9
            ).events,
            "op",
        )

    @property
    def version(self):
        return self.state.version

    def append(self, events, worker):
        assert events
        v = (self.state.version if self.state else 0) + 1
        c = Commit(v, v * 1.5, worker, events)
        self.state = apply(self.state, c)
        for e in events:
            if e["type"] == ev.JOB_ADDED:
                self.added_with[e["job"]] = e["results"]
        self.commits.append(c)
        return c

    # -- commands

    def add(self, hps, status=ev.QUEUED, results=None):
        before = self.state
        d = decide.add_job(
            before,
            name=NAME,
            hyperparameters=values.encode_mapping(hps, "hyperparameters"),
            status=status,
            results=values.encode_mapping(results or {}, "results"),
        )
        self.append(d.events, "op")
        job = self.state.jobs[d.value]
        assert job.member == len(before.members) and job.generation == 0 and job.parent is None
        return job

    def next_job(self, worker="w"):
        """Claim the next job (committing what the decision records); raise its NoJobError."""
        before = self.state
        v = before.version + 1
        try:
            d = decide.next_job(before, name=NAME, worker=worker, version=v, now=v * 1.5)
        except NoJobError as e:
            self.check_refusal(before, e)
            raise
        assert self.state is before  # deciding never changes the state
        if d.error is not None:
            self.check_finished(before, d)
            self.append(d.events, worker)
            raise d.error
        self.append(d.events, worker)
        self.check_handout(before, d, worker)
        return self.state.jobs[d.value]

    def put(self, job_id, status=ev.DONE, score=None, results=None, worker="w"):
        job = self.state.jobs[job_id]
        res = dict(job.results)
        if results is not None:
            res.update(values.encode_mapping(results, "results"))
        if status == ev.DONE or score is not None:
            res[self.cfg.result_name] = values.encode(score)
            res["model_path"] = f"ckpt/{job_id}.npz"
        d = decide.update_job(
            self.state,
            name=NAME,
            job_id=job_id,
            worker=worker,
            status=status,
            hyperparameters=job.hyperparameters,
            results=res,
            expected_version=job.version,
        )
        self.append(d.events, worker)
        job = self.state.jobs[job_id]
        assert job.status == status and job.worker is None
        return job

    # -- checks against the model

    def check_refusal(self, before, e):
        msg = str(e)
        assert NAME in msg
        if before.status != ev.RUNNING:
            assert "DONE" in msg
            return
        m = Model(before, self.cfg)
        assert oldest_queued(before) is None and not m.filling()
        if not before.members:
            assert "population is empty" in msg
            return
        assert m.latest, "every member pruned must finish the experiment, not refuse"
        ready = m.ready()
        if ready:
            assert all(m.waits(mm) for _, _, mm in ready), "a ready member could be decided, yet none was"
            g, _, member = ready[0]  # the refusal says why the first of them waits
            g -= 1
            assert e.waiting_for is not None and e.waiting_for.generation == g and not e.finished
            waited = list(e.waiting_for.members)
            if m.waits(member) == "synchronous":
                event("refused: synchronous, waiting for a generation")
                assert f"waiting for generation {g} of member" in msg, msg
                assert waited == m.behind(g)
            else:
                event("refused: the decision depends on pending scores")
                assert waited == Model(before, self.cfg, g).pending and waited
            for _, _, mm in ready:
                if m.waits(mm) == "pending":  # waiting is only right if some pending scores would make it copy
                    mg = Model(before, self.cfg, m.latest[mm].generation)
                    assert m.copies_if_pending_score(mm, "best") or m.copies_if_pending_score(mm, "worst"), (
                        mm,
                        [(t, mg.score(t), mg.eligible(t)) for t in mg.ranking()],
                        mg.pending,
                    )
            running = {j.job_id for mm, j in m.latest.items() if mm in waited and j.status == ev.RUNNING}
            assert set(e.waiting_for.jobs) == running
            return
        busy = [mm for mm, j in m.latest.items() if j.status in (ev.RUNNING, ev.QUEUED)]
        assert busy, "refused while no member is busy: the experiment should have finished"
        assert "every member of the population is running" in msg
        assert e.waiting_for is not None and not e.finished
        assert set(e.waiting_for.jobs) == {j.job_id for j in m.latest.values() if j.status == ev.RUNNING}

    def check_finished(self, before, d):
        assert isinstance(d.error, NoJobError) and "finished" in str(d.error)
        assert d.error.finished and d.error.waiting_for is None
        assert d.events == [ev.experiment_updated(status=ev.DONE)] and d.value is None
        assert before.status == ev.RUNNING
        m = Model(before, self.cfg)
        assert oldest_queued(before) is None and not m.filling() and before.members
        assert m.ready() == []
        for j in m.latest.values():  # every remaining member has finished its last generation
            assert j.status == ev.DONE
            assert self.cfg.max_generations is not None and j.generation == self.cfg.max_generations - 1

    def check_handout(self, before, d, worker):
        cfg = self.cfg
        job = self.state.jobs[d.value]
        assert job.status == ev.RUNNING and job.worker == worker and job.version == self.version
        queued = oldest_queued(before)
        if queued is not None:  # queued jobs are handed out first, oldest first
            lease_until = self.state.jobs[queued].lease_until
            assert d.events == [ev.job_claimed(queued, worker, lease_until)] and d.value == queued
            return
        added, claimed = d.events
        assert added["type"] == ev.JOB_ADDED and added["job"] == d.value == str(before.next_number)
        assert claimed == ev.job_claimed(d.value, worker, job.lease_until)
        assert job.lease_until == self.commits[-1].time + before.lease
        if cfg.max_generations is not None:
            assert job.generation < cfg.max_generations
        m = Model(before, cfg)
        if m.filling():  # the initial population is sampled
            assert (job.member, job.generation, job.parent, job.results) == (len(before.members), 0, None, {})
            check_sampled(job.hyperparameters, cfg)
            return
        ready = m.ready()
        assert ready, "handed out a job while no member was ready"
        # Furthest behind, then longest waiting, then member number; skipping those that must wait.
        member = next(mm for _, _, mm in ready if not m.waits(mm))
        assert job.member == member, (job.member, ready)
        latest = m.latest[member]
        if latest.status == ev.CRASHED:  # the crashed segment is redone as it was
            assert job.hyperparameters == latest.hyperparameters
            assert job.parent == latest.parent and job.generation == latest.generation
            # From the results the crashed job started with (as its JobAdded recorded them), not what the
            # crash left: its parent's, or in generation 0 what it was added with.
            assert job.results == carried_results(self.added_with[latest.job_id], cfg), latest
            if latest.parent is not None:
                assert job.results == carried(before.jobs[latest.parent], cfg)
            return
        assert latest.status == ev.DONE
        g = latest.generation
        m = Model(before, cfg, g)
        if cfg.synchronous:  # generation g + 1 starts only once every member has finished g
            assert m.behind(g) == [], (g, m.behind(g))
        outcome = schedulers.scheduler("pbt").propose(before, None, decide.rng_for(before, self.version))
        assert outcome.fields == {k: added[k] for k in outcome.fields}
        compared = [before.jobs[j] for j in outcome.compared]
        assert sorted(j.member for j in compared) == sorted(mm for mm, d in m.compared.items() if d is not None)
        assert all(m.compared[j.member] == j for j in compared)
        if cfg.ranking == pbt.SAME_GENERATION:  # ranked only against scores of the generation it finished
            assert {j.generation for j in compared} == {g}, ([j.generation for j in compared], g)
            assert job.generation == g + 1
        parent = before.jobs[job.parent]
        if isinstance(cfg.exploit, Truncate) and cfg.ranking == pbt.SAME_GENERATION and m.pending:
            # Decided with scores pending: whatever they will be, full information copies exactly when this did.
            copied = parent.member != member
            m0 = Model(before, cfg)
            for extreme in ("best", "worst"):
                assert m0.copies_if_pending_score(member, extreme) == copied, (extreme, copied, m.pending)
            event("decided with scores pending")
        assert job.generation == parent.generation + 1
        assert job.results == carried(parent, cfg)  # model_path travels, the score does not
        if parent.member == member:  # the member continues from its own latest segment, unchanged
            assert parent.job_id == latest.job_id and job.hyperparameters == latest.hyperparameters
            if isinstance(cfg.exploit, Truncate):
                ranking, k, top, bottom, undecided = m.truncation()
                unbeatable = m.score(member) == (-INF if cfg.objective == "min" else INF)
                assert member not in undecided or unbeatable, (member, ranking, m.pending)
                if member in bottom:
                    # It may only stay if no member that may be in the top is both strictly better and eligible.
                    assert not any(
                        m.eligible(t) and better(m.score(t), m.score(member), cfg.objective) for t in ranking[:k]
                    ), (member, ranking, k)
            return
        # An exploit: the member copies another member's segment (of the same generation, or its latest).
        self.exploits += 1
        event(f"exploit, {cfg.ranking}{', synchronous' if cfg.synchronous else ''}")
        donor = parent.member
        assert donor in m.active, "a pruned member was copied"
        assert parent.job_id == m.compared[donor].job_id
        assert m.eligible(donor)
        assert better(m.score(donor), m.score(member), cfg.objective), (m.score(donor), m.score(member))
        if isinstance(cfg.exploit, Truncate):
            ranking, k, top, bottom, _ = m.truncation()
            assert k > 0 and member in bottom and donor in top, (member, donor, ranking, k, m.pending)
        check_explored(parent.hyperparameters, job.hyperparameters, cfg)

    def check_log(self):
        """Invariants of the whole log."""
        state, cfg = self.state, self.cfg
        assert find_double_claims(self.commits) == []
        assert fold(self.commits) == state
        decoded = [decode_commit(encode_commit(c)[:-1]) for c in self.commits]
        assert fold(decoded) == state
        for member, ids in state.members.items():
            assert [state.jobs[j].member for j in ids] == [member] * len(ids)
            assert [int(j) for j in ids] == sorted(int(j) for j in ids)
        assert sorted(j for ids in state.members.values() for j in ids) == sorted(state.jobs)
        for job in state.jobs.values():
            if cfg.max_generations is not None:
                assert job.generation < cfg.max_generations
            if job.parent is None:
                assert job.generation == 0
            else:
                assert job.generation == state.jobs[job.parent].generation + 1
            chain = lineage(state, job.job_id)
            assert [j.generation for j in chain] == list(range(job.generation + 1))
            assert chain[-1] == job
            for name in ("n",):  # ints stay ints
                if name in job.hyperparameters:
                    assert type(values.decode(job.hyperparameters[name])) is int


# ---------------------------------------------------------------- Hypothesis strategies

OPT_WORDS = Choice(["sgd", "adam", "rmsprop", "adagrad"])
OPT_NUMBERS = Choice([1, 2, 4, 8, 16])
N_RESAMPLE = Choice(list(range(1, 30)))


@st.composite
def perturbs(draw, kind):
    lo = draw(st.sampled_from([0.5, 0.8, 0.9, 1.0]) | st.floats(0.3, 1.0))
    hi = draw(st.sampled_from([lo, 1.2, 1.25, 2.0]).filter(lambda h: h >= lo) | st.floats(lo, 2.5))
    if kind == "int":
        low = draw(st.none() | st.integers(-3, 5))
        high = draw(st.none() | st.integers(6, 60))
    elif kind == "lr":
        low = draw(st.none() | st.floats(1e-4, 0.3))
        high = draw(st.none() | st.floats(0.4, 3.0))
    else:
        low = draw(st.none() | st.floats(-3, -0.1))
        high = draw(st.none() | st.floats(0.1, 3))
    return Perturb(lo, hi, low, high, draw(st.booleans()))


@st.composite
def noises(draw, kind):
    scale = draw(st.floats(0.01, 3.0))
    if kind == "int":
        low, high = draw(st.none() | st.integers(-3, 5)), draw(st.none() | st.integers(6, 60))
    else:
        low, high = draw(st.none() | st.floats(-3, 0.0)), draw(st.none() | st.floats(0.5, 3.0))
    return AddNoise(scale, low, high)


def resamples(dist):
    return st.builds(Resample, st.just(dist), st.sampled_from([0.0, 0.25, 1.0]) | st.floats(0, 1))


def one_explore(kind):
    return {
        "lr": st.one_of(perturbs("lr"), noises("lr"), resamples(LogUniform(1e-3, 1.0))),
        "n": st.one_of(perturbs("int"), noises("int"), resamples(N_RESAMPLE)),
        "x": st.one_of(noises("x"), perturbs("x"), resamples(Normal(0, 1))),
    }[kind]


def explores_for(kind):
    single = one_explore(kind)
    return single | st.lists(single, min_size=1, max_size=3)


@st.composite
def configs(draw, allow_hand=True):
    sampled = draw(st.booleans()) if allow_hand else True
    names = draw(st.lists(st.sampled_from(["lr", "n", "x", "opt"] if sampled else ["lr", "n", "x"]), unique=True))
    opt = draw(st.sampled_from([OPT_WORDS, OPT_NUMBERS]))
    explore = {}
    for name in names:
        if name == "opt":
            explore[name] = draw(
                st.one_of(perturbs("x"), st.builds(lambda r, p: [r, p], resamples(opt), perturbs("x")))
            )
        else:
            explore[name] = draw(explores_for(name))
    common = st.builds(Truncate, st.sampled_from([0.2, 0.25, 1 / 3, 0.4, 0.5]))
    exploit = draw(
        st.one_of(
            common,
            common,
            st.builds(Truncate, st.floats(0, 0.5, exclude_min=True)),
            st.just(BinaryTournament()),
        )
    )
    size = draw(st.integers(1, 8))
    init = {}
    if sampled:
        init = {
            "lr": draw(st.sampled_from([LogUniform(1e-3, 1.0), Uniform(0.1, 1.0)])),
            "n": Constant(draw(st.integers(1, 20))),
            "x": draw(st.sampled_from([Constant(0.0), Normal(0, 1)])),
            "opt": opt,
            "arch": Constant("resnet"),
        }
    ranking = draw(st.sampled_from(pbt.RANKINGS))
    if draw(st.integers(0, 5)) == 0:  # PB2 on the learning rate instead of the strategies
        explore = pbt.PB2(
            {"lr": (1e-3, 1.0)},
            log_scale=draw(st.sampled_from([(), ("lr",)])),
            window=draw(st.integers(1, 3)),
            candidates=draw(st.sampled_from([1, 20])),
        )
    return Config(
        objective=draw(st.sampled_from([pbt.MINIMIZE, pbt.MAXIMIZE])),
        result_name=draw(st.sampled_from(["loss", "acc"])),
        exploit=exploit,
        explore=explore,
        initial_distributions=init,
        population_size=size if sampled else None,
        max_generations=draw(st.none() | st.integers(1, 6)),
        ranking=ranking,
        synchronous=ranking == pbt.SAME_GENERATION and draw(st.booleans()),
    ), size


def hand_hps(cfg, rng):
    """Hyperparameters of a job added by hand: numbers for what is explored."""
    if cfg.initial_distributions:
        return {n: d.sample(rng) for n, d in cfg.initial_distributions.items()}
    return {
        "lr": float(rng.uniform(1e-3, 1.0)),
        "n": int(rng.integers(1, 21)),
        "x": 0.0 if rng.random() < 0.5 else float(rng.normal()),
        "arch": "resnet",
    }


scores = st.one_of(
    st.sampled_from([0.0, 1.0, 1.0, 2.0, -1.0, NAN, NAN, INF, -INF]),
    st.integers(-3, 3),
    st.floats(-5, 5, allow_nan=False),
)
OUTCOMES = [ev.DONE] * 8 + [ev.CRASHED] * 2 + [ev.PRUNED, "ADD"]
actions = st.lists(st.tuples(st.integers(0, 3), st.sampled_from(OUTCOMES), scores), min_size=30, max_size=200)


# ---------------------------------------------------------------- 1. property tests over random runs


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    cfg_size=configs(),
    n_workers=st.integers(1, 4),
    steps=actions,
    seed=st.integers(0, 2**32 - 1),
    initially_done=st.lists(st.booleans(), max_size=8),
)
def test_random_pbt_runs_keep_the_semantics(cfg_size, n_workers, steps, seed, initially_done):
    cfg, size = cfg_size
    sim = Sim(cfg, seed)
    rng = np.random.default_rng(seed)
    workers = [f"w{i}" for i in range(n_workers)]
    held = {}  # worker -> job id
    finished = False

    def finish(w, outcome, score):
        job_id = held.pop(w)
        if outcome == ev.CRASHED:
            sim.put(job_id, ev.CRASHED, results={"error": "out of memory"}, worker=w)
        else:
            sim.put(job_id, outcome, score=score if outcome == ev.DONE or rng.random() < 0.5 else None, worker=w)

    def ask(w):
        nonlocal finished
        try:
            held[w] = sim.next_job(w).job_id
        except NoJobError:
            finished = finished or sim.state.status == ev.DONE

    if cfg.population_size is None:  # the population is added by hand, some of it already finished
        for i in range(size):
            if i < len(initially_done) and initially_done[i]:
                sim.add(hand_hps(cfg, rng), ev.DONE, {cfg.result_name: float(rng.normal()), "model_path": f"init{i}"})
            else:
                sim.add(hand_hps(cfg, rng))
    added = 0
    for w, outcome, score in steps:
        worker = workers[w % n_workers]
        if outcome == "ADD":
            if sim.state.status == ev.RUNNING and added < 3:
                sim.add(hand_hps(cfg, rng))
                added += 1
        elif worker in held:
            finish(worker, outcome, score)
        else:
            ask(worker)
    if cfg.max_generations is not None:
        # Drain: workers finish what they hold and ask again until the experiment is done.
        for _ in range(3000):
            if finished:
                break
            if held:
                finish(next(iter(held)), ev.DONE, float(rng.choice([0.0, 1.0, rng.normal(), NAN])))
            else:
                ask(workers[0])
        assert finished, "every member reached max_generations, yet the experiment is not DONE"
    sim.check_log()
    # Replaying: every next_job decision, made again on the state before its commit, writes the same events.
    wrong, checked = redecide(sim.commits, operator="op")
    assert wrong == [] and checked == sum(
        1
        for c in sim.commits
        if c.worker != "op" and any(e["type"] in (ev.JOB_CLAIMED, ev.EXPERIMENT_UPDATED) for e in c.events)
    )
    if finished:
        assert sim.state.status == ev.DONE
        assert any(e == ev.experiment_updated(status=ev.DONE) for c in sim.commits for e in c.events)
        assert not any(j.status == ev.RUNNING for j in sim.state.jobs.values())
        assert not held
        with pytest.raises(NoJobError):
            sim.next_job("late")


@settings(max_examples=100, deadline=None)
@given(kind=st.sampled_from(["lr", "n", "x"]), data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_explore_stays_within_factors_and_clamps(kind, data, seed):
    """The explore chain on its own, many draws per definition: the bounds the property run checks per exploit."""
    spec = data.draw(explores_for(kind))
    start = {"lr": st.floats(-2, 2), "n": st.integers(-30, 30), "x": st.floats(-2, 2)}[kind]
    v = data.draw(start | st.sampled_from([0, 1, -1] if kind == "n" else [0.0, 1.0, -1.0]))
    rng = np.random.default_rng(seed)
    for _ in range(50):
        new = pbt.explore_value(v, spec, rng)
        if not any(isinstance(s, Resample) for s in strategies_of(spec)):
            assert type(new) is type(v)
        assert within(new, reachable(v, spec, type(v) is int)), (v, new, spec)


# ---------------------------------------------------------------- 2. examples

DEFAULT_INIT = {"lr": LogUniform(1e-3, 1.0), "n": Constant(8), "arch": Constant("resnet")}


def config(
    exploit=None,
    explore=None,
    init=None,
    population_size=None,
    max_generations=None,
    objective="min",
    result_name="loss",
    ranking=pbt.LATEST,
    synchronous=False,
):
    """A definition for the examples; they were written for the rule of logs without ``ranking`` (LATEST), which
    such logs keep; the examples of the SAME_GENERATION rule and of synchronous mode say so."""
    return Config(
        objective=objective,
        result_name=result_name,
        exploit=exploit or Truncate(0.5),
        explore={"lr": Perturb()} if explore is None else explore,
        initial_distributions=DEFAULT_INIT if init is None and population_size else (init or {}),
        population_size=population_size,
        max_generations=max_generations,
        ranking=ranking,
        synchronous=synchronous,
    )


def start_generation(sim, n):
    """Hand out one job to each of ``n`` workers."""
    return [sim.next_job(f"w{i}") for i in range(n)]


def parent_member(sim, job):
    return sim.state.jobs[job.parent].member if job.parent is not None else None


@pytest.mark.parametrize("exploit", [Truncate(0.5), Truncate(0.2), BinaryTournament()])
@pytest.mark.parametrize("sampled", [True, False])
def test_population_of_one_never_exploits_and_runs_to_max_generations(exploit, sampled):
    sim = Sim(config(exploit, population_size=1 if sampled else None, max_generations=4), seed=3)
    if not sampled:
        sim.add({"lr": 0.1, "n": 8})
    jobs = []
    for g in range(4):
        job = sim.next_job()
        assert (job.member, job.generation) == (0, g)
        assert job.parent == (jobs[-1].job_id if jobs else None)
        if jobs:
            assert job.hyperparameters == jobs[0].hyperparameters  # never copies, so never explores
            assert job.results == {"model_path": f"ckpt/{jobs[-1].job_id}.npz"}
        jobs.append(job)
        sim.put(job.job_id, ev.DONE, score=[5.0, NAN, 1.0, 3.0][g])
    with pytest.raises(NoJobError, match="finished"):
        sim.next_job()
    assert sim.commits[-1].events == [ev.experiment_updated(status=ev.DONE)]
    assert sim.state.status == ev.DONE
    assert [j.job_id for j in lineage(sim.state, jobs[-1].job_id)] == [j.job_id for j in jobs]
    assert sim.exploits == 0
    sim.check_log()


@pytest.mark.parametrize("exploit", [Truncate(0.5), Truncate(0.25), BinaryTournament()])
@pytest.mark.parametrize("objective", ["min", "max"])
def test_tied_scores_never_exploit(exploit, objective):
    sim = Sim(config(exploit, population_size=4, objective=objective), seed=11)
    for _ in range(6):
        for job in start_generation(sim, 4):
            sim.put(job.job_id, ev.DONE, score=1.0)
    assert sim.exploits == 0
    for job in sim.state.jobs.values():
        assert parent_member(sim, job) in (None, job.member)
    assert max(j.generation for j in sim.state.jobs.values()) == 5
    sim.check_log()


def test_proportion_too_small_for_a_bottom_never_exploits():
    # 4 members * 0.2 = 0.8: k == 0, no member is in the bottom, whatever the scores.
    for seed in range(5):
        sim = Sim(config(Truncate(0.2), population_size=4), seed=seed)
        for _ in range(5):
            for job in start_generation(sim, 4):
                sim.put(job.job_id, ev.DONE, score=float(job.member * 10))
        assert sim.exploits == 0
        assert all(parent_member(sim, j) in (None, j.member) for j in sim.state.jobs.values())
        sim.check_log()
    # The same run with 0.25 (k == 1): the worst member copies the best one.
    sim = Sim(config(Truncate(0.25), population_size=4), seed=0)
    for _ in range(3):
        for job in start_generation(sim, 4):
            sim.put(job.job_id, ev.DONE, score=float(job.member * 10))
    assert sim.exploits > 0
    copies = [j for j in sim.state.jobs.values() if parent_member(sim, j) not in (None, j.member)]
    assert {(j.member, parent_member(sim, j)) for j in copies} == {(3, 0)}


@pytest.mark.parametrize("exploit", [Truncate(0.5), BinaryTournament()])
@pytest.mark.parametrize("objective", ["min", "max"])
def test_nan_ranks_last_whatever_the_objective(exploit, objective):
    cfg = config(exploit, population_size=2, objective=objective)
    order = [m for m, _ in pbt.rank([(0, NAN), (1, 2.0), (2, 1.0), (3, NAN)], cfg)]
    assert order == ([2, 1, 0, 3] if objective == "min" else [1, 2, 0, 3])
    for seed in range(8):
        sim = Sim(cfg, seed=seed)
        a, b = start_generation(sim, 2)
        sim.put(a.job_id, ev.DONE, score=NAN)  # member 0: NaN, finished first, so it is picked first
        sim.put(b.job_id, ev.DONE, score=1e9 if objective == "min" else -1e9)  # awful, but a number
        c = sim.next_job("w0")
        assert c.member == 0 and c.parent == b.job_id  # the NaN member exploits
        assert c.results == {"model_path": f"ckpt/{b.job_id}.npz"}
        d = sim.next_job("w1")
        assert d.member == 1 and d.parent == b.job_id  # and is never a donor
        sim.put(c.job_id, ev.DONE, score=NAN)
        sim.put(d.job_id, ev.DONE, score=NAN)
        # Both NaN: nobody is strictly better, nobody copies.
        e, f = start_generation(sim, 2)
        assert e.parent == c.job_id and f.parent == d.job_id
        sim.check_log()


def test_crashed_segment_is_retried_as_it_was():
    sim = Sim(config(Truncate(0.5), explore={"lr": Perturb(0.5, 2.0)}, population_size=2), seed=5)
    a, b = start_generation(sim, 2)
    # A crashed generation-0 segment is redone with the same sample, no parent, generation 0, no results.
    sim.put(a.job_id, ev.CRASHED)
    a2 = sim.next_job("w0")
    assert (a2.member, a2.generation, a2.parent) == (0, 0, None)
    assert a2.hyperparameters == a.hyperparameters and a2.results == {}
    sim.put(a2.job_id, ev.DONE, score=9.0)
    sim.put(b.job_id, ev.DONE, score=1.0)
    c = sim.next_job("w0")  # member 0 (worse, finished first) copies member 1 and explores
    assert c.member == 0 and c.parent == b.job_id and c.generation == 1
    assert c.hyperparameters != b.hyperparameters
    sim.put(c.job_id, ev.CRASHED, results={"error": "oom"})
    d = sim.next_job("w1")  # member 1 waited longer (its DONE is older than the crash)
    assert d.member == 1
    retry = sim.next_job("w0")
    assert retry.member == 0 and retry.generation == c.generation and retry.parent == c.parent == b.job_id
    assert retry.hyperparameters == c.hyperparameters  # the explored values, not re-explored
    assert retry.results == {"model_path": f"ckpt/{b.job_id}.npz"}
    sim.check_log()


def test_generation_0_retry_starts_from_what_it_was_added_with():
    """Not from the half-written checkpoint and error the crashed attempt left."""
    sim = Sim(config(Truncate(0.5)), seed=0)
    added = sim.add({"lr": 0.1}, results={"model_path": "pretrained.npz"})
    job = sim.next_job()
    sim.put(job.job_id, ev.CRASHED, results={"model_path": "ckpt/1-half-written.npz", "error": "out of memory"})
    retry = sim.next_job()
    assert (retry.member, retry.generation, retry.parent) == (0, 0, None)
    assert retry.hyperparameters == added.hyperparameters
    assert retry.results == {"model_path": "pretrained.npz"}


def test_crashed_member_is_retried_before_members_further_ahead():
    sim = Sim(config(Truncate(0.5), population_size=2), seed=0)
    a, b = start_generation(sim, 2)
    sim.put(b.job_id, ev.DONE, score=1.0)  # member 1 would be generation 1 next
    sim.put(a.job_id, ev.CRASHED)  # member 0 is retried at generation 0, even though it crashed later
    job = sim.next_job()
    assert (job.member, job.generation) == (0, 0)


@pytest.mark.parametrize("seed", range(6))
def test_pruned_member_is_never_copied_nor_continued(seed):
    sim = Sim(config(Truncate(0.5), population_size=3, max_generations=4), seed=seed)
    best, mid, worst = start_generation(sim, 3)
    for job, s in ((best, 0.0), (mid, 5.0), (worst, 9.0)):
        sim.put(job.job_id, ev.DONE, score=s)
    g1 = sim.next_job("w0")
    assert g1.member == 0 and g1.parent == best.job_id
    sim.put(g1.job_id, ev.PRUNED, score=100.0)
    # Member 0's DONE segment is still the best score of the log, but member 0 left the population:
    # the ranking is [1, 2], k = 1, so member 2 copies member 1.
    m1 = sim.next_job("w1")
    assert m1.member == 1 and m1.parent == mid.job_id
    m2 = sim.next_job("w2")
    assert m2.member == 2 and m2.parent == mid.job_id
    sim.put(m1.job_id, ev.DONE, score=1.0)
    sim.put(m2.job_id, ev.DONE, score=2.0)
    for _ in range(20):
        try:
            job = sim.next_job("w")
        except NoJobError:
            break
        sim.put(job.job_id, ev.DONE, score=float(job.member))
    assert sim.state.status == ev.DONE  # finished although member 0's last segment is PRUNED
    assert list(sim.state.members[0]) == [best.job_id, g1.job_id]
    assert all(
        sim.state.jobs[j.parent].member != 0 for j in sim.state.jobs.values() if j.parent is not None and j.member != 0
    )
    sim.check_log()


def test_every_member_pruned_finishes_the_experiment():
    sim = Sim(config(Truncate(0.5), population_size=2), seed=0)
    for job in start_generation(sim, 2):
        sim.put(job.job_id, ev.PRUNED)
    with pytest.raises(NoJobError):
        sim.next_job()
    assert sim.state.status == ev.DONE


def test_every_member_running_refuses_with_a_clear_message():
    sim = Sim(config(Truncate(0.5), population_size=2), seed=0)
    start_generation(sim, 2)
    n = sim.version
    with pytest.raises(NoJobError, match="every member of the population is running"):
        sim.next_job("w3")
    assert sim.version == n and sim.state.status == ev.RUNNING  # nothing written
    # Same when one member waits on the last generation and the other still runs.
    sim = Sim(config(Truncate(0.5), population_size=2, max_generations=1), seed=0)
    a, b = start_generation(sim, 2)
    sim.put(a.job_id, ev.DONE, score=1.0)
    with pytest.raises(NoJobError, match="running"):
        sim.next_job("w3")
    assert sim.state.status == ev.RUNNING


def test_empty_hand_added_population_refuses():
    sim = Sim(config(Truncate(0.5)), seed=0)
    with pytest.raises(NoJobError, match="population is empty"):
        sim.next_job()


def test_finished_segment_without_the_result_is_refused_naming_result_and_job():
    sim = Sim(config(Truncate(0.5), population_size=2, result_name="val_loss"), seed=0)
    job = sim.next_job()
    n, state = sim.version, sim.state
    with pytest.raises(ValueError) as info:
        decide.update_job(
            state,
            name=NAME,
            job_id=job.job_id,
            worker="w",
            status=ev.DONE,
            hyperparameters=job.hyperparameters,
            results={"model_path": "m"},
            expected_version=None,
        )
    assert "'val_loss'" in str(info.value) and repr(job.job_id) in str(info.value)
    for bad in ("good", True, None, [1.0], {"v": 1.0}):
        with pytest.raises(ValueError) as info:
            decide.update_job(
                state,
                name=NAME,
                job_id=job.job_id,
                worker="w",
                status=ev.DONE,
                hyperparameters=job.hyperparameters,
                results={"val_loss": values.encode(bad)},
                expected_version=None,
            )
        assert "'val_loss'" in str(info.value) and repr(job.job_id) in str(info.value), bad
    assert sim.version == n and sim.state is state  # nothing written
    # A job added by hand as DONE needs it too; unfinished states do not.
    with pytest.raises(ValueError, match="val_loss"):
        decide.add_job(state, name=NAME, hyperparameters={"lr": 0.1}, status=ev.DONE, results={})
    for status in (ev.CRASHED, ev.PRUNED, ev.QUEUED):
        assert decide.update_job(
            state,
            name=NAME,
            job_id=job.job_id,
            worker="w",
            status=status,
            hyperparameters=job.hyperparameters,
            results={},
            expected_version=None,
        ).events
    # Numbers are fine, NaN included.
    for good in (1, 0.5, NAN, -INF):
        sim2 = Sim(sim.cfg, seed=0)
        j = sim2.next_job()
        sim2.put(j.job_id, ev.DONE, score=good)


def test_hand_added_job_must_carry_numbers_for_what_is_explored():
    cfg = config(Truncate(0.5), explore={"lr": Perturb(), "wd": AddNoise(0.1)})
    sim = Sim(cfg, seed=0)
    with pytest.raises(ValueError, match="'wd'"):
        decide.add_job(sim.state, name=NAME, hyperparameters={"lr": 0.1}, status=ev.QUEUED, results={})
    with pytest.raises(ValueError, match="'lr'"):
        decide.add_job(sim.state, name=NAME, hyperparameters={"wd": 0.0, "opt": "sgd"}, status=ev.QUEUED, results={})
    for bad in ("0.1", True, None, [0.1]):
        with pytest.raises(ValueError, match="lr"):
            decide.add_job(
                sim.state,
                name=NAME,
                hyperparameters={"lr": values.encode(bad), "wd": 0.0},
                status=ev.QUEUED,
                results={},
            )
    job = sim.add({"lr": 0.1, "wd": 0, "opt": "sgd"})  # unexplored values may be anything
    assert (job.member, job.generation, job.parent) == (0, 0, None)
    assert sim.add({"lr": 3, "wd": 0.5}).member == 1
    # A put that drops an explored hyperparameter is refused too.
    with pytest.raises(ValueError, match="'wd'"):
        decide.update_job(
            sim.state,
            name=NAME,
            job_id=job.job_id,
            worker="w",
            status=ev.QUEUED,
            hyperparameters={"lr": 0.1},
            results={},
            expected_version=None,
        )


def test_queued_jobs_are_handed_out_before_sampling_and_before_continuations():
    sim = Sim(config(Truncate(0.5), population_size=3), seed=0)
    mine = sim.add({"lr": 0.5, "n": 4, "arch": "vgg"})
    first = sim.next_job("w0")
    assert first.job_id == mine.job_id and first.member == 0 and first.hyperparameters == mine.hyperparameters
    others = start_generation(sim, 2)
    assert [j.member for j in others] == [1, 2] and all(j.parent is None for j in others)
    with pytest.raises(NoJobError):
        sim.next_job()  # the population is full and running: no fourth sample
    for job in [first, *others]:
        sim.put(job.job_id, ev.DONE, score=1.0)
    late = sim.add({"lr": 0.2, "n": 8, "arch": "resnet"})
    got = sim.next_job("w0")
    assert got.job_id == late.job_id and got.member == 3 and got.generation == 0
    sim.check_log()


def test_finishing_decision_records_done_and_refuses():
    sim = Sim(config(Truncate(0.5), population_size=2, max_generations=2), seed=0)
    for _ in range(2):
        for job in start_generation(sim, 2):
            sim.put(job.job_id, ev.DONE, score=float(job.member))
    state = sim.state
    d = decide.next_job(state, name=NAME, worker="w", version=state.version + 1, now=0.0)
    assert d.events == [ev.experiment_updated(status=ev.DONE)]
    assert isinstance(d.error, NoJobError) and "max_generations" in str(d.error)
    assert d.value is None
    after = apply(state, Commit(state.version + 1, 0.0, "w", d.events))
    assert after.status == ev.DONE
    with pytest.raises(NoJobError, match="DONE"):
        decide.next_job(after, name=NAME, worker="w", version=after.version + 1, now=0.0)
    assert max(j.generation for j in after.jobs.values()) == 1


def test_furthest_behind_member_is_picked_first():
    sim = Sim(config(Truncate(0.5), population_size=3), seed=0)
    a, b, c = start_generation(sim, 3)
    sim.put(a.job_id, ev.DONE, score=0.0)
    a1 = sim.next_job("w0")  # member 0 is alone ready
    assert a1.member == 0 and a1.generation == 1
    sim.put(a1.job_id, ev.DONE, score=0.0)  # member 0 ready for generation 2, since long
    sim.put(c.job_id, ev.DONE, score=1.0)  # member 2 ready for generation 1
    sim.put(b.job_id, ev.DONE, score=1.0)  # member 1 ready for generation 1, later than member 2
    picks = [j.member for j in start_generation(sim, 3)]
    assert picks == [2, 1, 0]  # fewest generations first, then longest waiting, not member order


def test_perturb_on_a_choice_moves_to_a_neighbour():
    words = ["sgd", "adam", "rmsprop", "adagrad"]
    rng = np.random.default_rng(0)
    seen = set()
    for _ in range(200):
        assert Perturb().apply("sgd", rng, words) == "adam"
        assert Perturb().apply("adagrad", rng, words) == "rmsprop"
        x = Perturb().apply("adam", rng, words)
        assert x in ("sgd", "rmsprop")
        seen.add(x)
    assert seen == {"sgd", "rmsprop"}
    # Through the generation step: an exploit moves the donor's choice by one place.
    init = {**DEFAULT_INIT, "opt": Choice(words), "depth": Choice([1, 2, 4, 8])}
    for seed in range(10):
        sim = Sim(
            config(Truncate(0.5), explore={"opt": Perturb(), "depth": Perturb()}, init=init, population_size=2),
            seed=seed,
        )
        a, b = start_generation(sim, 2)
        sim.put(a.job_id, ev.DONE, score=5.0)
        sim.put(b.job_id, ev.DONE, score=1.0)
        c = sim.next_job()
        assert c.parent == b.job_id
        for name, vals in (("opt", words), ("depth", [1, 2, 4, 8])):
            old, new = values.decode(b.hyperparameters[name]), values.decode(c.hyperparameters[name])
            assert abs(vals.index(new) - vals.index(old)) == 1


def test_perturb_on_a_one_value_string_choice_does_not_crash_the_step():
    """A definition the core accepts must not make next_job fail with a TypeError."""
    init = {**DEFAULT_INIT, "opt": Choice(["sgd"])}
    try:
        cfg = config(Truncate(0.5), explore={"opt": Perturb()}, init=init, population_size=2)
    except ValueError:
        return  # refusing the definition would be fine too
    sim = Sim(cfg, seed=0)
    a, b = start_generation(sim, 2)
    sim.put(a.job_id, ev.DONE, score=5.0)
    sim.put(b.job_id, ev.DONE, score=1.0)
    c = sim.next_job()  # member 0 copies member 1 and explores 'opt'
    assert values.decode(c.hyperparameters["opt"]) == "sgd"


def test_resample_outside_a_string_choice_then_perturb_does_not_crash_the_step():
    """Resample may leave the initial Choice; a later Perturb of that value must not raise TypeError."""
    init = {**DEFAULT_INIT, "opt": Choice(["sgd", "adam"])}
    try:
        cfg = config(
            Truncate(0.5),
            explore={"opt": [Resample(Choice(["rmsprop"]), 0.5), Perturb()]},
            init=init,
            population_size=2,
        )
    except ValueError:
        return  # refusing the definition would be fine too

    def score(job):  # whoever holds the resampled value is best, so the other one copies it
        if values.decode(job.hyperparameters["opt"]) == "rmsprop":
            return 1.0
        return 5.0 if job.member == 0 else 3.0

    for seed in range(10):
        sim = Sim(cfg, seed=seed)
        a, b = start_generation(sim, 2)
        for _ in range(8):
            sim.put(a.job_id, ev.DONE, score=score(a))
            sim.put(b.job_id, ev.DONE, score=score(b))
            a = sim.next_job("w0")
            b = sim.next_job("w1")
            for job in (a, b):
                assert values.decode(job.hyperparameters["opt"]) in ("sgd", "adam", "rmsprop")


def test_int_perturb_moves_by_at_least_one_and_stays_int():
    rng = np.random.default_rng(1)
    seen = set()
    for _ in range(300):
        x = Perturb(0.9, 1.1).apply(3, rng)  # 3 * [0.9, 1.1) rounds back to 3: forced to move
        assert type(x) is int and x in (2, 4)
        seen.add(x)
        y = Perturb(0.5, 2.0).apply(10, rng)
        assert type(y) is int and 5 <= y <= 20 and y != 10
        z = Perturb(0.5, 2.0, low=8, high=12).apply(10, rng)
        assert type(z) is int and 8 <= z <= 12
        w = AddNoise(2.0, low=-1, high=3).apply(1, rng)
        assert type(w) is int and -1 <= w <= 3
    assert seen == {2, 4}


def test_discrete_perturb_gives_exactly_the_two_factors():
    rng = np.random.default_rng(2)
    floats, ints = set(), set()
    for _ in range(200):
        floats.add(Perturb(discrete=True).apply(2.5, rng))
        ints.add(Perturb(discrete=True).apply(10, rng))
    assert floats == {2.5 * 0.8, 2.5 * 1.2}
    assert ints == {8, 12}
    assert {Perturb(0.5, 3.0, discrete=True).apply(0.1, rng) for _ in range(100)} == {0.1 * 0.5, 0.1 * 3.0}


def test_float_perturb_stays_within_factors_and_clamps():
    rng = np.random.default_rng(3)
    for _ in range(300):
        x = Perturb(0.8, 1.2).apply(2.0, rng)
        assert type(x) is float and 1.6 <= x < 2.4
        y = Perturb(0.8, 1.2, low=1.9, high=2.1).apply(2.0, rng)
        assert 1.9 <= y <= 2.1
        z = Perturb(0.8, 1.2).apply(-2.0, rng)
        assert -2.4 < z <= -1.6


def test_add_noise_moves_zero():
    rng = np.random.default_rng(4)
    xs = [AddNoise(0.1).apply(0.0, rng) for _ in range(100)]
    assert all(type(x) is float and x != 0.0 for x in xs)
    assert any(x > 0 for x in xs) and any(x < 0 for x in xs)
    assert all(x >= 0 for x in (AddNoise(0.1, low=0.0).apply(0.0, rng) for _ in range(100)))
    assert Perturb().apply(0.0, rng) == 0.0  # why AddNoise exists


def test_resample_with_probability_one_always_resamples():
    rng = np.random.default_rng(5)
    for _ in range(200):
        x = pbt.explore_value(5.0, Resample(Uniform(0, 1), 1.0), rng)
        assert 0 <= x < 1
        # It ends the chain: the Perturb after it would give at least 10.
        y = pbt.explore_value(5.0, [Resample(Uniform(0, 1), 1.0), Perturb(10, 11)], rng)
        assert 0 <= y < 1
        assert pbt.explore_value(5.0, [Resample(Uniform(0, 1), 0.0), Perturb(2, 2)], rng) == 10.0
        assert pbt.explore_value("adam", Resample(Choice(["sgd", "rmsprop"]), 1.0), rng) in ("sgd", "rmsprop")
        z = pbt.explore_value(4, [Perturb(2, 2), Resample(Choice([1, 2]), 1.0)], rng)
        assert z in (1, 2)  # strategies before the Resample are overridden by it


# ---------------------------------------------------------------- definitions

PERTURBS = [
    Perturb(),
    Perturb(0.5, 2.0),
    Perturb(0.8, 1.2, low=1e-5),
    Perturb(0.9, 1.1, high=1),
    Perturb(0.8, 1.2, low=0, high=10, discrete=True),
    Perturb(1, 1),
]
EXPLORES = [
    *PERTURBS,
    AddNoise(0.1),
    AddNoise(1, low=-1),
    AddNoise(0.5, low=0, high=1),
    Resample(Uniform(0, 1)),
    Resample(LogUniform(1e-4, 1), 1.0),
    Resample(Choice([1, 2, 3], [1, 2, 3]), 0),
    Resample(Normal(0, 1), 0.5),
    Resample(Constant(0.25), 0.1),
    [Resample(Uniform(0, 1), 0.25), Perturb()],
    [Perturb(), AddNoise(0.01)],
    [AddNoise(0.1), Perturb(discrete=True, low=0), Resample(Uniform(0, 2))],
]


def round_trip(cfg):
    """Through the log: params written by create_experiment, through bytes, folded, read back."""
    d = decide.create_experiment(None, name=NAME, kind="pbt", params=cfg.to_log(), status=ev.RUNNING, seed=1)
    line = encode_commit(Commit(1, 0.0, "op", d.events))[:-1]
    return Config.from_log(fold([decode_commit(line)]).params)


@pytest.mark.parametrize("exploit", [Truncate(), Truncate(0.5), Truncate(1e-3), BinaryTournament()])
@pytest.mark.parametrize("explore", EXPLORES, ids=lambda e: repr(e)[:40])
@pytest.mark.parametrize("sampled", [True, False])
def test_config_round_trips_through_the_log(exploit, explore, sampled):
    init = {"lr": Uniform(0, 1), "opt": Choice(["a", "b"]), "k": Constant(3)} if sampled else {}
    cfg = Config(pbt.MAXIMIZE, "acc", exploit, {"lr": explore}, init, 4 if sampled else None, 5 if sampled else None)
    assert Config.from_log(cfg.to_log()) == cfg
    assert round_trip(cfg) == cfg


@settings(max_examples=100, deadline=None)
@given(configs())
def test_random_configs_round_trip(cfg_size):
    cfg, _ = cfg_size
    assert Config.from_log(cfg.to_log()) == cfg
    assert round_trip(cfg) == cfg


def test_documented_log_vocabulary_reads():
    params = {
        "scheduler": {
            "PBT": {
                "objective": "max",
                "qualityResultName": "acc",
                "exploit": {"truncate": 0.2},
                "explore": {"lr": {"perturb": {"minFactor": 0.8, "maxFactor": 1.2}}},
                "init": {"lr": {"loguniform": {"low": 1e-4, "high": 1}}},
                "numParallel": 20,
                "maxGenerations": 10,
            }
        }
    }
    cfg = Config.from_log(params)
    # Written before the ranking rule was recorded: decided, and replayed, with the latest segments.
    assert cfg == Config(
        "max", "acc", Truncate(0.2), {"lr": Perturb(0.8, 1.2)}, {"lr": LogUniform(1e-4, 1)}, 20, 10, ranking=pbt.LATEST
    )
    assert cfg.to_log()["scheduler"]["PBT"] == dict(params["scheduler"]["PBT"], ranking="latest")
    new = Config("max", "acc", Truncate(0.2), {"lr": Perturb(0.8, 1.2)}, {"lr": LogUniform(1e-4, 1)}, 20, 10)
    assert new.ranking == pbt.SAME_GENERATION and not new.synchronous
    assert new.to_log()["scheduler"]["PBT"]["ranking"] == "generation"
    assert "synchronous" not in new.to_log()["scheduler"]["PBT"]
    sync = Config.from_log(
        {"scheduler": {"PBT": dict(params["scheduler"]["PBT"], ranking="generation", synchronous=True)}}
    )
    assert sync.synchronous and sync.to_log()["scheduler"]["PBT"]["synchronous"] is True


def good(**changes):
    kw = dict(
        objective="min",
        result_name="loss",
        exploit=Truncate(0.2),
        explore={"lr": Perturb()},
        initial_distributions={"lr": Uniform(0, 1)},
        population_size=4,
        max_generations=None,
    )
    kw.update(changes)
    return kw


@pytest.mark.parametrize(
    "make",
    [
        lambda: Truncate(0),
        lambda: Truncate(0.6),
        lambda: Truncate(-0.1),
        lambda: Truncate(NAN),
        lambda: Perturb(min_factor=1.3, max_factor=1.2),
        lambda: Perturb(min_factor=0),
        lambda: Perturb(low=1, high=1),
        lambda: AddNoise(0),
        lambda: Resample(Uniform(0, 1), 1.5),
        lambda: Config(**good(objective="maximize")),
        lambda: Config(**good(result_name="")),
        lambda: Config(**good(population_size=None)),  # initial_distributions without population_size
        lambda: Config(**good(initial_distributions={})),  # population_size without initial_distributions
        lambda: Config(**good(population_size=0)),
        lambda: Config(**good(max_generations=0)),
        lambda: Config(**good(explore={"momentum": Perturb()})),  # absent from initial_distributions
        lambda: Config(**good(initial_distributions={"lr": Choice(["a", "b"])}, explore={"lr": AddNoise(0.1)})),
        lambda: Config(**good(ranking="fair")),
        lambda: Config(**good(ranking=pbt.LATEST, synchronous=True)),
        lambda: Config(**good(explore=pbt.PB2({"lr": (0, 1)}), initial_distributions={"lr": Choice(["a", "b"])})),
        lambda: Config(**good(explore=pbt.PB2({"momentum": (0, 1)}))),
        lambda: Config(**good(explore={"lr": []})),  # an empty list of strategies: the right type, a wrong value
    ],
    ids=lambda f: "",
)
def test_bad_definitions_raise_value_error(make):
    with pytest.raises(ValueError):
        make()


@pytest.mark.parametrize(
    "make",
    [
        lambda: Perturb(discrete="yes"),
        lambda: Resample(Uniform, 0.5),
        lambda: Config(**good(exploit=Truncate)),
        lambda: Config(**good(exploit="truncate")),
        lambda: Config(**good(explore={"lr": "perturb"})),
        lambda: Config(**good(explore=[Perturb()])),
        lambda: Config(**good(synchronous="yes")),
    ],
)
def test_bad_definitions_raise_type_error(make):
    with pytest.raises(TypeError):
        make()


@pytest.mark.parametrize(
    "pbt_params",
    [
        {"objective": "maximize"},
        {"exploit": {"truncate": 0}},
        {"exploit": {"truncate": 0.6}},
        {"exploit": {"elitism": 0.2}},
        {"explore": {"lr": {"perturb": {"minFactor": 1.3, "maxFactor": 1.2}}}},
        {"explore": {"momentum": {"perturb": {}}}},
        {"numParallel": None},
        {"qualityResultName": None},
        {"ranking": "best"},
        {"ranking": "latest", "synchronous": True},
        {"synchronous": 1},
        {"pb2": {"bounds": {"lr": [0, 1]}}},  # and explore too
        {"explore": {}, "pb2": {"bounds": {}}},
        {"explore": {}, "pb2": {"bounds": {"lr": [0, 1]}, "kappa": -1}},
        {"explore": {}, "pb2": {"bounds": {"lr": [0, 1]}, "beta": 2}},
    ],
)
def test_bad_params_are_refused_by_create_experiment(pbt_params):
    params = {
        "scheduler": {
            "PBT": {
                "objective": "min",
                "qualityResultName": "loss",
                "exploit": {"truncate": 0.2},
                "explore": {"lr": {"perturb": {"minFactor": 0.8, "maxFactor": 1.2}}},
                "init": {"lr": {"uniform": {"low": 0, "high": 1}}},
                "numParallel": 4,
                "maxGenerations": None,
                **pbt_params,
            }
        }
    }
    with pytest.raises(ValueError):
        decide.create_experiment(None, name=NAME, kind="pbt", params=params, status=ev.RUNNING, seed=1)


# ---------------------------------------------------------------- Keep: a baseline that never exploits


def _run_keep(explore, segments=24, members=3, seed=4):
    """Drive the real decisions of a Keep experiment, each member reporting a score; return the final state."""
    from schedy.core.pbt import Keep

    cfg = Config(
        objective="min",
        result_name="loss",
        exploit=Keep(),
        explore=explore,
        initial_distributions={"lr": LogUniform(1e-3, 1.0)},
        population_size=members,
        max_generations=None,
    )
    assert pbt.exploit_from_log(cfg.to_log()["scheduler"]["PBT"]["exploit"]) == Keep()
    state, version = None, 0

    def commit(events):
        nonlocal state, version
        version += 1
        state = apply(state, Commit(version, float(version), "w", events))

    commit(
        decide.create_experiment(
            None, name=NAME, kind="pbt", params=cfg.to_log(), status=ev.RUNNING, seed=seed, lease=1e9
        ).events
    )
    for _i in range(segments):
        d = decide.next_job(state, name=NAME, worker="w", version=version + 1, now=float(version + 1))
        commit(d.events)
        job = state.jobs[d.value]
        # The best member by far is member 0: a truncation would make the others copy it.
        loss = values.encode(float(job.member * 10 + 1))
        commit(
            decide.update_job(
                state,
                name=NAME,
                job_id=job.job_id,
                worker="w",
                status=ev.DONE,
                hyperparameters=job.hyperparameters,
                results={**job.results, "loss": loss},
                expected_version=None,
                incarnation=None,
                now=float(version + 1),
            ).events
        )
    return state


def test_keep_never_copies_another_member_and_explores_its_own_values():
    state = _run_keep({"lr": Perturb(0.5, 2.0)})
    later = [j for j in state.jobs.values() if j.generation]
    assert len(later) == 21
    for job in later:
        parent = state.jobs[job.parent]
        assert parent.member == job.member and parent.generation == job.generation - 1
        assert job.hyperparameters["lr"] != parent.hyperparameters["lr"]  # explored from its own value


def test_keep_without_explore_trains_each_member_on_with_its_first_values():
    state = _run_keep({})
    first = {j.member: j.hyperparameters for j in state.jobs.values() if j.generation == 0}
    for job in state.jobs.values():
        assert job.hyperparameters == first[job.member]
        assert job.parent is None or state.jobs[job.parent].member == job.member


# ---------------------------------------------------------------- ranking within a generation, synchronous mode


def test_a_member_is_ranked_against_the_same_generation_not_the_latest():
    """Member 0 finishes generation 1 after member 1 has finished generation 2 with the best score yet. Under
    SAME_GENERATION, member 0 is compared with member 1's generation-1 segment, and copies that one."""
    sim = Sim(config(Truncate(0.34), population_size=3, ranking=pbt.SAME_GENERATION), seed=0)
    a, b, c = start_generation(sim, 3)  # members 0, 1, 2
    for job, loss in ((b, 3.0), (c, 2.5), (a, 2.0)):
        sim.put(job.job_id, ev.DONE, score=loss)
    b1, c1, a1 = start_generation(sim, 3)  # longest waiting first: k = 1, member 1 is the bottom one
    assert (b1.member, b1.parent) == (1, a.job_id)  # it copied the top one
    assert (c1.member, c1.parent, a1.member, a1.parent) == (2, c.job_id, 0, a.job_id)
    sim.put(c1.job_id, ev.DONE, score=1.2)
    sim.put(b1.job_id, ev.DONE, score=1.0)
    # Member 2 (waited longest) may be in the bottom or not, depending on member 0's pending score: it waits.
    # Member 1 is at the top whatever member 0 scores: it goes on at once.
    b2 = sim.next_job("w1")
    assert (b2.member, b2.generation, b2.parent) == (1, 2, b1.job_id)
    with pytest.raises(NoJobError) as e:
        sim.next_job("w2")
    assert (e.value.waiting_for.members, e.value.waiting_for.generation) == ((0,), 1)
    sim.put(b2.job_id, ev.DONE, score=0.1)  # generation 2, better than anything of generation 1
    sim.put(a1.job_id, ev.DONE, score=1.5)  # member 0 is now the bottom of generation 1
    c2 = sim.next_job("w2")
    assert c2.parent == c1.job_id  # member 2 is in the middle: it continues
    a2 = sim.next_job("w0")
    assert (a2.member, a2.generation, a2.parent) == (0, 2, b1.job_id)  # member 1's generation 1, not its later


def test_a_member_that_may_be_in_the_bottom_waits_for_the_pending_scores():
    sim = Sim(config(Truncate(0.5), population_size=2, ranking=pbt.SAME_GENERATION), seed=0)
    a, b = start_generation(sim, 2)
    sim.put(a.job_id, ev.DONE, score=1.0)
    n = sim.version
    with pytest.raises(NoJobError) as e:
        sim.next_job("w0")  # member 0 is in the bottom half or not, depending on member 1's score
    assert sim.version == n  # a refusal writes nothing
    wait = e.value.waiting_for
    assert (wait.generation, wait.members, wait.jobs) == (0, (1,), (b.job_id,)) and not e.value.finished
    assert "depends on the generation-0 score of member 1, not known yet" in str(e.value)
    sim.put(b.job_id, ev.DONE, score=0.5)
    a1 = sim.next_job("w0")  # now it knows: member 1 is better, member 0 copies it
    assert (a1.member, a1.generation, a1.parent) == (0, 1, b.job_id)


def test_synchronous_mode_waits_for_every_member_of_the_generation():
    sim = Sim(config(Truncate(0.5), population_size=3, ranking=pbt.SAME_GENERATION, synchronous=True), seed=0)
    a, b, c = start_generation(sim, 3)
    sim.put(a.job_id, ev.DONE, score=0.0)  # the best possible score: an asynchronous member would go on
    sim.put(b.job_id, ev.DONE, score=1.0)
    with pytest.raises(NoJobError, match="waiting for generation 0 of member 2") as e:
        sim.next_job("w0")
    assert (e.value.waiting_for.generation, e.value.waiting_for.members, e.value.waiting_for.jobs) == (
        0,
        (2,),
        (c.job_id,),
    )
    sim.put(c.job_id, ev.CRASHED)  # the crashed segment is redone first, and still waited for
    retry = sim.next_job("w2")
    assert (retry.member, retry.generation) == (2, 0)
    with pytest.raises(NoJobError, match="waiting for generation 0 of member 2"):
        sim.next_job("w0")
    sim.put(retry.job_id, ev.DONE, score=2.0)
    nxt = [sim.next_job(f"w{i}") for i in range(3)]
    assert sorted(j.generation for j in nxt) == [1, 1, 1]
    copied = next(j for j in nxt if j.member == 2)
    assert copied.parent == a.job_id  # the worst copied the best
    sim.put(copied.job_id, ev.PRUNED)  # a pruned member is not waited for
    for j in nxt:
        if j.member != 2:
            sim.put(j.job_id, ev.DONE, score=0.5)
    assert sorted(sim.next_job(f"w{i}").generation for i in range(2)) == [2, 2]


def test_synchronous_mode_waits_for_a_member_added_by_hand():
    sim = Sim(config(Truncate(0.5), ranking=pbt.SAME_GENERATION, synchronous=True), seed=0)
    sim.add({"lr": 0.1, "n": 1, "x": 0.0})
    a = sim.next_job("w0")
    sim.put(a.job_id, ev.DONE, score=1.0)
    a1 = sim.next_job("w0")  # alone: nothing to wait for
    sim.put(a1.job_id, ev.DONE, score=0.5)
    late = sim.add({"lr": 0.2, "n": 1, "x": 0.0})  # a new member, at generation 0
    assert sim.next_job("w1").job_id == late.job_id  # queued: handed out first
    with pytest.raises(NoJobError, match="waiting for generation 1 of member 1"):
        sim.next_job("w0")  # member 0 does not start generation 2 before the new member has finished 1
    sim.put(late.job_id, ev.DONE, score=2.0)
    late1 = sim.next_job("w1")  # the new member is behind: it is not held back
    assert (late1.member, late1.generation) == (1, 1)


def test_old_rule_logs_keep_deciding_with_the_latest_segments():
    """The same situation as the first example, under LATEST (the rule of logs without ``ranking``)."""
    sim = Sim(config(Truncate(0.5), population_size=2, ranking=pbt.LATEST), seed=0)
    a, b = start_generation(sim, 2)
    sim.put(a.job_id, ev.DONE, score=1.0)
    a1 = sim.next_job("w0")  # no waiting: member 1 has no score, member 0 is ranked alone
    assert a1.parent == a.job_id


def test_a_member_surely_in_the_bottom_waits_while_a_pending_member_may_be_better():
    """Three members tie; the fourth is still training. The last of the three is surely in the bottom half, and no
    member surely in the top half is strictly better, but the pending one may be: the decision waits for it."""
    rng = np.random.default_rng(0)
    ranking = [(0, 1.0), (1, 1.0), (2, 1.0)]
    assert pbt.Truncate(0.5).choose(ranking, 2, 1.0, rng, "min", {0, 1, 2, 3}, pending=1) is pbt.WAIT
    assert pbt.Truncate(0.5).choose(ranking, 2, 1.0, rng, "min", {0, 1, 2}, pending=0) is None  # all known: ties
    sim = Sim(config(Truncate(0.5), population_size=4, ranking=pbt.SAME_GENERATION), seed=0)
    a, b, c, d = start_generation(sim, 4)
    for job in (a, b, c):
        sim.put(job.job_id, ev.DONE, score=1.0)
    a1 = sim.next_job("w0")  # member 0 is in the top half whatever member 3 scores
    assert (a1.member, a1.parent) == (0, a.job_id)
    with pytest.raises(NoJobError) as e:
        sim.next_job("w1")  # member 1's side of the cut depends on member 3; member 2 may have a donor in it
    assert e.value.waiting_for.members == (3,)
    sim.put(d.job_id, ev.DONE, score=0.5)
    picks = {j.member: j for j in start_generation(sim, 2)}
    assert picks[2].parent == d.job_id  # member 3 is better and in the top: member 2 copies it
    assert picks[1].parent in (d.job_id, b.job_id)


def _pb2_calls(monkeypatch):
    calls = []
    real = pbt.PB2.suggest

    def spy(self, observations, pending, at, start, rng):
        call = (sorted(observations, key=repr), sorted(pending, key=repr), at, start)
        if not calls or calls[-1] != call:  # Sim's check proposes each decision again, with the same inputs
            calls.append(call)
        return real(self, observations, pending, at, start, rng)

    monkeypatch.setattr(pbt.PB2, "suggest", spy)
    return calls


@pytest.mark.parametrize("objective", ["min", "max"])
def test_pb2_is_fed_the_gains_of_the_recent_segments_and_the_running_ones(monkeypatch, objective):
    calls = _pb2_calls(monkeypatch)
    bandit = pbt.PB2({"lr": (0.001, 1.0)}, window=2)
    sim = Sim(
        config(Truncate(0.5), bandit, population_size=2, objective=objective, ranking=pbt.SAME_GENERATION), seed=3
    )
    sign = 1.0 if objective == "max" else -1.0  # a gain is a change of the score for the better
    good, bad = (2.0, 1.0) if objective == "max" else (1.0, 2.0)

    def lr(job):
        return values.decode(job.hyperparameters["lr"])

    a, b = start_generation(sim, 2)
    sim.put(b.job_id, ev.DONE, score=bad)
    sim.put(a.job_id, ev.DONE, score=good)
    b1 = sim.next_job("w1")  # member 1 (waited longer) is the worse: it copies member 0
    assert b1.parent == a.job_id and calls[-1][0] == [] and calls[-1][2] == 1.0  # no segment with a parent yet
    a1 = sim.next_job("w0")
    assert a1.parent == a.job_id and len(calls) == 1  # member 0 continues: PB2 is not asked
    sim.put(a1.job_id, ev.DONE, score=good + sign * 0.5)
    sim.put(b1.job_id, ev.DONE, score=bad)
    a2 = sim.next_job("w0")  # member 0 is the better: it continues, and trains while member 1 decides
    b2 = sim.next_job("w1")
    assert (a2.parent, b2.parent, len(calls)) == (a1.job_id, a1.job_id, 2)
    observations, pending, at, start = calls[-1]
    assert at == 2.0 and start == {"lr": lr(a1)}
    assert observations == sorted([(1.0, {"lr": lr(a1)}, 0.5), (1.0, {"lr": lr(b1)}, -abs(good - bad))], key=repr)
    assert pending == [(2.0, {"lr": lr(a2)})]  # member 0's running segment
    assert lr(b2) != lr(a1)  # chosen by the bandit, not copied
    for generation in (2, 3):
        sim.put(a2.job_id, ev.DONE, score=good + sign * (0.5 + generation / 10))
        sim.put(b2.job_id, ev.DONE, score=bad)
        a2, b2 = sim.next_job("w0"), sim.next_job("w1")
        observations, pending, at, _ = calls[-1]
        # window 2: the segments of the last two generations, up to the one copied
        assert at == generation + 1 and {o[0] for o in observations} == {generation - 1.0, float(generation)}
        assert pending == [(generation + 1.0, {"lr": lr(a2)})]
