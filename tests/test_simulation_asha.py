"""schedy.simulation runs ASHA and Hyperband with the real promotion rule (docs/simulation.md)."""

import collections
import math

import numpy as np
import pytest

import schedy
from schedy.core import decide, halving, values
from schedy.core import events as ev
from schedy.core.check import find_double_claims
from schedy.core.state import apply
from schedy.maintenance import verify
from schedy.pbt import MAXIMIZE, MINIMIZE
from schedy.random import LogUniform, Uniform
from schedy.simulation import Failures, Problem, compare, noisy_curves, simulate


def counting(hps, state, steps, rng):
    """The state counts the segments its model trained, from scratch; the score adds the configuration's x."""
    trained = (0 if state is None else state) + steps
    return trained, trained + hps["x"]


PROBLEM = Problem(counting, segments=9, workers=4)


def halving_exp(cls, name="h", **kw):
    kw = dict(dict(min_resource=1, max_resource=9, reduction_factor=3), **kw)
    return cls(name, {"x": Uniform(0.0, 1.0)}, "score", MAXIMIZE, **kw)


def ladder(sim):
    return halving.Config.from_log(sim.state.params, sim.kind)


def resource(config, job):
    return config.resource(config.bracket_of(job.member), job.generation)


def promotions(sim):
    """``(event, state before its commit)`` for each promotion of ``sim``'s log."""
    state, out = None, []
    for c in sim.commits:
        out.extend((e, state) for e in c.events if e["type"] == ev.JOB_ADDED and e.get("parent") is not None)
        state = apply(state, c, sim.name)
    return out


def top(state, config, parent):
    """The ids of the top floor(n / reduction_factor) DONE jobs of ``parent``'s bracket and rung, restated."""
    bracket = config.bracket_of(parent.member)
    rung = [
        j
        for j in state.jobs.values()
        if j.status == ev.DONE and j.generation == parent.generation and config.bracket_of(j.member) == bracket
    ]
    ranked = sorted(rung, key=lambda j: (-values.decode(j.results["score"]), j.number))  # MAXIMIZE
    return {j.job_id for j in ranked[: math.floor(len(rung) / config.reduction_factor)]}


# -- the real rule, on resources counted in segments -----------------------------------------------------


@pytest.mark.parametrize("cls", [schedy.ASHA, schedy.Hyperband])
@pytest.mark.parametrize("rate", [0.0, 0.15])
def test_every_promotion_continues_a_done_job_in_the_top_of_its_rung(cls, rate):
    sim = simulate(halving_exp(cls), PROBLEM, seed=3, budget=160, failures=Failures(rate, 30.0))
    config = ladder(sim)
    found = promotions(sim)
    assert len(found) > 10
    for e, before in found:
        parent = before.jobs[e["parent"]]
        assert parent.status == ev.DONE  # promoted only once it had finished its rung
        assert e["member"] == parent.member and e["generation"] == parent.generation + 1
        assert e["hyperparameters"] == parent.hyperparameters  # the same configuration
        assert e["parent"] in top(before, config, parent)
    if rate:
        assert sim.stats["deaths"] > 0 and sim.stats["expired"] > 0
    assert find_double_claims(sim.commits) == []


@pytest.mark.parametrize("cls", [schedy.ASHA, schedy.Hyperband])
@pytest.mark.parametrize("rate", [0.0, 0.15])
def test_each_job_trains_from_its_parents_resource_to_its_own(cls, rate):
    sim = simulate(halving_exp(cls), PROBLEM, seed=5, budget=200, failures=Failures(rate, 30.0))
    config, jobs, r = ladder(sim), sim.state.jobs, sim.reports
    segments = collections.defaultdict(list)
    for job, segment, score in zip(r["job"], r["segment"], r["score"]):
        segments[str(job)].append((int(segment), float(score)))
    brackets = set()
    for job in jobs.values():
        brackets.add(config.bracket_of(job.member))
        start = resource(config, jobs[job.parent]) if job.parent is not None else 0
        reported = [s for s, _ in segments[job.job_id]]
        # One report per segment, from the parent's resource on: resumed after a death, never trained twice.
        assert reported == list(range(start + 1, start + 1 + len(reported))), job
        x = values.decode(job.hyperparameters["x"])
        # The model trained its whole lineage: a promotion starts from its parent's model, rung 0 from scratch.
        assert [round(score - x, 9) for _, score in segments[job.job_id]] == reported
        if job.status == ev.DONE:
            assert reported[-1] == resource(config, job)  # exactly resource(job) - resource(parent) segments
            assert len(reported) == resource(config, job) - start
            if job.parent is not None:
                assert resource(config, job) > start
        else:  # the budget ended within it, or it was still running
            assert job.status in (ev.PRUNED, ev.RUNNING, ev.QUEUED) and len(reported) < resource(config, job) - start
    assert brackets == set(range(config.bracket_count))  # Hyperband: every bracket got configurations
    assert sim.stats["segments"] == len(r["job"]) == 200  # the budget counts the segments reported
    assert sim.state.status == ev.DONE


def test_the_log_is_what_the_decisions_write():
    """Every claim in the log is exactly what decide.next_job returns on the state before it."""
    sim = simulate(halving_exp(schedy.Hyperband), PROBLEM, seed=2, budget=120, failures=Failures(0.1, 30.0))
    state, checked = None, 0
    for c in sim.commits:
        if any(e["type"] == ev.JOB_CLAIMED for e in c.events):
            d = decide.next_job(
                state, name=sim.name, worker=c.worker, version=c.version, now=c.time, incarnation=state.created
            )
            assert d.events == c.events and d.error is None
            checked += 1
        state = apply(state, c, sim.name)
    assert checked >= len(sim.state.jobs) and state == sim.state


