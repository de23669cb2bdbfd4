"""Population Based Training as a pure generation step.

Each training segment of a member is one job. When a worker asks for work and
no queued job waits, :func:`propose` picks the ready member that is furthest
behind, ranks it against the other members' segments of the same generation
(or, in logs written before that rule, their latest), lets the member exploit
(copy a better member's weights and hyperparameters) and explore (perturb what
it copied, or ask PB2's bandit), and returns the next segment as a new job.
See docs/pbt.md for the full semantics.
"""

import math
from dataclasses import dataclass

from . import distributions, values
from . import events as ev
from .outcomes import Empty, Finished, Proposal, Waiting
from .pb2 import PB2

MINIMIZE = "min"
MAXIMIZE = "max"

SAME_GENERATION = "generation"
"""Ranking rule: a member that finished generation g is ranked against the others' segments of generation g."""
LATEST = "latest"
"""Ranking rule of logs written before ``ranking`` existed: against each member's latest finished segment."""
RANKINGS = (SAME_GENERATION, LATEST)


def _number(name, x, positive=False):
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        raise ValueError(f"{name} must be a finite number, got {x!r}")
    if positive and not x > 0:
        raise ValueError(f"{name} must be positive, got {x!r}")
    return x


def _bounds(owner, low, high):
    if low is not None:
        _number(f"{owner} low", low)
    if high is not None:
        _number(f"{owner} high", high)
    if low is not None and high is not None and not low < high:
        raise ValueError(f"{owner} needs low < high, got low={low!r}, high={high!r}")


def _clamp(x, low, high, integer):
    if low is not None:
        x = max(x, math.ceil(low) if integer else low)
    if high is not None:
        x = min(x, math.floor(high) if integer else high)
    return x


def _better(a, b, objective):
    """True if score ``a`` is strictly better than ``b``; NaN is worse than everything."""
    if math.isnan(a):
        return False
    if math.isnan(b):
        return True
    return a < b if objective == MINIMIZE else a > b


# -- exploit strategies -------------------------------------------------------------------------


class _Wait:
    def __repr__(self):
        return "WAIT"


WAIT = _Wait()
"""What an exploit strategy's ``choose`` returns when the scores still pending would change its choice."""


@dataclass(frozen=True)
class Truncate:
    """A member in the bottom ``proportion`` of the ranking continues from one drawn uniformly from the top one."""

    proportion: float = 0.2

    def __post_init__(self):
        _number("Truncate proportion", self.proportion)
        if not 0 < self.proportion <= 0.5:
            raise ValueError(f"Truncate needs 0 < proportion <= 0.5, got {self.proportion!r}")

    def to_log(self):
        return {"truncate": self.proportion}

    def choose(self, ranking, member, own, rng, objective, eligible, pending=0):
        """The member to copy, None, or :data:`WAIT`.

        ``pending`` members will be ranked too but have no score yet: the
        member decides only once their scores, whatever they are, cannot
        change whether it is in the bottom, and it copies only members that
        are in the top whatever those scores are.
        """
        n = len(ranking) + pending
        k = int(n * self.proportion)
        members = [m for m, _ in ranking]
        if k == 0 or member not in members:
            return None
        if own == (-math.inf if objective == MINIMIZE else math.inf):
            return None  # no score is strictly better: it never copies, wherever it ranks
        position = members.index(member)
        if position + pending < n - k:
            return None  # in the upper part, even if every pending member ranks above it
        if position < n - k:
            return WAIT  # in the bottom or not, depending on the pending scores
        # Ties across the cut copy nothing: a member only ever copies a strictly better one.
        top = k - pending  # the members in the top whatever the pending scores
        better = [m for m, s in ranking[: max(top, 0)] if m in eligible and _better(s, own, objective)]
        if better:
            return better[int(rng.integers(len(better)))]
        # None surely in the top is better; a pending member may yet be, or push a better one into the top.
        return WAIT if pending else None


@dataclass(frozen=True)
class BinaryTournament:
    """A member compares itself with one other member drawn at random and copies it if that one is better."""

    def to_log(self):
        return {"binaryTournament": {}}

    def choose(self, ranking, member, own, rng, objective, eligible, pending=0):
        """The member to copy, or None: one other ranked member drawn at random, if it is strictly better."""
        others = [(m, s) for m, s in ranking if m != member and m in eligible]
        if not others:
            return None
        m, s = others[int(rng.integers(len(others)))]
        return m if _better(s, own, objective) else None


