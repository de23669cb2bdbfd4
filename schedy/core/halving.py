"""Successive halving, asynchronous: ASHA and Hyperband as a pure proposal step.

Each job trains one configuration up to one *rung*. A configuration is a
member (``job.member``); its first job is at rung 0 (``job.generation``) with
no parent, and a *promotion* is a new job of the same member at the next rung,
whose ``parent`` is the job it continues from (its checkpoint). The resource a
job trains to (epochs, steps: the unit is the user's) follows from the
definition, the member's bracket and the rung (:meth:`Config.resource`).

When a worker asks for work and no queued job waits, :func:`propose` applies
the rule of Li et al. (2018), "A System for Massively Parallel Hyperparameter
Tuning": in each bracket, from the highest rung that can promote down to rung
0, the DONE jobs of the rung are ranked by their score; the best of the top
``floor(n / reduction_factor)`` of them that has not been promoted yet (no
job of the next rung has it as parent) is promoted. With several brackets
(Hyperband, Li et al. 2017, run asynchronously as Ray Tune and Optuna do), the
promotion to the largest resource wins, then the lowest bracket. With no
promotion to make, a new configuration is sampled from the distributions at
rung 0 of the next member's bracket. ``max_jobs`` caps the number of jobs,
promotions included: once the experiment has that many, nothing more is
proposed, and it is finished once no job is queued or running (a job deleted by
hand no longer counts).

See docs/asha.md for the rules with a worked example.
"""

import math
from dataclasses import dataclass
from functools import cached_property

from . import distributions, values
from . import events as ev
from .outcomes import Proposal, budget_spent
from .sortedkeys import SortedKeys

MINIMIZE = "min"
MAXIMIZE = "max"

KINDS = {"asha": "ASHA", "hyperband": "Hyperband"}  # experiment kind -> the key of its log params

_KEYS = ("distributions", "resultName", "objective", "minResource", "maxResource", "reductionFactor", "maxJobs")


def _positive(name, x, integer=False):
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x) or not x > 0:
        raise ValueError(f"{name} must be a positive {'integer' if integer else 'number'}, got {x!r}")
    if integer and not isinstance(x, int):
        raise ValueError(f"{name} must be a positive integer, got {x!r}")
    return x


