"""schedy.simulation: the real decisions driven by simulated workers on a simulated clock (docs/simulation.md)."""

import collections
import math
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import schedy
from schedy.core import decide, values
from schedy.core import events as ev
from schedy.core.check import find_double_claims
from schedy.core.codec import decode_commit, encode_commit
from schedy.core.state import fold
from schedy.errors import ResourceExistsError
from schedy.maintenance import verify
from schedy.pbt import MAXIMIZE, MINIMIZE, Perturb, Truncate
from schedy.random import LogUniform, Uniform
from schedy.simulation import (
    START,
    Durations,
    Failures,
    Problem,
    compare,
    engine,
    lr_schedule,
    permutation_test,
    simulate,
    toy,
)


def pbt_lr(name="lr", population=6, generations=5, **kw):
    return schedy.PopulationBasedTraining(
        name,
        MINIMIZE,
        "loss",
        Truncate(0.25),
        {"lr": Perturb(0.8, 1.2)},
        {"lr": LogUniform(1e-3, 1.0)},
        population_size=population,
        max_generations=generations,
        **kw,
    )


def counting(hps, state, steps, rng):
    """A user problem: the state counts the steps trained along the lineage, and is the score."""
    trained = (0 if state is None else state) + steps
    return trained, float(trained)


# -- the engine drives the real decisions ----------------------------------------------------------------


def test_same_seed_same_log_bit_for_bit():
    problem = lr_schedule(population=6, segments=5)
    runs = [simulate(pbt_lr(), problem, seed=s, failures=Failures(0.2, 50.0)) for s in (3, 3, 4)]
    assert runs[0].log() == runs[1].log()
    assert [encode_commit(c) for c in runs[0].commits] == [encode_commit(c) for c in runs[1].commits]
    assert np.array_equal(runs[0].reports["score"], runs[1].reports["score"])
    assert runs[0].log() != runs[2].log()
    random = schedy.RandomSearch("r", {"lr": LogUniform(1e-3, 1.0)})
    assert simulate(random, problem, seed=1, budget=40).log() == simulate(random, problem, seed=1, budget=40).log()


def test_the_log_is_what_the_decisions_write():
    """Every claim in the log is exactly what decide.next_job returns on the state before it."""
    sim = simulate(pbt_lr(population=5, generations=6), lr_schedule(), seed=2, workers=3, failures=Failures(0.15, 30.0))
    state, checked = None, 0
    for c in sim.commits:
        if any(e["type"] == ev.JOB_CLAIMED for e in c.events):
            d = decide.next_job(
                state, name=sim.name, worker=c.worker, version=c.version, now=c.time, incarnation=state.created
            )
            assert d.events == c.events and d.error is None
            checked += 1
        state = fold([c], state)
    assert checked == len([j for j in state.jobs.values()])  # each PBT segment is claimed once, when proposed
    assert state == sim.state
    assert [c.version for c in sim.commits] == list(range(1, len(sim.commits) + 1))
    assert [decode_commit(encode_commit(c)[:-1]) for c in sim.commits] == sim.commits
    assert find_double_claims(sim.commits) == []
    assert all(b.time >= a.time for a, b in zip(sim.commits, sim.commits[1:]))
    assert sim.commits[0].time == START and sim.commits[0].worker == "simulation"


def test_model_states_travel_through_parents_even_after_an_exploit():
    exp = schedy.PopulationBasedTraining(
        "count",
        MAXIMIZE,
        "score",
        Truncate(0.5),
        {"lr": Perturb()},
        {"lr": Uniform(0.1, 1.0)},
        population_size=4,
        max_generations=8,
    )

    def counting_plus_lr(hps, state, steps, rng):  # members of one generation differ by their lr only
        trained, _ = counting(hps, state, steps, rng)
        return trained, trained + hps["lr"]

    problem = Problem(counting_plus_lr, steps=3)
    sim = simulate(exp, problem, seed=0, workers=3)
    jobs = list(sim.state.jobs.values())
    exploits = [j for j in jobs if j.parent and sim.state.jobs[j.parent].member != j.member]
    assert exploits, "this run should copy at least once"
    for j in jobs:
        assert j.status == ev.DONE
        trained = sim.score(j) - values.decode(j.hyperparameters["lr"])
        assert trained == pytest.approx(3 * (j.generation + 1))  # the lineage's steps, whoever trained them
    assert sim.state.status == ev.DONE  # PBT marked itself DONE: every member reached max_generations
    assert max(j.generation for j in jobs) == 7