@dataclass(frozen=True)
class Keep:
    """Every member continues from its own last segment, never another's; explore then changes its own values.

    With ``explore``, an explore-only baseline (every segment perturbs the
    member's own hyperparameters); without, each member trains on with the
    values it started with, like a grid search run in segments.
    """

    def to_log(self):
        return {"keep": {}}

    def choose(self, ranking, member, own, rng, objective, eligible, pending=0):
        """Always ``member`` itself."""
        return member


Exploit = Truncate | BinaryTournament | Keep
"""When a member continues from a better one (the type of ``exploit``)."""


def exploit_from_log(d):
    """The exploit strategy of log form ``d``; ValueError naming what is wrong."""
    if isinstance(d, dict) and len(d) == 1:
        ((name, arg),) = d.items()
        if name == "truncate":
            return Truncate(arg)  # checks the proportion
        if name in ("binaryTournament", "keep"):
            if not (isinstance(arg, dict) and not arg):
                raise ValueError(f"{name} takes no arguments, got {arg!r}; write {{{name!r}: {{}}}}")
            return BinaryTournament() if name == "binaryTournament" else Keep()
    raise ValueError(
        f"unknown exploit strategy {d!r}; expected {{'truncate': p}}, {{'binaryTournament': {{}}}} or {{'keep': {{}}}}"
    )


# -- explore strategies -------------------------------------------------------------------------


@dataclass(frozen=True)
class Perturb:
    """Multiply the value by a factor drawn uniformly in ``[min_factor, max_factor)``.

    ``discrete=True`` draws one of the two factors instead (the paper's 0.8 or
    1.2). ``low``/``high`` clamp the result. Integers stay integers and move
    by at least 1. A hyperparameter whose initial distribution is a
    ``Choice`` moves to a neighbouring value of the choice instead.
    """

    min_factor: float = 0.8
    max_factor: float = 1.2
    low: float | None = None
    high: float | None = None
    discrete: bool = False

    def __post_init__(self):
        _number("Perturb min_factor", self.min_factor, positive=True)
        _number("Perturb max_factor", self.max_factor, positive=True)
        if not self.min_factor <= self.max_factor:
            raise ValueError(f"Perturb needs min_factor <= max_factor, got {self.min_factor!r} > {self.max_factor!r}")
        _bounds("Perturb", self.low, self.high)
        if not isinstance(self.discrete, bool):
            raise TypeError(f"Perturb discrete must be True or False, got {self.discrete!r}")

    def to_log(self):
        args = {"minFactor": self.min_factor, "maxFactor": self.max_factor}
        for key, val in (("low", self.low), ("high", self.high)):
            if val is not None:
                args[key] = val
        if self.discrete:
            args["discrete"] = True
        return {"perturb": args}

    def apply(self, value, rng, choices=None):
        if choices is not None and value in choices:
            if len(choices) == 1:
                return value
            i = choices.index(value)
            j = i + (1 if rng.random() < 0.5 else -1)
            j = 1 if j < 0 else (len(choices) - 2 if j >= len(choices) else j)
            return values.decode(values.encode(choices[j]))
        if not _is_number(value):
            return value  # e.g. a value a Resample drew from outside the initial Choice: nothing to multiply
        if self.discrete:
            factor = self.min_factor if rng.random() < 0.5 else self.max_factor
        else:
            factor = float(rng.uniform(self.min_factor, self.max_factor))
        new = value * factor
        if type(value) is int:
            moved = round(new)
            if moved == value and new != value:
                moved = value + (1 if new > value else -1)
            return int(_clamp(moved, self.low, self.high, True))
        return float(_clamp(new, self.low, self.high, False))


@dataclass(frozen=True)
class Resample:
    """With probability ``probability``, draw a fresh value from ``distribution`` (and skip the strategies after it)."""

    distribution: distributions.Distribution
    probability: float = 0.25

    def __post_init__(self):
        if not isinstance(self.distribution, distributions.Distribution):
            raise TypeError(f"Resample needs a schedy.random distribution, got {type(self.distribution).__name__}")
        _number("Resample probability", self.probability)
        if not 0 <= self.probability <= 1:
            raise ValueError(f"Resample probability must lie in [0, 1], got {self.probability!r}")

    def to_log(self):
        return {"resample": {"distribution": self.distribution.to_log(), "probability": self.probability}}


