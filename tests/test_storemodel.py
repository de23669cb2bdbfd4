"""The model of one log on an object store (schedy.simulation.storemodel): a simulated clock, no wall clock.

Its request pattern is checked against the real append loop on a ``memory://`` store here; its
throughput against real processes on moto by benchmarks/store_scaling.py.
"""

import uuid
from collections import Counter

import obstore
import pytest

import schedy
from schedy.adapters import objectstore as objectstore_module
from schedy.adapters.stream import Backoff
from schedy.random import Uniform
from schedy.simulation.storemodel import (
    BEAT,
    BOTH,
    CLAIM,
    REPORT,
    Fifo,
    Lognormal,
    StoreModel,
)


def quiet(n, duration=0.0, **kw):
    """A model with nothing but the protocol: no renewals, no CPU time."""
    kw.setdefault("lease", 0)
    return StoreModel(n, duration, decide=0.0, fold=0.0, **kw)


def figures(summary):
    return {k: v for k, v in summary.items() if k != "seconds"}


def test_a_seed_gives_the_same_run_and_another_seed_another():
    runs = [StoreModel(12, (0.5, 1.5), seed=s).run_steady(min_window=2, max_time=60) for s in (3, 3, 4)]
    assert runs[0] == runs[1]
    assert figures(runs[0]) != figures(runs[2])


@pytest.mark.parametrize("reader", ["probe", "list"])
def test_one_worker_never_loses_a_race_and_makes_two_requests_per_commit(reader):
    s = StoreModel(1, (0.05, 0.2), reader=reader, seed=1).run_window(30.0)
    assert s["claims"] > 50 and s["lost_per_claim"] == 0 and s["requests"]["PUT refused"] == 0
    commits = s["commits"]
    if reader == "list":  # one LIST and one PUT per commit, nothing to GET: nobody else writes
        assert s["requests"] == {"LIST": commits, "GET": 0, "GET 404": 0, "PUT": commits, "PUT refused": 0}
    else:  # one GET answered 404 instead of the LIST
        assert s["requests"] == {"LIST": 0, "GET": commits, "GET 404": commits, "PUT": commits, "PUT refused": 0}


class Counting:
    """Stands in for the obstore module inside schedy.adapters.objectstore: counts LIST, GET and PUT;
    ``after_miss`` runs once, right after the next GET answered 404 (another writer commits then)."""

    def __init__(self):
        self.counts = Counter()
        self.after_miss = None

    def __getattr__(self, name):
        return getattr(obstore, name)

    def list(self, *args, **kwargs):
        self.counts["LIST"] += 1
        return obstore.list(*args, **kwargs)

    def get(self, *args, **kwargs):
        self.counts["GET"] += 1
        try:
            return obstore.get(*args, **kwargs)
        except FileNotFoundError:
            self.counts["GET 404"] += 1
            hook, self.after_miss = self.after_miss, None
            if hook is not None:
                counts, self.counts = self.counts, Counter()
                hook()  # not counted: another writer's requests
                self.counts = counts
            raise

    def put(self, *args, **kwargs):
        try:
            out = obstore.put(*args, **kwargs)
        except Exception:
            self.counts["PUT refused"] += 1
            raise
        self.counts["PUT"] += 1
        return out


@pytest.fixture
def counting(monkeypatch):
    proxy = Counting()
    monkeypatch.setattr(objectstore_module, "obstore", proxy)
    return proxy


def cycle(exp):
    with exp.next_job() as job:
        job.results["loss"] = job.hyperparameters["x"]


def test_the_model_makes_the_requests_of_the_real_loop_alone(counting):
    url = f"memory://{uuid.uuid4().hex}/db"
    exp = schedy.SchedyDB(url).add_experiment(schedy.RandomSearch("e", {"x": Uniform(0, 1)}))
    cycle(exp)
    counting.counts.clear()
    for _ in range(10):
        cycle(exp)
    real = counting.counts
    model = quiet(1).run_window(1.0)
    per_claim = {k: v for k, v in model["requests_per_claim"].items() if v}
    assert {k: v / 10 for k, v in real.items()} == per_claim == {"GET": 2, "GET 404": 2, "PUT": 2}


