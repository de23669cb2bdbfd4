"""A sorted collection of distinct keys whose insertions and removals cost the same at any size.

A plain sorted list moves every key after the insertion point: at 100,000 keys that memmove is most of a
decision. Here the keys live in chunks of at most ``2 * CHUNK`` sorted keys, found by bisecting the chunks'
largest keys, so an insertion moves at most a chunk.
"""

import bisect

CHUNK = 512


class SortedKeys:
    """Distinct, mutually comparable keys in ascending order."""

    __slots__ = ("_chunks", "_maxes", "_len")

    def __init__(self, keys=()):
        self._chunks: list[list] = []
        self._maxes: list = []  # the last (largest) key of each chunk
        self._len = 0
        for k in keys:
            self.add(k)

    def __len__(self):
        return self._len

    def __iter__(self):
        for chunk in self._chunks:
            yield from chunk

    def first(self):
        """The smallest key; IndexError if there is none."""
        return self._chunks[0][0]

    def add(self, key):
        """Insert ``key`` (not already present)."""
        if not self._chunks:
            self._chunks.append([key])
            self._maxes.append(key)
            self._len = 1
            return
        i = min(bisect.bisect_left(self._maxes, key), len(self._chunks) - 1)
        chunk = self._chunks[i]
        bisect.insort(chunk, key)
        self._maxes[i] = chunk[-1]
        self._len += 1
        if len(chunk) > 2 * CHUNK:
            self._chunks[i : i + 1] = [chunk[:CHUNK], chunk[CHUNK:]]
            self._maxes[i : i + 1] = [chunk[CHUNK - 1], chunk[-1]]

    def discard(self, key):
        """Remove ``key`` if it is present."""
        i = bisect.bisect_left(self._maxes, key)
        if i == len(self._chunks):
            return
        chunk = self._chunks[i]
        j = bisect.bisect_left(chunk, key)
        if j == len(chunk) or chunk[j] != key:
            return
        del chunk[j]
        self._len -= 1
        if chunk:
            self._maxes[i] = chunk[-1]
        else:
            del self._chunks[i], self._maxes[i]

    def index(self, key):
        """How many keys are smaller than ``key``."""
        i = bisect.bisect_left(self._maxes, key)
        below = sum(len(c) for c in self._chunks[:i])
        return below if i == len(self._chunks) else below + bisect.bisect_left(self._chunks[i], key)