@dataclass(frozen=True)
class AddNoise:
    """Add Gaussian noise of standard deviation ``scale`` (works where a factor cannot move a value, such as 0)."""

    scale: float
    low: float | None = None
    high: float | None = None

    def __post_init__(self):
        _number("AddNoise scale", self.scale, positive=True)
        _bounds("AddNoise", self.low, self.high)

    def to_log(self):
        args = {"scale": self.scale}
        for key, val in (("low", self.low), ("high", self.high)):
            if val is not None:
                args[key] = val
        return {"noise": args}

    def apply(self, value, rng, choices=None):
        if not _is_number(value):
            return value
        new = value + float(rng.normal(0.0, self.scale))
        if type(value) is int:
            return int(_clamp(round(new), self.low, self.high, True))
        return float(_clamp(new, self.low, self.high, False))


EXPLORE_TYPES = (Perturb, Resample, AddNoise)
Explore = Perturb | Resample | AddNoise
"""How a copied hyperparameter changes (the values of an ``explore`` dict)."""


EXPLORE_ARGUMENTS = {
    "perturb": (("minFactor", "maxFactor", "low", "high", "discrete"), ()),
    "resample": (("distribution", "probability"), ("distribution",)),
    "noise": (("scale", "low", "high"), ("scale",)),
}
"""Per explore strategy of the log form, the names of its arguments and those of them that are required."""


def explore_from_log(d):
    """The explore strategy of log form ``d``, or the list of them for a list; ValueError naming what is wrong.

    Unknown arguments are refused: a misspelt ``{"perturb": {"min_factor": 0.5}}`` would otherwise mean the
    default factor. The constructors' TypeErrors become ValueErrors with the same message.
    """
    if isinstance(d, list):
        return [_strategy_from_log(x) for x in d]
    return _strategy_from_log(d)


def _strategy_from_log(d):
    if not isinstance(d, dict) or len(d) != 1 or next(iter(d)) not in EXPLORE_ARGUMENTS:
        raise ValueError(
            f"unknown explore strategy {d!r}; a strategy is one of {', '.join(EXPLORE_ARGUMENTS)}, "
            f"such as {{'perturb': {{}}}}"
        )
    ((name, a),) = d.items()
    if not isinstance(a, dict):
        raise ValueError(f"the arguments of {name} must be an object, got {a!r}")  # noqa: TRY004 (a log's garbage)
    distributions.check_keys(name, a, *EXPLORE_ARGUMENTS[name])
    try:
        if name == "perturb":
            return Perturb(
                a.get("minFactor", 0.8), a.get("maxFactor", 1.2), a.get("low"), a.get("high"), a.get("discrete", False)
            )
        if name == "resample":
            return Resample(distributions.from_log(a["distribution"]), a.get("probability", 0.25))
        return AddNoise(a["scale"], a.get("low"), a.get("high"))
    except TypeError as e:
        raise ValueError(str(e)) from None


def _strategies(spec):
    return spec if isinstance(spec, list) else [spec]


def check_explorable(name, value, spec, config):
    """Raise ValueError unless the strategies ``spec`` can explore ``value`` of hyperparameter ``name``."""
    dist = config.initial_distributions.get(name)
    for strategy in _strategies(spec):
        if isinstance(strategy, Resample):
            continue
        if isinstance(strategy, Perturb) and isinstance(dist, distributions.Choice) and value in dist.values:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(
                f"hyperparameter {name!r} is explored by {type(strategy).__name__}, which needs a "
                f"number, but the job has {value!r}"
            )


def explore_value(value, spec, rng, choices=None):
    """Apply one hyperparameter's explore strategies in order; a Resample that fires ends the chain."""
    for strategy in _strategies(spec):
        if isinstance(strategy, Resample):
            if rng.random() < strategy.probability:
                return strategy.distribution.sample(rng)
        else:
            value = strategy.apply(value, rng, choices)
    return value


