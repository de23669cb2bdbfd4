"""Bayesian optimisation from the log: what a sampler is asked, as plain values.

A sampler proposes the next configuration from every trial so far: Optuna's
TPE (model-based), CMA-ES (an evolution strategy, its generations replayed
from the log), a quasi-random sequence (QMC, the same points however many
workers ask), or Optuna's random sampler as a baseline. The core does not
run one: it states the question as a :class:`SampleRequest` (the search
space, every job as a :class:`Trial`, the direction, the sampler and its
options, and a seed drawn from the decision's generator) and turns the
sampler's answer back into hyperparameters (:meth:`SampleRequest.hyperparameters`).
The shell answers with a sampler library (``schedy.samplers``), so the core
stays free of I/O, clocks and global randomness, and a log never holds
anything but JSON.

The space is the experiment's distributions: ``Uniform`` and ``LogUniform``
are searched as floats on their range, an unweighted ``Choice`` as a
categorical over the indices of its values (so ``1``, ``1.0`` and ``True``
stay distinct), and a ``Constant`` is set after the sampler answers. A
``Normal`` (unbounded) and a weighted ``Choice`` have no meaning to a
sampler of a bounded space and are refused.
"""

import math
from dataclasses import dataclass, field
from typing import NamedTuple

from . import distributions, values
from . import events as ev

MINIMIZE = "min"
MAXIMIZE = "max"

SAMPLERS = {
    # name -> the options it takes and their defaults, written into the log so that a definition means the
    # same with any version of the sampler library (Optuna 5 changed TPE's defaults). CMA-ES's population size
    # defaults to 4 + floor(3 ln n) for n searched floats (Hansen's rule), filled in by Config.
    "tpe": {"n_startup_trials": 10, "n_ei_candidates": 24, "multivariate": True, "constant_liar": True},
    "cmaes": {"population_size": 0, "sigma0": 1 / 6},
    "qmc": {"qmc_type": "sobol", "scramble": True},
    "random": {},
}
QMC_TYPES = ("sobol", "halton")

KIND = "bayesian"  # the experiment kind
KIND_KEY = "BayesianSearch"
_KEYS = ("distributions", "resultName", "objective", "sampler", "samplerOptions", "maxJobs")


def check_searchable(name, dist):
    """Raise ValueError unless a sampler can search ``dist`` (the distribution of hyperparameter ``name``)."""
    if isinstance(dist, distributions.Normal):
        raise ValueError(
            f"hyperparameter {name!r} has a Normal distribution, which is unbounded: a sampler searches a bounded "
            "space; use Uniform or LogUniform over the range to search"
        )
    if isinstance(dist, distributions.Choice) and dist.weights is not None:
        raise ValueError(
            f"hyperparameter {name!r} has a weighted Choice: a sampler picks values by their scores, not by "
            "weights; drop the weights"
        )
    if isinstance(dist, distributions.Uniform) and not math.isfinite(dist.high - dist.low):
        raise ValueError(
            f"hyperparameter {name!r} has a Uniform range wider than a float can hold ({dist.low!r} to {dist.high!r})"
        )


def _check_options(sampler, options):
    if not isinstance(options, dict):
        raise ValueError(f"sampler_options must be a dict of option name -> value, got {options!r}")
    defaults = SAMPLERS[sampler]
    unknown = [k for k in options if k not in defaults]
    if unknown:
        takes = ", ".join(defaults) if defaults else "no options"
        raise ValueError(f"the {sampler} sampler takes {takes}: unknown {', '.join(map(repr, unknown))}")
    for k, v in options.items():
        want = type(defaults[k])
        if type(v) is not want and not (want is float and type(v) is int):
            raise ValueError(f"sampler option {k!r} must be a {want.__name__}, got {v!r}")
        if want is int and v < 1:
            raise ValueError(f"sampler option {k!r} must be at least 1, got {v!r}")
    if sampler == "cmaes":
        if options.get("population_size", 2) < 2:
            raise ValueError(f"sampler option 'population_size' must be at least 2, got {options['population_size']!r}")
        sigma0 = options.get("sigma0", 0.5)
        if not 0 < sigma0 <= 1:
            # The search runs in the unit cube: a step wider than it only samples its faces.
            raise ValueError(f"sampler option 'sigma0' must be above 0 and at most 1 (the unit cube), got {sigma0!r}")
    if sampler == "qmc" and options.get("qmc_type", "sobol") not in QMC_TYPES:
        raise ValueError(f"sampler option 'qmc_type' must be one of {', '.join(map(repr, QMC_TYPES))}")


