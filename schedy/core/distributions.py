"""Distributions that random search samples hyperparameters from.

Each distribution is an immutable value: it compares by value, exposes its
constructor arguments as attributes, and converts to and from the log
vocabulary of the original Schedy service (``{"uniform": {"low": 0, "high":
1}}``, ``{"const": value}``...).
"""

import math
from dataclasses import dataclass

import numpy as np

from . import values


def _real(name, x):
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(x).__name__} {x!r}")
    if isinstance(x, (int, np.integer)):
        values.encode(int(x), name)  # refuses integers the log cannot hold
    elif not math.isfinite(x):
        raise ValueError(f"{name} must be finite, got {x!r}")
    # Keep ints as ints so that a definition read back from the log equals the original.
    return int(x) if isinstance(x, (int, np.integer)) else float(x)


def _mix(low, high, u):
    """``low + u * (high - low)`` without overflow when the range exceeds the largest float."""
    return float(low * (1.0 - u) + high * u)


def _within(x, low, high):
    """Keep a sample inside ``[low, high)`` despite floating-point rounding."""
    if x >= high:
        return math.nextafter(float(high), -math.inf)
    return max(x, float(low))


class Distribution:
    """Base class of the distributions in :mod:`schedy.random`."""

    __slots__ = ()
    _LOG_NAME = ""

    def sample(self, rng):
        """Draw one value with the numpy ``Generator`` ``rng``."""
        raise NotImplementedError

    def _args(self):
        raise NotImplementedError

    def to_log(self):
        """Return the log (and original service) form of this distribution."""
        return {self._LOG_NAME: self._args()}


@dataclass(frozen=True)
class Uniform(Distribution):
    """Uniform distribution on ``[low, high)``."""

    low: float
    high: float
    _LOG_NAME = "uniform"

    def __post_init__(self):
        object.__setattr__(self, "low", _real("Uniform low", self.low))
        object.__setattr__(self, "high", _real("Uniform high", self.high))
        if not self.low < self.high:
            raise ValueError(f"Uniform needs low < high, got low={self.low!r}, high={self.high!r}")

    def sample(self, rng):
        return _within(_mix(self.low, self.high, rng.random()), self.low, self.high)

    def _args(self):
        return {"low": self.low, "high": self.high}


@dataclass(frozen=True)
class LogUniform(Distribution):
    """Distribution on ``[low, high)`` whose logarithm is uniform; needs ``0 < low < high``."""

    low: float
    high: float
    _LOG_NAME = "loguniform"

    def __post_init__(self):
        object.__setattr__(self, "low", _real("LogUniform low", self.low))
        object.__setattr__(self, "high", _real("LogUniform high", self.high))
        if not 0 < self.low < self.high:
            raise ValueError(f"LogUniform needs 0 < low < high, got low={self.low!r}, high={self.high!r}")

    def sample(self, rng):
        x = math.exp(_mix(math.log(self.low), math.log(self.high), rng.random()))
        return _within(x, self.low, self.high)

    def _args(self):
        return {"low": self.low, "high": self.high}


@dataclass(frozen=True)
class Normal(Distribution):
    """Normal distribution; ``std`` must be positive."""

    mean: float
    std: float
    _LOG_NAME = "normal"

    def __post_init__(self):
        object.__setattr__(self, "mean", _real("Normal mean", self.mean))
        object.__setattr__(self, "std", _real("Normal std", self.std))
        if not self.std > 0:
            raise ValueError(f"Normal needs std > 0, got std={self.std!r} (use Constant for a fixed value)")

    def sample(self, rng):
        return float(rng.normal(self.mean, self.std))

    def _args(self):
        return {"mean": self.mean, "std": self.std}


@dataclass(frozen=True)
class Choice(Distribution):
    """Picks one of ``values`` (any storable values, mixed freely), optionally weighted."""

    values: list
    weights: list | None = None
    _LOG_NAME = "choice"

    def __post_init__(self):
        try:
            vals = list(self.values)
        except TypeError:
            raise TypeError(f"Choice values must be an iterable, got {type(self.values).__name__}") from None
        if not vals:
            raise ValueError("Choice needs at least one value")
        # Normalise through the log form: numpy values become plain ones, unstorable ones fail here.
        vals = [values.decode(values.encode(v, f"Choice values[{i}]")) for i, v in enumerate(vals)]
        object.__setattr__(self, "values", vals)
        if self.weights is not None:
            try:
                ws = [_real(f"Choice weights[{i}]", w) for i, w in enumerate(self.weights)]
            except TypeError as e:
                raise TypeError(f"Choice weights must be an iterable of numbers: {e}") from None
            if len(ws) != len(vals):
                raise ValueError(f"Choice has {len(vals)} values but {len(ws)} weights; give one weight per value")
            if any(w < 0 for w in ws):
                raise ValueError(f"Choice weights must not be negative, got {ws}")
            if not sum(ws) > 0:
                raise ValueError("Choice weights must not all be zero")
            object.__setattr__(self, "weights", ws)

    def sample(self, rng):
        if self.weights is None:
            i = int(rng.integers(len(self.values)))
        else:
            top = float(max(self.weights))  # scale first: a sum of huge weights would overflow
            scaled = [w / top for w in self.weights]
            total = sum(scaled)
            i = int(rng.choice(len(self.values), p=[w / total for w in scaled]))
        return values.decode(values.encode(self.values[i]))

    def _args(self):
        args = {"values": [values.encode(v) for v in self.values]}
        if self.weights is not None:
            args["weights"] = list(self.weights)
        return args


