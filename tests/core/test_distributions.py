"""Tests of schedy.core.distributions: validation, value semantics, log vocabulary, sampling."""

import dataclasses
import math

import numpy as np
import orjson
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from schedy.core import values
from schedy.core.distributions import Choice, Constant, Distribution, LogUniform, Normal, Uniform, from_log

# ---------------------------------------------------------------- strategies

finite = st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12)
reals = st.one_of(finite, st.integers(-(10**12), 10**12))
positive = st.one_of(
    st.floats(min_value=1e-300, max_value=1e12, allow_nan=False, allow_infinity=False),
    st.integers(1, 10**12),
)
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(),
    st.text(max_size=5),
    st.sampled_from(["NaN", "$f"]),
)
json_like = st.recursive(
    json_scalars,
    lambda ch: (
        st.lists(ch, max_size=3)
        | st.dictionaries(st.sampled_from(["$f", "$d", "a", "b"]) | st.text(max_size=3), ch, max_size=3)
    ),
    max_leaves=10,
)
weights = st.one_of(st.floats(min_value=0, max_value=1e6), st.integers(0, 10**6))


@st.composite
def uniforms(draw):
    low, high = draw(reals), draw(reals)
    assume(low < high)
    return Uniform(low, high)


@st.composite
def loguniforms(draw):
    low, high = draw(positive), draw(positive)
    assume(low < high)
    return LogUniform(low, high)


@st.composite
def choices(draw):
    vals = draw(st.lists(json_like, min_size=1, max_size=5))
    ws = None
    if draw(st.booleans()):
        ws = draw(st.lists(weights, min_size=len(vals), max_size=len(vals)))
        assume(sum(ws) > 0)
    return Choice(vals, ws)


distributions = st.one_of(
    uniforms(),
    loguniforms(),
    st.builds(Normal, reals, positive),
    choices(),
    st.builds(Constant, json_like),
)


