"""Tests of schedy.core.codec: one commit per line, guarded by a CRC-32."""

import math
import re
import zlib

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from schedy.core import events as ev
from schedy.core import values
from schedy.core.codec import BadRecord, Commit, decode_commit, encode_commit

# ---------------------------------------------------------------- helpers


def same(a, b):
    """Exact equality: same types all the way down (1 and 1.0 and True differ)."""
    if type(a) is not type(b):
        return False
    if type(a) in (list, tuple) or isinstance(a, tuple):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if type(a) is dict:
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


def line_of(commit):
    raw = encode_commit(commit)
    assert raw.endswith(b"\n")
    return raw[:-1]


def crc_line(obj):
    """A line with a correct CRC around any JSON object, built by hand (not by encode_commit)."""
    head = orjson.dumps(obj)[:-1]
    return head + b',"crc":"%08x"}' % zlib.crc32(head)


# ---------------------------------------------------------------- strategies

user_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**64 - 1), st.floats(), st.text(max_size=8)),
    lambda ch: (
        st.lists(ch, max_size=3)
        | st.dictionaries(st.sampled_from(["$f", "$d", "a"]) | st.text(max_size=4), ch, max_size=3)
    ),
    max_leaves=12,
)
log_values = user_values.map(values.encode)
event = st.builds(
    lambda kind, extra: {"type": kind, **extra},
    st.sampled_from([ev.EXPERIMENT_CREATED, ev.JOB_ADDED, ev.JOB_CLAIMED, ev.JOB_UPDATED, "Other", "", "ünïcødé"]),
    st.dictionaries(st.text(max_size=6).filter(lambda k: k != "type"), log_values, max_size=4),
)
workers = st.one_of(st.text(), st.sampled_from(["", "host:1234", "wörker-日本-🎲", 'a\nb"c\\d', "\x00", "\u2028"]))
times = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(-(2**63), 2**63 - 1),
    st.sampled_from([0.0, 1.5, 1700000000.123456, -0.0, 5e-324]),
)
commits = st.builds(
    Commit,
    version=st.integers(1, 2**63 - 1),
    time=times,
    worker=workers,
    events=st.lists(event, max_size=4),
)

SAMPLES = [
    Commit(
        1,
        1700000000.25,
        "worker-1",
        [ev.experiment_created("exp", "manual", {"scheduler": {"Manual": {}}}, "RUNNING", 12345)],
    ),
    Commit(
        42,
        63.0,
        "wörker-日本-🎲",
        [
            ev.job_added("7", {"lr": 0.001, "opt": "adam"}, "QUEUED", {"loss": {"$f": "NaN"}}),
            ev.job_claimed("7", "wörker-日本-🎲"),
        ],
    ),
]


def _leading_zero_crc_sample():
    # A commit whose CRC starts with "0" (one line in sixteen), chosen deterministically.
    for i in range(1000):
        c = Commit(3, 4.5, f"w{i}", [ev.job_updated("1", status="DONE", results={"acc": 0.5})])
        if re.search(rb'"crc":"0', line_of(c)):
            return c
    raise AssertionError("no sample found")


SAMPLES.append(_leading_zero_crc_sample())


# ---------------------------------------------------------------- round trip


@settings(max_examples=200, deadline=None)
@given(commits)
def test_round_trip(c):
    raw = encode_commit(c)
    assert raw.endswith(b"\n") and raw.count(b"\n") == 1  # one commit, one line
    back = decode_commit(raw[:-1])
    assert type(back) is Commit
    assert same(back, c)


@settings(max_examples=100, deadline=None)
@given(commits)
def test_line_is_plain_json(c):
    line = line_of(c)
    d = orjson.loads(line)  # what jq would read
    assert list(d) == ["v", "t", "w", "e", "crc"]
    assert d["v"] == c.version and d["w"] == c.worker and d["e"] == c.events
    assert same(d["t"], c.time)
    assert re.fullmatch(r"[0-9a-f]{8}", d["crc"])
    assert int(d["crc"], 16) == zlib.crc32(line[: line.rindex(b',"crc":"')])
    line.decode("utf-8")  # valid UTF-8 text


def test_sample_lines_round_trip():
    for c in SAMPLES:
        assert decode_commit(line_of(c)) == c


def test_crc_line_helper_matches_the_encoder():
    c = SAMPLES[0]
    assert crc_line({"v": c.version, "t": c.time, "w": c.worker, "e": c.events}) == line_of(c)


# ---------------------------------------------------------------- damage is detected


def _accepted(line):
    try:
        decode_commit(line)
    except BadRecord:
        return False
    return True


@pytest.mark.parametrize("c", SAMPLES, ids=["created", "unicode", "leading-zero-crc"])
def test_single_bit_flip_anywhere_is_detected(c):
    line = line_of(c)
    missed = []
    for i in range(len(line)):
        for bit in range(8):
            damaged = bytearray(line)
            damaged[i] ^= 1 << bit
            if _accepted(bytes(damaged)):
                missed.append((i, bit, bytes(damaged[max(0, i - 8) : i + 8])))
    assert missed == [], f"{len(missed)} single-bit flips of a {len(line)}-byte line went undetected: {missed[:4]}"


@pytest.mark.parametrize("c", SAMPLES, ids=["created", "unicode", "leading-zero-crc"])
def test_single_bit_flip_in_content_is_detected(c):
    # The part the CRC covers: everything before ,"crc":"...
    line = line_of(c)
    end = line.rindex(b',"crc":"')
    for i in range(end):
        for bit in range(8):
            damaged = bytearray(line)
            damaged[i] ^= 1 << bit
            with pytest.raises(BadRecord):
                decode_commit(bytes(damaged))