@dataclass(frozen=True)
class Constant(Distribution):
    """Always yields ``value``."""

    value: object
    _LOG_NAME = "const"

    def __post_init__(self):
        object.__setattr__(self, "value", values.decode(values.encode(self.value, "Constant value")))

    def sample(self, rng):
        return values.decode(values.encode(self.value))

    def _args(self):
        return values.encode(self.value)


_BY_LOG_NAME = {cls._LOG_NAME: cls for cls in (Uniform, LogUniform, Normal, Choice, Constant)}

ARGUMENTS = {
    Uniform: (("low", "high"), ("low", "high")),
    LogUniform: (("low", "high"), ("low", "high")),
    Normal: (("mean", "std"), ("mean", "std")),
    Choice: (("values", "weights"), ("values",)),
    Constant: (("value",), ("value",)),
}
"""Per class, the names of its arguments and those of them that are required (the log form's keys, except
``Constant``, whose log form is the value itself)."""


def check_keys(what, args, allowed, required=()):
    """Raise ValueError unless every key of the dict ``args`` is ``allowed`` and every ``required`` one is there.

    The message names what ``what`` takes, then what is wrong: ``perturb takes minFactor, maxFactor, low,
    high, discrete: unknown 'min_factor'``. A reader must refuse what it does not know: a misspelt optional
    key would otherwise silently mean its default.
    """
    unknown = [k for k in args if k not in allowed]
    missing = [k for k in required if k not in args]
    if unknown or missing:
        problems = []
        if unknown:
            problems.append(f"unknown {', '.join(map(repr, unknown))}")
        if missing:
            problems.append(f"missing {', '.join(map(repr, missing))}")
        takes = f"takes {', '.join(allowed)}" if allowed else "takes no arguments"
        raise ValueError(f"{what} {takes}: {'; '.join(problems)}")


def scheduler_args(params, key, what):
    """The arguments of ``{"scheduler": {key: {...}}}`` in the definition ``params`` of ``what`` (an experiment
    kind in words); ValueError naming what is wrong."""
    inner = params.get("scheduler") if isinstance(params, dict) and list(params) == ["scheduler"] else None
    args = inner.get(key) if isinstance(inner, dict) and list(inner) == [key] else None
    if not isinstance(args, dict):
        raise ValueError(  # noqa: TRY004 (a log's garbage is a ValueError whatever its type)
            f"{what} parameters must be an object {{'scheduler': {{'{key}': {{...}}}}}}, got {params!r}"
        )
    return args


def named_from_log(dists, what):
    """The distributions of the log-form object ``dists`` (hyperparameter name -> distribution) of ``what``;
    ValueError naming what is wrong."""
    if not isinstance(dists, dict):
        raise ValueError(  # noqa: TRY004 (a log's garbage is a ValueError whatever its type)
            f"{what} distributions must be an object of hyperparameter name -> distribution, got {dists!r}"
        )
    out = {}
    for name, d in dists.items():
        try:
            out[name] = from_log(d)
        except ValueError as e:
            raise ValueError(f"distribution of {name!r}: {e}") from None
    return out


def from_log(d):
    """Build a distribution from its log form; raise ValueError if ``d`` is not one.

    Unknown arguments are refused (``{"uniform": {"low": 0, "hi": 1}}``), and the constructor's own checks
    apply; their TypeErrors become ValueErrors with the same message, as for any malformed log.
    """
    if not isinstance(d, dict) or len(d) != 1:
        raise ValueError(f"a distribution is a one-key object such as {{'uniform': {{...}}}}, got {d!r}")
    ((name, args),) = d.items()
    cls = _BY_LOG_NAME.get(name)
    if cls is None:
        raise ValueError(f"unknown distribution {name!r}; known: {', '.join(sorted(_BY_LOG_NAME))}")
    try:
        if cls is Constant:
            return Constant(values.decode(args))
        if not isinstance(args, dict):
            raise ValueError(  # noqa: TRY004 (a log's garbage is a ValueError whatever its type)
                f"the arguments of the {name} distribution must be an object, got {args!r}"
            )
        check_keys(f"the {name} distribution", args, *ARGUMENTS[cls])
        if cls is Choice:
            vals = args["values"]
            if not isinstance(vals, list):
                raise ValueError(f"the values of the choice distribution must be a list, got {vals!r}")
            return Choice([values.decode(v) for v in vals], args.get("weights"))
        return cls(**args)
    except TypeError as e:
        raise ValueError(str(e)) from None


def check_distributions(distributions):
    """Validate a dict of hyperparameter name -> Distribution; return it as a plain dict."""
    if not isinstance(distributions, dict):
        raise TypeError(f"distributions must be a dict of name -> distribution, got {type(distributions).__name__}")
    for name, dist in distributions.items():
        if not isinstance(name, str):
            raise TypeError(f"hyperparameter names must be strings, got {name!r}")
        values.encode(name, "hyperparameter name")
        if not isinstance(dist, Distribution):
            raise TypeError(
                f"distribution of {name!r} must be one of schedy.random's distributions, got {type(dist).__name__}"
            )
    return dict(distributions)
