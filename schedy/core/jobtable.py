"""The immutable table of an experiment's jobs: job id -> JobState, in blocks of consecutive job numbers.

Each version of the table is a small dict of blocks, each block a dict of at
most ``BLOCK`` jobs; a change copies the block it touches and the dict of
blocks, and shares every other block with the version before. Nothing is
ever mutated after it is built, so versions are values, as with pyrsistent.

Why not one pyrsistent ``pmap``: each commit makes a new version of the table,
and Python's cyclic garbage collector, at every young-generation collection,
walks the whole bucket vector of the newest ``pmap`` (its C vector is one
object to the collector). On a 100,000-job experiment that walk cost ten
times the commit itself. Here a collection walks about ``BLOCK`` entries
whatever the size of the experiment, and reading a job or listing all of
them runs at the speed of Python's dicts.
"""

BLOCK = 512
MAX_DIGITS = 30
HISTORY = 16  # how many changes back a table can name the jobs they touched (Ladder.follow reads them)


_recent: dict = {}  # job id -> its block, for the ids seen lately: a commit looks up its job a dozen times


def _block(job_id):
    # Job ids are job numbers written in decimal; anything else (or a number no log can reach, which int()
    # would take long to read) is in no block, and so never found.
    if type(job_id) is not str:
        return None
    b = _recent.get(job_id)
    if b is None and len(job_id) <= MAX_DIGITS and job_id.isascii() and job_id.isdigit():
        if len(_recent) >= 1024:
            _recent.clear()
        b = _recent[job_id] = int(job_id) // BLOCK
    return b


class JobTable:
    """An immutable mapping of job id to JobState with the part of pyrsistent's PMap API the core uses."""

    __slots__ = ("_blocks", "_size", "_history")

    def __init__(self, blocks=None, size=0, history=()):
        self._blocks, self._size = {} if blocks is None else blocks, size
        # (the blocks of a version before, the job changed from it), oldest first: the last HISTORY changes
        # that made this version, so that a reader of an older version can find what changed without comparing
        # every block. It holds at most HISTORY dicts of blocks alive (a few hundred kB at 100,000 jobs).
        self._history = history

    @classmethod
    def of_jobs(cls, jobs, checked=False):
        """A table of ``jobs`` (JobStates), each under its id, which must be its number in decimal.

        ``checked``: the caller has made sure of that already.
        """
        blocks = {}
        for job in jobs:
            blocks.setdefault(job.number // BLOCK, {})[job.job_id] = job
        table = cls(blocks, sum(len(j) for j in blocks.values()))
        if not checked and (len(table) != len(jobs) or any(job.job_id != str(job.number) for job in jobs)):
            raise ValueError("job ids must be the job numbers, each once")
        return table

    @classmethod
    def of(cls, items):
        """A table holding the ``(job_id, job)`` pairs of ``items``."""
        blocks = {}
        for job_id, job in items:
            blocks.setdefault(_block(job_id), {})[job_id] = job
        if None in blocks:
            raise ValueError(f"job ids must be job numbers such as '1', got {sorted(blocks[None])[:3]!r}")
        return cls(blocks, sum(len(j) for j in blocks.values()))

    def get(self, job_id, default=None):
        block = self._blocks.get(_block(job_id))
        return default if block is None else block.get(job_id, default)

    def __getitem__(self, job_id):
        block = self._blocks.get(_block(job_id))
        if block is None:
            raise KeyError(job_id)
        return block[job_id]

    def __contains__(self, job_id):
        block = self._blocks.get(_block(job_id))
        return block is not None and job_id in block

    def __len__(self):
        return self._size

    def __iter__(self):
        for block in self._blocks.values():
            yield from block

    def keys(self):
        return [job_id for block in self._blocks.values() for job_id in block]

    def values(self):
        return [job for block in self._blocks.values() for job in block.values()]

    def items(self):
        return [item for block in self._blocks.values() for item in block.items()]

    def blocks(self):
        """The blocks (dicts of job id -> JobState, never to be mutated), in the order of their job numbers.

        An unchanged block is the same object in every version of the table that holds it.
        """
        return [self._blocks[b] for b in sorted(self._blocks)]

    def in_order(self):
        """Every job, by job number (the order jobs were added), sorting one block at a time as it goes."""
        for b in sorted(self._blocks):
            block = self._blocks[b]
            for job_id in sorted(block, key=int):
                yield block[job_id]

    def set(self, job_id, job):
        """The table with ``job_id`` mapped to ``job``."""
        b = _block(job_id)
        if b is None:
            raise ValueError(f"a job id is a job number such as '1', got {job_id!r}")
        block = dict(self._blocks.get(b, ()))
        size = self._size + (job_id not in block)
        block[job_id] = job
        blocks = dict(self._blocks)
        blocks[b] = block
        return JobTable(blocks, size, self._changed(job_id))

    def remove(self, job_id):
        """The table without ``job_id``; raise KeyError if it is not there."""
        b = _block(job_id)
        block = self._blocks.get(b)
        if block is None or job_id not in block:
            raise KeyError(job_id)
        block = {k: v for k, v in block.items() if k != job_id}
        blocks = dict(self._blocks)
        if block:
            blocks[b] = block
        else:
            del blocks[b]  # an emptied block goes too, so that equal contents mean equal tables
        return JobTable(blocks, self._size - 1, self._changed(job_id))

    def _changed(self, job_id):
        return (*self._history[1 - HISTORY :], (self._blocks, job_id))

    def changes_since(self, blocks):
        """``(job id, value then, value now)`` for each job that differs between the version of this table whose
        ``_blocks`` are ``blocks`` and this one (None for a job absent), or None when this table cannot say
        (that version is not one of its last HISTORY ancestors): then compare the blocks."""
        changed = set()
        if blocks is not self._blocks:
            for before, job_id in reversed(self._history):
                changed.add(job_id)
                if before is blocks:
                    break
            else:
                return None
        return [(j, blocks.get(_block(j), {}).get(j), self.get(j)) for j in changed]

    def discard(self, job_id):
        return self.remove(job_id) if job_id in self else self

    def __eq__(self, other):
        if isinstance(other, JobTable):
            return self._size == other._size and self._blocks == other._blocks
        try:
            return len(other) == self._size and all(k in other and other[k] == v for k, v in self.items())
        except TypeError:
            return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # equal by value, and mutable-looking: not hashable

    def __repr__(self):
        return f"JobTable({dict(self.items())!r})"
