"""Tests of schedy.core.values: user values <-> log form."""

import copy
import datetime
import math

import numpy as np
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedy.core import values

INT_MIN, INT_MAX = -(2**63), 2**64 - 1

# Keys that look like the escapes, so that the wrapping of user dicts is exercised.
ESCAPE_KEYS = ["$f", "$d", "$x", "$", "$$", "$f$", "$d$d"]
ESCAPE_TEXTS = ["NaN", "Infinity", "-Infinity", "nan", "inf"]

keys = st.one_of(st.sampled_from(ESCAPE_KEYS), st.text(max_size=6))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(INT_MIN, INT_MAX),
    st.sampled_from([INT_MIN, INT_MAX, -1, 0, 2**63 - 1, 2**63]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -0.0, 0.0, 5e-324, 1.7976931348623157e308]),
    st.text(),
    st.sampled_from(ESCAPE_TEXTS),
)
json_like = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(keys, children, max_size=4),
        # A dict with exactly one escape-like key: the case the "$d" wrapper exists for.
        st.builds(lambda k, v: {k: v}, st.sampled_from(ESCAPE_KEYS), children),
    ),
    max_leaves=25,
)


def same(a, b):
    """Exact equality: same types all the way down, NaN equals NaN, -0.0 differs from 0.0."""
    if type(a) is not type(b):
        return False
    if type(a) is float:
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return a == b and math.copysign(1.0, a) == math.copysign(1.0, b)
    if type(a) is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


def test_same_helper_is_strict():
    assert same(math.nan, float("nan"))
    assert not same(1, 1.0)
    assert not same(True, 1)
    assert not same(0.0, -0.0)
    assert not same({"a": [1]}, {"a": [1.0]})
    assert not same([1, 2], [1])
    assert same({"a": [math.nan, {"b": None}]}, {"a": [math.nan, {"b": None}]})


@settings(max_examples=200, deadline=None)
@given(json_like)
def test_round_trip(v):
    log = values.encode(v)
    assert same(values.decode(log), v)


@settings(max_examples=200, deadline=None)
@given(json_like)
def test_log_form_survives_json(v):
    log = values.encode(v)
    raw = orjson.dumps(log)  # orjson would write a NaN as null, which `same` rejects
    back = orjson.loads(raw)
    assert same(back, log)
    assert same(values.decode(back), v)


@settings(max_examples=100, deadline=None)
@given(json_like)
def test_log_form_has_no_nonfinite_float(v):
    def walk(x):
        if type(x) is float:
            assert math.isfinite(x)
        elif type(x) is list:
            for y in x:
                walk(y)
        elif type(x) is dict:
            for y in x.values():
                walk(y)

    walk(values.encode(v))


@settings(max_examples=100, deadline=None)
@given(json_like)
def test_decode_returns_a_fresh_copy(v):
    log = values.encode(v)
    snapshot = copy.deepcopy(log)
    out = values.decode(log)

    def scribble(x):
        if type(x) is list:
            for y in x:
                scribble(y)
            x.append("scribble")
        elif type(x) is dict:
            for y in list(x.values()):
                scribble(y)
            x["scribble"] = 1

    scribble(out)
    assert same(log, snapshot)


def test_nonfinite_escapes():
    assert values.encode(math.nan) == {"$f": "NaN"}
    assert values.encode(math.inf) == {"$f": "Infinity"}
    assert values.encode(-math.inf) == {"$f": "-Infinity"}
    assert values.encode([1.5, -math.inf]) == [1.5, {"$f": "-Infinity"}]


@pytest.mark.parametrize("user", [{"$f": "NaN"}, {"$d": {"a": 1}}, {"$x": 1}, {"$f": math.nan}, {"$d": {"$f": "NaN"}}])
def test_escape_lookalike_user_dicts_are_wrapped(user):
    log = values.encode(user)
    assert list(log) == ["$d"]
    assert same(values.decode(log), user)


def test_dicts_with_several_keys_are_not_wrapped():
    assert values.encode({"$f": "NaN", "a": 1}) == {"$f": "NaN", "a": 1}
    assert values.encode({"a": 1}) == {"a": 1}
    assert values.encode({}) == {}


@pytest.mark.parametrize(
    "user, expected",
    [
        (np.float32(1.5), 1.5),
        (np.float64(0.25), 0.25),
        (np.int64(-7), -7),
        (np.int32(3), 3),
        (np.uint64(2**64 - 1), 2**64 - 1),
        (np.bool_(True), True),
        (np.bool_(False), False),
        (np.str_("adam"), "adam"),
        (np.array([1, 2, 3]), [1, 2, 3]),
        (np.array([[1.5, 2.0], [3.0, 4.25]]), [[1.5, 2.0], [3.0, 4.25]]),
        (np.array([[1, 2], [3, 4]], dtype=np.int64), [[1, 2], [3, 4]]),
        (np.array([True, False]), [True, False]),
        (np.array([1.5], dtype=np.float32), [1.5]),
        (np.array(7), 7),
        ((1, (2, 3.5), "a"), [1, [2, 3.5], "a"]),
        ({"t": (np.int64(1), np.float32(0.5))}, {"t": [1, 0.5]}),
    ],
)
def test_numpy_and_tuples_become_plain(user, expected):
    log = values.encode(user)
    assert same(log, expected)
    assert same(orjson.loads(orjson.dumps(log)), expected)