@dataclass(frozen=True)
class Config:
    """A Bayesian search definition in Python form (what the log's params hold).

    ``sampler_options`` holds every option of the sampler, the defaults filled in (:data:`SAMPLERS`).
    """

    distributions: dict
    result_name: str
    objective: str = MINIMIZE
    sampler: str = "tpe"
    sampler_options: dict = field(default_factory=dict)
    max_jobs: int | None = None

    def __post_init__(self):
        distributions.check_distributions(self.distributions)
        for name, d in self.distributions.items():
            check_searchable(name, d)
        if all(isinstance(d, distributions.Constant) for d in self.distributions.values()):
            raise ValueError("distributions must name at least one hyperparameter to search (not a Constant)")
        if not isinstance(self.result_name, str) or not self.result_name:
            raise ValueError(f"result_name must be a non-empty string, got {self.result_name!r}")
        if self.objective not in (MINIMIZE, MAXIMIZE):
            raise ValueError(
                f"objective must be schedy.pbt.MINIMIZE ('min') or MAXIMIZE ('max'), got {self.objective!r}"
            )
        if self.sampler not in SAMPLERS:
            raise ValueError(f"sampler must be one of {', '.join(map(repr, SAMPLERS))}, got {self.sampler!r}")
        _check_options(self.sampler, self.sampler_options)
        options = {**SAMPLERS[self.sampler], **self.sampler_options}
        if self.sampler == "cmaes":
            floats = sum(
                isinstance(d, (distributions.Uniform, distributions.LogUniform)) for d in self.distributions.values()
            )
            if floats < 2:
                raise ValueError(
                    f"the cmaes sampler needs at least 2 Uniform or LogUniform hyperparameters to adapt a covariance "
                    f"between, got {floats}; use the tpe sampler"
                )
            if "population_size" not in self.sampler_options:
                options["population_size"] = 4 + math.floor(3 * math.log(floats))
        object.__setattr__(self, "sampler_options", options)
        if self.max_jobs is not None and (
            isinstance(self.max_jobs, bool) or not isinstance(self.max_jobs, int) or self.max_jobs < 1
        ):
            raise ValueError(f"max_jobs must be a positive integer, got {self.max_jobs!r}")

    def to_log(self):
        return {
            "scheduler": {
                KIND_KEY: {
                    "distributions": {n: d.to_log() for n, d in self.distributions.items()},
                    "resultName": self.result_name,
                    "objective": self.objective,
                    "sampler": self.sampler,
                    "samplerOptions": dict(self.sampler_options),
                    "maxJobs": self.max_jobs,
                }
            }
        }

    @classmethod
    def from_log(cls, params):
        """The Config of ``params``; ValueError naming what is wrong."""
        args = distributions.scheduler_args(params, KIND_KEY, "Bayesian search")
        distributions.check_keys("a Bayesian search", args, _KEYS, ("distributions", "resultName", "sampler"))
        parsed = distributions.named_from_log(args["distributions"], "Bayesian search")
        try:
            return cls(
                parsed,
                args["resultName"],
                args.get("objective", MINIMIZE),
                args["sampler"],
                args.get("samplerOptions", {}),
                args.get("maxJobs"),
            )
        except TypeError as e:
            raise ValueError(str(e)) from None


# -- the question to a sampler ---------------------------------------------------------------------------------


class Dimension(NamedTuple):
    """One searched hyperparameter: ``kind`` "float" (``low``, ``high``, ``log``) or "index" (``size`` values)."""

    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    size: int = 0


COMPLETE, RUNNING, FAIL, PRUNED = "complete", "running", "fail", "pruned"


class Trial(NamedTuple):
    """One job as a sampler sees it: its point in the space (name -> float, or index of a Choice), its state
    (:data:`COMPLETE`, :data:`RUNNING`, :data:`FAIL` or :data:`PRUNED`) and its score (None unless known)."""

    params: dict
    state: str
    value: float | None


@dataclass(frozen=True)
class SampleRequest:
    """What a sampler is asked for the next job: a pure value, the same for the same log and decision."""

    sampler: str
    options: dict
    direction: str  # "minimize" or "maximize"
    space: tuple  # of Dimension, sorted by name
    trials: tuple  # of Trial, in the order the jobs were added (none for CMA-ES and QMC, which read other fields)
    seed: int  # for the sampler's own generator, drawn from the decision's
    constants: dict  # name -> log-form value, set after the sampler answers
    choices: dict  # name -> the values of a Choice, by index
    number: int = 0  # the new job's number: its index in a QMC sequence
    sequence_seed: int = 0  # the experiment's seed: a QMC sequence's scrambling, the same for every decision
    generation: int | None = None  # CMA-ES: the new job's generation
    told: tuple = ()  # CMA-ES: for each generation before it, the (point, score) pairs it learnt from, in order

    def hyperparameters(self, point):
        """The log-form hyperparameters of the sampler's ``point`` (name -> float, or index for a Choice).

        ValueError if the point is not in the space: a sampler answering outside it is a defect to stop at.
        """
        if set(point) != {d.name for d in self.space}:
            raise ValueError(f"the sampler answered {sorted(point)}, not the space {[d.name for d in self.space]}")
        out = dict(self.constants)
        for d in self.space:
            x = point[d.name]
            if d.kind == "index":
                if isinstance(x, bool) or not isinstance(x, int) or not 0 <= x < d.size:
                    raise ValueError(f"the sampler answered {x!r} for {d.name!r}, not an index below {d.size}")
                out[d.name] = values.encode(self.choices[d.name][x])
            else:
                if isinstance(x, bool) or not isinstance(x, (int, float)) or not d.low <= x <= d.high:
                    raise ValueError(f"the sampler answered {x!r} for {d.name!r}, outside [{d.low!r}, {d.high!r}]")
                out[d.name] = values.encode(float(x))
        return out