def test_a_random_search_job_trains_several_segments_and_reports_progress():
    exp = schedy.RandomSearch("r", {"lr": LogUniform(1e-3, 1.0)})
    sim = simulate(exp, Problem(counting, steps=2, segments=5), seed=0, workers=2, budget=30)
    jobs = list(sim.state.jobs.values())
    assert len(jobs) == 6 and sim.stats["segments"] == 30
    assert all(j.status == ev.DONE and sim.score(j) == 10.0 for j in jobs)
    assert sim.state.status == ev.DONE  # the budget is spent: the simulation stopped the search
    stop = [c for c in sim.commits if c.worker == "simulation" and c.events[0]["type"] == ev.EXPERIMENT_UPDATED]
    assert len(stop) == 1 and stop[0].events == [{"type": ev.EXPERIMENT_UPDATED, "status": ev.DONE}]
    progress = [e for c in sim.commits for e in c.events if e["type"] == ev.JOB_UPDATED and "status" not in e]
    assert len(progress) == 24  # 4 progress reports per job of 5 segments, then DONE


def test_heartbeats_keep_long_segments_alive():
    problem = Problem(counting, segments=3, durations=Durations(mean=400.0))
    sim = simulate(pbt_lr(population=3, generations=3), problem, seed=0, workers=2)
    beats = [c for c in sim.commits if c.events[-1]["type"] == ev.JOB_HEARTBEAT and len(c.events) == 1]
    assert beats and sim.stats["heartbeats"] == len(beats)
    assert sim.stats["expired"] == 0 and sim.stats["refused"] == 0
    for c in beats:  # every 30 s (a quarter of the default lease of 120 s)
        job = c.events[0]["job"]
        claim = next(
            x
            for x in sim.commits
            if x.version < c.version and any(e["type"] == ev.JOB_CLAIMED and e["job"] == job for e in x.events)
        )
        assert (c.time - claim.time) % 30.0 == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="heartbeat"):
        simulate(pbt_lr(), problem, heartbeat=120.0)


def test_dead_workers_leases_lapse_and_their_segments_are_redone():
    problem = lr_schedule(population=6, segments=6)
    # A large budget: PBT ends by itself (max_generations) before reporting it.
    sim = simulate(
        pbt_lr(population=6, generations=6), problem, seed=5, workers=4, failures=Failures(0.25, 60.0), budget=1000
    )
    assert sim.stats["deaths"] > 0 and sim.stats["expired"] > 0
    expired = [(c, e) for c in sim.commits for e in c.events if e["type"] == ev.JOB_LEASE_EXPIRED]
    assert len(expired) == sim.stats["expired"]
    state = sim.state
    for c, e in expired:
        crashed = state.jobs[e["job"]]
        assert e["status"] == ev.CRASHED and crashed.status == ev.CRASHED
        # recorded by the first writer after the lease lapsed, through a real decision
        claims = [
            x
            for x in sim.commits
            if x.version < c.version
            and any(y["type"] in (ev.JOB_CLAIMED, ev.JOB_HEARTBEAT) and y["job"] == e["job"] for y in x.events)
        ]
        until = [y.get("lease_until") for y in claims[-1].events if y["job"] == e["job"]][-1]
        assert c.time > until
        redo = [
            j
            for j in state.jobs.values()
            if j.member == crashed.member and j.generation == crashed.generation and j.number > crashed.number
        ]
        assert redo and redo[0].parent == crashed.parent and redo[0].hyperparameters == crashed.hyperparameters
    assert any("." in c.worker for c in sim.commits)  # restarted workers have new ids
    assert state.status == ev.DONE
    assert all(j.status in (ev.DONE, ev.CRASHED) for j in state.jobs.values())
    assert find_double_claims(sim.commits) == []


def test_waiting_workers_wake_when_a_lease_lapses():
    """More workers than members: the idle ones record the expiry as soon as the lease lapses."""
    problem = Problem(counting, segments=4, durations=Durations(mean=50.0, spread=0.0, worker_spread=0.0))
    exp = pbt_lr(population=2, generations=4)
    sim = simulate(exp, problem, seed=0, workers=4, failures=Failures(0.3, 1000.0))
    expiries = [c for c in sim.commits if any(e["type"] == ev.JOB_LEASE_EXPIRED for e in c.events)]
    assert expiries and sim.state.status == ev.DONE
    woken = 0
    for c in expiries:
        job = next(e["job"] for e in c.events if e["type"] == ev.JOB_LEASE_EXPIRED)
        last = [
            x
            for x in sim.commits
            if x.version < c.version and any(e.get("job") == job and "lease_until" in e for e in x.events)
        ][-1]
        until = [e["lease_until"] for e in last.events if e.get("job") == job and "lease_until" in e][-1]
        assert sim.commits[c.version - 2].time <= until < c.time  # the first commit after the lapse records it
        woken += c.time <= until + 1e-6  # a waiting worker, woken right when the lease lapsed
    assert woken


