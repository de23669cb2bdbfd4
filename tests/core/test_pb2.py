"""PB2's Gaussian-process bandit (schedy.core.pb2): the GP itself, the choices it makes, and its definition."""

import dataclasses
import math

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schedy.core.pb2 import MAX_FIT, PB2, fit, standardise

NAN, INF = math.nan, math.inf


def bump(x, centre, width=0.1):
    return math.exp(-0.5 * ((x - centre) / width) ** 2)


def observations(f, generations=range(4), per_generation=16, seed=0, noise=0.02, name="lr", draw=None):
    """``(time, {name: x}, f(x, time) + noise)`` for x drawn uniformly in [0, 1) (or by ``draw``)."""
    rng = np.random.default_rng(seed)
    out = []
    for g in generations:
        for _ in range(per_generation):
            x = float(draw(rng) if draw else rng.random())
            out.append((float(g), {name: x}, f(x, g) + noise * float(rng.normal())))
    return out


def rng(seed=0):
    return np.random.default_rng(seed)


# -- the GP ----------------------------------------------------------------------------------------

X = np.array([[0.1], [0.2], [0.35], [0.5]])
T = np.array([3.0, 3.0, 3.0, 3.0])
Y = np.array([-1.0, 0.5, 1.2, -0.3])
NOISELESS = (0.15, 0.0, 1e-9)  # length, eps, noise


def test_posterior_mean_interpolates_noiseless_data_and_std_vanishes_there():
    gp = fit(X, T, Y, params=NOISELESS)
    mean, std = gp.predict(X, T)
    np.testing.assert_allclose(mean, Y, atol=1e-5)
    assert np.all(std < 1e-3)


def test_posterior_std_grows_with_distance_from_the_data():
    gp = fit(X, T, Y, params=NOISELESS)
    far = np.array([[0.55], [0.6], [0.7], [0.8], [1.0]])
    _, std = gp.predict(far, np.full(len(far), 3.0))
    assert np.all(np.diff(std) > 0)
    assert std[-1] > 0.99  # back to the prior
    _, between = gp.predict(np.array([[0.15]]), np.array([3.0]))
    assert between[0] < 0.1 < std[1]  # between two close points it stays small


def test_time_decay_makes_old_observations_count_less():
    gp = fit(X, T, Y, params=(0.15, 0.5, 1e-9))
    at = np.array([[0.35]] * 3)
    mean, std = gp.predict(at, np.array([3.0, 5.0, 9.0]))
    assert np.all(np.diff(std) > 0) and np.all(np.diff(mean) < 0)  # further in time: less sure, back to 0
    _, same_time = fit(X, T, Y, params=(0.15, 0.0, 1e-9)).predict(at, np.array([3.0, 5.0, 9.0]))
    assert np.allclose(same_time, same_time[0])  # eps = 0 ignores time


def test_pending_points_shrink_the_variance_and_leave_the_mean():
    gp = fit(X, T, Y, params=(0.15, 0.0, 0.01))
    with_pending = fit(X, T, Y, [[0.8], [0.9]], [3.0, 3.0], params=(0.15, 0.0, 0.01))
    grid = np.linspace(0, 1, 21)[:, None]
    m0, s0 = gp.predict(grid, np.full(21, 3.0))
    m1, s1 = with_pending.predict(grid, np.full(21, 3.0))
    assert np.array_equal(m0, m1)
    assert np.all(s1 <= s0 + 1e-12)
    assert s1[17] < 0.2 and s0[17] > 0.9  # at 0.85, between the two pending points
    assert np.allclose(s1[:6], s0[:6], atol=1e-3)  # far from them (x <= 0.25), nothing changes


def test_the_grid_prefers_little_noise_for_smooth_noiseless_data():
    x = np.linspace(0, 1, 30)[:, None]
    gp = fit(x, np.zeros(30), np.sin(6 * x[:, 0]))
    _, eps, noise = gp.params
    assert noise == 0.01 and eps == 0.0  # the smallest noise; one generation: no time effect to learn


def test_duplicate_inputs_do_not_break_the_factorisation():
    x = np.array([[0.3]] * 5 + [[0.6]] * 5)
    y = np.array([1.0, 1.1, 0.9, 1.0, 1.05, -1.0, -0.9, -1.1, -1.0, -1.0])
    mean, std = fit(x, np.zeros(10), y, params=(0.2, 0.0, 0.0)).predict(np.array([[0.3], [0.6]]), np.zeros(2))
    assert np.all(np.isfinite(mean)) and np.all(np.isfinite(std))
    assert mean[0] > 0.9 and mean[1] < -0.9


