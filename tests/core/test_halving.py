"""ASHA and Hyperband, driven through the pure core only.

Workers are simulated by a Hypothesis-chosen sequence of asks, reports, crashes and lapsed leases, each a
decision of :mod:`schedy.core.decide` folded into the state as one commit. Before every commit, an
independent restatement of the promotion rule (written from the paper's pseudo-code, not from
:mod:`schedy.core.halving`) says which jobs may be promoted; the decision must agree.
"""

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedy.core import decide, halving, values
from schedy.core import events as ev
from schedy.core.check import find_double_claims
from schedy.core.codec import Commit
from schedy.core.distributions import Choice, LogUniform, Uniform
from schedy.core.outcomes import Finished, Waiting
from schedy.core.state import apply, lineage
from schedy.errors import NoJobError

NAME = "sh"
DISTS = {"lr": LogUniform(1e-4, 1.0), "width": Choice([16, 32, 64])}


def config(kind="asha", **kw):
    args = dict(distributions=DISTS, result_name="loss")
    args.update(kw)
    return halving.Config(kind, **args)


# -- the definition ---------------------------------------------------------------------------------


def test_rungs_climb_by_the_reduction_factor_up_to_the_max_resource():
    c = config(min_resource=1, max_resource=81, reduction_factor=3)
    assert [c.resource(0, k) for k in range(c.rungs(0))] == [1, 3, 9, 27, 81]
    c = config(min_resource=1, max_resource=100, reduction_factor=3)
    assert [c.resource(0, k) for k in range(c.rungs(0))] == [1, 3, 9, 27, 100]  # the last rung is the max
    c = config(min_resource=2, max_resource=2, reduction_factor=2)
    assert c.rungs(0) == 1 and c.resource(0, 0) == 2  # no halving: a random search
    c = config(min_resource=0.5, max_resource=4.0, reduction_factor=2)
    assert [c.resource(0, k) for k in range(c.rungs(0))] == [0.5, 1.0, 2.0, 4.0]


def test_hyperband_brackets_start_higher_and_take_turns_in_hyperbands_proportions():
    c = config("hyperband", min_resource=1, max_resource=81, reduction_factor=3)
    assert c.bracket_count == 5
    assert [[c.resource(b, k) for k in range(c.rungs(b))] for b in range(5)] == [
        [1, 3, 9, 27, 81],
        [3, 9, 27, 81],
        [9, 27, 81],
        [27, 81],
        [81],
    ]
    sizes = [81, 34, 15, 8, 5]  # Hyperband's n for s = 4..0 with R = 81, eta = 3
    total = sum(sizes)
    assert [sum(c.bracket_of(m) == b for m in range(total)) for b in range(5)] == sizes
    first = [c.bracket_of(m) for m in range(20)]
    assert len(set(first)) >= 3, first  # every bracket starts early, not one after the other
    assert config("asha").bracket_count == 1 and {config("asha").bracket_of(m) for m in range(50)} == {0}


@pytest.mark.parametrize("kind", ["asha", "hyperband"])
def test_a_definition_round_trips_through_the_log(kind):
    c = config(kind, min_resource=2, max_resource=50, reduction_factor=4, objective="max", max_jobs=30)
    assert halving.Config.from_log(c.to_log(), kind) == c


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(min_resource=0), "min_resource must be a positive number, got 0"),
        (dict(max_resource=-1), "max_resource must be a positive number, got -1"),
        (dict(min_resource=10, max_resource=5), "max_resource (5) must be at least min_resource (10)"),
        (dict(reduction_factor=1), "reduction_factor must be a number greater than 1, got 1"),
        (dict(reduction_factor=True), "reduction_factor must be a number greater than 1, got True"),
        (dict(max_jobs=0), "max_jobs must be a positive integer, got 0"),
        (dict(max_jobs=2.5), "max_jobs must be a positive integer, got 2.5"),
        (dict(objective="best"), "objective must be schedy.pbt.MINIMIZE ('min') or MAXIMIZE ('max'), got 'best'"),
        (dict(result_name=""), "result_name must be a non-empty string, got ''"),
        (dict(distributions={}), "distributions must name at least one hyperparameter"),
        (dict(min_resource=1e-30, max_resource=1e30, reduction_factor=2), "at most 64 are allowed"),
    ],
)
def test_bad_parameters_are_refused_by_the_core_naming_the_problem(change, message):
    with pytest.raises(ValueError) as e:
        config(**change)
    assert message in str(e.value)


