"""JobTable behaves as an immutable dict of job id -> job, whatever the order of changes."""

import gc

from hypothesis import given
from hypothesis import strategies as st

from schedy.core.jobtable import BLOCK, HISTORY, JobTable

ids = st.integers(1, 3 * BLOCK + 5).map(str)
ops = st.lists(st.tuples(st.sampled_from(["set", "remove", "discard"]), ids, st.integers()), max_size=80)


@given(ops)
def test_a_table_is_an_immutable_dict(changes):
    table, model, versions = JobTable(), {}, []
    for op, job_id, value in changes:
        before, before_model = table, dict(model)
        if op == "set":
            table = table.set(job_id, value)
            model[job_id] = value
        elif job_id in model:
            table = table.remove(job_id) if op == "remove" else table.discard(job_id)
            del model[job_id]
        else:
            assert table.discard(job_id) is table
            try:
                table.remove(job_id)
                raise AssertionError("removing a missing job must raise")
            except KeyError:
                pass
        assert dict(before.items()) == before_model  # the old version never changes
        versions.append((table, dict(model)))
    for t, m in versions:
        assert len(t) == len(m) and dict(t.items()) == m and sorted(t) == sorted(m) and sorted(t.keys()) == sorted(m)
        assert sorted(t.values()) == sorted(m.values())
        assert all(job_id in t and t[job_id] == v and t.get(job_id) == v for job_id, v in m.items())
        # Equal contents are equal tables, however they were reached.
        assert t == JobTable.of(m.items()) and t == m


@given(st.lists(st.tuples(st.booleans(), st.integers(1, 3 * BLOCK + 5).map(str), st.integers()), max_size=60))
def test_a_table_names_the_jobs_changed_since_any_of_its_last_ancestors(changes):
    """``changes_since`` (what the ASHA ladder follows a table by) lists exactly the jobs that differ from a
    recent ancestor, and says it cannot tell for a version further back or not an ancestor."""
    table = JobTable()
    versions = [(table, 0)]  # (a version, how many changes made it)
    for n, (put, job_id, value) in enumerate(changes):
        table = table.set(job_id, value) if put or job_id not in table else table.remove(job_id)
        versions.append((table, n + 1))
    for old, i in versions:
        for new, j in versions:
            got = new.changes_since(old._blocks)
            if i <= j <= i + HISTORY:
                assert got is not None, (i, j)
            if got is None:
                continue
            assert j >= i  # only an ancestor's changes are known
            before, after = dict(old.items()), dict(new.items())
            assert len({job_id for job_id, _, _ in got}) == len(got)
            assert {job_id for job_id, was, now in got if was is not now} == {
                k for k in before.keys() | after.keys() if before.get(k) is not after.get(k)
            }
            assert all(was is before.get(k) and now is after.get(k) for k, was, now in got)


def test_ids_that_are_not_job_numbers_are_never_found():
    table = JobTable().set("1", "a")
    for bad in ("01", "x", "", "١", "1.0", None, 1, "9" * 100_000):
        assert bad not in table and table.get(bad) is None
    assert table.get("2", "default") == "default"
    try:
        table.set("x", "b")
        raise AssertionError("a job id must be a number")
    except ValueError:
        pass


def test_a_change_leaves_little_for_the_garbage_collector_to_walk():
    """The reason for the blocks: a new version holds no young container of the size of the table."""
    table = JobTable.of((str(n), (n,)) for n in range(1, 20 * BLOCK))
    gc.collect()
    table = table.set("7", ("changed",))
    young = [o for o in gc.get_objects(0) if hasattr(o, "__len__") and o is not table]
    assert max(len(o) for o in young) <= 2 * BLOCK


def test_snapshots_of_large_experiments_are_spaced_in_proportion_to_their_jobs():
    from types import SimpleNamespace

    from schedy.core.snapshot import JOBS_PER_COMMIT, due, interval

    def state(jobs, version=0):
        return SimpleNamespace(jobs=range(jobs), version=version)

    assert interval(state(10), 1000) == 1000 and interval(state(1000 * JOBS_PER_COMMIT), 1000) == 1000
    assert interval(state(1000 * JOBS_PER_COMMIT + 1), 1000) == 2000
    assert interval(state(100_000), 1000) == 8000 and interval(state(100_000), 3) == 12288
    for jobs in (5, 50_000, 10**6):
        n = interval(state(jobs), 1000)
        assert n * JOBS_PER_COMMIT >= jobs and (n == 1000 or (n // 2) * JOBS_PER_COMMIT < jobs)
        assert due(state(jobs, 3 * n), 1000) and not due(state(jobs, 3 * n + 1), 1000)


@given(st.lists(st.integers(min_value=0, max_value=5 * BLOCK), unique=True))
def test_in_order_lists_the_jobs_by_number_whatever_the_order_they_were_set(numbers):
    table = JobTable()
    for n in numbers:
        table = table.set(str(n), ("job", n))
    assert list(table.in_order()) == [("job", n) for n in sorted(numbers)]


def test_a_snapshot_encodes_the_same_bytes_with_its_memo_of_unchanged_blocks():
    """The memo skips re-encoding blocks a later version shares; it must never change a byte."""
    from hypothesis import settings

    from schedy.core.snapshot import decode_snapshot, encode_snapshot
    from schedy.core.state import ExperimentState, JobState

    def job(n, status, x):
        return JobState(
            str(n),
            n,
            status,
            {"x": x},
            {"loss": [x, None]} if status == "DONE" else {},
            None,
            None,
            None,
            n,
            n,
            None,
            None,
        )

    def state(table, version):
        return ExperimentState(
            "e",
            "manual",
            {"scheduler": {"Manual": {}}},
            "RUNNING",
            7,
            False,
            table,
            max([0, *map(int, table)]) + 1,
            (),
            0,
            0,
            version,
            1,
        )

    changes = st.lists(
        st.tuples(
            st.integers(1, 4 * BLOCK),
            st.sampled_from(["QUEUED", "DONE", "gone"]),
            st.floats(allow_nan=False, allow_infinity=False),
        ),
        min_size=1,
        max_size=60,
    )

    @settings(max_examples=60, deadline=None)
    @given(st.lists(changes, min_size=1, max_size=6))
    def check(batches):
        table, memo = JobTable.of_jobs([job(n, "QUEUED", 0.5) for n in range(1, 2 * BLOCK)]), {}
        for version, batch in enumerate(batches, 2):
            for n, status, x in batch:
                table = table.discard(str(n)) if status == "gone" else table.set(str(n), job(n, status, x))
            s = state(table, version)
            data = encode_snapshot(s, 10 * version, "0badcafe", memo)
            assert data == encode_snapshot(s, 10 * version, "0badcafe")
            assert decode_snapshot(data)[0].jobs == table
            assert len(memo) == len(table.blocks())  # only the blocks of the last snapshot are kept

    check()