def test_a_random_search_job_whose_worker_died_resumes_from_its_last_report():
    exp = schedy.RandomSearch("r", {"lr": LogUniform(1e-3, 1.0)})
    sim = simulate(
        exp, Problem(counting, steps=1, segments=6), seed=1, workers=3, budget=36, failures=Failures(0.2, 20.0)
    )
    assert sim.stats["expired"] > 0
    requeued = {e["job"] for c in sim.commits for e in c.events if e["type"] == ev.JOB_LEASE_EXPIRED}
    assert {e["status"] for c in sim.commits for e in c.events if e["type"] == ev.JOB_LEASE_EXPIRED} == {ev.QUEUED}
    for job in requeued:
        j = sim.state.jobs[job]
        if j.status == ev.DONE:
            assert sim.score(j) == 6.0  # resumed from its checkpoint: 6 segments of 1 step in all


def test_a_callable_is_a_problem():
    exp = schedy.RandomSearch("r", {"lr": LogUniform(1e-3, 1.0)})
    sim = simulate(exp, counting, seed=0, budget=20)
    assert sim.score_name == "score" and sim.stats["segments"] == 20 and sim.best_score == 10.0


def test_bad_definitions_are_refused_before_anything_runs():
    problem = lr_schedule()
    with pytest.raises(ValueError, match="budget"):
        simulate(schedy.RandomSearch("r", {"lr": LogUniform(1e-3, 1.0)}), Problem(counting))
    with pytest.raises(ValueError, match="budget"):  # no max_generations, and this problem has no default budget
        simulate(
            schedy.PopulationBasedTraining(
                "p", MINIMIZE, "score", Truncate(), {"lr": Perturb()}, {"lr": Uniform(0.1, 1)}, population_size=2
            ),
            Problem(counting),
        )
    with pytest.raises(ValueError, match="ranks by 'loss' but the problem reports 'Q'"):
        simulate(pbt_lr(), toy())
    with pytest.raises(TypeError):
        simulate("pbt", problem)
    with pytest.raises(TypeError):
        simulate(pbt_lr(), 42)
    with pytest.raises(ValueError):
        simulate(pbt_lr(), problem, workers=0)
    with pytest.raises(ValueError):
        Failures(rate=1.0)
    with pytest.raises(ValueError):
        Durations(mean=0)

    def bad(hps, state, steps, rng):
        return state, "good"

    with pytest.raises(TypeError, match="not a number"):
        simulate(pbt_lr(), Problem(bad, score="loss"))


def test_explore_only_never_copies_and_changes_each_members_own_hyperparameters():
    problem = toy()
    sim = simulate(problem.strategies()["explore-only"], problem, seed=0)
    jobs = sorted(sim.state.jobs.values(), key=lambda j: j.number)
    assert len(jobs) > 10 and all(j.parent is None or sim.state.jobs[j.parent].member == j.member for j in jobs)
    for j in jobs:
        if j.generation:
            parent = sim.state.jobs[j.parent]
            assert j.hyperparameters != parent.hyperparameters  # explored by the experiment itself (Keep)
            assert all(values.decode(v) >= 0.0 for v in j.hyperparameters.values())  # clamped at 0


# -- the budget: segments reported, whatever the failures ---------------------------------------------------


def statuses(sim):
    return collections.Counter(j.status for j in sim.state.jobs.values())


def test_a_random_search_with_failures_reports_its_whole_budget():
    """Deaths used to lose budget: a claim reserved the rest of its job, and the job's next claim reserved it again."""
    exp = schedy.RandomSearch("r", {"x": Uniform(0, 1)})
    problem = Problem(lambda h, s, n, rng: ((s or 0) + n, float((s or 0) + n)), segments=10, workers=4)
    sim = simulate(exp, problem, budget=200, seed=1, failures=Failures(0.1, 60.0))
    assert sim.stats["deaths"] > 5 and sim.stats["expired"] == sim.stats["deaths"]
    assert sim.stats["segments"] == len(sim.reports["time"]) == 200
    assert statuses(sim) == {ev.DONE: 20}  # nothing left QUEUED: 20 jobs of 10 segments, each trained to its end
    assert all(sim.score(j) == 10.0 for j in sim.state.jobs.values())  # resumed where they stopped, not redone
    assert sim.state.status == ev.DONE
    stop = [c for c in sim.commits if c.worker == "simulation" and c.events[0]["type"] == ev.EXPERIMENT_UPDATED]
    assert stop == [sim.commits[-1]]  # the search is stopped once the budget is reported, not before