def test_a_lost_race_costs_what_it_costs_the_real_loop(counting):
    """The real loop: a read that ends on a 404, a refused PUT, the winner's commit read back (one GET,
    reused by the next read), a GET of the version after it (404), a PUT of that version."""
    url = f"memory://{uuid.uuid4().hex}/db"
    a = schedy.SchedyDB(url, worker="a").add_experiment(schedy.RandomSearch("e", {"x": Uniform(0, 1)}))
    b = schedy.SchedyDB(url, worker="b").get_experiment("e")
    b.all_jobs()  # b is up to date...
    counting.after_miss = lambda: a.next_job()  # ...until a commits between b's read and b's PUT
    counting.counts.clear()
    b.next_job()
    assert counting.counts == Counter({"GET": 3, "GET 404": 2, "PUT refused": 1, "PUT": 1})

    for reader in ("probe", "list"):
        s = quiet(6, reader=reader, seed=2).run_window(3.0)
        r = s["requests"]
        assert r["PUT refused"] > 20  # contended
        assert r["GET"] - r["GET 404"] >= r["PUT refused"]  # each refused PUT reads the winner back
        if reader == "list":
            assert r["LIST"] == r["PUT"] + r["PUT refused"]  # one LIST per attempt, the winner's commit reused
        else:
            assert r["GET 404"] >= r["PUT"] + r["PUT refused"]  # every attempt's read ends on a missing commit


def test_commits_land_no_faster_than_one_read_and_put_apart():
    """With a constant latency L, acting at its middle, a writer learns of commit v at least L/2 after it
    landed and its PUT lands L/2 after it is sent: commits are at least L apart however many race."""
    latency = 0.01
    for reader in ("probe", "list"):
        m = quiet(32, latency=Lognormal(latency, latency, at=0.5), reader=reader, seed=5)
        s = m.run_window(2.0)
        gaps = [b - a for a, b in zip(m.instants[1:], m.instants[2:])]
        assert min(gaps) >= latency - 1e-12
        assert s["commits"] > 100 and s["lost_per_claim"] > 1  # saturated, racing
        assert s["commits_per_s"] <= 1 / latency


@pytest.mark.parametrize("combined", [False, True])
def test_every_job_of_a_drain_is_claimed_once_and_reported_once(combined):
    m = quiet(8, (0.0, 0.05), jobs=60, combined=combined, latency=Lognormal(), seed=7)
    m.run_window(1e9)
    commits = m.best[1:]
    claimed = sorted(c.job for c in commits if c.kind in (CLAIM, BOTH))
    assert claimed == list(range(1, 61))
    assert sum(c.kind in (REPORT, BOTH) for c in commits) == 60
    assert m.commits[CLAIM] + m.commits[BOTH] == 60
    # Each version was won by exactly one PUT, and every worker read all of them.
    assert len(m.best) == len(m.instants) == len(m.authors) == 1 + 60 * (1 if combined else 2) + (8 if combined else 0)
    assert all(w.stopped is not None for w in m.workers)


def test_the_retry_policy_is_the_real_one_on_the_simulated_clock():
    made = []

    class Recording(Backoff):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.losses = 0
            made.append(self)

        def lost(self, *args):
            self.losses += 1
            return super().lost(*args)

    m = quiet(6, policy=Recording, latency=Fifo(0.002, 0.001), seed=3)
    s = m.run_window(2.0)
    assert len(made) == 6 and sum(b.losses for b in made) == m.lost > 0
    assert s["slept_per_claim"] > 0  # the waits Backoff asked for were waited

    alone = quiet(1, latency=Lognormal(0.01, 0.01), policy=Recording)
    alone.run_window(1.0)
    assert made[-1].attempt == pytest.approx(0.02, abs=1e-6)  # GET (404) + PUT, measured on the simulated clock


def test_a_worker_renews_its_lease_every_quarter_of_it():
    s = quiet(1, 35.0, lease=40.0, latency=Lognormal(0.01, 0.01)).run_window(100.0)
    # Renewals 10 s after the claim, then 10 s after each renewal is written: three in a 35-second job.
    assert s["commits_by_kind"] == {CLAIM: 3, BEAT: 9, REPORT: 3}
    assert s["requests_per_claim"]["PUT"] == 5 and s["lapsed"] == 0


def test_past_saturation_the_rate_stays_and_the_waits_grow():
    fast = Lognormal(0.005, 0.02)
    below = StoreModel(8, (1.0, 3.0), latency=fast, seed=1).run_steady(min_window=5, max_time=200)
    above = [StoreModel(n, (0.25, 0.75), latency=fast, seed=1).run_steady(min_window=5, max_time=200) for n in (48, 96)]
    assert below["busy"] > 0.95 and below["between_jobs"]["max"] < 0.2
    rates = [s["commits_per_s"] for s in above]
    assert max(rates) < 1.3 * min(rates)  # the log's ceiling, whatever the number of workers
    assert above[1]["between_jobs"]["mean"] > 1.5 * above[0]["between_jobs"]["mean"] > 0.5
    assert above[1]["busy"] < above[0]["busy"] < 0.5