# -- the definition -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Config:
    """A PBT definition in Python form (what the log's params hold)."""

    objective: str
    result_name: str
    exploit: Exploit
    explore: dict | PB2
    initial_distributions: dict
    population_size: int | None
    max_generations: int | None
    ranking: str = SAME_GENERATION
    synchronous: bool = False

    def __post_init__(self):
        if self.objective not in (MINIMIZE, MAXIMIZE):
            raise ValueError(
                f"objective must be schedy.pbt.MINIMIZE ('min') or MAXIMIZE ('max'), got {self.objective!r}"
            )
        if not isinstance(self.result_name, str) or not self.result_name:
            raise ValueError(f"result_name must be a non-empty string, got {self.result_name!r}")
        if not isinstance(self.exploit, (Truncate, BinaryTournament, Keep)):
            raise TypeError(
                f"exploit must be schedy.pbt.Truncate(...), BinaryTournament() or Keep(), got {self.exploit!r}"
            )
        if self.ranking not in RANKINGS:
            raise ValueError(
                f"ranking must be schedy.pbt.SAME_GENERATION ('generation') or LATEST ('latest'), got {self.ranking!r}"
            )
        if not isinstance(self.synchronous, bool):
            raise TypeError(f"synchronous must be True or False, got {self.synchronous!r}")
        if self.synchronous and self.ranking != SAME_GENERATION:
            raise ValueError(
                "synchronous PBT ranks members at the same generation: ranking='latest' cannot go with synchronous=True"
            )
        if isinstance(self.explore, PB2):
            self._check_pb2()
        elif not isinstance(self.explore, dict):
            raise TypeError(
                f"explore must be a dict of hyperparameter name -> strategy, or schedy.pbt.PB2(...), "
                f"got {type(self.explore).__name__}"
            )
        for name, spec in self.explore.items() if isinstance(self.explore, dict) else ():
            if not isinstance(name, str):
                raise TypeError(f"explore keys must be hyperparameter names (strings), got {name!r}")
            strategies = _strategies(spec)
            if isinstance(spec, list) and not spec:
                raise ValueError(
                    f"explore of {name!r} is an empty list of strategies: give at least one, or "
                    f"leave {name!r} out of explore"
                )
            if not all(isinstance(s, EXPLORE_TYPES) for s in strategies):
                raise TypeError(
                    f"explore of {name!r} must be Perturb, Resample, AddNoise or a list of them, got {spec!r}"
                )
        distributions.check_distributions(self.initial_distributions)
        size = self.population_size
        if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
            raise ValueError(f"population_size must be a positive integer, got {size!r}")
        if bool(self.initial_distributions) != (size is not None):
            raise ValueError(
                "initial_distributions and population_size go together: give both to sample the "
                "initial population, or neither and add its jobs with add_job"
            )
        missing = [n for n in self.explored() if self.initial_distributions and n not in self.initial_distributions]
        if missing:
            raise ValueError(
                f"explore names {', '.join(map(repr, missing))}, which initial_distributions does not define"
            )
        for name, spec in self.explore.items() if isinstance(self.explore, dict) else ():
            dist = self.initial_distributions.get(name)
            numeric = [s for s in _strategies(spec) if not isinstance(s, Resample)]
            if numeric and dist is not None and not _numeric_dist(dist, numeric):
                raise ValueError(
                    f"explore of {name!r} changes numbers, but its initial distribution {dist!r} does not give numbers"
                )
        g = self.max_generations
        if g is not None and (isinstance(g, bool) or not isinstance(g, int) or g < 1):
            raise ValueError(f"max_generations must be a positive integer, got {g!r}")

    def _check_pb2(self):
        for name in self.explore.bounds:
            dist = self.initial_distributions.get(name)
            if isinstance(dist, distributions.Choice):
                raise ValueError(
                    f"PB2 chooses {name!r} anywhere within its bounds, but its initial distribution is "
                    f"a Choice {dist!r}: explore it with Perturb instead, or give a range"
                )
            if dist is not None and not _numeric_dist(dist, [self.explore]):
                raise ValueError(
                    f"PB2 explores {name!r} within bounds, but its initial distribution {dist!r} does not give numbers"
                )

    def explored(self):
        """The names of the hyperparameters explore changes."""
        return list(self.explore.bounds) if isinstance(self.explore, PB2) else list(self.explore)

    def to_log(self):
        pb2 = isinstance(self.explore, PB2)
        p = {
            "objective": self.objective,
            "qualityResultName": self.result_name,
            "exploit": self.exploit.to_log(),
            "explore": {}
            if pb2
            else {
                n: ([s.to_log() for s in spec] if isinstance(spec, list) else spec.to_log())
                for n, spec in self.explore.items()
            },
            "init": {n: d.to_log() for n, d in self.initial_distributions.items()},
            "numParallel": self.population_size,
            "maxGenerations": self.max_generations,
            "ranking": self.ranking,
        }
        if self.synchronous:
            p["synchronous"] = True
        if pb2:
            p["pb2"] = self.explore.to_log()
        return {"scheduler": {"PBT": p}}

    @classmethod
    def from_log(cls, params):
        """The definition held by the log form ``params``; ValueError naming what is wrong.

        Every key is checked: an unknown one (a misspelt ``maxGeneration``, an argument a strategy does
        not take) is refused rather than ignored, since ignoring it would decide with a default the writer
        did not mean. TypeErrors of the constructors become ValueErrors with the same message.
        """
        inner = params.get("scheduler") if isinstance(params, dict) and list(params) == ["scheduler"] else None
        p = inner.get("PBT") if isinstance(inner, dict) and list(inner) == ["PBT"] else None
        if not isinstance(p, dict):
            raise ValueError(  # noqa: TRY004 (a log's garbage is a ValueError whatever its type)
                f"PBT parameters must be an object {{'scheduler': {{'PBT': {{...}}}}}}, got {params!r}"
            )
        distributions.check_keys("PBT", p, *PBT_ARGUMENTS)
        explore = _named(p, "explore", explore_from_log, "explore of")
        if "pb2" in p:
            if explore:
                raise ValueError("a PBT definition explores with PB2 or with per-hyperparameter strategies, not both")
            explore = PB2.from_log(p["pb2"])
        init = _named(p, "init", distributions.from_log, "initial distribution of")
        try:
            return cls(
                objective=p["objective"],
                result_name=p["qualityResultName"],
                exploit=exploit_from_log(p["exploit"]),
                explore=explore,
                initial_distributions=init,
                population_size=p.get("numParallel"),
                max_generations=p.get("maxGenerations"),
                # A log written before the ranking rule was recorded was decided with the latest segments.
                ranking=p.get("ranking", LATEST),
                synchronous=p.get("synchronous", False),
            )
        except TypeError as e:
            raise ValueError(str(e)) from None