@dataclass(frozen=True)
class Config:
    """An ASHA or Hyperband definition in Python form (what the log's params hold).

    ``brackets`` is 1 for ASHA; Hyperband runs every bracket the resources allow (:attr:`bracket_count`).
    """

    kind: str
    distributions: dict
    result_name: str
    objective: str = MINIMIZE
    min_resource: float = 1
    max_resource: float = 81
    reduction_factor: float = 3
    max_jobs: int | None = None

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"successive halving kinds are {', '.join(KINDS)}, got {self.kind!r}")
        distributions.check_distributions(self.distributions)
        if not self.distributions:
            raise ValueError("distributions must name at least one hyperparameter to sample configurations from")
        if not isinstance(self.result_name, str) or not self.result_name:
            raise ValueError(f"result_name must be a non-empty string, got {self.result_name!r}")
        if self.objective not in (MINIMIZE, MAXIMIZE):
            raise ValueError(
                f"objective must be schedy.pbt.MINIMIZE ('min') or MAXIMIZE ('max'), got {self.objective!r}"
            )
        _positive("min_resource", self.min_resource)
        _positive("max_resource", self.max_resource)
        if self.max_resource < self.min_resource:
            raise ValueError(
                f"max_resource ({self.max_resource!r}) must be at least min_resource ({self.min_resource!r})"
            )
        eta = self.reduction_factor
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not math.isfinite(eta) or not eta > 1:
            raise ValueError(f"reduction_factor must be a number greater than 1, got {eta!r}")
        if self.max_jobs is not None:
            _positive("max_jobs", self.max_jobs, integer=True)
        if self.rung_count > 64:
            raise ValueError(
                f"max_resource / min_resource = {self.max_resource / self.min_resource:g} makes "
                f"{self.rung_count} rungs with reduction_factor {eta!r}; at most 64 are allowed"
            )

    # -- the ladder of resources ----------------------------------------------------------------

    @cached_property
    def rung_count(self):
        """The number of rungs of bracket 0: rung k trains to ``min_resource * reduction_factor ** k``, the last to
        ``max_resource``."""
        ratio = self.max_resource / self.min_resource
        k = 0
        while self.reduction_factor ** (k + 1) <= ratio * (1 + 1e-12):
            k += 1
        return k + 1

    @property
    def bracket_count(self):
        """1 for ASHA; for Hyperband, one bracket per rung of bracket 0 (bracket b starts at its rung b)."""
        return 1 if self.kind == "asha" else self.rung_count

    def rungs(self, bracket):
        """How many rungs a configuration of ``bracket`` can climb."""
        return self.rung_count - bracket

    def resource(self, bracket, rung):
        """The resource a job of ``bracket`` at ``rung`` trains to (in total, from scratch)."""
        k = bracket + rung
        if k >= self.rung_count - 1:
            return self.max_resource
        r = self.min_resource * self.reduction_factor**k
        return int(round(r)) if isinstance(self.min_resource, int) and isinstance(self.reduction_factor, int) else r

    def resource_of(self, member, rung):
        """The resource a job of configuration ``member`` at ``rung`` trains to (in its bracket)."""
        return self.resource(self.bracket_of(member), rung)

    def bracket_of(self, member):
        """The bracket of configuration ``member``: brackets take turns in proportion to Hyperband's sizes.

        Bracket b gets ``ceil(B / (B - b) * eta ** (B - b - 1))`` of every ``sum`` of those configurations (B
        brackets), as in Hyperband, and the turns are spread by a stride coprime with the sum, so that every
        bracket starts early instead of one after the other. ASHA has the single bracket 0.
        """
        if self.bracket_count == 1:
            return 0
        turns = self._turns
        return turns[(member * _stride(len(turns))) % len(turns)]

    @cached_property
    def _turns(self):
        """Bracket b repeated as many times as it gets configurations per cycle, in bracket order."""
        return [b for b, n in enumerate(_bracket_sizes(self.bracket_count, self.reduction_factor)) for _ in range(n)]

    # -- the log form ---------------------------------------------------------------------------

    def to_log(self):
        return {
            "scheduler": {
                KINDS[self.kind]: {
                    "distributions": {n: d.to_log() for n, d in self.distributions.items()},
                    "resultName": self.result_name,
                    "objective": self.objective,
                    "minResource": self.min_resource,
                    "maxResource": self.max_resource,
                    "reductionFactor": self.reduction_factor,
                    "maxJobs": self.max_jobs,
                }
            }
        }

    @classmethod
    def from_log(cls, params, kind):
        """The Config of ``params`` (an experiment of ``kind``); ValueError naming what is wrong."""
        args = distributions.scheduler_args(params, KINDS[kind], kind)
        distributions.check_keys(kind, args, _KEYS, ("distributions", "resultName"))
        parsed = distributions.named_from_log(args["distributions"], kind)
        try:
            return cls(
                kind,
                parsed,
                args["resultName"],
                args.get("objective", MINIMIZE),
                args.get("minResource", 1),
                args.get("maxResource", 81),
                args.get("reductionFactor", 3),
                args.get("maxJobs"),
            )
        except TypeError as e:
            raise ValueError(str(e)) from None


def _bracket_sizes(count, eta):
    # Hyperband's bracket s (0 = most exploratory) starts n_s = ceil(B / (s + 1) * eta ** s) configurations;
    # here bracket b = B - 1 - s starts at rung b of bracket 0.
    return [math.ceil(count / (count - b) * eta ** (count - b - 1)) for b in range(count)]


def _stride(total):
    """A step near total / golden ratio that is coprime with ``total`` (it visits every slot once per cycle)."""
    step = max(1, round(total * 0.6180339887))
    while math.gcd(step, total) != 1:
        step += 1
    return step


# -- the decision ---------------------------------------------------------------------------------


def score(job, config):
    """The job's score as a number where lower is better, or None if it has none (a report without it)."""
    raw = job.results.get(config.result_name)
    if raw is None:
        return None
    x = values.decode(raw)
    if isinstance(x, bool) or not isinstance(x, (int, float)) or math.isnan(x):
        return None
    return x if config.objective == MINIMIZE else -x