def space(config):
    """The searched dimensions of ``config``, sorted by name (a sampler's draws follow their order)."""
    dims = []
    for name in sorted(config.distributions):
        d = config.distributions[name]
        if isinstance(d, (distributions.Uniform, distributions.LogUniform)):
            dims.append(Dimension(name, "float", d.low, d.high, isinstance(d, distributions.LogUniform)))
        elif isinstance(d, distributions.Choice):
            dims.append(Dimension(name, "index", size=len(d.values)))
    return tuple(dims)


def _point(job, dims, config):
    """The job's point in the space, or None if its hyperparameters are not in it (added by hand, or before the
    definition changed)."""
    point = {}
    for d in dims:
        raw = job.hyperparameters.get(d.name)
        if raw is None:
            return None
        x = values.decode(raw)
        if d.kind == "index":
            choices = config.distributions[d.name].values
            i = next((i for i, c in enumerate(choices) if type(c) is type(x) and c == x), None)
            if i is None:
                return None
            point[d.name] = i
        else:
            if isinstance(x, bool) or not isinstance(x, (int, float)) or not d.low <= x <= d.high:
                return None
            point[d.name] = float(x)
    return point


def score(job, config):
    """The job's result ``result_name`` as a float, or None if it has no numeric, non-NaN one."""
    raw = job.results.get(config.result_name)
    if raw is None:
        return None
    x = values.decode(raw)
    if isinstance(x, bool) or not isinstance(x, (int, float)) or x != x:
        return None
    return float(x)


def trials(state, config):
    """Every job of ``state`` whose hyperparameters are in the space, as a :class:`Trial`, by job number.

    DONE with a score is complete; DONE without one, and CRASHED, failed; PRUNED pruned (with its score if it
    reported one); QUEUED and RUNNING running, so that a sampler that takes pending trials into account (TPE's
    constant liar) does not propose what another worker is training.
    """
    dims, out = space(config), []
    for job in state.jobs.in_order():
        point = _point(job, dims, config)
        if point is None:
            continue
        s = score(job, config)
        if job.status == ev.DONE:
            out.append(Trial(point, COMPLETE if s is not None else FAIL, s))
        elif job.status == ev.PRUNED:
            out.append(Trial(point, PRUNED, s))
        elif job.status == ev.CRASHED:
            out.append(Trial(point, FAIL, None))
        else:
            out.append(Trial(point, RUNNING, None))
    return tuple(out)


def generations(state, config):
    """CMA-ES's history in ``state``: (the generation of the next job, the (point, score) pairs of each earlier one).

    A generation is complete, and the evolution strategy learns from it, once ``population_size`` of its jobs
    are DONE with a score: the first that many to finish (by the commit that last changed them, then by job
    number), so that jobs of the generation finishing later change nothing already learnt. The next job belongs
    to the first generation not complete; jobs added by hand (no generation) are not part of any.
    """
    size, dims = config.sampler_options["population_size"], space(config)
    done = {}
    for job in state.jobs.in_order():
        if job.generation is None or job.status != ev.DONE:
            continue
        s, point = score(job, config), _point(job, dims, config)
        if s is not None and point is not None:
            done.setdefault(job.generation, []).append((job.version, job.number, point, s))
    told = []
    while len(done.get(len(told), ())) >= size:
        first = sorted(done[len(told)], key=lambda t: (t[0], t[1]))[:size]
        told.append(tuple((point, s) for _, _, point, s in first))
    return len(told), tuple(told)


def request(state, config, rng):
    """The :class:`SampleRequest` of the next job of ``state``, its seed drawn from ``rng``."""
    generation, told = generations(state, config) if config.sampler == "cmaes" else (None, ())
    return SampleRequest(
        sampler=config.sampler,
        options=dict(config.sampler_options),
        direction="minimize" if config.objective == MINIMIZE else "maximize",
        space=space(config),
        trials=trials(state, config) if config.sampler in ("tpe", "random") else (),
        seed=int(rng.integers(2**32)),
        constants={
            n: values.encode(d.value) for n, d in config.distributions.items() if isinstance(d, distributions.Constant)
        },
        choices={n: list(d.values) for n, d in config.distributions.items() if isinstance(d, distributions.Choice)},
        number=state.next_number,
        sequence_seed=state.seed,
        generation=generation,
        told=told,
    )