def test_any_byte_change_anywhere_is_detected():
    line = line_of(SAMPLES[1])
    missed = []
    for i in range(len(line)):
        for b in range(256):
            if b == line[i]:
                continue
            damaged = bytearray(line)
            damaged[i] = b
            if _accepted(bytes(damaged)):
                missed.append((i, bytes([line[i]]), bytes([b])))
    assert missed == [], f"{len(missed)} one-byte changes went undetected, e.g. (position, was, now): {missed[:6]}"


def _small_crc_sample():
    # A commit whose CRC is below 16**6 (its field starts with "00"), chosen deterministically.
    for i in range(100000):
        c = Commit(5, 7.5, f"worker-{i}", [ev.job_deleted("3")])
        if line_of(c)[-10:-8] == b"00":
            return c
    raise AssertionError("no sample found")


@pytest.mark.parametrize(
    "field",
    [
        lambda crc: b"%08X" % crc,  # the format is lowercase hex
        lambda crc: b" %07x" % crc,
        lambda crc: b"\t%07x" % crc,
        lambda crc: b"  %06x" % crc,
        lambda crc: b"+%07x" % crc,
        lambda crc: b"0x%06x" % crc,
        lambda crc: b"0X%06x" % crc,
        lambda crc: b"0_%06x" % crc,
    ],
    ids=["uppercase", "space", "tab", "two-spaces", "plus", "0x", "0X", "underscore"],
)
def test_crc_field_must_be_exactly_8_lowercase_hex_digits(field):
    # Each variant spells the right CRC value in 8 bytes, but not as the 8 lowercase hex digits the
    # format prescribes: the line was altered, so it must be refused.
    line = line_of(_small_crc_sample())
    crc = zlib.crc32(line[:-18])
    assert line[-10:-2] == b"%08x" % crc and crc < 16**6
    altered = line[:-10] + field(crc) + line[-2:]
    assert len(altered) == len(line) and altered != line
    with pytest.raises(BadRecord):
        decode_commit(altered)


@pytest.mark.parametrize("c", SAMPLES, ids=["created", "unicode", "leading-zero-crc"])
def test_every_strict_prefix_is_bad(c):
    line = line_of(c)
    for n in range(len(line)):
        with pytest.raises(BadRecord):
            decode_commit(line[:n])


def test_swapped_bytes_and_deletions_are_detected():
    line = line_of(SAMPLES[0])
    for i in range(len(line) - 1):
        if line[i] != line[i + 1]:
            swapped = line[:i] + line[i + 1 : i + 2] + line[i : i + 1] + line[i + 2 :]
            assert not _accepted(swapped), i
        deleted = line[:i] + line[i + 1 :]
        assert not _accepted(deleted), i


def test_concatenated_lines_are_bad():
    a, b = line_of(SAMPLES[0]), line_of(SAMPLES[1])
    with pytest.raises(BadRecord):
        decode_commit(a + b)
    with pytest.raises(BadRecord):
        decode_commit(a + b"\n" + b)


# ---------------------------------------------------------------- valid CRC, not a commit

GOOD = {"v": 1, "t": 1.5, "w": "w", "e": [{"type": "JobClaimed", "job": "1", "worker": "w"}]}


def test_good_hand_built_line_decodes():
    assert decode_commit(crc_line(GOOD)) == Commit(1, 1.5, "w", GOOD["e"])


@pytest.mark.parametrize(
    "change",
    [
        {"v": None},
        {"v": 0},
        {"v": -3},
        {"v": 1.0},
        {"v": "1"},
        {"v": True},
        {"t": None},
        {"t": "now"},
        {"t": True},
        {"w": None},
        {"w": 5},
        {"e": None},
        {"e": {"type": "JobClaimed"}},
        {"e": "[]"},
        {"e": [{"job": "1"}]},
        {"e": [{"type": None}]},
        {"e": [{"type": 5}]},
        {"e": [["type", "JobClaimed"]]},
        {"e": [{"type": "JobClaimed"}, 5]},
    ],
)
def test_valid_json_with_crc_but_not_a_commit(change):
    obj = {**GOOD, **change}
    with pytest.raises(BadRecord):
        decode_commit(crc_line(obj))


@pytest.mark.parametrize("missing", ["v", "t", "w", "e"])
def test_missing_field(missing):
    obj = {k: v for k, v in GOOD.items() if k != missing}
    with pytest.raises(BadRecord):
        decode_commit(crc_line(obj))


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"\n",
        b"{}",
        b"null",
        b'{"crc":"00000000"}',
        b"x" * 100,
        b'[1,2,"crc":"00000000"}',
        crc_line({"v": 1})[:-1] + b"}}",
        b'{"v":1,"t":1,"w":"w","e":[]}',
    ],
)
def test_garbage_lines(line):
    with pytest.raises(BadRecord):
        decode_commit(line)


def test_bad_record_is_a_value_error_with_a_reason():
    with pytest.raises(ValueError, match="CRC"):
        decode_commit(line_of(SAMPLES[0])[:-3] + b'0"}')


def test_nonfinite_values_are_never_written_as_null():
    c = Commit(1, 2.0, "w", [{"type": "JobUpdated", "job": "1", "results": values.encode({"x": math.nan})}])
    assert b"null" not in line_of(c)
    assert decode_commit(line_of(c)) == c