def test_standardise_floors_a_diverged_member_and_keeps_the_top():
    gains = np.array([0.1, 0.2, 0.3, 0.4, 0.5, -1e9])
    z = standardise(gains)
    assert np.all(np.diff(z[:5]) > 0.3)  # the other differences survive
    assert np.all(standardise(np.full(4, 2.5)) == 0)
    sparse = standardise(np.array([0.0] * 20 + [0.5, 1.0]))
    assert sparse[-1] > sparse[-2] > sparse[0]  # few high among many flat: still ordered, not clipped alike


# -- suggest ---------------------------------------------------------------------------------------


def test_finds_a_peak():
    p = PB2({"lr": (0.0, 1.0)})
    obs = observations(lambda x, g: bump(x, 0.3))
    for seed in range(5):
        assert abs(p.suggest(obs, [], 4.0, {"lr": 0.9}, rng(seed))["lr"] - 0.3) < 0.1


def test_finds_a_peak_on_a_log_scale():
    p = PB2({"lr": (1e-5, 1e-1)}, log_scale=("lr",))
    obs = observations(lambda x, g: bump(math.log10(x), -3.0, 0.4), draw=lambda r: 10 ** r.uniform(-5, -1))
    for seed in range(3):
        lr = p.suggest(obs, [], 4.0, {"lr": 1e-2}, rng(seed))["lr"]
        assert abs(math.log10(lr) + 3) < 0.3


@pytest.mark.parametrize(("old", "new"), [(0.2, 0.7), (0.7, 0.2)])
def test_follows_a_peak_that_moved(old, new):
    p = PB2({"lr": (0.0, 1.0)})
    obs = observations(lambda x, g: bump(x, old if g < 2 else new))
    for seed in range(3):
        assert abs(p.suggest(obs, [], 4.0, {"lr": 0.5}, rng(seed))["lr"] - new) < 0.1


def test_without_the_time_decay_the_old_peak_would_compete():
    # The same data seen as stationary: the two peaks are equally supported. This is what eps corrects.
    obs = observations(lambda x, g: bump(x, 0.2 if g < 2 else 0.7))
    x = np.array([[h["lr"]] for _, h, _ in obs])
    t, y = np.array([o[0] for o in obs]), standardise(np.array([o[2] for o in obs]))
    assert fit(x, t, y).params[1] > 0
    still = fit(x, t, y, params=(0.1, 0.0, 0.1))
    mean, _ = still.predict(np.array([[0.2], [0.7]]), np.full(2, 4.0))
    assert abs(mean[0] - mean[1]) < 0.5 * max(mean)


def test_pending_points_spread_a_batch():
    # Two close observations say little: the bandit explores, and each running segment pushes the next away.
    p = PB2({"lr": (0.0, 1.0)})
    obs = [(3.0, {"lr": 0.1}, 1.0), (3.0, {"lr": 0.12}, 1.01)]
    pending, chosen = [], []
    for seed in range(5):
        lr = p.suggest(obs, pending, 4.0, {"lr": 0.1}, rng(seed))["lr"]
        chosen.append(lr)
        pending.append((4.0, {"lr": lr}))
    gaps = [abs(a - b) for i, a in enumerate(chosen) for b in chosen[:i]]
    assert min(gaps) > 0.1, chosen
    alone = [p.suggest(obs, [], 4.0, {"lr": 0.1}, rng(seed))["lr"] for seed in range(5)]
    assert max(alone) - min(alone) < 0.1  # without them, every decision goes to the same place


def test_pending_points_move_a_second_suggestion_near_a_peak():
    p = PB2({"lr": (0.0, 1.0)})
    obs = observations(lambda x, g: bump(x, 0.3), generations=[3], per_generation=8, seed=0, noise=0.0)
    first = p.suggest(obs, [], 4.0, {"lr": 0.9}, rng(1))["lr"]
    second = p.suggest(obs, [(4.0, {"lr": first})], 4.0, {"lr": 0.9}, rng(1))["lr"]
    assert second != first