PBT_ARGUMENTS = (
    (
        "objective",
        "qualityResultName",
        "exploit",
        "explore",
        "init",
        "numParallel",
        "maxGenerations",
        "ranking",
        "synchronous",
        "pb2",
    ),
    ("objective", "qualityResultName", "exploit"),
)
"""The keys of a PBT definition's log form, and those of them that are required."""


def _named(p, key, parse, what):
    """``{name: parse(value)}`` for the object ``p[key]`` (absent: empty), each error naming its name."""
    d = p.get(key, {})
    if not isinstance(d, dict):
        raise ValueError(f"PBT {key} must be an object of hyperparameter name -> value, got {d!r}")  # noqa: TRY004
    out = {}
    for name, value in d.items():
        try:
            out[name] = parse(value)
        except ValueError as e:
            raise ValueError(f"{what} {name!r}: {e}") from None
    return out


def _is_number(x):
    return not isinstance(x, bool) and isinstance(x, (int, float))


def _numeric_dist(dist, strategies):
    if isinstance(dist, (distributions.Uniform, distributions.LogUniform, distributions.Normal)):
        return True
    if isinstance(dist, distributions.Constant):
        return _is_number(dist.value)
    if isinstance(dist, distributions.Choice):
        # Perturb moves along the choice; other numeric strategies need numbers.
        return all(isinstance(s, Perturb) for s in strategies) or all(_is_number(v) for v in dist.values)
    return False


# -- the generation step ------------------------------------------------------------------------


def score(job, config):
    """The quality result of a finished job as a float (NaN if absent)."""
    raw = job.results.get(config.result_name)
    x = values.decode(raw) if raw is not None else math.nan
    return float(x) if _is_number(x) else math.nan


def rank(members, config):
    """Sort ``[(member, score)]`` best first; NaN always last; ties keep member order."""
    sign = 1.0 if config.objective == MINIMIZE else -1.0
    return sorted(members, key=lambda ms: (math.isnan(ms[1]), sign * ms[1] if not math.isnan(ms[1]) else 0.0, ms[0]))