def same(a, b):
    """Exact equality: same types all the way down, NaN equals NaN."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        return (math.isnan(a) and math.isnan(b)) or a == b
    if type(a) is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


# ---------------------------------------------------------------- validation


@pytest.mark.parametrize(
    "make, exc, message",
    [
        (lambda: Uniform(1, 0), ValueError, r"low < high"),
        (lambda: Uniform(1, 1), ValueError, r"low < high"),
        (lambda: Uniform(0.5, 0.5), ValueError, r"low < high"),
        (lambda: LogUniform(0, 1), ValueError, r"0 < low"),
        (lambda: LogUniform(-2, -1), ValueError, r"0 < low"),
        (lambda: LogUniform(2, 1), ValueError, r"low < high"),
        (lambda: Normal(0, -1), ValueError, r"std > 0"),
        (lambda: Normal(0, 0), ValueError, r"std > 0"),
        (lambda: Choice([]), ValueError, r"at least one value"),
        (lambda: Choice(iter([])), ValueError, r"at least one value"),
        (lambda: Choice([1, 2], weights=[1]), ValueError, r"2 values but 1 weights"),
        (lambda: Choice([1, 2], weights=[1, 2, 3]), ValueError, r"weight"),
        (lambda: Choice([1, 2], weights=[-1, 2]), ValueError, r"negative"),
        (lambda: Choice([1, 2], weights=[0, 0]), ValueError, r"zero"),
        (lambda: Choice([1, 2], weights=[math.nan, 1]), ValueError, r"finite"),
        (lambda: Choice([1, 2], weights=["a", 1]), TypeError, r"weights"),
        (lambda: Choice([1, 2], weights=5), TypeError, r"weights"),
        (lambda: Choice(5), TypeError, r"iterable"),
        (lambda: Choice([object()]), TypeError, r"Choice values\[0\]"),
        (lambda: Uniform("a", 1), TypeError, r"low must be a real number"),
        (lambda: Uniform(0, None), TypeError, r"high must be a real number"),
        (lambda: Uniform(True, 2), TypeError, r"real number"),
        (lambda: Normal("0", 1), TypeError, r"mean must be a real number"),
        (lambda: Uniform(float("nan"), 1), ValueError, r"finite"),
        (lambda: Uniform(0, math.inf), ValueError, r"finite"),
        (lambda: LogUniform(1, np.float64("inf")), ValueError, r"finite"),
        (lambda: Normal(0, math.nan), ValueError, r"finite"),
        (lambda: Constant(object()), TypeError, r"Constant value"),
        (lambda: Constant({"a": {1, 2}}), TypeError, r"Constant value\['a'\]"),
        (lambda: Constant(2**64), ValueError, r"64 bits"),
    ],
)
def test_bad_input_raises_naming_the_problem(make, exc, message):
    with pytest.raises(exc, match=message):
        make()


@pytest.mark.parametrize(
    "make",
    [
        lambda: Uniform(0, 10**400),
        lambda: Uniform(-(10**400), 0),
        lambda: Normal(10**400, 1),
        lambda: Uniform(0, 2**64),
        lambda: LogUniform(1, 2**65),
        lambda: Normal(2**70, 1),
        lambda: Choice([1, 2], weights=[2**70, 1]),
    ],
)
def test_integer_beyond_64_bits_is_refused_at_construction(make):
    # Like values.encode, a parameter the log cannot hold must be refused when the distribution is
    # built, with ValueError or TypeError; not accepted and then failing in orjson when written
    # (2**64) or overflowing in math.isfinite with OverflowError (10**400).
    try:
        d = make()
    except (ValueError, TypeError):
        return
    pytest.fail(f"{d!r} was accepted, but orjson cannot store its log form")


def test_accepts_numpy_numbers():
    u = Uniform(np.int64(0), np.float32(0.5))
    assert u == Uniform(0, 0.5)
    assert type(u.low) is int and type(u.high) is float
    c = Choice(np.array([1, 2, 3]), weights=np.array([1.0, 0.0, 2.0]))
    assert c.values == [1, 2, 3] and all(type(v) is int for v in c.values)
    assert c.weights == [1.0, 0.0, 2.0]


# ---------------------------------------------------------------- value semantics


def test_attributes_are_constructor_parameters():
    u = Uniform(low=0, high=1)
    assert (u.low, u.high) == (0, 1) and type(u.low) is int
    lu = LogUniform(low=1e-5, high=1)
    assert (lu.low, lu.high) == (1e-5, 1)
    n = Normal(mean=2.5, std=0.5)
    assert (n.mean, n.std) == (2.5, 0.5)
    c = Choice(values=["a", "b"], weights=[1, 3])
    assert c.values == ["a", "b"] and c.weights == [1, 3]
    assert Choice(["a"]).weights is None
    k = Constant(value={"x": [1, 2]})
    assert k.value == {"x": [1, 2]}


@pytest.mark.parametrize("d", [Uniform(0, 1), LogUniform(1, 2), Normal(0, 1), Choice([1]), Constant(1)])
def test_immutable(d):
    field = dataclasses.fields(d)[0].name
    with pytest.raises(AttributeError):
        setattr(d, field, 5)
    assert isinstance(d, Distribution)


def test_equality_by_value():
    assert Uniform(0, 1) == Uniform(0, 1)
    assert Uniform(0, 1) == Uniform(0.0, 1.0)
    assert Uniform(0, 1) != Uniform(0, 2)
    assert Uniform(1, 2) != LogUniform(1, 2)
    assert LogUniform(1, 2) == LogUniform(1, 2)
    assert Normal(0, 1) == Normal(0, 1) and Normal(0, 1) != Normal(1, 1)
    assert Choice([1, 2]) == Choice((1, 2)) == Choice(iter([1, 2]))
    assert Choice([1, 2]) != Choice([2, 1])
    assert Choice([1, 2]) != Choice([1, 2], weights=[1, 1])
    assert Choice([1, 2], weights=[1, 2]) == Choice([1, 2], weights=[1, 2])
    assert Constant({"a": [1]}) == Constant({"a": (1,)})
    assert Constant("a") != Constant("b")
    assert Constant(math.nan) == Constant(float("nan"))


def test_choice_stores_iterables_as_lists():
    c = Choice(range(1, 10))
    assert c.values == list(range(1, 10))
    assert type(c.values) is list
    assert Choice(range(1, 10)) == Choice(list(range(1, 10)))
    gen = Choice(x * 2 for x in range(3))
    assert gen.values == [0, 2, 4]
    w = Choice([1, 2], weights=(1, 2))
    assert type(w.weights) is list


def test_choice_copies_its_input():
    src = [1, {"a": 1}]
    c = Choice(src)
    src.append(3)
    src[1]["a"] = 2
    assert c.values == [1, {"a": 1}]


def test_choice_mixed_values():
    vals = [1, 2.5, "adam", True, None, [1, "x"], {"depth": 3, "$f": "NaN"}, {"$d": 1}, math.inf]
    c = Choice(vals)
    assert same(c.values, vals)
    back = from_log(orjson.loads(orjson.dumps(c.to_log())))
    assert back == c
    assert same(back.values, vals)


# ---------------------------------------------------------------- log vocabulary


def test_log_vocabulary():
    assert Uniform(0, 1).to_log() == {"uniform": {"low": 0, "high": 1}}
    assert LogUniform(1e-5, 0.1).to_log() == {"loguniform": {"low": 1e-5, "high": 0.1}}
    assert Normal(0.5, 2).to_log() == {"normal": {"mean": 0.5, "std": 2}}
    assert Choice(["sgd", "adam"]).to_log() == {"choice": {"values": ["sgd", "adam"]}}
    assert "weights" not in Choice(["sgd"]).to_log()["choice"]
    assert Choice([1, 2], weights=[1, 3]).to_log() == {"choice": {"values": [1, 2], "weights": [1, 3]}}
    assert Constant(3).to_log() == {"const": 3}
    assert Constant([1, "a"]).to_log() == {"const": [1, "a"]}
    assert Constant(None).to_log() == {"const": None}


def test_log_vocabulary_uses_value_escapes():
    assert Constant(math.nan).to_log() == {"const": {"$f": "NaN"}}
    assert Constant({"$f": 1}).to_log() == {"const": {"$d": {"$f": 1}}}
    assert Choice([math.inf, 1]).to_log() == {"choice": {"values": [{"$f": "Infinity"}, 1]}}


def test_log_types_are_kept():
    log = Uniform(0, 1.5).to_log()["uniform"]
    assert type(log["low"]) is int and type(log["high"]) is float


@settings(max_examples=200, deadline=None)
@given(distributions)
def test_from_log_round_trip(d):
    log = d.to_log()
    assert list(log) == [d._LOG_NAME]
    assert from_log(log) == d
    # The log form is stored as JSON: reading it back from bytes gives the same distribution.
    raw = orjson.loads(orjson.dumps(log))
    assert same(raw, log)  # the log form holds no NaN or infinity, only {"$f": ...} escapes
    back = from_log(raw)
    assert back == d
    assert type(back) is type(d)
    for f in dataclasses.fields(d):
        assert same(getattr(back, f.name), getattr(d, f.name))


@pytest.mark.parametrize(
    "garbage",
    [
        {"gaussian": {"mean": 0, "std": 1}},
        {"Uniform": {"low": 0, "high": 1}},
        {"uniform": {"low": 0}},
        {"uniform": {"high": 1}},
        {"loguniform": {}},
        {"normal": {"mean": 0}},
        {"choice": {"weights": [1]}},
        {"uniform": [0, 1]},
        {"uniform": None},
        {"choice": "abc"},
        {},
        {"uniform": {"low": 0, "high": 1}, "const": 1},
        [{"uniform": {"low": 0, "high": 1}}],
        "uniform",
        None,
        5,
    ],
)
def test_from_log_garbage_raises_value_error(garbage):
    with pytest.raises(ValueError):
        from_log(garbage)


@pytest.mark.parametrize(
    "garbage",
    [
        {"uniform": {"low": "a", "high": 1}},
        {"normal": {"mean": 0, "std": None}},
        {"choice": {"values": 5}},
        {"choice": {"values": [1, 2], "weights": "ab"}},
    ],
)
def test_from_log_wrongly_typed_arguments_raise_value_error(garbage):
    # from_log's docstring: "raise ValueError if d is not one".
    with pytest.raises(ValueError):
        from_log(garbage)


@pytest.mark.parametrize(
    "invalid, message",
    [
        ({"uniform": {"low": 1, "high": 0}}, "low < high"),
        ({"loguniform": {"low": 0, "high": 1}}, "0 < low"),
        ({"normal": {"mean": 0, "std": 0}}, "std > 0"),
        ({"choice": {"values": []}}, "at least one"),
        ({"choice": {"values": [1], "weights": [0]}}, "zero"),
    ],
)
def test_from_log_validates_like_the_constructor(invalid, message):
    with pytest.raises(ValueError, match=message):
        from_log(invalid)


# ---------------------------------------------------------------- sampling


def draw(d, seed, n):
    rng = np.random.default_rng(seed)
    return [d.sample(rng) for _ in range(n)]


@pytest.mark.parametrize(
    "d",
    [
        Uniform(-1, 1),
        Uniform(0, 1e-3),
        Uniform(3, 4.5),
        LogUniform(1e-5, 1),
        LogUniform(2, 3),
        LogUniform(1e-300, 1e300),
    ],
)
def test_continuous_samples_lie_in_half_open_range(d):
    xs = draw(d, 1234, 2000)
    assert all(type(x) is float for x in xs)
    assert all(d.low <= x < d.high for x in xs)
    assert len(set(xs)) > 1900


@settings(max_examples=100, deadline=None)
@given(st.one_of(uniforms(), loguniforms()), st.integers(0, 2**32 - 1))
def test_continuous_samples_in_range_for_any_parameters(d, seed):
    assume(d.high - d.low > 1e-6 * max(abs(d.low), abs(d.high)))  # ranges wider than rounding
    for x in draw(d, seed, 20):
        assert d.low <= x < d.high


@pytest.mark.parametrize(
    "d",
    [
        Uniform(1.0, float(np.nextafter(1.0, 2.0))),
        LogUniform(1.0, float(np.nextafter(1.0, 2.0))),
        LogUniform(0.1, float(np.nextafter(0.1, 1.0))),
        LogUniform(3.0, 3.0000000001),
    ],
)
def test_narrow_range_samples_stay_in_half_open_range(d):
    # The documented range is [low, high) for any valid low < high; floating-point rounding in
    # low + u * (high - low) or exp(log(low) + ...) must not push a sample out of it.
    xs = draw(d, 0, 200)
    outside = [x for x in xs if not d.low <= x < d.high]
    assert outside == [], f"{len(outside)} of 200 samples of {d} outside [low, high), e.g. {outside[0]!r}"


@pytest.mark.parametrize(
    "d",
    [
        Uniform(-1e308, 1e308),
        Choice([1, 2], weights=[1e308, 1e308]),
        Choice(["a", "b", "c"], weights=[1.7e308, 0, 1.7e308]),
    ],
)
def test_every_valid_distribution_can_sample(d):
    # The constructor accepted these parameters, so sampling must not fail.
    rng = np.random.default_rng(0)
    x = d.sample(rng)
    if isinstance(d, Uniform):
        assert d.low <= x < d.high
    else:
        assert x in d.values


def test_normal_samples():
    xs = np.array(draw(Normal(3, 0.5), 7, 4000))
    assert all(type(x) is float for x in xs.tolist())
    assert abs(xs.mean() - 3) < 0.05
    assert 0.45 < xs.std() < 0.55


def test_loguniform_median_in_log_space():
    xs = np.array(draw(LogUniform(1e-5, 1), 2024, 2000))
    assert abs(np.log10(np.median(xs)) - (-2.5)) < 0.25
    # log10 of samples is roughly uniform on [-5, 0): each unit interval gets about a fifth.
    counts = np.histogram(np.log10(xs), bins=5, range=(-5, 0))[0]
    assert all(300 < c < 500 for c in counts)


def test_uniform_mean():
    xs = np.array(draw(Uniform(10, 20), 99, 2000))
    assert abs(xs.mean() - 15) < 0.3


def test_choice_yields_only_listed_values():
    vals = [1, "a", None, [1, 2], {"k": math.nan}, True, 2.5]
    c = Choice(vals)
    xs = draw(c, 5, 1000)
    for x in xs:
        assert any(same(x, v) for v in vals)
    # Every value shows up eventually.
    for v in vals:
        assert any(same(x, v) for x in xs)


def test_choice_sample_is_a_fresh_copy():
    c = Choice([{"layers": [1, 2]}])
    x = c.sample(np.random.default_rng(0))
    x["layers"].append(3)
    assert c.values == [{"layers": [1, 2]}]
    k = Constant({"a": [1]})
    y = k.sample(np.random.default_rng(0))
    y["a"].append(2)
    assert k.value == {"a": [1]}


def test_weighted_choice():
    c = Choice(["never", "rare", "often"], weights=[0, 1, 3])
    xs = draw(c, 11, 2000)
    assert "never" not in xs
    assert 0.68 < xs.count("often") / len(xs) < 0.82
    assert xs.count("rare") > 0


def test_weighted_choice_single_nonzero():
    c = Choice([1, 2, 3], weights=[0, 0.0, 5])
    assert set(draw(c, 3, 300)) == {3}


def test_constant_samples():
    assert set(draw(Constant(4), 0, 10)) == {4}
    xs = draw(Constant(math.nan), 0, 3)
    assert all(type(x) is float and math.isnan(x) for x in xs)


@pytest.mark.parametrize(
    "d",
    [Uniform(0, 1), LogUniform(1e-4, 10), Normal(0, 1), Choice(list(range(50))), Choice(["a", "b"], weights=[1, 2])],
)
def test_same_seed_same_sequence(d):
    assert draw(d, 42, 50) == draw(d, 42, 50)
    assert draw(d, 42, 50) != draw(d, 43, 50)


def test_samples_are_storable():
    for d in [Uniform(0, 1), LogUniform(1e-4, 10), Normal(0, 1), Choice([1, "a", [1.5]]), Constant({"$f": 1})]:
        for x in draw(d, 1, 20):
            assert same(values.decode(orjson.loads(orjson.dumps(values.encode(x)))), x)