def test_a_manual_search_with_failures_trains_every_job_to_its_end():
    problem = toy(segments=6)
    sim = simulate(problem.strategies()["grid"], problem, workers=2, seed=3, failures=Failures(0.2, 30.0))
    assert sim.stats["deaths"] > 0 and sim.stats["segments"] == problem.budget == 12
    assert statuses(sim) == {ev.DONE: 2} and sorted(sim.reports["segment"].tolist()) == sorted(2 * list(range(1, 7)))


def test_a_manual_search_larger_than_its_budget_resumes_the_jobs_it_started():
    """A job handed out again waits behind the jobs never started: it is claimed by its id when the budget is held."""
    jobs = [{"x": float(i)} for i in range(8)]
    claims = []
    for seed in range(4):
        sim = simulate(
            schedy.ManualSearch("m"),
            Problem(counting, segments=5),
            jobs=jobs,
            workers=4,
            budget=20,
            seed=seed,
            failures=Failures(0.3, 30.0),
            durations=Durations(mean=100.0),
        )
        assert sim.stats["deaths"] > 0 and sim.stats["segments"] == 20
        started = {str(j) for j in sim.reports["job"]}
        assert statuses(sim) == {ev.DONE: 4, ev.QUEUED: 4} and len(started) == 4
        assert all(sim.state.jobs[j].status == ev.DONE and sim.score(sim.state.jobs[j]) == 5.0 for j in started)
        claims.extend(e["job"] for c in sim.commits for e in c.events if e["type"] == ev.JOB_CLAIMED)
        assert find_double_claims(sim.commits) == []
    assert set(claims) <= {"1", "2", "3", "4"}  # never a job beyond the budget


def test_pbt_with_failures_reports_its_whole_budget():
    problem = toy()
    sim = simulate(problem.strategies()["pbt"], problem, workers=2, seed=4, failures=Failures(0.3, 30.0))
    st_ = statuses(sim)
    assert sim.stats["deaths"] > 3 and st_[ev.CRASHED] > 0
    assert sim.stats["segments"] == st_[ev.DONE] == problem.budget == 50  # a redone segment counts once
    assert sim.state.status == ev.DONE
    assert not st_[ev.QUEUED]


def test_a_budget_that_ends_within_a_job_prunes_it():
    exp = schedy.RandomSearch("r", {"x": Uniform(0, 1)})
    sim = simulate(exp, Problem(counting, segments=10, workers=2), budget=25, seed=0, failures=Failures(0.1, 30.0))
    assert sim.stats["segments"] == 25
    assert statuses(sim) == {ev.DONE: 2, ev.PRUNED: 1}
    (pruned,) = [j for j in sim.state.jobs.values() if j.status == ev.PRUNED]
    assert sim.score(pruned) == 5.0  # trained 5 of its 10 segments: what the budget had left when it was claimed


@pytest.mark.parametrize("kind", ["random", "manual", "pbt"])
def test_a_worker_that_stops_renewing_loses_its_claim_and_the_budget_is_still_reported(kind, monkeypatch):
    beat = engine._Engine._beat

    def stalled(self, w, t):  # the heartbeat thread of machine 0 stalls, for its first three refused reports
        if w.slot == 0 and self.stats["refused"] < 3:
            return
        return beat(self, w, t)

    monkeypatch.setattr(engine._Engine, "_beat", stalled)
    problem = Problem(counting, segments=4, durations=Durations(mean=300.0, spread=0.1))  # segments > the lease
    exp = {
        "random": schedy.RandomSearch("r", {"x": Uniform(0, 1)}),
        "manual": schedy.ManualSearch("m"),
        "pbt": schedy.PopulationBasedTraining(
            "p", MAXIMIZE, "score", Truncate(0.5), {"x": Perturb()}, {"x": Uniform(0.1, 1)}, population_size=4
        ),
    }[kind]
    jobs = [{"x": i / 10} for i in range(10)] if kind == "manual" else None
    sim = simulate(exp, problem, workers=3, budget=24, seed=0, jobs=jobs)
    assert sim.stats["refused"] == 3 and sim.stats["expired"] == 3 and sim.stats["deaths"] == 0
    assert sim.stats["segments"] == 24 and sim.state.status == ev.DONE
    st_ = statuses(sim)
    if kind == "pbt":
        assert st_ == {ev.DONE: 24, ev.CRASHED: 3}
    else:
        assert st_[ev.DONE] == 6 and not st_[ev.RUNNING] and st_[ev.QUEUED] == (4 if kind == "manual" else 0)
    assert find_double_claims(sim.commits) == []