def test_numpy_nonfinite():
    assert values.encode(np.float32("nan")) == {"$f": "NaN"}
    assert values.encode(np.array([np.inf, -np.inf, 1.0])) == [{"$f": "Infinity"}, {"$f": "-Infinity"}, 1.0]


def _function():
    pass


@pytest.mark.parametrize(
    "bad",
    [
        object(),
        {1, 2},
        frozenset(),
        _function,
        b"bytes",
        bytearray(b"x"),
        datetime.datetime(2020, 1, 1),
        datetime.date(2020, 1, 1),
        1 + 2j,
        np.complex128(1 + 1j),
        type,
    ],
)
def test_unstorable_objects_raise_type_error_naming_the_path(bad):
    with pytest.raises(TypeError, match=r"results\['model'\]"):
        values.encode({"model": bad}, "results")
    with pytest.raises(TypeError, match=r"results\['a'\]\[1\]\['b'\]"):
        values.encode({"a": [0, {"b": bad}]}, "results")
    with pytest.raises(TypeError, match=type(bad).__name__):
        values.encode(bad)


def test_non_string_key_raises_type_error():
    with pytest.raises(TypeError, match="keys must be strings"):
        values.encode({1: "a"})
    with pytest.raises(TypeError, match=r"results\['a'\]"):
        values.encode({"a": {None: 1}}, "results")
    with pytest.raises(TypeError):
        values.encode({(1, 2): 1})


@pytest.mark.parametrize("n", [2**64, -(2**63) - 1, 10**30, -(10**30)])
def test_int_beyond_64_bits_raises_value_error(n):
    with pytest.raises(ValueError, match=r"64 bits"):
        values.encode(n)
    with pytest.raises(ValueError, match=r"results\['big'\]"):
        values.encode({"big": n}, "results")


@pytest.mark.parametrize("n", [INT_MIN, INT_MAX, 2**63])
def test_int_limits_are_storable(n):
    log = values.encode(n)
    assert same(orjson.loads(orjson.dumps(log)), n)


@pytest.mark.parametrize("s", ["\ud800", "a\udfffb", "\udc00\ud800"])
def test_lone_surrogate_raises_value_error(s):
    with pytest.raises(ValueError, match="Unicode"):
        values.encode(s)
    with pytest.raises(ValueError, match=r"hp\['k'\]"):
        values.encode({"k": s}, "hp")
    with pytest.raises(ValueError):
        values.encode({s: 1})


def test_unicode_text_is_kept():
    for s in ["héllo", "日本語", "🎲", "\x00nul", "line\nbreak", "\U0010ffff"]:
        assert values.decode(orjson.loads(orjson.dumps(values.encode({s: s})))) == {s: s}


mappings = st.dictionaries(keys, json_like, max_size=5)


@settings(max_examples=200, deadline=None)
@given(mappings)
def test_mapping_round_trip(m):
    log = values.encode_mapping(m, "hyperparameters")
    assert type(log) is dict
    assert list(log) == list(m)  # stored under the user's own names, even "$"-keys
    back = orjson.loads(orjson.dumps(log))
    assert same(values.decode_mapping(back), m)


@pytest.mark.parametrize("m", [{"$f": "NaN"}, {"$d": 1}, {"$d": {"$f": "Infinity"}}, {"$x": [math.nan]}])
def test_mapping_with_single_escape_key(m):
    log = values.encode_mapping(m, "results")
    assert list(log) == list(m)
    assert same(values.decode_mapping(log), m)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        keys | st.sampled_from(["\ud800", "a\udfff"]),
        scalars | st.sampled_from([2**64, -(2**63) - 1, "\ud800x", 10**30]),
        max_size=5,
    )
)
def test_a_mapping_of_plain_scalars_takes_the_fast_path_to_the_same_log_form_or_error(m):
    """encode_mapping skips encode() for flat dicts of scalars: same result, same error, as the general path."""

    def general():
        out = values.encode(m, "results")
        return out["$d"] if len(out) == 1 and "$d" in out else out

    try:
        expected = general()
    except (TypeError, ValueError) as e:
        with pytest.raises(type(e)) as got:
            values.encode_mapping(m, "results")
        assert str(got.value) == str(e)
        return
    log = values.encode_mapping(m, "results")
    assert same(log, expected)
    log["__new__"] = 1  # the log form is a copy (keys here are at most 6 characters): the user's dict is untouched
    assert "__new__" not in m


def test_a_mapping_changed_while_it_is_encoded_is_stored_as_it_was_checked(monkeypatch):
    """The fast path copies the user's dict before checking it, so another thread's change cannot slip past."""
    results = {"loss": 1.0}
    check_size = values._check_size

    def change_meanwhile(size, where):
        results["loss"] = math.nan  # as another thread might, between the check and the copy
        return check_size(size, where)

    monkeypatch.setattr(values, "_check_size", change_meanwhile)
    log = values.encode_mapping(results, "results")
    assert log == {"loss": 1.0} and log is not results


def test_encode_mapping_none_is_empty():
    assert values.encode_mapping(None, "results") == {}


@pytest.mark.parametrize("bad", [[("a", 1)], 5, "abc", (1, 2), {1, 2}])
def test_encode_mapping_rejects_non_dict(bad):
    with pytest.raises(TypeError, match="results"):
        values.encode_mapping(bad, "results")


def test_encode_mapping_names_the_path():
    with pytest.raises(TypeError, match=r"hyperparameters\['model'\]"):
        values.encode_mapping({"model": object()}, "hyperparameters")