def test_deterministic():
    p = PB2({"lr": (1e-5, 1e-1), "momentum": (0.5, 0.99), "layers": (1, 8)}, log_scale=["lr"])
    r = np.random.default_rng(7)
    obs = [
        (
            float(g),
            {
                "lr": float(10 ** r.uniform(-5, -1)),
                "momentum": float(r.uniform(0.5, 0.99)),
                "layers": int(r.integers(1, 9)),
            },
            float(r.normal()),
        )
        for g in range(4)
        for _ in range(8)
    ]
    pending = [(4.0, obs[i][1]) for i in range(3)]
    start = {"lr": 1e-3, "momentum": 0.9, "layers": 3}
    a = p.suggest(obs, pending, 4.0, start, rng(42))
    b = p.suggest(list(obs), list(pending), 4.0, dict(start), rng(42))
    assert a == b and all(type(a[n]) is type(b[n]) for n in a)
    same = PB2({"layers": [1, 8], "momentum": [0.5, 0.99], "lr": [1e-5, 1e-1]}, log_scale=("lr",))
    assert same.suggest(obs, pending, 4.0, start, rng(42)) == a  # the order names are given in is irrelevant
    assert len({tuple(p.suggest(obs, pending, 4.0, start, rng(s)).values()) for s in range(5)}) > 1


@pytest.mark.parametrize("usable", [0, 1])
def test_too_few_observations_draw_uniformly(usable):
    p = PB2({"a": (-2.0, 3.0), "lr": (1e-4, 1.0)}, log_scale=["lr"])
    obs = [(3.0, {"a": 0.0, "lr": 0.01}, 1.0)][:usable] + [(3.0, {"a": 1.0, "lr": 0.1}, NAN)]
    draws = [p.suggest(obs, [], 4.0, {"a": 0.5, "lr": 0.5}, rng(s)) for s in range(400)]
    a = np.array([d["a"] for d in draws])
    lr = np.log10([d["lr"] for d in draws])
    assert a.min() >= -2 and a.max() <= 3 and lr.min() >= -4 and lr.max() <= 0
    assert np.histogram(a, bins=5, range=(-2, 3))[0].min() > 50  # 80 expected per bin
    assert np.histogram(lr, bins=4, range=(-4, 0))[0].min() > 70  # log-uniform: 100 per decade
    assert draws[0] == p.suggest(obs, [], 4.0, {"a": 0.5, "lr": 0.5}, rng(0))


def test_unusable_rows_are_ignored():
    p = PB2({"lr": (0.0, 1.0)})
    obs = observations(lambda x, g: bump(x, 0.3), per_generation=6)
    junk = [
        (3.0, {"lr": 0.3}, NAN),
        (3.0, {"lr": 0.7}, INF),
        (3.0, {"lr": 0.5}, -INF),
        (NAN, {"lr": 0.5}, 1.0),
        (3.0, {"lr": NAN}, 5.0),
        (3.0, {"lr": "0.5"}, 5.0),
        (3.0, {"other": 0.5}, 5.0),
        (3.0, None, 5.0),
        (3.0, {"lr": True}, 5.0),
        (-1.0, {"lr": 0.9}, 50.0),
    ]  # the last is older than the window
    pending = [(4.0, {"lr": 0.35})]
    expected = p.suggest(obs, pending, 4.0, {"lr": 0.5}, rng(3))
    mixed = junk[:5] + obs + junk[5:]
    assert p.suggest(mixed, pending + [(NAN, {"lr": 0.1}), (4.0, {})], 4.0, {"lr": 0.5}, rng(3)) == expected


def test_a_large_population_uses_the_newest_observations():
    p = PB2({"lr": (0.0, 1.0)}, window=20)
    obs = observations(lambda x, g: bump(x, 0.3), generations=range(20), per_generation=16)
    assert len(obs) > MAX_FIT
    newest = p.suggest(obs[-MAX_FIT:], [], 20.0, {"lr": 0.5}, rng(1))
    assert p.suggest(obs, [], 20.0, {"lr": 0.5}, rng(1)) == newest
    assert abs(newest["lr"] - 0.3) < 0.1