KINDS = {
    "random": lambda: schedy.RandomSearch("r", {"x": Uniform(0, 1)}),
    "manual": lambda: schedy.ManualSearch("m"),
    "pbt": lambda: schedy.PopulationBasedTraining(
        "p", MAXIMIZE, "score", Truncate(0.5), {"x": Perturb()}, {"x": Uniform(0.1, 1)}, population_size=3
    ),
    "pbt-generations": lambda: schedy.PopulationBasedTraining(
        "p",
        MAXIMIZE,
        "score",
        Truncate(0.5),
        {"x": Perturb()},
        {"x": Uniform(0.1, 1)},
        population_size=3,
        max_generations=4,
    ),
}


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    kind=st.sampled_from(sorted(KINDS)),
    seed=st.integers(0, 2**32),
    rate=st.sampled_from([0.0, 0.05, 0.2, 0.5]),
    workers=st.integers(1, 6),
    budget=st.integers(1, 40),
    segments=st.integers(1, 5),
    restart=st.sampled_from([0.0, 30.0, 500.0]),
    grid=st.integers(1, 10),
)
def test_every_run_reports_exactly_its_budget(kind, seed, rate, workers, budget, segments, restart, grid):
    problem = Problem(counting, segments=segments, durations=Durations(mean=100.0))
    jobs = [{"x": float(i)} for i in range(grid)] if kind == "manual" else None
    sim = simulate(
        KINDS[kind](), problem, workers=workers, budget=budget, seed=seed, jobs=jobs, failures=Failures(rate, restart)
    )
    reported = sim.stats["segments"]
    assert reported == len(sim.reports["time"])
    st_ = statuses(sim)
    if kind == "manual" and grid * segments < budget:  # the grid is trained to its end before the budget
        assert reported == grid * segments and st_ == {ev.DONE: grid}
    elif kind == "pbt-generations":  # 3 members x 4 generations, one segment each, unless the budget ends first
        assert reported == min(budget, 3 * 4) and sim.state.status == ev.DONE
    else:
        assert reported == budget and sim.state.status == ev.DONE
    if kind != "manual":
        assert not st_[ev.QUEUED]  # a job handed out again is always resumed
    else:  # only jobs never started wait in the queue
        started = {str(j) for j in sim.reports["job"]}
        assert all(j.job_id not in started for j in sim.state.jobs.values() if j.status == ev.QUEUED)
    if kind in ("random", "manual"):
        assert not st_[ev.RUNNING]
        assert st_[ev.PRUNED] <= 1  # only the job the budget ends in is cut short
        for j in sim.state.jobs.values():  # a job's score is the segments it trained (counting)
            if j.status == ev.DONE:
                assert sim.score(j) == segments
            elif j.status == ev.PRUNED:
                assert sim.score(j) < segments
    assert find_double_claims(sim.commits) == []


def test_a_simulated_log_with_failures_and_resumed_jobs_verifies():
    db = schedy.SchedyDB("memory://simulation-budget/db")
    jobs = [{"x": float(i)} for i in range(8)]
    sim = simulate(
        schedy.ManualSearch("resumed"),
        Problem(counting, segments=5),
        jobs=jobs,
        workers=4,
        budget=22,
        seed=1,
        failures=Failures(0.3, 30.0),
        db=db,
    )
    assert sim.stats["deaths"] > 0 and sim.stats["segments"] == 22
    report = verify(db, "resumed")
    assert report.ok, report
    assert {j.job_id: j.status for j in db.get_experiment("resumed").all_jobs()} == {
        j.job_id: j.status for j in sim.state.jobs.values()
    }


def test_comparisons_with_failures_spend_the_same_budget_on_every_strategy():
    problem = toy(segments=8)
    result = compare(
        problem.strategies(), problem, seeds=range(4), processes=1, workers=2, failures=Failures(0.2, 30.0)
    )
    assert sum(r.stats["deaths"] for runs in result.runs.values() for r in runs) > 10
    for label, runs in result.runs.items():
        assert [r.stats["segments"] for r in runs] == [problem.budget] * 4, label
    assert {row["segments"] for row in result.rows()} == {16.0}


# -- the proof: the paper's toy, and a learning rate that must decrease -----------------------------------


FIGURE_2 = ("pbt", "explore-only", "exploit-only", "grid")