def test_a_log_with_unknown_or_missing_keys_is_refused():
    good = config().to_log()
    bad = {"scheduler": {"ASHA": dict(good["scheduler"]["ASHA"], eta=3)}}
    with pytest.raises(ValueError, match="unknown 'eta'"):
        halving.Config.from_log(bad, "asha")
    missing = {"scheduler": {"ASHA": {"distributions": good["scheduler"]["ASHA"]["distributions"]}}}
    with pytest.raises(ValueError, match="missing 'resultName'"):
        halving.Config.from_log(missing, "asha")
    with pytest.raises(ValueError, match="hyperband parameters must be an object"):
        halving.Config.from_log(good, "hyperband")  # ASHA's params are not Hyperband's


# -- a run, step by step -------------------------------------------------------------------------------


class Run:
    """A state advanced one decision (one commit) at a time, as the append loop would."""

    def __init__(self, cfg, seed=7, lease=100.0):
        self.cfg, self.state, self.version, self.now = cfg, None, 0, 1000.0
        self.commit(
            decide.create_experiment(
                None, name=NAME, kind=cfg.kind, params=cfg.to_log(), status=ev.RUNNING, seed=seed, lease=lease
            ).events
        )
        self.commits = []
        self.promotions = []  # (parent job id, what the independent rule allowed)

    def commit(self, events):
        self.version += 1
        c = Commit(self.version, self.now, "w", events)
        self.state = apply(self.state, c)
        if hasattr(self, "commits"):
            self.commits.append(c)

    def ask(self, worker="w", lapsed=()):
        allowed = allowed_promotions(self.state, self.cfg)
        d = decide.next_job(
            self.state, name=NAME, worker=worker, version=self.version + 1, now=self.now, lapsed=list(lapsed)
        )
        self.commit(d.events)
        if d.error is not None:
            raise d.error
        job = self.state.jobs[d.value]
        added = [e for e in d.events if e["type"] == ev.JOB_ADDED]
        if added and added[0]["parent"] is not None:
            self.promotions.append((added[0]["parent"], allowed))
        elif added:
            assert not allowed, f"a new configuration was sampled while {sorted(allowed)} could be promoted"
        return job

    def report(self, job_id, loss, status=ev.DONE):
        job = self.state.jobs[job_id]
        results = {"loss": values.encode(loss)} if loss is not None else {}
        d = decide.update_job(
            self.state,
            name=NAME,
            job_id=job_id,
            worker=job.worker,
            status=status,
            hyperparameters=job.hyperparameters,
            results=results,
            now=self.now,
        )
        self.commit(d.events)


