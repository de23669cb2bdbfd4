"""SortedKeys behaves as a sorted list of distinct keys, whatever the order of insertions and removals."""

import bisect

from hypothesis import given
from hypothesis import strategies as st

from schedy.core import sortedkeys
from schedy.core.sortedkeys import SortedKeys

keys = st.tuples(st.integers(-20, 20), st.integers(0, 5))


@given(st.lists(st.tuples(st.booleans(), keys), max_size=200), st.lists(keys, max_size=10))
def test_sorted_keys_agree_with_a_sorted_list(ops, probes):
    chunk = sortedkeys.CHUNK
    sortedkeys.CHUNK = 2  # chunks split and empty after a handful of keys, as they do at 512 on large rungs
    try:
        got, model = SortedKeys(), []
        for add, key in ops:
            if add and key not in model:
                got.add(key)
                bisect.insort(model, key)
            elif not add:
                got.discard(key)
                if key in model:
                    model.remove(key)
            assert list(got) == model and len(got) == len(model)
            assert all(len(c) <= 2 * sortedkeys.CHUNK for c in got._chunks) and all(got._chunks)
            if model:
                assert got.first() == model[0]
            for p in probes + model:
                assert got.index(p) == bisect.bisect_left(model, p)
    finally:
        sortedkeys.CHUNK = chunk


def test_the_first_key_of_an_empty_collection_is_an_index_error():
    empty = SortedKeys([(1, 0)])
    empty.discard((1, 0))
    try:
        empty.first()
        raise AssertionError("an empty collection has no first key")
    except IndexError:
        pass
    assert empty.index((0, 0)) == 0 and len(empty) == 0