def test_pbt_reaches_a_higher_q_sooner_on_the_toy_problem_of_the_paper():
    """Figure 2 of the PBT paper, qualitatively, over 20 seeds: PBT > explore-only, exploit-only and grid."""
    problem = toy()
    result = compare({k: problem.strategies()[k] for k in FIGURE_2}, problem, seeds=range(20))
    rows = {r["strategy"]: r for r in result.rows(fractions=(0.25, 0.5, 0.75))}
    assert all(r["runs"] == 20 and r["segments"] == 50 for r in rows.values())  # the same budget for all
    # By a quarter of the time PBT is level with the baselines (each member has trained 6 segments; docs/
    # simulation.md); from half the time on it is ahead of each of them.
    for baseline in ("explore-only", "exploit-only", "grid"):
        for at in ("at 0.5", "at 0.75", "mean"):
            assert rows["pbt"][at] > rows[baseline][at], (baseline, at, rows)
    assert abs(rows["pbt"]["at 0.25"] - rows["grid"]["at 0.25"]) < 0.1
    for pair in result.pairs():  # the final best scores; by half the time only against exploit-only and grid
        if pair["a"] == "pbt":
            assert pair["better"] == "pbt" and pair["p"] < 0.05, pair
    for pair in result.pairs(at=0.5):
        if pair["a"] == "pbt" and pair["b"] != "explore-only":
            assert pair["better"] == "pbt" and pair["p"] < 0.05, pair
    # Alone, each member of the grid can only reach 1.2 - 0.81 = 0.39; PBT combines both directions.
    assert rows["grid"]["max"] < 0.39 < rows["pbt"]["min"]


def test_pbt_finds_a_decreasing_learning_rate_and_beats_random_search_on_the_same_budget():
    problem = lr_schedule()
    result = compare({k: problem.strategies()[k] for k in ("pbt", "random")}, problem, seeds=range(20))
    rows = {r["strategy"]: r for r in result.rows()}
    assert rows["random"]["segments"] == problem.budget >= rows["pbt"]["segments"]
    assert rows["pbt"]["mean"] < rows["random"]["mean"] and rows["pbt"]["max"] < rows["random"]["median"]
    (pair,) = result.pairs()
    assert pair["better"] == "pbt" and pair["p"] < 0.01
    for run in result.runs["pbt"]:
        lrs = [row["hyperparameters"]["lr"] for row in run.schedule]
        # The best model (its lineage: one segment per generation) learnt with a decreasing learning rate.
        assert len(lrs) >= problem.segments - 5 and lrs[-1] < lrs[0], lrs
        assert np.corrcoef(np.arange(len(lrs)), np.log(lrs))[0, 1] < -0.3
    for run in result.runs["random"]:
        assert len(run.schedule) == 1  # one constant learning rate per job


# -- simulated logs are ordinary logs ----------------------------------------------------------------------


def test_saved_log_is_byte_for_byte_the_simulated_one_and_verifies(tmp_path, cli):
    problem = lr_schedule(population=5, segments=6)
    db = schedy.SchedyDB(cli.db, snapshot_every=40)
    sim = simulate(pbt_lr("sim-pbt", population=5, generations=6), problem, seed=1, db=db, failures=Failures(0.1, 30.0))
    log = db.path / "experiments" / "sim-pbt" / "log.jsonl"
    assert log.read_bytes() == sim.log()
    assert (db.path / "experiments" / "sim-pbt" / "snapshot.json").exists()

    exp = schedy.SchedyDB(cli.db).get_experiment("sim-pbt")
    best = sim.best_job
    assert [j.job_id for j in exp.lineage(best.job_id)] == [j.job_id for j in sim.lineage()]
    assert [j.hyperparameters for j in exp.lineage(best.job_id)] == [r["hyperparameters"] for r in sim.schedule()]
    assert exp.status == schedy.Experiment.DONE and len(exp.all_jobs()) == len(sim.state.jobs)

    sim.save(db, "copy")  # under another name: only the name in the first event changes
    copy = schedy.SchedyDB(cli.db).get_experiment("copy")
    assert copy.lineage(best.job_id)[-1].results == exp.lineage(best.job_id)[-1].results
    with pytest.raises(ResourceExistsError):
        sim.save(db)

    done = cli("verify", "--db", cli.db)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sim-pbt: " in done.stdout and "copy: " in done.stdout and "all OK" in done.stdout


def test_simulate_writes_to_any_store():
    db = schedy.SchedyDB("memory://simulation-test/db")
    problem = toy()
    sim = simulate(problem.strategies()["grid"], problem, seed=0, db=db, name="grid")
    exp = db.get_experiment("grid")
    assert isinstance(exp, schedy.ManualSearch)
    assert sorted(j.results["Q"] for j in exp.all_jobs()) == sorted(sim.score(j) for j in sim.final_population)


# -- comparisons, significance and plots -------------------------------------------------------------------