def population(state, config):
    """Per member: (member, latest job, latest DONE job or None), for members still in the population."""
    out, jobs = [], state.jobs
    for member in sorted(state.members):
        # Walk back from the newest segment and stop at the first DONE one: the cost of a decision
        # is the population size, not the length of the run.
        latest = done = None
        for job_id in reversed(state.members[member]):
            job = jobs.get(job_id)
            if job is None:
                continue  # a deleted segment
            if latest is None:
                latest = job
                if job.status == ev.PRUNED:
                    break
            if job.status == ev.DONE:
                done = job
                break
        if latest is None or latest.status == ev.PRUNED:
            continue  # a pruned member leaves the population and is never copied
        out.append((member, latest, done))
    return out


def segment_at(state, member, generation):
    """The member's newest DONE segment of ``generation``, or None (not reached yet, skipped by an exploit).

    Walks back from the member's newest segment and stops at the first one of a lower generation: under
    SAME_GENERATION a member's generations never decrease, so the cost is the distance walked back.
    """
    jobs = state.jobs
    for job_id in reversed(state.members[member]):
        job = jobs.get(job_id)
        if job is None:
            continue  # a deleted segment
        if job.generation < generation:
            return None
        if job.status == ev.DONE and job.generation == generation:
            return job
    return None


def compared(state, config, members, latest):
    """What a member whose latest DONE segment is ``latest`` is ranked against: ``([(member, job)], pending)``.

    With :data:`SAME_GENERATION`, each member's DONE segment of ``latest``'s
    generation g; ``pending`` are the members that have not finished g yet
    (training it, or further behind), as ``(member, latest segment)``; a
    member that skipped g (possible only in a log decided with LATEST before)
    is left out. With :data:`LATEST`, each member's latest DONE segment, and
    no pending.
    """
    if config.ranking == LATEST:
        return [(m, d) for m, _, d in members if d is not None], []
    g = latest.generation
    out, pending = [], []
    for m, current, d in members:
        if d is not None and d.generation >= g:  # a member whose latest DONE segment is below g has none of g
            job = d if d.generation == g else segment_at(state, m, g)
            if job is not None:
                out.append((m, job))
                continue
        if current.generation <= g:
            pending.append((m, current))
    return out, pending