class Ladder:
    """The completed jobs of each (bracket, rung) of one job table, ranked, and which of them are promoted.

    ``ranked[(bracket, rung)]`` holds the sorted keys ``(score, number, job id)`` of the rung's DONE jobs with a
    score, ``free[(bracket, rung)]`` those of them no job continues from yet. A ladder follows one table to the
    next through the jobs the table changed since (:meth:`JobTable.changes_since`; every block is compared when
    it cannot say), so a decision costs what changed since the last one, not the size of the
    experiment.
    """

    def __init__(self, config):
        self.config = config
        self.blocks = {}  # the table's blocks the ladder describes
        self.ranked, self.free = {}, {}
        self.key = {}  # job id -> its key in ranked, for the jobs that have one
        self.children = {}  # job id -> how many jobs continue from it (in any status)

    def follow(self, table):
        """Update the ladder to describe ``table`` (a JobTable)."""
        old, new = self.blocks, table._blocks
        changes = table.changes_since(old)
        if changes is None:  # too far apart: compare the blocks (the same block object holds the same jobs)
            changes = []
            for b in old.keys() | new.keys():
                ob, nb = old.get(b) or {}, new.get(b) or {}
                if ob is not nb:
                    changes.extend((j, ob.get(j), nb.get(j)) for j in ob.keys() | nb.keys())
        for _, was, now in changes:
            if was is not now:
                if was is not None:
                    self._remove(was)
                if now is not None:
                    self._add(now)
        self.blocks = new

    def _place(self, job):
        if job.member is None or job.generation is None or job.status != ev.DONE:
            return None, None  # not ranked (a job without them cannot come from a log Schedy wrote)
        s = score(job, self.config)
        return (None, None) if s is None else ((self.config.bracket_of(job.member), job.generation), (s, job.number))

    def _add(self, job):
        if job.parent is not None:
            n = self.children.get(job.parent, 0)
            self.children[job.parent] = n + 1
            if n == 0 and job.parent in self.key:
                rung, key = self.key[job.parent]
                self._keys(self.free, rung).discard(key)
        rung, key = self._place(job)
        if rung is not None:
            key = (*key, job.job_id)
            self.key[job.job_id] = (rung, key)
            self._keys(self.ranked, rung).add(key)
            if not self.children.get(job.job_id):
                self._keys(self.free, rung).add(key)

    def _remove(self, job):
        if job.parent is not None:
            n = self.children[job.parent] - 1
            if n:
                self.children[job.parent] = n
            else:
                del self.children[job.parent]
                if job.parent in self.key:
                    rung, key = self.key[job.parent]
                    self._keys(self.free, rung).add(key)
        placed = self.key.pop(job.job_id, None)
        if placed is not None:
            rung, key = placed
            self._keys(self.ranked, rung).discard(key)
            self._keys(self.free, rung).discard(key)

    def candidate(self, bracket, rung):
        """The id of the job of ``(bracket, rung)`` to promote, or None: the best not promoted yet, if it is
        in the top ``floor(n / reduction_factor)`` of the n ranked."""
        free = self.free.get((bracket, rung))
        if not free:
            return None
        ranked, best = self.ranked[(bracket, rung)], free.first()
        if ranked.index(best) < math.floor(len(ranked) / self.config.reduction_factor):
            return best[2]
        return None

    @staticmethod
    def _keys(rungs, rung):
        keys = rungs.get(rung)
        if keys is None:
            keys = rungs[rung] = SortedKeys()
        return keys


_LADDERS: dict = {}  # id(config) -> (config, Ladder): the ladder of the table last decided on


def promotion(state, config):
    """The job to promote now (a JobState), or None: see the module's docstring for the rule."""
    # Taken out of the cache while in use (dict.pop is atomic): a thread deciding at the same time on another
    # view builds a ladder of its own instead of updating this one under our feet. The last one put back stays.
    held = _LADDERS.pop(id(config), None)
    ladder = held[1] if held is not None and held[0] is config else Ladder(config)
    ladder.follow(state.jobs)
    best = None  # ((resource, -bracket), job id)
    for b in range(config.bracket_count):
        for rung in range(config.rungs(b) - 2, -1, -1):
            job_id = ladder.candidate(b, rung)
            if job_id is not None:
                key = (config.resource(b, rung + 1), -b)
                if best is None or key > best[0]:
                    best = (key, job_id)
                break  # the highest rung of this bracket that can promote
    if len(_LADDERS) >= 16:
        _LADDERS.clear()
    _LADDERS[id(config)] = (config, ladder)
    return None if best is None else state.jobs[best[1]]


def propose(state, rng, config):
    """The next job when none is queued: a promotion, a new configuration, Waiting or Finished."""
    spent = budget_spent(state, config.max_jobs)
    if spent is not None:
        return spent
    job = promotion(state, config)
    if job is not None:
        return Proposal(
            {
                "hyperparameters": job.hyperparameters,
                "results": {},
                "generation": job.generation + 1,
                "parent": job.job_id,
                "member": job.member,
            }
        )
    hps = {name: values.encode(d.sample(rng)) for name, d in config.distributions.items()}
    return Proposal(
        {"hyperparameters": hps, "results": {}, "generation": 0, "parent": None, "member": len(state.members)}
    )