def allowed_promotions(state, cfg):
    """The independent rule: the jobs that may be promoted now (only the best of them is, per bracket).

    For each bracket, take the highest rung below its top whose DONE jobs have, in their top
    floor(n / eta) by score, one that no job continues from; the allowed ones are those of that rung.
    """
    eta = cfg.reduction_factor
    continued = {j.parent for j in state.jobs.values() if j.parent is not None}
    allowed = set()
    for b in range(cfg.bracket_count):
        top_rung = cfg.rungs(b) - 1
        for rung in reversed(range(top_rung)):
            rows = []
            for j in state.jobs.values():
                if j.status == ev.DONE and j.generation == rung and cfg.bracket_of(j.member) == b:
                    loss = values.decode(j.results["loss"])
                    rows.append((loss if cfg.objective == "min" else -loss, j.number, j.job_id))
            rows.sort()
            best = [job_id for _, _, job_id in rows[: int(len(rows) // eta)]]
            free = [job_id for job_id in best if job_id not in continued]
            if free:
                allowed.add(free[0])  # the best not yet promoted
                break
    return allowed


def check_run(run):
    state, cfg = run.state, run.cfg
    parents = [p for p, _ in run.promotions]
    assert len(parents) == len(set(parents)), "a job was promoted twice"
    for parent, allowed in run.promotions:
        assert parent in allowed, f"job {parent} was promoted; the rule allowed only {sorted(allowed)}"
    for job in state.jobs.values():
        chain = lineage(state, job.job_id)
        assert [j.generation for j in chain] == list(range(len(chain)))  # a rung above its parent's
        assert {j.member for j in chain} == {job.member}  # one configuration
        assert all(j.hyperparameters == chain[0].hyperparameters for j in chain)
        b = cfg.bracket_of(job.member)
        assert job.generation < cfg.rungs(b)
        resources = [cfg.resource(b, j.generation) for j in chain]
        assert resources == sorted(set(resources))  # each promotion trains further
    assert find_double_claims(run.commits) == []


@st.composite
def definitions(draw):
    kind = draw(st.sampled_from(["asha", "hyperband"]))
    eta = draw(st.sampled_from([2, 3, 4]))
    levels = draw(st.integers(1, 4))
    return config(
        kind,
        min_resource=1,
        max_resource=eta ** (levels - 1) * draw(st.sampled_from([1, 1.5])),
        reduction_factor=eta,
        objective=draw(st.sampled_from(["min", "max"])),
    )


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cfg=definitions(),
    workers=st.integers(1, 6),
    ops=st.lists(
        st.tuples(st.sampled_from(["ask", "done", "done", "crash", "lapse"]), st.integers(0, 10**6)),
        min_size=1,
        max_size=120,
    ),
    seed=st.integers(0, 2**32),
)
def test_every_promotion_follows_the_rule_and_lineages_stay_consistent(cfg, workers, ops, seed):
    run = Run(cfg, seed=seed)
    lapsed = set()
    for op, pick in ops:
        running = sorted((j.job_id for j in run.state.jobs.values() if j.status == ev.RUNNING), key=int)
        if op == "ask" and len(running) < workers:
            run.ask(worker=f"w{pick % workers}", lapsed=lapsed)
            lapsed = set()
        elif op in ("done", "crash") and running:
            job_id = running[pick % len(running)]
            loss = (pick % 1000) / 7.0 if op == "done" else None
            run.report(job_id, loss, ev.DONE if op == "done" else ev.CRASHED)
        elif op == "lapse" and running:
            lapsed.add(running[pick % len(running)])  # the worker died: the next decision takes its job back
        run.now += 1
    check_run(run)


def test_a_lapsed_promotion_is_handed_out_again_from_the_same_checkpoint():
    run = Run(config(min_resource=1, max_resource=9, reduction_factor=3))
    first = [run.ask() for _ in range(3)]
    for i, job in enumerate(first):
        run.report(job.job_id, float(i))
    promoted = run.ask(worker="dies")
    assert (promoted.parent, promoted.generation, promoted.member) == (first[0].job_id, 1, first[0].member)
    again = run.ask(worker="next", lapsed=[promoted.job_id])
    assert again.job_id == promoted.job_id and again.worker == "next" and again.parent == first[0].job_id
    assert again.hyperparameters == first[0].hyperparameters


def test_a_crashed_or_pruned_job_is_not_ranked_and_its_parent_is_not_promoted_again():
    run = Run(config(min_resource=1, max_resource=9, reduction_factor=3))
    first = [run.ask() for _ in range(3)]
    for i, job in enumerate(first):
        run.report(job.job_id, float(i))
    promoted = run.ask()
    run.report(promoted.job_id, None, ev.CRASHED)
    nxt = run.ask()
    assert nxt.parent is None and nxt.generation == 0  # not the same promotion again: a new configuration
    run.report(nxt.job_id, 0.5, ev.PRUNED)
    assert halving.promotion(run.state, run.cfg) is None


def test_max_jobs_ends_the_experiment_once_its_jobs_are_finished():
    run = Run(config(min_resource=1, max_resource=3, reduction_factor=3, max_jobs=3))
    jobs = [run.ask() for _ in range(3)]
    with pytest.raises(NoJobError) as e:
        run.ask()
    assert isinstance(e.value.outcome, Waiting) and set(e.value.outcome.jobs) == {j.job_id for j in jobs}
    for j in jobs:
        run.report(j.job_id, 1.0)
    with pytest.raises(NoJobError) as e:
        run.ask()
    assert isinstance(e.value.outcome, Finished) and "max_jobs" in str(e.value)
    assert run.state.status == ev.DONE  # written in the log: every worker stops


def test_ties_promote_the_earliest_job_and_the_objective_decides_the_direction():
    for objective, expect in (("min", 0), ("max", 2)):
        run = Run(config(min_resource=1, max_resource=3, reduction_factor=3, objective=objective))
        jobs = [run.ask() for _ in range(3)]
        for j, loss in zip(jobs, (1.0, 2.0, 3.0)):
            run.report(j.job_id, loss)
        assert run.ask().parent == jobs[expect].job_id
    run = Run(config(min_resource=1, max_resource=3, reduction_factor=3))
    jobs = [run.ask() for _ in range(3)]
    for j in jobs:
        run.report(j.job_id, 1.0)
    assert run.ask().parent == jobs[0].job_id


def test_a_job_that_reports_done_without_its_score_is_refused():
    run = Run(config())
    job = run.ask()
    with pytest.raises(ValueError, match="without its result 'loss'"):
        decide.update_job(
            run.state,
            name=NAME,
            job_id=job.job_id,
            worker="w",
            status=ev.DONE,
            hyperparameters=job.hyperparameters,
            results={},
            now=run.now,
        )


def test_the_same_log_gives_the_same_configurations():
    a, b = Run(config(), seed=3), Run(config(), seed=3)
    assert [a.ask().hyperparameters for _ in range(5)] == [b.ask().hyperparameters for _ in range(5)]
    c = Run(config(), seed=4)
    assert [c.ask().hyperparameters for _ in range(5)] != [Run(config(), seed=3).ask().hyperparameters] * 5


def test_sampled_values_come_from_the_distributions():
    run = Run(config(distributions={"lr": Uniform(0.1, 0.2), "depth": Choice([1, 2])}))
    for _ in range(20):
        hps = values.decode_mapping(run.ask().hyperparameters)
        assert 0.1 <= hps["lr"] < 0.2 and hps["depth"] in (1, 2)
    assert math.isfinite(hps["lr"])


@pytest.mark.parametrize("kind", ["asha", "hyperband"])
@pytest.mark.parametrize("workers", [4, 16, 64])
def test_many_workers_promote_per_rung_what_the_rule_allows_and_nobody_waits(kind, workers):
    """Workers finish in a shuffled order; each asks again at once, and always gets a job (nobody idles).

    Every promotion was in the top third of its rung when it was decided (check_run). No rung is starved:
    at the end, every job in the current top third of a rung has been promoted, but for the few that
    became eligible together and wait for the next asks. A rung may promote more than a third of its jobs
    in all (scores here are noise: a job in the top third when it was promoted may have dropped out
    since), which is ASHA's rule, not a defect: Li et al. (2018) call these mispromotions.
    """
    import numpy as np

    cfg = config(kind, min_resource=1, max_resource=27, reduction_factor=3)
    run, rng = Run(cfg, seed=workers), np.random.default_rng(workers)
    running = [run.ask(worker=f"w{i}").job_id for i in range(workers)]
    for _ in range(min(40 * workers, 800)):
        job_id = running.pop(int(rng.integers(len(running))))
        run.report(job_id, float(rng.random()))
        running.append(run.ask().job_id)  # raises NoJobError if nothing could be handed out
    check_run(run)
    jobs = run.state.jobs.values()
    for b in range(cfg.bracket_count):
        for rung in range(cfg.rungs(b) - 1):
            here = [j for j in jobs if j.generation == rung and cfg.bracket_of(j.member) == b]
            ranked = sorted((values.decode(j.results["loss"]), j.number, j.job_id) for j in here if j.status == ev.DONE)
            top = {job_id for _, _, job_id in ranked[: len(ranked) // 3]}
            continued = {j.parent for j in jobs}
            assert len(top - continued) <= 1, (b, rung, sorted(top - continued))  # at most the latest report
    top = max(j.generation for j in jobs if cfg.bracket_of(j.member) == 0)
    assert top == cfg.rungs(0) - 1


def test_the_worked_example_of_docs_asha_md():
    run = Run(config(min_resource=1, max_resource=9, reduction_factor=3))
    jobs = [run.ask() for _ in range(3)]  # asks 1-3: configurations 0, 1, 2 at rung 0
    assert [(j.member, j.generation, j.parent) for j in jobs] == [(0, 0, None), (1, 0, None), (2, 0, None)]
    for j, loss in zip(jobs, (0.9, 0.4, 0.7)):
        run.report(j.job_id, loss)
    fourth = run.ask()  # promote configuration 1 to rung 1
    assert (fourth.member, fourth.generation, fourth.parent) == (1, 1, jobs[1].job_id)
    assert run.cfg.resource(0, fourth.generation) == 3
    run.report(fourth.job_id, 0.35)
    fifth = run.ask()  # nothing to promote: new configuration 3
    assert (fifth.member, fifth.generation, fifth.parent) == (3, 0, None)
    run.report(fifth.job_id, 0.2)
    sixth = run.ask()  # configuration 3 is now rung 0's best: promoted
    assert (sixth.member, sixth.generation, sixth.parent) == (3, 1, fifth.job_id)


def brute_promotion(state, cfg):
    """The promotion rule recomputed from every job (what the incremental Ladder must agree with)."""
    eta, continued, best = cfg.reduction_factor, {j.parent for j in state.jobs.values()}, None
    for b in range(cfg.bracket_count):
        for rung in range(cfg.rungs(b) - 2, -1, -1):
            rows = sorted(
                (halving.score(j, cfg), j.number, j.job_id)
                for j in state.jobs.values()
                if j.status == ev.DONE
                and j.generation == rung
                and cfg.bracket_of(j.member) == b
                and halving.score(j, cfg) is not None
            )
            free = [job_id for _, _, job_id in rows[: math.floor(len(rows) / eta)] if job_id not in continued]
            if free:
                key = (cfg.resource(b, rung + 1), -b)
                if best is None or key > best[0]:
                    best = (key, free[0])
                break
    return None if best is None else best[1]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    cfg=definitions(),
    ops=st.lists(
        st.tuples(st.sampled_from(["ask", "ask", "done", "done", "crash", "delete"]), st.integers(0, 10**6)),
        min_size=60,
        max_size=150,
    ),
    order=st.randoms(use_true_random=False),
)
def test_the_incremental_ladder_agrees_with_the_rule_recomputed_on_any_state_in_any_order(cfg, ops, order):
    check_ladder_against_the_rule(cfg, ops, order)


def check_ladder_against_the_rule(cfg, ops, order):
    run, states = Run(cfg), []
    for op, pick in ops:
        jobs = sorted(run.state.jobs.values(), key=lambda j: j.number)
        running = [j.job_id for j in jobs if j.status == ev.RUNNING]
        if op == "ask" and len(running) < 4:
            run.ask()
        elif op in ("done", "crash") and running:
            run.report(
                running[pick % len(running)],
                (pick % 97) / 3.0 if op == "done" else None,
                ev.DONE if op == "done" else ev.CRASHED,
            )
        elif op == "delete" and jobs:
            run.commit(decide.delete_job(run.state, name=NAME, job_id=jobs[pick % len(jobs)].job_id).events)
        states.append(run.state)
    order.shuffle(states)  # the ladder follows a table to any other, backwards too
    for state in states:
        got = halving.promotion(state, cfg)
        assert (got.job_id if got else None) == brute_promotion(state, cfg)


def test_a_parent_whose_promotion_is_gone_again_is_a_candidate_again():
    cfg = config(min_resource=1, max_resource=9, reduction_factor=3)
    run = Run(cfg)
    for i, job in enumerate([run.ask() for _ in range(3)]):
        run.report(job.job_id, float(i))
    before = run.state
    promoted = run.ask()
    assert halving.promotion(run.state, cfg) is None  # the ladder follows the table forwards...
    assert halving.promotion(before, cfg).job_id == promoted.parent  # ...and back
    run.commit(decide.delete_job(run.state, name=NAME, job_id=promoted.job_id).events)
    assert halving.promotion(run.state, cfg).job_id == promoted.parent  # its promotion deleted: promoted again


def test_a_rung_the_ladder_has_not_seen_yet_is_no_error():
    """Found by the property test: a ladder first built on a table where every ranked job of a rung was
    promoted had no list of free jobs for that rung, and failed when it followed the table back."""
    cfg = config(min_resource=1, max_resource=2, reduction_factor=2)
    run = Run(cfg)
    first, second = run.ask(), run.ask()
    run.report(first.job_id, 1.0)
    run.report(second.job_id, 2.0)
    before = run.state  # both DONE at rung 0, none promoted
    assert run.ask().parent == first.job_id
    run.commit(decide.delete_job(run.state, name=NAME, job_id=second.job_id).events)
    fresh = config(min_resource=1, max_resource=2, reduction_factor=2)  # a new ladder, first built here
    assert halving.promotion(run.state, fresh) is None  # job 1 is rung 0's only ranked job, and promoted
    assert halving.promotion(before, fresh).job_id == first.job_id == brute_promotion(before, fresh)