def test_parallel_runs_give_the_serial_result():
    problem = lr_schedule(population=4, segments=4)
    exps = {"pbt": pbt_lr(population=4, generations=4), "random": problem.strategies()["random"]}
    seen = []
    serial = compare(exps, problem, seeds=[5, 6, 7], processes=1, progress=lambda d, t: seen.append((d, t)))
    parallel = compare(exps, problem, seeds=[5, 6, 7], processes=2)
    assert seen[-1] == (6, 6)
    for label in exps:
        assert [r.seed for r in serial.runs[label]] == [5, 6, 7]
        for a, b in zip(serial.runs[label], parallel.runs[label]):
            assert np.array_equal(a.times, b.times) and np.array_equal(a.best, b.best) and a.stats == b.stats
        assert serial.examples[label].log() == parallel.examples[label].log()
    assert str(serial) == str(parallel)
    with pytest.raises(TypeError):
        compare(exps, problem, seeds=[1], db="somewhere")


def test_permutation_test():
    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 20), rng.normal(2, 1, 20)
    assert permutation_test(a, b) < 0.001
    assert permutation_test(a, b) == permutation_test(a, b)  # seeded
    assert permutation_test(a, a) == 1.0 and permutation_test([1.0] * 5, [1.0] * 5) == 1.0
    assert permutation_test(a, rng.normal(0, 1, 20)) > 0.05
    assert permutation_test([], a) == 1.0
    assert permutation_test([math.nan, 1.0], [math.nan]) == 1.0