def test_start_is_a_candidate_and_is_clamped():
    # Improvement grows with lr and kappa = 0: the upper bound, where the clamped start lies, is best.
    p = PB2({"lr": (0.0, 1.0)}, kappa=0.0, candidates=5)
    obs = [(3.0, {"lr": x}, x) for x in np.linspace(0, 1, 11).tolist()]
    assert p.suggest(obs, [], 4.0, {"lr": 7.5}, rng(0)) == {"lr": 1.0}
    assert p.suggest(obs, [], 4.0, {"lr": 3}, rng(0)) == {"lr": 1}
    # Start at the peak: its own value comes back exactly, not through the log transform.
    q = PB2({"lr": (1e-4, 1.0)}, log_scale=("lr",), kappa=0.0, candidates=5)
    peak = 0.0123
    obs = [(3.0, {"lr": 10**e}, bump(e, math.log10(peak), 0.5)) for e in np.linspace(-4, 0, 17).tolist()]
    assert q.suggest(obs, [], 4.0, {"lr": peak}, rng(0)) == {"lr": peak}


def test_ints_stay_ints():
    p = PB2({"layers": (1, 12), "width": (16.0, 1024.0)}, log_scale=["width"])
    obs = [(3.0, {"layers": k, "width": 2.0 ** (4 + k % 7)}, bump(k / 12, 0.5)) for k in range(1, 13)]
    for seed in range(5):
        out = p.suggest(obs, [], 4.0, {"layers": 4, "width": 64}, rng(seed))
        assert type(out["layers"]) is int and 1 <= out["layers"] <= 12
        assert type(out["width"]) is int and 16 <= out["width"] <= 1024
        out = p.suggest(obs, [], 4.0, {"layers": 4.0, "width": 64.0}, rng(seed))
        assert type(out["layers"]) is float and type(out["width"]) is float
    # No integer lies within the bounds: the value stays a float rather than leave them.
    q = PB2({"d": (0.2, 0.8)})
    assert type(q.suggest([], [], 4.0, {"d": 0}, rng(0))["d"]) is float


name_st = st.sampled_from(["a", "b", "c"])


@st.composite
def problems(draw):
    names = draw(st.lists(name_st, min_size=1, max_size=3, unique=True))
    bounds, log_scale = {}, []
    for n in names:
        if draw(st.booleans()):
            low = draw(st.floats(1e-6, 1e3))
            bounds[n] = (low, low * draw(st.floats(1.001, 1e6)))
            log_scale.append(n)
        else:
            low = draw(st.floats(-1e6, 1e6))
            bounds[n] = (low, low + draw(st.floats(1e-3, 1e6)))
    value = st.one_of(st.floats(-1e7, 1e7), st.integers(-(10**7), 10**7))
    hps = st.fixed_dictionaries({n: value for n in names})
    gain = st.one_of(st.floats(-1e6, 1e6), st.just(NAN), st.just(INF))
    obs = draw(st.lists(st.tuples(st.integers(0, 6).map(float), hps, gain), max_size=24))
    pending = draw(st.lists(st.tuples(st.integers(0, 6).map(float), hps), max_size=6))
    start = draw(hps)
    return PB2(bounds, tuple(log_scale), candidates=50), obs, pending, start


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(problems(), st.integers(0, 2**32))
def test_always_within_bounds(problem, seed):
    p, obs, pending, start = problem
    out = p.suggest(obs, pending, 6.0, start, rng(seed))
    assert set(out) == set(p.bounds)
    for n, (low, high) in p.bounds.items():
        v = out[n]
        assert math.isfinite(v) and low <= v <= high
        if type(start[n]) is int and math.ceil(low) <= math.floor(high):
            assert type(v) is int
        else:
            assert type(v) is float
    assert p.suggest(obs, pending, 6.0, start, rng(seed)) == out


# -- the definition --------------------------------------------------------------------------------