def test_max_jobs_ends_a_simulated_experiment():
    sim = simulate(halving_exp(schedy.ASHA, max_jobs=20), PROBLEM, seed=1, failures=Failures(0.1, 30.0))
    jobs = list(sim.state.jobs.values())
    assert len(jobs) == 20 and all(j.status == ev.DONE for j in jobs)
    assert sim.state.status == ev.DONE
    last = sim.commits[-1]  # the experiment marked itself DONE, in a worker's next_job
    assert last.worker.startswith("sim-") and last.events[-1] == {"type": ev.EXPERIMENT_UPDATED, "status": ev.DONE}
    assert sim.stats["waited"] > 0  # workers waited for the last jobs, as the rule says
    config = ladder(sim)
    assert sim.stats["segments"] == sum(
        resource(config, j) - (resource(config, sim.state.jobs[j.parent]) if j.parent else 0) for j in jobs
    )


def test_without_max_jobs_every_ask_gets_a_job():
    sim = simulate(halving_exp(schedy.ASHA), PROBLEM, seed=0, budget=150, workers=16)
    assert sim.stats["asks"] >= len(sim.state.jobs) and sim.stats["waited"] == 0


def test_definitions_that_cannot_run_are_refused():
    with pytest.raises(ValueError, match="budget"):
        simulate(halving_exp(schedy.ASHA), PROBLEM)  # never ends by itself
    with pytest.raises(ValueError, match="whole number"):
        simulate(halving_exp(schedy.ASHA, min_resource=1, max_resource=10, reduction_factor=2.5), PROBLEM, budget=9)
    with pytest.raises(ValueError, match="ranks by 'score'"):
        simulate(halving_exp(schedy.ASHA), Problem(counting, score="loss"), budget=9)
    with pytest.raises(ValueError, match="objective"):
        simulate(halving_exp(schedy.ASHA), Problem(counting, objective=MINIMIZE), budget=9)


def test_asha_and_random_search_spend_the_same_budget():
    random = schedy.RandomSearch("r", {"x": Uniform(0.0, 1.0)})
    result = compare(
        {"random": random, "asha": halving_exp(schedy.ASHA)},
        PROBLEM,
        seeds=range(3),
        budget=100,
        processes=1,
        failures=Failures(0.1, 30.0),
    )
    for runs in result.runs.values():
        assert [r.stats["segments"] for r in runs] == [100] * 3


# -- simulated logs are ordinary logs ----------------------------------------------------------------------


def test_a_saved_hyperband_log_is_the_simulated_one_and_verifies(cli):
    db = schedy.SchedyDB(cli.db, snapshot_every=50)
    sim = simulate(halving_exp(schedy.Hyperband, "sim-hb"), PROBLEM, seed=4, budget=150, failures=Failures(0.1, 30.0))
    exp = sim.save(db)
    assert (db.path / "experiments" / "sim-hb" / "log.jsonl").read_bytes() == sim.log()
    assert isinstance(exp, schedy.Hyperband) and exp.status == schedy.Experiment.DONE
    config = ladder(sim)
    for job in exp.all_jobs():
        mine = sim.state.jobs[job.job_id]
        assert (job.rung, job.parent_id, job.member) == (mine.generation, mine.parent, mine.member)
        assert job.resource == resource(config, mine)
    best = sim.best_job
    assert [j.job_id for j in exp.lineage(best.job_id)] == [j.job_id for j in sim.lineage()]
    assert [j.rung for j in exp.lineage(best.job_id)] == list(range(best.generation + 1))
    assert verify(db, "sim-hb").ok
    done = cli("verify", "--db", cli.db)
    assert done.returncode == 0 and "all OK" in done.stdout, done.stdout + done.stderr


# -- what successive halving is for ----------------------------------------------------------------------


def test_asha_beats_random_search_where_early_scores_are_informative_but_noisy():
    problem = noisy_curves()
    strategies = {k: problem.strategies()[k] for k in ("random", "asha")}
    result = compare(strategies, problem, seeds=range(6), processes=1)
    asha, random = result.finals("asha"), result.finals("random")
    assert result.runs["asha"][0].stats["segments"] == problem.budget == 16 * 27
    assert asha.mean() < random.mean() - 0.01
    assert np.count_nonzero(asha < random) >= 5


def test_noisy_curves_rank_early_by_quality_but_noisily():
    """Scores after one segment correlate with the final loss, far from perfectly."""
    problem = noisy_curves()
    rng = np.random.default_rng(0)
    configs = [{"lr": LogUniform(1e-4, 1.0).sample(rng), "dropout": rng.uniform(0, 0.9)} for _ in range(200)]
    early, final = [], []
    for hps in configs:
        state, score = problem.step(hps, None, 1, rng)
        early.append(score)
        final.append(problem.step(hps, state, problem.segments - 1, rng)[1])
    rho = np.corrcoef(np.argsort(np.argsort(early)), np.argsort(np.argsort(final)))[0, 1]
    assert 0.3 < rho < 0.9, rho
    assert np.mean(early) - np.mean(final) > 0.2  # training helps much more than the noise hides