def propose(state, now, rng, config):
    """The next segment to hand out, as an outcome value.

    :class:`~schedy.core.outcomes.Proposal` (the ``JobAdded`` fields of the
    segment); :class:`~schedy.core.outcomes.Finished` when every member has
    reached ``max_generations`` (or was pruned) and none runs;
    :class:`~schedy.core.outcomes.Waiting` while the segments that would make
    a member ready are running; :class:`~schedy.core.outcomes.Empty` when
    there is no population.
    """
    members = population(state, config)
    if config.population_size is not None and len(state.members) < config.population_size:
        hps = {n: values.encode(d.sample(rng)) for n, d in config.initial_distributions.items()}
        return Proposal(
            {"hyperparameters": hps, "results": {}, "generation": 0, "parent": None, "member": len(state.members)}
        )
    if not members and state.members:
        return Finished("every member of the population was pruned")
    if not members:
        return Empty(
            "the population is empty: add its jobs with add_job, or give initial_distributions and population_size"
        )
    last = None if config.max_generations is None else config.max_generations - 1
    ready = []
    for member, latest, done in members:
        if latest.status == ev.CRASHED:
            ready.append((latest.generation, latest.version, member, latest, done))
        elif latest.status == ev.DONE and (last is None or latest.generation < last):
            ready.append((latest.generation + 1, latest.version, member, latest, done))
    if not ready:
        if all(latest.status == ev.DONE for _, latest, _ in members):
            return Finished("every member reached max_generations")
        return Waiting("every member of the population is running a segment", jobs=_running(members))
    first_wait, standings, barrier = None, {}, {}
    for _, _, member, latest, _ in sorted(ready, key=lambda r: r[:3]):
        if latest.status == ev.CRASHED:
            # Redo the crashed segment from where it started: what it was added with, not what the crash left.
            return Proposal(
                {
                    "hyperparameters": latest.hyperparameters,
                    "results": _without_score(latest.initial_results, config),
                    "generation": latest.generation,
                    "parent": latest.parent,
                    "member": member,
                }
            )
        g = latest.generation
        if config.synchronous:
            if g not in barrier:  # the same for every member that finished g
                barrier[g] = [(m, current) for m, current, d in members if d is None or d.generation < g]
            behind = barrier[g]
            if behind:
                if first_wait is None:
                    names = ", ".join(str(m) for m, _ in behind)
                    first_wait = Waiting(
                        f"synchronous PBT: generation {g + 1} starts when every member has finished generation "
                        f"{g}; waiting for generation {g} of member{'s' * (len(behind) > 1)} {names}",
                        jobs=_running(behind),
                        generation=g,
                        members=tuple(m for m, _ in behind),
                    )
                continue
        if g not in standings:  # every member that finished g is ranked against the same segments
            segments, pending = compared(state, config, members, latest)
            ranking = rank([(m, score(d, config)) for m, d in segments], config)
            # A copy continues its parent's lineage, so a donor must have a generation left to give.
            eligible = {m for m, d in segments if last is None or d.generation < last}
            standings[g] = segments, pending, ranking, eligible
        segments, pending, ranking, eligible = standings[g]
        donor = config.exploit.choose(
            ranking, member, score(latest, config), rng, config.objective, eligible, len(pending)
        )
        if donor is WAIT:
            # Another ready member may be decided already; this one is asked again on a later call.
            if first_wait is None:
                names, many = ", ".join(str(m) for m, _ in pending), "s" * (len(pending) > 1)
                first_wait = Waiting(
                    f"member {member} finished generation {g}; whether it continues or copies a better member "
                    f"depends on the generation-{g} score{many} of member{many} {names}, not known yet",
                    jobs=_running(pending),
                    generation=g,
                    members=tuple(m for m, _ in pending),
                )
            continue
        source, hps = latest, latest.hyperparameters
        if donor is not None:
            source = next(d for m, d in segments if m == donor)
            if isinstance(config.explore, PB2):
                hps = _explore_pb2(state, config, members, source, rng)
            else:
                hps = _explore(source.hyperparameters, config, rng)
        return Proposal(
            {
                "hyperparameters": hps,
                "results": _carry(source, config),
                "generation": source.generation + 1,
                "parent": source.job_id,
                "member": member,
            },
            compared=tuple(d.job_id for _, d in segments),
        )
    return first_wait


def _running(members):
    return tuple(latest.job_id for _, latest, *_ in members if latest.status == ev.RUNNING)


def _carry(parent, config):
    """Results a new segment starts with: its parent's (so ``model_path`` travels), minus the score."""
    return {} if parent is None else _without_score(parent.results, config)


def _without_score(results, config):
    return {k: v for k, v in results.items() if k != config.result_name}


def _explore(hps, config, rng):
    out = dict(hps)
    for name, spec in config.explore.items():
        if name not in out:
            continue
        dist = config.initial_distributions.get(name)
        choices = dist.values if isinstance(dist, distributions.Choice) else None
        out[name] = values.encode(explore_value(values.decode(out[name]), spec, rng, choices))
    return out


def _explore_pb2(state, config, members, source, rng):
    """PB2: the bandit picks the bounded hyperparameters from the recent segments' gains; the rest is copied."""
    bandit, sign = config.explore, (1.0 if config.objective == MAXIMIZE else -1.0)
    names, at = list(bandit.bounds), source.generation + 1
    oldest = at - bandit.window
    observations, pending, jobs = [], [], state.jobs
    for m, _latest, _ in members:
        for job_id in reversed(state.members[m]):
            job = jobs.get(job_id)
            if job is None:
                continue
            if job.generation < oldest:
                break
            if job.status == ev.RUNNING:
                pending.append((float(job.generation), _numbers(job.hyperparameters, names)))
            elif job.status == ev.DONE and job.parent is not None and job.parent in jobs:
                gain = sign * (score(job, config) - score(jobs[job.parent], config))
                observations.append((float(job.generation), _numbers(job.hyperparameters, names), gain))
    start = _numbers(source.hyperparameters, names)
    chosen = bandit.suggest(observations, pending, float(at), start, rng)
    out = dict(source.hyperparameters)
    for name, value in chosen.items():
        out[name] = values.encode(value)
    return out


def _numbers(hps, names):
    return {n: values.decode(hps[n]) for n in names if n in hps}