def test_log_round_trip_and_equality():
    p = PB2(
        {"lr": [1e-5, 0.1], "layers": (1, 8), "m": (0.5, 0.99)}, log_scale=["lr"], kappa=1.5, window=3, candidates=200
    )
    back = PB2.from_log(orjson.loads(orjson.dumps(p.to_log())))
    assert back == p and hash(back) == hash(p) and len({p, back}) == 1
    assert p.bounds == {"layers": (1.0, 8.0), "lr": (1e-5, 0.1), "m": (0.5, 0.99)}
    assert p.to_log() == {
        "bounds": {"layers": [1.0, 8.0], "lr": [1e-5, 0.1], "m": [0.5, 0.99]},
        "logScale": ["lr"],
        "kappa": 1.5,
        "window": 3,
        "candidates": 200,
    }
    assert PB2.from_log({"bounds": {"x": [0, 1]}}) == PB2({"x": (0.0, 1.0)})
    assert PB2({"x": (0, 1)}) != PB2({"x": (0, 1)}, kappa=2.0)
    assert PB2({"x": (0, 1)}) != PB2({"x": (0, 2)})
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.kappa = 3.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bounds": {}}, "at least one"),
        ({"bounds": [("x", (0, 1))]}, "bounds must be a dict"),
        ({"bounds": {"x": (1, 1)}}, r"bounds\['x'\] needs low < high"),
        ({"bounds": {"x": (2, 1)}}, r"bounds\['x'\] needs low < high"),
        ({"bounds": {"x": ("0", 1)}}, r"bounds\['x'\] low must be a number, got '0'"),
        ({"bounds": {"x": (0, None)}}, r"bounds\['x'\] high must be a number, got None"),
        ({"bounds": {"x": (0, True)}}, r"bounds\['x'\] high must be a number, got True"),
        ({"bounds": {"x": (0, INF)}}, r"bounds\['x'\] high must be finite"),
        ({"bounds": {"x": (0, 1, 2)}}, r"bounds\['x'\] must be \(low, high\)"),
        ({"bounds": {"x": 1}}, r"bounds\['x'\] must be \(low, high\)"),
        ({"bounds": {3: (0, 1)}}, "names must be non-empty strings, got 3"),
        ({"bounds": {"x": (0, 1)}, "log_scale": ("y",)}, "log_scale names 'y'"),
        ({"bounds": {"x": (0, 1)}, "log_scale": ("x",)}, "log_scale 'x' needs low > 0"),
        ({"bounds": {"x": (-1, 1)}, "log_scale": ["x"]}, "log_scale 'x' needs low > 0"),
        ({"bounds": {"x": (1, 2)}, "log_scale": "x"}, "log_scale must be a list or tuple"),
        ({"bounds": {"x": (0, 1)}, "kappa": -0.1}, "kappa must be a finite number >= 0, got -0.1"),
        ({"bounds": {"x": (0, 1)}, "kappa": NAN}, "kappa must be a finite number >= 0, got nan"),
        ({"bounds": {"x": (0, 1)}, "kappa": "2"}, "kappa must be a number, got '2'"),
        ({"bounds": {"x": (0, 1)}, "window": 0}, "window must be from 1 to 1,000, got 0"),
        ({"bounds": {"x": (0, 1)}, "window": 2.0}, "window must be an integer, got 2.0"),
        ({"bounds": {"x": (0, 1)}, "candidates": 0}, "candidates must be from 1 to 100,000, got 0"),
        ({"bounds": {"x": (0, 1)}, "candidates": 10**9}, "candidates must be from 1 to 100,000, got 1000000000"),
        (
            {"bounds": {"x": (0, 1)}, "log_scale": [["x"]]},
            r"log_scale must hold hyperparameter names \(strings\), "
            r"got \['x'\]",
        ),
        ({"bounds": {"x": (0, 1)}, "candidates": True}, "candidates must be an integer, got True"),
    ],
)
def test_bad_definitions(kwargs, message):
    with pytest.raises((ValueError, TypeError), match=message):
        PB2(**kwargs)


@pytest.mark.parametrize(
    ("d", "message"),
    [
        ([1, 2], "must be an object"),
        ({"logScale": []}, "PB2 takes bounds, logScale, kappa, window, candidates: missing 'bounds'"),
        ({"bounds": {"x": [0, 1]}, "kapa": 2}, "PB2 takes bounds, .*: unknown 'kapa'"),
        ({"bounds": [[0, 1]]}, "bounds must be a dict"),
        ({"bounds": {"x": [0, "1"]}}, r"bounds\['x'\] high must be a number"),
        ({"bounds": {"x": [0, 1]}, "window": "4"}, "window must be an integer"),
        ({"bounds": {"x": [0, 1]}, "logScale": ["x"]}, "needs low > 0"),
    ],
)
def test_bad_logs(d, message):
    with pytest.raises(ValueError, match=message):
        PB2.from_log(d)


def test_bad_decision_time():
    with pytest.raises(ValueError, match="finite time 'at'"):
        PB2({"x": (0, 1)}).suggest([], [], NAN, {"x": 0.5}, rng())