def test_plots_are_written_as_png(tmp_path):
    problem = toy(segments=4)
    result = compare(problem.strategies(), problem, seeds=range(3), processes=1)
    paths = result.plot(tmp_path / "plots")
    assert [p.name for p in paths] == ["toy-best.png", "toy-population.png", "toy-schedule.png", "toy-theta.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plots_without_matplotlib_say_what_to_install(tmp_path, monkeypatch):
    problem = toy(segments=2)
    result = compare({"grid": problem.strategies()["grid"]}, problem, seeds=[0], processes=1)
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(ImportError, match=r"pip install 'schedy\[plots\]'"):
        result.plot(tmp_path)


# -- worker counts as a dimension of a comparison ----------------------------------------------------------


def small_lr():
    problem = lr_schedule(population=4, segments=4)
    return problem, {"pbt": pbt_lr(population=4, generations=4), "random": problem.strategies()["random"]}


def test_compare_runs_every_strategy_at_every_worker_count():
    problem, exps = small_lr()
    result = compare(exps, problem, seeds=[3, 4], workers=[1, 2, 4], processes=1, failures=Failures(0.1, 30.0))
    assert result.strategies == ["pbt", "random"] and result.workers == [1, 2, 4]
    assert result.labels == [
        "pbt @ 1 worker",
        "pbt @ 2 workers",
        "pbt @ 4 workers",
        "random @ 1 worker",
        "random @ 2 workers",
        "random @ 4 workers",
    ]
    assert result.label("random", 2) == "random @ 2 workers" and result.cells["pbt @ 4 workers"] == ("pbt", 4)
    rows = result.rows()
    assert [(r["strategy"], r["workers"], r["label"]) for r in rows] == [
        (s, n, result.label(s, n)) for s in ("pbt", "random") for n in (1, 2, 4)
    ]
    for label, runs in result.runs.items():
        strategy, n = result.cells[label]
        assert [(r.label, r.strategy, r.workers, r.seed) for r in runs] == [
            (label, strategy, n, 3),
            (label, strategy, n, 4),
        ]
        sim = result.examples[label]
        assert sim.workers == n and sim.seed == 3 and len(set(sim.reports["worker"].tolist())) <= n
        # PBT trains every member's 4 generations: exactly the budget of 4 x 4 segments
        assert all(r.stats["segments"] == problem.budget for r in runs)
    with pytest.raises(ValueError, match="several worker counts"):
        result.label("pbt")
    with pytest.raises(KeyError):
        result.label("pbt", 3)
    text = str(result)
    assert "worker count (1, 2, 4)" in text and "random @ 4 workers - random @ 1 worker" in text
    assert text.splitlines()[1].split()[:2] == ["strategy", "workers"]


def test_each_worker_count_gives_the_runs_it_gives_alone():
    """Adding the dimension changes no run: the same seed and count give the same log, whatever else is compared."""
    problem, exps = small_lr()
    several = compare(exps, problem, seeds=[0, 1], workers=[2, 3], processes=1)
    for n in (2, 3):
        alone = compare(exps, problem, seeds=[0, 1], workers=n, processes=1)
        assert alone.labels == ["pbt", "random"] and alone.workers == [n]
        for strategy in exps:
            a, b = alone.runs[strategy], several.runs[several.label(strategy, n)]
            assert [(x.seed, x.end, x.stats) for x in a] == [(x.seed, x.end, x.stats) for x in b]
            assert all(np.array_equal(x.best, y.best) for x, y in zip(a, b))
            assert alone.examples[strategy].log() == several.examples[several.label(strategy, n)].log()


def test_the_same_seed_gives_every_strategy_the_same_machines_at_each_worker_count():
    problem = toy(segments=4)
    result = compare(problem.strategies(), problem, seeds=[7], workers=[2, 4], processes=1)
    for n in (2, 4):
        firsts = set()
        for strategy in problem.strategies():
            r = result.examples[result.label(strategy, n)].reports
            # every machine's first segment starts at time 0: its first report comes at the same time
            firsts.add(tuple(float(r["time"][r["worker"] == slot][0]) for slot in range(2)))
        assert len(firsts) == 1, (n, firsts)


def test_pairs_compare_strategies_within_a_worker_count_and_each_strategy_with_its_first_count():
    problem = toy(segments=4)
    result = compare(
        {k: problem.strategies()[k] for k in FIGURE_2}, problem, seeds=range(3), workers=[4, 1, 2], processes=1
    )
    assert result.workers == [4, 1, 2]  # in the order given: the first is the reference
    pairs = result.pairs()
    strategies = list(FIGURE_2)
    within = [p for p in pairs if p["workers"] is not None]
    across = [p for p in pairs if p["strategy"] is not None]
    assert len(pairs) == len(within) + len(across) == 3 * 6 + 4 * 2  # not every pair of 12 labels (66)
    assert [(p["a"], p["b"]) for p in within] == [
        (result.label(a, n), result.label(b, n))
        for n in (4, 1, 2)
        for i, a in enumerate(strategies)
        for b in strategies[i + 1 :]
    ]
    assert [(p["a"], p["b"], p["strategy"]) for p in across] == [
        (result.label(s, n), result.label(s, 4), s) for s in strategies for n in (1, 2)
    ]
    for p in pairs:
        assert p["strategy"] is None or p["workers"] is None
        mean = {label: float(np.mean(result.finals(label))) for label in (p["a"], p["b"])}
        assert p["difference"] == pytest.approx(mean[p["a"]] - mean[p["b"]])
        assert p["better"] in (p["a"], p["b"], None) and 0 < p["p"] <= 1
    half = result.pairs(at=0.5)
    assert [(p["a"], p["b"]) for p in half] == [(p["a"], p["b"]) for p in pairs]


def test_one_worker_count_keeps_the_strategies_as_labels():
    problem, exps = small_lr()
    default = compare(exps, problem, seeds=[1, 2], processes=1)
    as_int = compare(exps, problem, seeds=[1, 2], processes=1, workers=problem.workers)
    as_list = compare(exps, problem, seeds=[1, 2], processes=1, workers=[problem.workers])
    for result in (default, as_int, as_list):
        assert result.labels == ["pbt", "random"] and list(result.runs) == ["pbt", "random"]
        assert result.workers == [problem.workers] and result.label("pbt") == "pbt"
        assert [r["strategy"] for r in result.rows()] == [r["label"] for r in result.rows()] == ["pbt", "random"]
        assert all(r["workers"] == problem.workers for r in result.rows())
        (pair,) = result.pairs()
        assert (pair["a"], pair["b"], pair["workers"], pair["strategy"]) == ("pbt", "random", problem.workers, None)
        assert str(result) == str(default)
    assert "workers" not in str(default).splitlines()[1]
    assert as_int.options == as_list.options == {"workers": problem.workers} and default.options == {}


def test_worker_counts_are_checked():
    problem, exps = small_lr()
    for bad in (0, [], [2, 2], [1, -1], [1.5]):
        with pytest.raises(ValueError):
            compare(exps, problem, seeds=[0], workers=bad, processes=1)
    for bad in ("4", True, [True]):
        with pytest.raises((TypeError, ValueError)):
            compare(exps, problem, seeds=[0], workers=bad, processes=1)


def test_several_worker_counts_in_parallel_give_the_serial_result(tmp_path):
    problem = toy(segments=3)
    kw = {"seeds": [0, 1], "workers": [1, 3]}
    serial = compare(problem.strategies(), problem, processes=1, **kw)
    parallel = compare(problem.strategies(), problem, processes=2, **kw)
    assert str(serial) == str(parallel) and serial.labels == parallel.labels
    for label in serial.labels:
        assert [r.stats for r in serial.runs[label]] == [r.stats for r in parallel.runs[label]]
        assert serial.examples[label].log() == parallel.examples[label].log()
    paths = parallel.plot(tmp_path)
    assert [p.name for p in paths] == ["toy-best.png", "toy-population.png", "toy-schedule.png", "toy-theta.png"]
